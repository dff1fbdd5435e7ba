"""The HEP wire rules every reader shares: magics, sniffing, sizes, the chunk walk, Content-Length.

One definition each, imported by the codec (:mod:`.decode`), the stream framing
(:mod:`.stream`), the captures (:mod:`heptool.capture`), SIP over TCP
(:mod:`heptool.sip.framing`) and the hex dump (:mod:`heptool.output.annotate`):

* :data:`MAGICS` (``HEP3``, and the ``EEP1``/``EEP3`` that some agents write), :data:`MAGIC_RE`,
  :data:`MAX_HEP3_SIZE`;
* the v1/v2 rules: :func:`sniff_version`, :data:`V12_IPV6_FAMILIES`, :func:`v12_header_size`;
* :func:`iter_chunks`, the bounded walk over HEP3 chunk headers (``>HHH``: vendor, type,
  length), which yields a :class:`ChunkHeader` per chunk and, on damage, one
  :class:`~heptool.core.errors.TruncatedChunkError` (with its offset) as its last item;
* the ``Content-Length`` rule of SIP text carried over a byte stream: :func:`clen_value`
  (1-9 ASCII digits) and the two header regexes, :data:`CLEN_RE` (SIP over TCP) and
  :data:`V12_CLEN_RE` (HEPv1/v2 over TCP), which differ (see their comments).

Pure and stdlib only.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import NamedTuple

from .errors import TruncatedChunkError

__all__ = [
    "CHUNK_HDR",
    "CLEN_MAX_DIGITS",
    "CLEN_RE",
    "EEP1",
    "EEP3",
    "HEP3",
    "INVALID",
    "MAGICS",
    "MAGIC_RE",
    "MAX_HEP3_SIZE",
    "V2_TIME",
    "V12_CLEN_RE",
    "V12_FAMILIES",
    "V12_HEAD",
    "V12_IPV6_FAMILIES",
    "V12_RE",
    "ChunkHeader",
    "clen_value",
    "content_length",
    "iter_chunks",
    "sniff_version",
    "v12_header_size",
]

# ---------------------------------------------------------------------------
# HEP3
# ---------------------------------------------------------------------------
HEP3 = b"HEP3"
#: The EEP magics: accepted in lenient mode only (some receivers refuse them).
EEP1 = b"EEP1"
EEP3 = b"EEP3"
MAGICS = (HEP3, EEP1, EEP3)
#: Any magic, anywhere (where a stream resynchronises after garbage).
MAGIC_RE = re.compile(rb"HEP3|EEP[13]")
#: The 16-bit length field: no HEP3 packet is longer.
MAX_HEP3_SIZE = 0xFFFF
#: A HEP3 chunk header: vendor, type, length (the 6 header bytes included).
CHUNK_HDR = struct.Struct(">HHH")


class ChunkHeader(NamedTuple):
    """One HEP3 chunk: ``data[offset + 6:offset + length]`` is its body."""

    offset: int
    vendor: int
    type: int
    length: int


def iter_chunks(data: bytes, start: int = 6, end: int | None = None
                ) -> Iterator[ChunkHeader | TruncatedChunkError]:
    """The chunk headers of ``data[start:end]`` (``end``: ``len(data)``), in order.

    Each chunk is checked before it is yielded: room for its 6-byte header, a length of at
    least 6, and ``offset + length <= end``.  The first chunk that fails stops the walk: its
    :class:`~heptool.core.errors.TruncatedChunkError` (the same text and offset as the
    decoder's) is yielded as the last item, never raised."""
    if end is None:
        end = len(data)
    hdr = CHUNK_HDR.unpack_from
    off = start
    while off < end:
        if end - off < 6:
            yield TruncatedChunkError(f"{end - off} bytes left, a chunk header needs 6", offset=off)
            return
        vendor, ctype, clen = hdr(data, off)
        if clen < 6:
            yield TruncatedChunkError(f"chunk 0x{vendor:04x}:0x{ctype:04x} length {clen} is less than 6",
                                      offset=off + 4, chunk=(vendor, ctype))
            return
        if off + clen > end:
            yield TruncatedChunkError(
                f"chunk 0x{vendor:04x}:0x{ctype:04x} length {clen} exceeds remaining {end - off} bytes",
                offset=off + 4, chunk=(vendor, ctype))
            return
        yield ChunkHeader(off, vendor, ctype, clen)
        off += clen


# ---------------------------------------------------------------------------
# HEPv1 / HEPv2
# ---------------------------------------------------------------------------
#: Address-family byte values meaning IPv6 in v1/v2 headers: Linux 10, BSDs 24/28, macOS 30,
#: and 16 (hep-wireshark's reading).
V12_IPV6_FAMILIES = frozenset((10, 16, 24, 28, 30))
#: Every family byte a v1/v2 header may carry (2: IPv4).
V12_FAMILIES = frozenset((2,)) | V12_IPV6_FAMILIES
#: A plausible v1/v2 header start (version, length byte, family, ip proto): where a stream
#: that has carried v1/v2 resynchronises after garbage.
V12_RE = re.compile(rb"[\x01\x02][\x10\x28][\x02\x0a\x10\x18\x1c\x1e][\x06\x11\x16\x32\x84]")
#: The v1/v2 header: version, length byte, family, ip proto, source port, destination port
#: (then the two addresses).
V12_HEAD = struct.Struct(">BBBBHH")
#: The v2 time header after the addresses (little-endian, as C senders write it): seconds,
#: microseconds, capture id (16 bits), 2 pad bytes.
V2_TIME = struct.Struct("<IIH2s")


def v12_header_size(version: int, hlen: int, family: int) -> int:
    """Bytes before the payload of a v1/v2 packet (the v2 time header included), from its
    version, length and family bytes; 0 when they name no IP version.  The family decides
    (2: IPv4, :data:`V12_IPV6_FAMILIES`: IPv6), else the length byte (16 or 40)."""
    if family == 2:
        asz = 4
    elif family in V12_IPV6_FAMILIES:
        asz = 16
    elif hlen == 16:
        asz = 4
    elif hlen == 40:
        asz = 16
    else:
        return 0
    return 8 + 2 * asz + (12 if version == 2 else 0)


def sniff_version(data: bytes) -> int | None:
    """3 for HEP3/EEP magic, 1 or 2 for a plausible v1/v2 header, else None."""
    head = data[:4]
    if head in MAGICS:
        return 3
    if len(data) >= 8 and data[0] in (1, 2) and (data[1] in (16, 40) or data[2] in (2, 10)):
        return data[0]
    return None


# ---------------------------------------------------------------------------
# Content-Length of SIP text on a byte stream
# ---------------------------------------------------------------------------
#: ``Content-Length``/``l:`` in a SIP header block (SIP over TCP, :mod:`heptool.sip.framing`):
#: at the start of any line (LF), blanks allowed before the name.
CLEN_RE = re.compile(rb"\n[ \t]*(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", re.IGNORECASE)
#: The same header as the HEPv1/v2-over-TCP framing (:mod:`.stream`) finds it: after a CRLF,
#: no blank before the name.  Narrower than :data:`CLEN_RE` (a bare-LF or indented line is
#: not read here); the two are kept apart so that neither framing changes.
V12_CLEN_RE = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", re.IGNORECASE)

#: Most digits a ``Content-Length`` may have: 9 digits is up to 999,999,999 bytes, far more
#: than any stream buffer here holds.  More is invalid framing, never an ``int()`` of
#: thousands of digits (Python refuses more than 4,300 with ValueError).
CLEN_MAX_DIGITS = 9
#: What :func:`content_length` and :func:`clen_value` return for a value that is present but
#: not 1-9 ASCII digits.
INVALID = -1


def clen_value(digits: bytes) -> int:
    """A Content-Length value: 1-9 ASCII digits -> its int, anything else -> :data:`INVALID`.

    Packet text is never given to ``str.isdigit``/``int`` unchecked: ``isdigit`` accepts
    ``'²'`` and ``int`` accepts ``'1_0'``, ``' 1'`` and other digit scripts."""
    if not 0 < len(digits) <= CLEN_MAX_DIGITS or digits.strip(b"0123456789"):
        return INVALID
    return int(digits)


def content_length(head: bytes) -> int | None:
    """The ``Content-Length`` (or ``l:``) value of a SIP header block (:data:`CLEN_RE`), None
    when absent, or :data:`INVALID` (-1) when it has more than :data:`CLEN_MAX_DIGITS` digits."""
    mo = CLEN_RE.search(head)
    return clen_value(mo.group(1)) if mo else None
