"""SIP over a byte stream (TCP): split the stream into SIP messages (pure, stdlib only).

RFC 3261 section 18.3: on a stream transport every message must carry ``Content-Length``
(compact form ``l:``); a message is its start line and headers up to the empty line,
then exactly ``Content-Length`` bytes of body.  :class:`SipSplitter` is sans-IO::

    sp = SipSplitter()
    for msg in sp.feed(segment_bytes):     # any split: several messages in one segment,
        ...                                # one message over many segments
    sp.close()                             # bytes of an incomplete last message

Rules:

* CRLF keep-alives between messages (RFC 5626 "double CRLF" pings, single CRLF pongs)
  are skipped and counted in ``keepalive_bytes``.
* A message without ``Content-Length`` is taken to have no body (what most stacks do).
* A ``Content-Length`` is 1 to 9 ASCII digits (:func:`clen_value`); a longer one, like a
  body longer than ``max_body``, is invalid framing: the message is skipped as garbage.
* Bytes that cannot start a SIP message (no ``SIP/2.0`` start line) are garbage: the
  splitter skips to the next line that looks like a start line and counts what it
  skipped in ``skipped_bytes``.  A header block longer than ``max_header`` bytes or a
  body longer than ``max_body`` is treated the same way, so memory stays bounded.
* Retransmitted TCP segments never reach this class: the reassembler in front of it
  (``heptool.capture.pcap.TcpReassembler``) hands out each stream byte once.

:func:`looks_like_sip` is the cheap test used to recognise SIP in a UDP datagram or at the
start of a TCP stream.  The ``Content-Length`` rule (:func:`content_length`, :func:`clen_value`,
:data:`CLEN_MAX_DIGITS`, :data:`INVALID`) is defined in :mod:`heptool.core.wire`, next to the
HEP stream framing's, and re-exported here.
"""

from __future__ import annotations

import re

from ..core.wire import CLEN_MAX_DIGITS, INVALID, clen_value, content_length
from .headers import TOKEN

__all__ = ["CLEN_MAX_DIGITS", "INVALID", "SipSplitter", "clen_value", "content_length",
           "looks_like_sip"]

_TOKEN = TOKEN.encode("ascii")  # the token rule, as bytes
_REQUEST_RE = re.compile(_TOKEN + rb" [^ \r\n]+ SIP/2\.0\r?\n")
_STATUS_RE = re.compile(rb"SIP/2\.0 [1-6][0-9][0-9][^\r\n]*\r?\n")
#: a start line anywhere (after a line break): where to resynchronise after garbage
_RESYNC_RE = re.compile(rb"\n(?=(?:SIP/2\.0 [1-6][0-9][0-9]|" + _TOKEN + rb" [^ \r\n]+ SIP/2\.0\r?\n))")

MAX_HEADER = 64 * 1024
MAX_BODY = 1024 * 1024


def looks_like_sip(data: bytes) -> bool:
    """Does ``data`` start with a SIP request or status line?  (~0.3 us; no full parse.)"""
    if data[:8] == b"SIP/2.0 ":
        return _STATUS_RE.match(data) is not None
    eol = data.find(b"\n", 0, 2048)
    if eol < 9:
        return False
    end = eol - 1 if data[eol - 1] == 13 else eol
    if data[end - 8 : end] != b" SIP/2.0":
        return False
    return _REQUEST_RE.match(data) is not None


class SipSplitter:
    """Splits one direction of a SIP-over-TCP stream into messages (see module doc).

    :meth:`feed` returns the messages completed by the new bytes, each as
    ``(offset, message_bytes)`` where ``offset`` is the stream position of its first byte.
    """

    __slots__ = (
        "_base",
        "_buf",
        "keepalive_bytes",
        "max_body",
        "max_header",
        "messages",
        "skipped_bytes",
    )

    def __init__(self, *, max_header: int = MAX_HEADER, max_body: int = MAX_BODY) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self.skipped_bytes = 0
        self.keepalive_bytes = 0
        self.messages = 0

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf
        if not buf:
            # common case: nothing pending; work on the bytes object directly
            out, used = self._split(data)
            if used < len(data):
                buf += data[used:] if used else data
            self._base += used
            return out
        buf += data
        out, used = self._split(bytes(buf))
        if used:
            del buf[:used]
            self._base += used
        return out

    def close(self) -> int:
        """End of stream: drop and return the number of bytes of an incomplete message."""
        n = len(self._buf)
        self._buf = bytearray()
        self._base += n
        return n

    def _split(self, b: bytes) -> tuple[list[tuple[int, bytes]], int]:
        out: list[tuple[int, bytes]] = []
        pos = 0
        n = len(b)
        base = self._base
        while pos < n:
            # keep-alives between messages
            c = b[pos]
            if c == 13 or c == 10:
                start = pos
                while pos < n and b[pos] in (13, 10):
                    pos += 1
                self.keepalive_bytes += pos - start
                continue
            hend = b.find(b"\r\n\r\n", pos, pos + self.max_header)
            if hend < 0:
                lf = b.find(b"\n\n", pos, pos + self.max_header)
                if lf >= 0:
                    hend, sep = lf, 2
                else:
                    if n - pos >= self.max_header or not self._plausible(b, pos):
                        pos = self._resync(b, pos)
                        continue
                    break  # need more bytes
            else:
                sep = 4
            if not self._plausible(b, pos):
                pos = self._resync(b, pos)
                continue
            clen = content_length(b[pos : hend + 2])
            body = clen or 0
            if body > self.max_body or body < 0:  # too long or invalid: resynchronise
                pos = self._resync(b, pos)
                continue
            end = hend + sep + body
            if end > n:
                break  # body incomplete
            out.append((base + pos, b[pos:end]))
            self.messages += 1
            pos = end
        return out, pos

    @staticmethod
    def _plausible(b: bytes, pos: int) -> bool:
        """Could a SIP start line begin at ``pos`` (as far as the bytes go)?"""
        head = b[pos : pos + 2048]
        if b"\n" not in head:
            # an incomplete first line: only refuse what can never become one
            return head[:1].isalpha() and len(head) < 2048
        return looks_like_sip(head)

    def _resync(self, b: bytes, pos: int) -> int:
        mo = _RESYNC_RE.search(b, pos)
        if mo:
            new = mo.end()
        else:  # keep a last, incomplete line: it may become a start line
            lf = b.rfind(b"\n", pos)
            new = lf + 1 if lf >= pos else len(b)
        self.skipped_bytes += new - pos
        return new
