"""Sans-IO framing of HEP carried over a byte stream (TCP, TLS, files).

    dec = StreamDecoder()
    dec.feed(chunk_of_bytes)          # any split, one byte at a time included
    while (msg := dec.next_message()) is not NEED_DATA:
        ...

HEP3 packets are framed by their 16-bit length.  HEPv1/v2 have no total length, yet
Kamailio sends them over TCP (HEP-SPEC section 14): such a packet ends where its SIP
message ends, found from the headers' end (CRLFCRLF) and ``Content-Length`` (or ``l:``):
1 to 9 ASCII digits, and the message at most ``max_message`` bytes; anything else is no
frame, so the bytes are garbage (StreamError in strict mode, skipped in lenient mode).

Bytes that start no packet are garbage.  Strict mode raises :class:`StreamError` at
the first garbage byte (and stays failed); lenient mode skips to the next ``HEP3``
magic (or, once the stream has carried v1/v2, the next plausible v1/v2 header) and
counts what it skipped in ``skipped_bytes``.  A packet that is framed correctly but
does not decode raises :class:`HepDecodeError` from ``next_message`` with the stream
offset; the decoder has already moved past it, so the caller may log and go on.

Memory is bounded: at most ``max_buffer`` bytes are held (a HEP3 packet is at most
65,535 bytes; v1/v2 SIP is bounded by ``max_message``).
"""

from __future__ import annotations

from collections.abc import Iterator

from .codec import decode
from .compression import DEFAULT_MAX_INFLATE
from .errors import HepDecodeError, StreamError
from .message import HepMessage
from .wire import MAGIC_RE, MAGICS, V12_CLEN_RE, V12_FAMILIES, V12_RE, clen_value, v12_header_size

__all__ = ["NEED_DATA", "StreamDecoder"]


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __bool__(self) -> bool:
        return False


#: Returned by :meth:`StreamDecoder.next_message` when more bytes are needed.
NEED_DATA = _NeedData()

