"""Where capture frames come from: a path or a binary file object, plain or gzip.

:func:`open_capture` / :func:`iter_frames` tell the format by its magic bytes (never by the
file name) and hand the file to the classic pcap reader (:mod:`.pcapfile`) or the pcapng
reader (:mod:`.pcapng`); a gzip file is unwrapped first.  Reading the magic consumes bytes,
so :class:`Prefixed` puts them back in front of the file object (the push-back reader, with
``read``, ``read1`` and ``peek``), and :class:`GuardedReader` turns a damaged gzip stream into a
short read, which the record readers report as a :class:`~.pcapfile.CaptureError`.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from typing import IO, Any

from .pcapfile import (
    GZIP_MAGIC,
    PCAP_MAGICS,
    PCAPNG_SHB,
    CaptureError,
    Frame,
    iter_pcap,
    read_exact,
)
from .pcapng import iter_pcapng

__all__ = ["GuardedReader", "Prefixed", "iter_frames", "open_capture"]


def open_capture(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Frame]:
    """Frames of a capture given as a path or a binary file object.

    A path is opened (and closed when the iterator finishes or is closed); a file object
    is read from its current position and left open.
    """
    if isinstance(source, (str, bytes, os.PathLike)):
        return _iter_path(source)
    return iter_frames(source)


def _iter_path(path: Any) -> Iterator[Frame]:
    with open(path, "rb", buffering=1 << 16) as f:
        yield from iter_frames(f)


def iter_frames(fileobj: IO[bytes]) -> Iterator[Frame]:
    """Frames of a pcap/pcapng (optionally gzip) capture read from ``fileobj``."""
    head = read_exact(fileobj.read, 4)
    if len(head) >= 2 and head[:2] == GZIP_MAGIC:
        yield from _iter_gzip(Prefixed(head, fileobj))
        return
    if len(head) < 4:
        raise CaptureError(
            f"not a capture file: only {len(head)} bytes"
            if head
            else "empty file (no pcap header)",
            offset=0,
        )
    if head in PCAP_MAGICS:
        yield from iter_pcap(fileobj, head)
    elif head == PCAPNG_SHB:
        yield from iter_pcapng(fileobj, head)
    else:
        raise CaptureError(f"not a pcap or pcapng file (magic {head.hex()})", offset=0)


def _iter_gzip(raw: Prefixed) -> Iterator[Frame]:
    gz = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
    reader = GuardedReader(gz)
    try:
        yield from iter_frames(reader)  # type: ignore[arg-type]
    except CaptureError as e:
        if reader.error is None:
            raise
        # the decompressor failed mid-record: report it with the record's position
        raise CaptureError(
            f"gzip stream damaged: {reader.error}", frame=e.frame, offset=e.offset
        ) from None


class GuardedReader:
    """``read`` that turns gzip/zlib failures into a short read (-> CaptureError)."""

    __slots__ = ("_f", "error")

    def __init__(self, f: Any) -> None:
        self._f = f
        self.error: str | None = None

    def read(self, n: int = -1) -> bytes:
        if self.error is not None:
            return b""
        try:
            return self._f.read(n)
        except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            self.error = str(e) or type(e).__name__
            return b""


class Prefixed:
    """A file object with some bytes already read put back in front.

    The one push-back reader: the magic read to tell a capture's format (gzip sniffing,
    :mod:`.inputs`), the file header in front of a pcap read again from a record on
    (:mod:`.fused_hep`).  :meth:`peek` looks further ahead without consuming anything.
    """

    __slots__ = ("_f", "_head")

    def __init__(self, head: bytes, f: IO[bytes]) -> None:
        self._head = head
        self._f = f

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer only at end of file), left to be read again."""
        head = self._head
        if len(head) < n:
            head += read_exact(self._f.read, n - len(head))
            self._head = head
        return head[:n]

    def read1(self, n: int = -1) -> bytes:
        """What is available now (the put-back bytes first), like BufferedReader.read1."""
        head = self._head
        if head:
            if n is None or n < 0 or n >= len(head):
                self._head = b""
                return head
            self._head = head[n:]
            return head[:n]
        read1 = getattr(self._f, "read1", None)
        return read1(n) if read1 is not None else self._f.read(n)

    def read(self, n: int = -1) -> bytes:
        head = self._head
        if not head:
            return self._f.read(n)
        if n is None or n < 0:
            self._head = b""
            return head + self._f.read()
        if n <= len(head):
            self._head = head[n:]
            return head[:n]
        self._head = b""
        return head + self._f.read(n - len(head))
