"""capture.source.Prefixed: the one push-back reader (read, read1, peek)."""

import io

from heptool.capture.source import Prefixed


class _NoRead1:
    """A reader without read1 that returns at most 3 bytes a call (like a raw pipe)."""

    def __init__(self, data: bytes) -> None:
        self._b = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._b.read(n if n is not None and 0 <= n <= 3 else 3)


def test_read_gives_the_head_back_first():
    p = Prefixed(b"abc", io.BytesIO(b"defgh"))
    assert p.read(2) == b"ab"
    assert p.read(3) == b"cde"
    assert p.read() == b"fgh"
    assert p.read(1) == b""


def test_read1_without_read1_underneath():
    p = Prefixed(b"ab", _NoRead1(b"cdefg"))
    assert p.read1(5) == b"ab"
    assert p.read1(5) == b"cde"


def test_peek_looks_ahead_without_consuming():
    p = Prefixed(b"ab", _NoRead1(b"cdefgh"))
    assert p.peek(1) == b"a"
    assert p.peek(7) == b"abcdefg"
    assert p.read(4) == b"abcd"
    assert p.peek(2) == b"ef"
    assert p.peek(10) == b"efgh"  # fewer only at end of file
    assert p.read() == b"efgh"
    assert p.peek(3) == b""