_SIP_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class StreamDecoder:
    """Frames and decodes HEP packets from a byte stream.

    :param strict: raise on garbage and decode strictly (see :func:`heptool.decode`).
    :param max_buffer: most bytes held at once; ``feed`` raises :class:`StreamError`
        past it (the caller is not draining).  Must exceed 65,535.
    :param max_message: longest v1/v2-over-TCP message searched for its end.
    :param allow_v12: frame v1/v2 (Kamailio over TCP).  Off: only HEP3 is framed.
    """

    def __init__(self, *, strict: bool = False, max_buffer: int = 1 << 20,
                 max_message: int = 0xFFFF, allow_v12: bool = True,
                 max_inflate: int = DEFAULT_MAX_INFLATE) -> None:
        if max_buffer <= 0xFFFF:
            raise ValueError("max_buffer must exceed 65535 (the largest HEP3 packet)")
        self.strict = strict
        self.max_buffer = max_buffer
        self.max_message = max_message
        self.allow_v12 = allow_v12
        self.max_inflate = max_inflate
        self._buf = bytearray()
        self._pos = 0  # read position inside _buf
        self._base = 0  # stream offset of _buf[0]
        self._seen_v12 = False
        self._failed: StreamError | None = None
        #: bytes skipped while resynchronising (lenient mode)
        self.skipped_bytes = 0
        #: number of garbage runs skipped
        self.resyncs = 0
        #: packets returned
        self.messages = 0

    # -- input ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._base += self._pos
            self._pos = 0
        if len(self._buf) - self._pos + len(data) > self.max_buffer:
            raise StreamError(f"stream buffer would exceed {self.max_buffer} bytes; "
                              "call next_message() to drain it", offset=self.offset)
        self._buf += data

    @property
    def offset(self) -> int:
        """Stream offset of the next unread byte."""
        return self._base + self._pos

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    # -- output -----------------------------------------------------------------
    def __iter__(self) -> Iterator[HepMessage]:
        while True:
            m = self.next_message()
            if m is NEED_DATA:
                return
            yield m  # type: ignore[misc]

    def next_message(self) -> HepMessage | _NeedData:
        """The next decoded packet, or NEED_DATA.  A framed packet that does not decode
        raises HepDecodeError (offset = stream offset); the decoder has moved past it."""
        f = self.next_frame()
        if f is NEED_DATA:
            return NEED_DATA
        start, data = f  # type: ignore[misc]
        try:
            msg = decode(data, self.strict, self.max_inflate)
        except HepDecodeError as e:
            e.offset = start + (e.offset or 0)
            raise
        self.messages += 1
        return msg

    def next_frame(self) -> tuple[int, bytes] | _NeedData:
        """The next framed packet, undecoded: (stream offset, its bytes), or NEED_DATA.

        For adapters that need the exact bytes (pcap frames, forwarding) without decoding
        twice; ``next_message`` is this plus :func:`heptool.decode`.
        """
        if self._failed is not None:
            raise self._failed
        buf = self._buf
        while True:
            pos = self._pos
            avail = len(buf) - pos
            if avail == 0:
                if pos:
                    self._base += pos
                    buf.clear()
                    self._pos = 0
                return NEED_DATA
            head = bytes(buf[pos:pos + 4])
            if head in MAGICS:
                if avail < 6:
                    return NEED_DATA
                total = buf[pos + 4] << 8 | buf[pos + 5]
                if total >= 6:
                    if avail < total:
                        return NEED_DATA
                    return self._take(pos, total)
                self._garbage(f"HEP3 length {total} is less than 6")
                continue
            if avail < 4 and any(m.startswith(head) for m in MAGICS):
                return NEED_DATA
            if self.allow_v12 and head[:1] in (b"\x01", b"\x02"):
                r = self._frame_v12(pos, avail)
                if r is NEED_DATA:
                    return NEED_DATA
                if r:
                    self._seen_v12 = True
                    return self._take(pos, r)  # type: ignore[arg-type]
            self._garbage(f"not a HEP packet (starts with {head.hex(' ')})")

    def _take(self, pos: int, total: int) -> tuple[int, bytes]:
        self._pos = pos + total
        return self._base + pos, bytes(self._buf[pos:pos + total])

    def _frame_v12(self, pos: int, avail: int) -> int | _NeedData | None:
        """Total length of the v1/v2 packet at pos, NEED_DATA, or None (not one)."""
        buf = self._buf
        if avail < 8:
            return NEED_DATA
        start = v12_header_size(buf[pos], buf[pos + 1], buf[pos + 2])
        if not start:
            return None
        if avail < start + 1:
            return NEED_DATA
        if buf[pos + start] not in _SIP_START:
            return None
        end_hdr = buf.find(b"\r\n\r\n", pos + start, pos + start + self.max_message)
        if end_hdr < 0:
            if avail >= start + self.max_message:
                return None
            return NEED_DATA
        m = V12_CLEN_RE.search(buf, pos + start - 2 if start >= 2 else pos, end_hdr + 2)
        body = clen_value(m.group(1)) if m else 0
        if body < 0:  # more than 9 digits: not a frame we can trust (garbage / StreamError)
            return None
        total = end_hdr + 4 - pos + body
        if total - start > self.max_message + 4:
            return None
        if avail < total:
            return NEED_DATA
        return total

    def _garbage(self, why: str) -> None:
        pos = self._pos
        if self.strict:
            self._failed = StreamError(why, offset=self._base + pos)
            raise self._failed
        buf = self._buf
        nxt = MAGIC_RE.search(buf, pos + 1)
        stop = nxt.start() if nxt else len(buf)
        if self._seen_v12:
            v = V12_RE.search(buf, pos + 1, stop)
            if v:
                stop = v.start()
        if nxt is None and stop == len(buf):
            # keep up to 3 trailing bytes: they may start a magic (or, once the stream has
            # carried v1/v2, a v1/v2 header) that the next feed completes
            keep = 0
            for k in (3, 2, 1):
                if len(buf) - k > pos and self._may_start_packet(bytes(buf[-k:])):
                    keep = k
                    break
            stop = len(buf) - keep
        self.skipped_bytes += stop - pos
        self.resyncs += 1
        self._pos = stop

    def _may_start_packet(self, tail: bytes) -> bool:
        if any(mg.startswith(tail) for mg in MAGICS):
            return True
        if not self._seen_v12 or tail[0] not in (1, 2):
            return False
        return (len(tail) < 2 or tail[1] in (16, 40)) and (len(tail) < 3 or tail[2] in V12_FAMILIES)

    # -- end of stream --------------------------------------------------------------
    def close(self) -> int:
        """End of stream: the number of bytes left unframed (a partial packet).

        Strict mode raises :class:`StreamError` if any are left.
        """
        left = len(self._buf) - self._pos
        if left and self.strict:
            raise StreamError(f"stream ends inside a HEP packet ({left} bytes left)", offset=self.offset)
        return left
