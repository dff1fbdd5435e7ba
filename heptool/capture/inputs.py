"""Every input heptool reads, detected from its bytes, as one stream of HEP packets.

Kinds (the first bytes decide, never the file name):

* ``pcap`` / ``pcapng`` (either gzip-compressed): HEP over UDP and TCP found by
  :func:`heptool.capture.pcap.iter_hep_payloads`;
* ``hep``: a raw stream of HEP packets back to back (what ``heptool encode`` writes, a
  TCP payload dump, heplify's buffer); framed by :class:`heptool.StreamDecoder`;
* ``jsonl``: JSON Lines records (what ``heptool decode -f jsonl`` writes), or one JSON
  array of them (``-f json``);
* any of the last two gzip-compressed.

:func:`iter_input` yields :class:`InputPacket` items lazily (nothing holds a whole
capture); :func:`to_message` decodes one, raising :class:`heptool.HepError` whose message
names the place (``frame 17, offset 58: ...``, ``line 3: ...``).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import zlib
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from ..core.codec import decode
from ..core.errors import HepDecodeError, HepError, HepValueError, InputError
from ..core.message import HepMessage
from ..core.record import from_record
from ..core.stream import NEED_DATA, StreamDecoder
from ..core.wire import sniff_version
from .hep import iter_hep_payloads
from .pcapfile import CaptureError
from .source import Prefixed
from .stats import CaptureStats

try:  # orjson parses JSON Lines ~3x faster; the stdlib is the fallback
    import orjson as _orjson

    _loads = _orjson.loads
    _JSONError: tuple[type[Exception], ...] = (_orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover
    _loads = json.loads
    _JSONError = (ValueError,)

__all__ = [
    "InputError",
    "InputPacket",
    "InputStats",
    "iter_input",
    "open_source",
    "sniff_kind",
    "to_message",
]

_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")
_CHUNK = 1 << 16
#: Longest JSON Lines line accepted (a HEP record of the largest packet is well under 1 MiB)
MAX_LINE = 16 << 20
#: Largest single JSON array read whole (``decode -f json`` output)
MAX_JSON = 256 << 20




_new_tuple = tuple.__new__  # builds NamedTuples without the Python-level __new__ (hot loop)


class InputPacket(NamedTuple):
    """One HEP packet of an input, not decoded yet.

    Built only by its named constructors (:meth:`capture`, :meth:`stream`, :meth:`json`)
    and read by field name.
    """

    index: int  # 0-based position of the packet in this input
    frame: int | None  # pcap: 1-based frame where it starts
    line: int | None  # jsonl: 1-based line
    offset: int | None  # hep stream: byte offset of the packet
    hep_transport: str | None  # pcap: "udp"/"tcp" the HEP travelled on
    hep_src: str | None  # pcap: outer "ip:port"
    hep_dst: str | None
    outer_ts: tuple[int, int] | None  # pcap: capture time of that frame
    data: bytes | None  # the HEP bytes (pcap, hep stream)
    record: Any  # jsonl: the parsed record (dict), or None
    error: str | None  # jsonl: why the line is not a record

    # the named constructors: the only places an InputPacket is put together (by name, so
    # that no caller depends on the field order)
    @classmethod
    def capture(cls, index: int, frame: int, transport: str, src: str, dst: str,
                ts: tuple[int, int], data: bytes) -> InputPacket:
        """A HEP packet found in a capture (:func:`~.hep.iter_hep_payloads`)."""
        return _new_tuple(cls, (index, frame, None, None, transport, src, dst, ts, data, None,
                                None))

    @classmethod
    def stream(cls, index: int, offset: int, data: bytes) -> InputPacket:
        """A HEP packet framed out of a HEP byte stream at stream offset ``offset``."""
        return _new_tuple(cls, (index, None, None, offset, None, None, None, None, data, None,
                                None))

    @classmethod
    def built(cls, index: int, data: bytes) -> InputPacket:
        """A HEP packet heptool built itself (send's SIP fallback): no place in an input."""
        return _new_tuple(cls, (index, None, None, None, None, None, None, None, data, None,
                                None))

    @classmethod
    def json(cls, index: int, line: int | None, record: Any, error: str | None) -> InputPacket:
        """A JSON record (``line``: its line in JSON Lines), or why it is not one."""
        if isinstance(record, dict):
            frame = record.get("frame")
            if type(frame) is not int:  # it names the place in error messages: a number or nothing
                frame = None
            return _new_tuple(cls, (index, frame, line, None, record.get("hep_transport"),
                                    record.get("hep_src"), record.get("hep_dst"), None, None,
                                    record, error))
        return _new_tuple(cls, (index, None, line, None, None, None, None, None, None, None,
                                error or "a JSON record must be an object"))

    @property
    def where(self) -> str:
        """``frame 17`` / ``line 3`` / ``packet 5 (byte 1234)``: for error messages."""
        if self.frame is not None:
            return f"frame {self.frame}"
        if self.line is not None:
            return f"line {self.line}"
        if self.offset is not None:
            return f"packet {self.index} (byte {self.offset})"
        return f"packet {self.index}"


class InputStats:
    """What an input held besides HEP (filled while iterating)."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.capture = CaptureStats()
        self.skipped_bytes = 0  # hep stream: garbage between packets
        self.leftover_bytes = 0  # hep stream: a partial packet at the end
        self.blank_lines = 0


def sniff_kind(head: bytes) -> str | None:
    """``pcap``, ``pcapng``, ``gzip``, ``hep``, ``jsonl``, ``json`` or None."""
    if head[:4] in _PCAP_MAGICS:
        return "pcap"
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        return "pcapng"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if sniff_version(head) is not None:  # a HEP3/EEP magic or a v1/v2 header
        return "hep"
    text = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if text[:1] == b"{":
        return "jsonl"
    if text[:1] == b"[":
        return "json"
    return None


def open_source(source: str | os.PathLike[str] | IO[bytes], stdin: IO[bytes] | None = None) -> tuple[IO[bytes], str, bool]:
    """(binary file object, display name, whether we opened it) for a path, ``-`` or a file."""
    if isinstance(source, (str, os.PathLike)):
        if str(source) == "-":
            return (stdin if stdin is not None else sys.stdin.buffer), "<stdin>", False
        try:
            return open(source, "rb", buffering=_CHUNK), str(source), True
        except OSError as e:
            raise InputError(f"{source}: {e.strerror or e}") from None
    return source, getattr(source, "name", "<input>"), False


def iter_input(source: str | os.PathLike[str] | IO[bytes], *, stdin: IO[bytes] | None = None,
               port: int | None = None, stats: InputStats | None = None,
               strict: bool = False) -> Iterator[InputPacket]:
    """The HEP packets of one input, in order.  Raises :class:`InputError` for input that
    is no known kind, and :class:`CaptureError` after the last good packet of a damaged
    capture."""
    st = stats if stats is not None else InputStats()
    f, name, owned = open_source(source, stdin)
    try:
        head = _read_head(f)
        kind = sniff_kind(head)
        if kind == "gzip":
            f = gzip.GzipFile(fileobj=Prefixed(head, f), mode="rb")  # type: ignore[arg-type]
            try:
                head = _read_head(f)
            except (OSError, EOFError, zlib.error) as e:
                raise InputError(f"{name}: damaged gzip data ({e})") from None
            kind = sniff_kind(head)
            if kind == "gzip":
                kind = None
        if kind is None:
            what = "empty" if not head else f"starts with {head[:8].hex(' ')}"
            raise InputError(f"{name}: not a pcap, pcapng, HEP stream or JSON Lines input ({what})")
        st.kind = kind
        body = Prefixed(head, f)
        if kind in ("pcap", "pcapng"):
            yield from _from_capture(body, port, st)
        elif kind == "hep":
            yield from _from_stream(body, st, strict)
        else:
            yield from _from_json(body, kind, name)
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, OSError) and e.errno is not None and not isinstance(e, gzip.BadGzipFile):
            raise
        raise CaptureError(f"{name}: damaged compressed data ({e})") from None
    finally:
        if owned:
            f.close()


def _reader(f: Any) -> Any:
    """``read1`` where the file has it: returns what is there (a pipe from ``heptool listen``
    streams through) instead of blocking until a whole 64 KiB block has arrived."""
    return getattr(f, "read1", None) or f.read


def _read_head(f: Any) -> bytes:
    """The first bytes, enough to tell the kind (at least 16 unless the input is shorter),
    without waiting for more than that on a pipe."""
    read = _reader(f)
    head = b""
    while len(head) < 16:
        more = read(64 - len(head))
        if not more:
            break
        head += more
    return head


def _from_capture(f: Any, port: int | None, st: InputStats) -> Iterator[InputPacket]:
    make = InputPacket.capture
    for i, (frame, sec, usec, transport, src, dst, data) in enumerate(
            iter_hep_payloads(f, port, stats=st.capture)):
        yield make(i, frame, transport, src, dst, (sec, usec), data)


def _from_stream(f: Any, st: InputStats, strict: bool) -> Iterator[InputPacket]:
    dec = StreamDecoder(strict=strict)
    make = InputPacket.stream
    i = 0
    read = _reader(f)
    while True:
        chunk = read(_CHUNK)
        if chunk:
            dec.feed(chunk)
        while True:
            fr = dec.next_frame()
            if fr is NEED_DATA:
                break
            off, data = fr  # type: ignore[misc]
            yield make(i, off, data)
            i += 1
        st.skipped_bytes = dec.skipped_bytes
        if not chunk:
            break
    st.leftover_bytes = dec.close()


def _from_json(f: Any, kind: str, name: str) -> Iterator[InputPacket]:
    make = InputPacket.json
    if kind == "json":
        text = f.read(MAX_JSON + 1)
        if len(text) > MAX_JSON:
            raise InputError(f"{name}: a JSON array larger than {MAX_JSON >> 20} MiB "
                             "(use JSON Lines: decode -f jsonl)")
        try:
            items = _loads(text)
        except _JSONError as e:
            raise InputError(f"{name}: not a JSON array of records ({e})") from None
        if not isinstance(items, list):
            raise InputError(f"{name}: JSON input must be an array of records")
        for i, rec in enumerate(items):
            yield make(i, None, rec, None)
        return
    line_no = 0
    index = 0
    pending = b""
    long_line: list[bytes] = []  # the chunks of a line longer than one read (no copies)
    long_len = 0
    read = _reader(f)
    while True:
        chunk = read(_CHUNK)
        if chunk and b"\n" not in chunk:
            long_line.append(chunk)
            long_len += len(chunk)
            if long_len + len(pending) > MAX_LINE:  # a bomb or not JSON Lines: bounded memory
                raise InputError(f"{name}: line {line_no + 1}: longer than "
                                 f"{MAX_LINE >> 20} MiB (not a JSON record)")
            continue
        if long_line:
            pending = b"".join((pending, *long_line))
            long_line.clear()
            long_len = 0
        if not chunk:
            lines = [pending] if pending else []
        else:
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
        for raw in lines:
            line_no += 1
            if not raw.strip():
                continue
            try:
                rec = _loads(raw)
                err = None if isinstance(rec, dict) else "a JSON record must be an object"
            except _JSONError as e:
                rec, err = None, f"not JSON ({str(e).splitlines()[0]})"
            yield make(index, line_no, rec, err)
            index += 1
        if not chunk:
            return


def to_message(p: InputPacket, strict: bool = False) -> HepMessage:
    """Decode one input packet; errors name the place (``frame 17, offset 58: ...``)."""
    try:
        if p.data is not None:
            return decode(p.data, strict)
        if p.error is not None:
            raise HepValueError(p.error)
        return from_record(p.record)
    except HepError as e:
        place = f"line {p.line}" if p.line is not None else p.where
        raise e.with_context(place) from None


# re-exported for callers that catch per-packet errors
DecodeErrors = (HepDecodeError, HepValueError)
