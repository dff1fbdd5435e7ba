"""pcap / pcapng reading, frame dissection, IP and TCP reassembly, HEP extraction.

Layers, each usable on its own:

* :func:`open_capture` / :func:`iter_frames` yield :class:`Frame` tuples
  ``(frame_no, ts_sec, ts_usec, linktype, data)`` from classic pcap (either byte order,
  micro- or nanosecond timestamps), pcapng (every interface, every section), and either
  of them gzip-compressed.  The format is told by magic bytes, never by the file name.
  A damaged file yields every complete frame and then raises :class:`CaptureError`
  naming the frame number and byte offset.
* :func:`extract_transport` takes one frame apart down to UDP or TCP and returns a
  :class:`Transport` (or ``None`` for anything else).  Link types: Ethernet (with any
  number of 802.1Q / 802.1ad tags), Linux SLL and SLL2, raw IP, BSD NULL/loopback.
* :class:`IPReassembler` puts IPv4 and IPv6 fragments back together.
* :class:`TcpReassembler` turns TCP segments into an in-order byte stream per direction.
* :func:`iter_hep_payloads` glues it all together and yields one :class:`HepPayload`
  per HEP packet: one per UDP datagram, and as many as the stream holds for TCP.

Why the frame dissection is hand-written with :mod:`struct` rather than done by
``dpkt.ethernet.Ethernet``: dpkt costs ~7 us per frame (PERFORMANCE.md), it decodes the
upper layers eagerly (so a first IP fragment comes back as a half-parsed UDP object), and
getting the raw transport bytes back out of it means re-serialising, which recomputes
zero checksums.  Every header here is a fixed layout; reading it with ``struct`` is
exact, bounded, and 10-20 times faster.  dpkt is still used where it earns its keep:
pcapng interface blocks (:mod:`dpkt.pcapng`) and, in the tests, building frames
independently of this parser.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple

from ..core.accel import c_function
from ..core.addr import ip4_text, ip6_text
from ..core.codec import V12_IPV6_FAMILIES
from ..core.errors import HepDecodeError
from ..core.sipframe import looks_like_sip
from ..core.stream import NEED_DATA, StreamDecoder

__all__ = [
    "MAX_CAPLEN",
    "CaptureError",
    "CaptureStats",
    "Frame",
    "HepPayload",
    "IPReassembler",
    "TcpReassembler",
    "Transport",
    "caplen_error",
    "endpoint4",
    "extract_transport",
    "is_hep_candidate",
    "is_hep_stream_start",
    "iter_frames",
    "iter_hep_payloads",
    "open_capture",
    "read_exact",
    "truncated_record_error",
]

#: Largest captured length accepted for one record.  Real snap lengths are <= 262144;
#: anything above is a corrupt length field, and reading it would swallow the file.
MAX_CAPLEN = 256 * 1024
#: Largest pcapng block accepted (a packet block of MAX_CAPLEN plus generous options).
MAX_BLOCK = MAX_CAPLEN + 64 * 1024


class CaptureError(Exception):
    """A capture file cannot be read (any further).

    ``frame`` is the 1-based number of the frame being read when it happened (``None``
    for a bad file header), ``offset`` the byte offset of that record or block in the
    (decompressed) file.
    """

    def __init__(
        self, message: str, *, frame: int | None = None, offset: int | None = None
    ) -> None:
        self.message = message
        self.frame = frame
        self.offset = offset
        where = []
        if frame is not None:
            where.append(f"frame {frame}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class Frame(NamedTuple):
    """One captured frame."""

    frame_no: int  # 1-based, in file order (as Wireshark numbers them)
    ts_sec: int
    ts_usec: int
    linktype: int  # LINKTYPE_* value of the frame's interface
    data: bytes


_new_tuple = tuple.__new__  # builds NamedTuples without the Python-level __new__ (hot loop)

# ---------------------------------------------------------------------------------------
# File reading
# ---------------------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
# classic pcap magic as it appears in the file -> (struct byte order, nanosecond?, record header size)
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False, 16),
    b"\xa1\xb2\xc3\xd4": (">", False, 16),
    b"\x4d\x3c\xb2\xa1": ("<", True, 16),
    b"\xa1\xb2\x3c\x4d": (">", True, 16),
    # Alexey Kuznetzov's "modified" pcap: 8 more bytes per record header
    b"\x34\xcd\xb2\xa1": ("<", False, 24),
    b"\xa1\xb2\xcd\x34": (">", False, 24),
}


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
    if len(head) >= 2 and head[:2] == _GZIP_MAGIC:
        yield from _iter_gzip(_Prefixed(head, fileobj))
        return
    if len(head) < 4:
        raise CaptureError(
            f"not a capture file: only {len(head)} bytes"
            if head
            else "empty file (no pcap header)",
            offset=0,
        )
    if head in _PCAP_MAGICS:
        yield from _iter_pcap(fileobj, head)
    elif head == _PCAPNG_SHB:
        yield from _iter_pcapng(fileobj, head)
    else:
        raise CaptureError(f"not a pcap or pcapng file (magic {head.hex()})", offset=0)


def _iter_gzip(raw: _Prefixed) -> Iterator[Frame]:
    gz = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
    reader = _GuardedReader(gz)
    try:
        yield from iter_frames(reader)  # type: ignore[arg-type]
    except CaptureError as e:
        if reader.error is None:
            raise
        # the decompressor failed mid-record: report it with the record's position
        raise CaptureError(
            f"gzip stream damaged: {reader.error}", frame=e.frame, offset=e.offset
        ) from None


class _GuardedReader:
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


class _Prefixed:
    """A file object with some bytes already read put back in front (for gzip sniffing)."""

    __slots__ = ("_f", "_head")

    def __init__(self, head: bytes, f: IO[bytes]) -> None:
        self._head = head
        self._f = f

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


def caplen_error(caplen: int, frame: int, offset: int) -> CaptureError:
    """The error for a pcap record header whose captured length is beyond MAX_CAPLEN."""
    return CaptureError(f"record length {caplen} exceeds the {MAX_CAPLEN}-byte limit "
                        "(corrupt record header)", frame=frame, offset=offset)


def truncated_record_error(left: int, rec_size: int, caplen: int, frame: int,
                           offset: int) -> CaptureError:
    """The error for a pcap file that ends ``left`` bytes into a record (whose header, when
    whole, says ``caplen``)."""
    if left < rec_size:
        return CaptureError(f"truncated record header ({left} of {rec_size} bytes)",
                            frame=frame, offset=offset)
    return CaptureError(f"truncated record: {left - rec_size} of {caplen} captured bytes "
                        "present", frame=frame, offset=offset)


def read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    """Read ``n`` bytes, or fewer only at end of file (raw/unbuffered objects may return short)."""
    data = read(n)
    if data is None:
        data = b""
    while len(data) < n:
        more = read(n - len(data))
        if not more:
            break
        data += more
    return data


#: What one ``read1`` asks for: records are cut out of these blocks (one call per block,
#: not two per record; ``read1`` returns what a pipe has without waiting for the rest).
_BLOCK = 1 << 16


def _iter_pcap(f: IO[bytes], magic: bytes) -> Iterator[Frame]:
    order, nano, rec_size = _PCAP_MAGICS[magic]
    rest = read_exact(f.read, 20)
    if len(rest) < 20:
        raise CaptureError(f"truncated pcap file header ({4 + len(rest)} of 24 bytes)", offset=0)
    _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(order + "HHiIII", rest)
    linktype = network & 0xFFFF  # upper bits carry FCS information, not the link type
    rec = struct.Struct(order + "IIII")
    unpack = rec.unpack_from
    read1 = getattr(f, "read1", None)
    if read1 is not None:
        # records cut out of blocks (one generator layer fewer than a helper would make)
        new = _new_tuple
        frame = 0
        buf = b""
        pos = 0
        have = 0  # len(buf)
        base = 24  # file offset of buf[0]
        want = _BLOCK
        while True:
            more = read1(want)
            if not more:
                break
            buf = buf[pos:] + more if pos < have else more
            base += pos
            pos = 0
            have = len(buf)
            want = _BLOCK
            while pos + rec_size <= have:
                sec, frac, caplen, _origlen = unpack(buf, pos)
                if caplen > MAX_CAPLEN:
                    raise caplen_error(caplen, frame + 1, base + pos)
                stop = pos + rec_size + caplen
                if stop > have:
                    want = max(_BLOCK, stop - have)
                    break
                frame += 1
                yield new(Frame, (frame, sec, frac // 1000 if nano else frac, linktype,
                                  buf[pos + rec_size : stop]))
                pos = stop
        left = have - pos
        if not left:
            return
        caplen = unpack(buf, pos)[2] if left >= rec_size else 0
        raise truncated_record_error(left, rec_size, caplen, frame + 1, base + pos)
    read = f.read
    offset = 24
    frame = 0
    new = _new_tuple
    while True:
        hdr = read(rec_size)
        if len(hdr) < rec_size:
            hdr += read_exact(read, rec_size - len(hdr)) if hdr else b""
            if not hdr:
                return
            if len(hdr) < rec_size:
                raise truncated_record_error(len(hdr), rec_size, 0, frame + 1, offset)
        sec, frac, caplen, _origlen = unpack(hdr)
        frame += 1
        if caplen > MAX_CAPLEN:
            raise caplen_error(caplen, frame, offset)
        data = read(caplen)
        if len(data) < caplen:
            data += read_exact(read, caplen - len(data))
            if len(data) < caplen:
                raise truncated_record_error(rec_size + len(data), rec_size, caplen, frame,
                                             offset)
        yield new(Frame, (frame, sec, frac // 1000 if nano else frac, linktype, data))
        offset += rec_size + caplen


class _Interface:
    __slots__ = ("linktype", "snaplen", "tsoffset", "units")

    def __init__(self, linktype: int, snaplen: int, units: int, tsoffset: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.units = units  # timestamp units per second
        self.tsoffset = tsoffset  # seconds added to every timestamp


_PCAPNG_OPT_TSRESOL = 9
_PCAPNG_OPT_TSOFFSET = 14


def _parse_idb(block: bytes, le: bool) -> _Interface:
    # dpkt costs ~25 ms to import: only pcapng input needs it (every command starts faster)
    import dpkt.pcapng

    cls = dpkt.pcapng.InterfaceDescriptionBlockLE if le else dpkt.pcapng.InterfaceDescriptionBlock
    try:
        idb = cls(block)
    except dpkt.UnpackError as e:
        raise ValueError(str(e)) from None
    units, tsoffset = 1_000_000, 0
    for opt in idb.opts:
        if opt.code == _PCAPNG_OPT_TSRESOL and opt.data:
            v = opt.data[0]
            units = 2 ** (v & 0x7F) if v & 0x80 else 10 ** (v & 0x7F)
        elif opt.code == _PCAPNG_OPT_TSOFFSET and len(opt.data) >= 8:
            tsoffset = struct.unpack(("<" if le else ">") + "q", opt.data[:8])[0]
    return _Interface(idb.linktype, idb.snaplen, units, tsoffset)


def _iter_pcapng(f: IO[bytes], head: bytes) -> Iterator[Frame]:
    read = f.read
    offset = 0
    frame = 0
    order = "<"
    ifaces: list[_Interface] = []
    new = _new_tuple
    first = True
    while True:
        if first:
            hdr = head + read_exact(read, 4)
            first = False
        else:
            hdr = read_exact(read, 8)
        if not hdr:
            return
        if len(hdr) < 8:
            raise CaptureError(
                f"truncated pcapng block header ({len(hdr)} of 8 bytes)",
                frame=frame + 1,
                offset=offset,
            )
        btype = hdr[:4]
        if btype == _PCAPNG_SHB:
            bom = read_exact(read, 4)
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise CaptureError(
                    "pcapng section header has no valid byte-order magic",
                    frame=frame + 1,
                    offset=offset,
                )
            blen = struct.unpack(order + "I", hdr[4:])[0]
            if blen < 28 or blen % 4 or blen > MAX_BLOCK:
                raise CaptureError(
                    f"bad pcapng section header length {blen}", frame=frame + 1, offset=offset
                )
            body = read_exact(read, blen - 12)
            if len(body) < blen - 12:
                raise CaptureError(
                    "truncated pcapng section header", frame=frame + 1, offset=offset
                )
            ifaces = []  # interface ids are per section
            offset += blen
            continue
        btype_n, blen = struct.unpack(order + "II", hdr)
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            raise CaptureError(
                f"bad pcapng block length {blen} (block type 0x{btype_n:08x})",
                frame=frame + 1,
                offset=offset,
            )
        body = read_exact(read, blen - 8)
        if len(body) < blen - 8:
            raise CaptureError(
                f"truncated pcapng block: {len(body) + 8} of {blen} bytes present",
                frame=frame + 1,
                offset=offset,
            )
        if btype_n == 6 or btype_n == 2:  # enhanced packet block / obsolete packet block
            frame += 1
            if len(body) < 24:  # 20 bytes of fields, the trailing length: struct.error before
                raise CaptureError(
                    f"packet block length {blen} is less than the 32 bytes of its fields",
                    frame=frame,
                    offset=offset,
                )
            if btype_n == 6:
                iface_id, tsh, tsl, caplen, _orig = struct.unpack_from(order + "IIIII", body)
            else:
                iface_id, _drops, tsh, tsl, caplen, _orig = struct.unpack_from(
                    order + "HHIIII", body
                )
            if caplen > MAX_CAPLEN:
                raise CaptureError(
                    f"packet length {caplen} exceeds the {MAX_CAPLEN}-byte limit",
                    frame=frame,
                    offset=offset,
                )
            if 20 + caplen > len(body) - 4:
                raise CaptureError(
                    f"packet length {caplen} runs past its {blen}-byte block",
                    frame=frame,
                    offset=offset,
                )
            if iface_id >= len(ifaces):
                raise CaptureError(
                    f"packet refers to undefined interface {iface_id}", frame=frame, offset=offset
                )
            iface = ifaces[iface_id]
            sec, rem = divmod((tsh << 32) | tsl, iface.units)
            usec = rem * 1_000_000 // iface.units
            yield new(
                Frame, (frame, sec + iface.tsoffset, usec, iface.linktype, body[20 : 20 + caplen])
            )
        elif btype_n == 3:  # simple packet block: no timestamp, interface 0
            frame += 1
            if not ifaces:
                raise CaptureError(
                    "simple packet block before any interface", frame=frame, offset=offset
                )
            iface = ifaces[0]
            (orig,) = struct.unpack_from(order + "I", body)
            caplen = min(orig, len(body) - 8)
            if iface.snaplen:
                caplen = min(caplen, iface.snaplen)
            yield new(Frame, (frame, 0, 0, iface.linktype, body[4 : 4 + caplen]))
        elif btype_n == 1:  # interface description block
            try:
                ifaces.append(_parse_idb(hdr + body, order == "<"))
            except (struct.error, ValueError, IndexError) as e:
                raise CaptureError(
                    f"bad pcapng interface block: {e}", frame=frame + 1, offset=offset
                ) from None
        # other block types (statistics, name resolution, custom...) carry no frames
        offset += blen


# ---------------------------------------------------------------------------------------
# Frame dissection
# ---------------------------------------------------------------------------------------


class Transport(NamedTuple):
    """A UDP datagram or TCP segment taken out of a frame.

    The first seven fields are the transport view; ``seq`` and ``flags`` are set for TCP
    only (what :class:`TcpReassembler` needs).
    """

    family: int  # 4 or 6
    src: str
    dst: str
    proto: int  # 17 UDP, 6 TCP
    sport: int
    dport: int
    payload: bytes
    seq: int | None = None
    flags: int | None = None


LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
_DLT_RAW_ALIASES = (12, 14)  # DLT_RAW as written by some BSDs / OpenBSD

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
_BSD_AF_INET6 = frozenset((24, 28, 30, 10))  # NetBSD/OpenBSD, FreeBSD, macOS; 10 = Linux

_u16 = struct.Struct("!H").unpack_from
_udp_hdr = struct.Struct("!HHH").unpack_from
_tcp_hdr = struct.Struct("!HHIIBB").unpack_from
_ip4_frag = struct.Struct("!HH").unpack_from  # identification, flags+fragment offset
_udp4_hdr = struct.Struct("!IIHHH").unpack_from  # IPv4 src, dst; UDP sport, dport, length

# address text: the core's bounded caches (one place, one behaviour)
_ip4_str = ip4_text

# optional C version of iter_hep_payloads' fused Ethernet/IPv4/UDP/HEP3 fast path
_c_udp4_hep = c_function("udp4_hep")
_ip6_str = ip6_text


def extract_transport(
    linktype: int, frame: bytes, reassembler: IPReassembler | None = None
) -> Transport | None:
    """The UDP/TCP view of one frame, or ``None`` (not IP, not UDP/TCP, malformed, or an IP
    fragment: fragments go to ``reassembler``, which makes the datagram whole; the call
    that completes it returns the reassembled transport)."""
    # fast path: Ethernet, IPv4 without options, not fragmented, UDP
    if (
        linktype == 1
        and len(frame) >= 42
        and frame[12] == 8
        and frame[13] == 0
        and frame[14] == 0x45
        and frame[23] == 17
        and not (frame[20] & 0x3F or frame[21])
    ):
        end = 14 + ((frame[16] << 8) | frame[17])
        if 42 <= end <= len(frame):
            sport, dport, ulen = _udp_hdr(frame, 34)
            if 8 <= ulen <= end - 34:
                return _new_tuple(
                    Transport,
                    (
                        4,
                        _ip4_str(frame[26:30]),
                        _ip4_str(frame[30:34]),
                        17,
                        sport,
                        dport,
                        frame[42 : 34 + ulen],
                        None,
                        None,
                    ),
                )
    try:
        return _slow_path(linktype, frame, reassembler)
    except (struct.error, IndexError, ValueError, OSError):
        return None


def _slow_path(linktype: int, frame: bytes, reassembler: IPReassembler | None) -> Transport | None:
    if linktype == LINKTYPE_ETHERNET:
        etype = _u16(frame, 12)[0]
        off = 14
        while etype in _VLAN_TYPES:  # 802.1Q, 802.1ad (QinQ), old QinQ types; any depth
            etype = _u16(frame, off + 2)[0]
            off += 4
        if etype == _ETH_IPV4:
            return _ipv4(frame, off, reassembler)
        if etype == _ETH_IPV6:
            return _ipv6(frame, off, reassembler)
        return None
    if linktype == LINKTYPE_LINUX_SLL:
        etype, off = _u16(frame, 14)[0], 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        etype, off = _u16(frame, 0)[0], 20
    elif linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if len(frame) < 4:
            return None
        fam = int.from_bytes(frame[:4], "big" if linktype == LINKTYPE_LOOP else "little")
        if linktype == LINKTYPE_NULL and fam > 0xFFFF:  # written on a big-endian host
            fam = int.from_bytes(frame[:4], "big")
        if fam == 2:
            return _ipv4(frame, 4, reassembler)
        if fam in _BSD_AF_INET6:
            return _ipv6(frame, 4, reassembler)
        return None
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) or linktype in _DLT_RAW_ALIASES:
        if not frame:
            return None
        v = frame[0] >> 4
        return (
            _ipv4(frame, 0, reassembler)
            if v == 4
            else _ipv6(frame, 0, reassembler)
            if v == 6
            else None
        )
    else:
        return None
    if etype == _ETH_IPV4:
        return _ipv4(frame, off, reassembler)
    if etype == _ETH_IPV6:
        return _ipv6(frame, off, reassembler)
    return None


def _ipv4(frame: bytes, off: int, reassembler: IPReassembler | None) -> Transport | None:
    if len(frame) < off + 20:  # cut inside the IPv4 header (a short snaplen, damage)
        return None
    b0 = frame[off]
    ihl = (b0 & 0x0F) * 4
    if b0 >> 4 != 4 or ihl < 20:
        return None
    total = _u16(frame, off + 2)[0]
    end = off + total if total else len(frame)  # total 0: TSO-captured, use what is there
    if total and total < ihl:
        return None
    end = min(end, len(frame))
    ident, frag = _ip4_frag(frame, off + 4)
    proto = frame[off + 9]
    if proto != 17 and proto != 6:
        return None
    src = _ip4_str(frame[off + 12 : off + 16])
    dst = _ip4_str(frame[off + 16 : off + 20])
    l4 = frame[off + ihl : end]
    if frag & 0x3FFF:  # MF set or offset != 0
        if reassembler is None:
            return None
        l4 = reassembler.add(
            4, src, dst, proto, ident, (frag & 0x1FFF) * 8, bool(frag & 0x2000), l4
        )
        if l4 is None:
            return None
    return _l4(4, src, dst, proto, l4)


_IP6_EXT = frozenset((0, 43, 60, 135, 139, 140, 253, 254))


def _ipv6(frame: bytes, off: int, reassembler: IPReassembler | None) -> Transport | None:
    if frame[off] >> 4 != 6 or len(frame) < off + 40:
        return None
    plen = _u16(frame, off + 4)[0]
    nxt = frame[off + 6]
    src = _ip6_str(frame[off + 8 : off + 24])
    dst = _ip6_str(frame[off + 24 : off + 40])
    end = min(off + 40 + plen, len(frame)) if plen else len(frame)  # 0 = jumbogram
    p = off + 40
    frag: tuple[int, int, bool] | None = None
    for _ in range(16):  # bounded walk over extension headers
        if nxt in _IP6_EXT:
            nxt, p = frame[p], p + (frame[p + 1] + 1) * 8
        elif nxt == 51:  # AH: length in 4-byte units minus 2
            nxt, p = frame[p], p + (frame[p + 1] + 2) * 4
        elif nxt == 44:  # fragment header
            fo = _u16(frame, p + 2)[0]
            frag = (int.from_bytes(frame[p + 4 : p + 8], "big"), fo & 0xFFF8, bool(fo & 1))
            nxt, p = frame[p], p + 8
        else:
            break
    else:
        return None
    if p > end or (nxt != 17 and nxt != 6):
        return None
    l4 = frame[p:end]
    if frag is not None and (frag[1] or frag[2]):
        if reassembler is None:
            return None
        l4 = reassembler.add(6, src, dst, nxt, frag[0], frag[1], frag[2], l4)
        if l4 is None:
            return None
    return _l4(6, src, dst, nxt, l4)


def _l4(family: int, src: str, dst: str, proto: int, l4: bytes) -> Transport | None:
    if proto == 17:
        if len(l4) < 8:
            return None
        sport, dport, ulen = _udp_hdr(l4, 0)
        payload = l4[8:ulen] if 8 <= ulen <= len(l4) else l4[8:]
        return _new_tuple(Transport, (family, src, dst, 17, sport, dport, payload, None, None))
    if len(l4) < 20:
        return None
    sport, dport, seq, _ack, doff, flags = _tcp_hdr(l4, 0)
    hl = (doff >> 4) * 4
    if hl < 20 or hl > len(l4):
        return None
    return _new_tuple(Transport, (family, src, dst, 6, sport, dport, l4[hl:], seq, flags))


class IPReassembler:
    """Reassembles fragmented IPv4 and IPv6 datagrams (the transport part only).

    Fragments are keyed by (family, src, dst, protocol, identification).  At most
    ``max_pending`` datagrams are kept in progress (the oldest is dropped beyond that) and
    none may grow past 65535 bytes.  ``dropped`` counts datagrams given up.
    """

    def __init__(self, max_pending: int = 1024) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple, list] = {}
        self.dropped = 0
        self.completed = 0

    def add(
        self,
        family: int,
        src: str,
        dst: str,
        proto: int,
        ident: int,
        offset: int,
        more: bool,
        data: bytes,
    ) -> bytes | None:
        """Add one fragment; return the whole transport payload once every byte is there."""
        key = (family, src, dst, proto, ident)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self.max_pending:
                self._pending.pop(next(iter(self._pending)))
                self.dropped += 1
            entry = self._pending[key] = [None, {}]  # [total length or None, {offset: bytes}]
        if offset + len(data) > 65535:
            del self._pending[key]
            self.dropped += 1
            return None
        if not more:
            entry[0] = offset + len(data)
        pieces = entry[1]
        old = pieces.get(offset)
        if old is None or len(old) < len(data):
            pieces[offset] = data
        total = entry[0]
        if total is None:
            return None
        # complete when the pieces cover [0, total) without a hole
        covered = 0
        for o in sorted(pieces):
            if o > covered:
                return None
            covered = max(covered, o + len(pieces[o]))
        if covered < total:
            return None
        buf = bytearray(total)
        for o in sorted(pieces):  # later (sorted) pieces win on overlap
            chunk = pieces[o][: max(0, total - o)]
            buf[o : o + len(chunk)] = chunk
        del self._pending[key]
        self.completed += 1
        return bytes(buf)


# ---------------------------------------------------------------------------------------
# TCP reassembly
# ---------------------------------------------------------------------------------------

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04

ConnKey = tuple  # (src ip, src port, dst ip, dst port): one direction of a connection


class _Half:
    __slots__ = ("closed", "fin_off", "next_off", "next_seq", "pending", "pending_bytes", "syn")

    def __init__(self, next_seq: int, syn: bool) -> None:
        self.next_seq = next_seq  # absolute sequence number expected next
        self.next_off = 0  # stream offset of next_seq
        self.pending: dict[int, tuple[bytes, int]] = {}  # offset -> (data, frame), out of order
        self.pending_bytes = 0
        self.fin_off: int | None = None
        self.closed = False
        self.syn = syn


class TcpReassembler:
    """In-order byte streams from TCP segments, one per direction.

    :meth:`add` takes a segment and returns the stream data it makes available, as a
    list of ``(key, offset, frame, data)``: ``key`` = ``(src, sport, dst, dport)``,
    ``offset`` = position of ``data`` in that direction's stream (0 = first byte after
    the SYN, or the first byte seen when the capture starts mid-connection), ``frame`` =
    the frame whose segment supplied the first byte of ``data``.  Chunks of one direction
    come in offset order without overlap; retransmitted and overlapping bytes are given
    once.  Out-of-order segments wait, up to ``max_buffer`` bytes per direction; a segment
    that would exceed it is dropped and counted in ``dropped_bytes`` (and ``drops`` keeps
    ``(key, offset, length, frame)`` of the first few).  :meth:`flush` hands out what is
    still waiting behind a hole (the offset jump shows the hole) at the end of a capture.
    A new SYN on a finished or reset 4-tuple starts a new stream at offset 0.
    """

    def __init__(self, max_buffer: int = 4 * 1024 * 1024, max_streams: int = 65536) -> None:
        self.max_buffer = max_buffer
        self.max_streams = max_streams
        self._halves: dict[ConnKey, _Half] = {}
        self.dropped_bytes = 0
        self.retransmitted_bytes = 0
        self.gap_bytes = 0
        self.drops: list[tuple[ConnKey, int, int, int]] = []

    def add(
        self, key: ConnKey, seq: int, flags: int, payload: bytes, frame: int
    ) -> list[tuple[ConnKey, int, int, bytes]]:
        halves = self._halves
        h = halves.get(key)
        if flags & TCP_RST:
            if h is not None:
                h.closed = True
                h.pending.clear()
                h.pending_bytes = 0
            return []
        if flags & TCP_SYN:
            if h is not None and not h.closed and h.syn and (seq + 1) & 0xFFFFFFFF == _rewind(h):
                pass  # retransmitted SYN of the stream we already have
            else:
                if h is not None:
                    del halves[key]  # 4-tuple reused: a new stream starts at offset 0
                h = self._new_half(key, (seq + 1) & 0xFFFFFFFF, True)
            seq = (seq + 1) & 0xFFFFFFFF  # data on a SYN starts after it
        elif h is None:
            if not payload:
                return []  # pure ACK of a stream whose start we did not see
            h = self._new_half(key, seq, False)
        elif h.closed:
            self.retransmitted_bytes += len(payload)
            return []
        out: list[tuple[ConnKey, int, int, bytes]] = []
        delta = ((seq - h.next_seq + 0x80000000) & 0xFFFFFFFF) - 0x80000000  # signed 32-bit
        off = h.next_off + delta
        if payload:
            end = off + len(payload)
            if end <= h.next_off:
                self.retransmitted_bytes += len(payload)
            elif off <= h.next_off:
                if off < h.next_off:
                    self.retransmitted_bytes += h.next_off - off
                    payload = payload[h.next_off - off :]
                self._deliver(key, h, payload, frame, out)
                self._drain(key, h, out)
            else:
                old = h.pending.get(off)
                if old is not None and len(old[0]) >= len(payload):
                    self.retransmitted_bytes += len(payload)
                elif h.pending_bytes + len(payload) - (len(old[0]) if old else 0) > self.max_buffer:
                    self.dropped_bytes += len(payload)
                    if len(self.drops) < 100:
                        self.drops.append((key, off, len(payload), frame))
                else:
                    if old is not None:
                        h.pending_bytes -= len(old[0])
                    h.pending[off] = (payload, frame)
                    h.pending_bytes += len(payload)
        if flags & TCP_FIN:
            h.fin_off = off + len(payload)
        if h.fin_off is not None and h.next_off >= h.fin_off and not h.pending:
            h.closed = True
        return out

    def _new_half(self, key: ConnKey, next_seq: int, syn: bool) -> _Half:
        halves = self._halves
        if len(halves) >= self.max_streams:
            # forget a finished stream first, else the oldest one
            victim = next((k for k, v in halves.items() if v.closed), None)
            if victim is None:
                victim = next(iter(halves))
                self.dropped_bytes += halves[victim].pending_bytes
            del halves[victim]
        h = halves[key] = _Half(next_seq, syn)
        return h

    @staticmethod
    def _deliver(key: ConnKey, h: _Half, data: bytes, frame: int, out: list) -> None:
        out.append((key, h.next_off, frame, data))
        h.next_off += len(data)
        h.next_seq = (h.next_seq + len(data)) & 0xFFFFFFFF

    def _drain(self, key: ConnKey, h: _Half, out: list) -> None:
        pending = h.pending
        while pending:
            off = min(pending)
            if off > h.next_off:
                return
            data, frame = pending.pop(off)
            h.pending_bytes -= len(data)
            end = off + len(data)
            if end <= h.next_off:
                self.retransmitted_bytes += len(data)
                continue
            if off < h.next_off:
                self.retransmitted_bytes += h.next_off - off
                data = data[h.next_off - off :]
            self._deliver(key, h, data, frame, out)

    def flush(self) -> list[tuple[ConnKey, int, int, bytes]]:
        """Hand out the data still waiting behind holes, skipping the holes (end of capture)."""
        out: list[tuple[ConnKey, int, int, bytes]] = []
        for key, h in self._halves.items():
            while h.pending:
                off = min(h.pending)
                if off > h.next_off:
                    self.gap_bytes += off - h.next_off
                    h.next_seq = (h.next_seq + off - h.next_off) & 0xFFFFFFFF
                    h.next_off = off
                self._drain(key, h, out)
        return out

    def streams(self) -> int:
        return len(self._halves)


def _rewind(h: _Half) -> int:
    """Sequence number of the stream's first byte."""
    return (h.next_seq - h.next_off) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------
# HEP extraction
# ---------------------------------------------------------------------------------------

_HEP3_MAGICS = (b"HEP3", b"EEP1", b"EEP3")


def is_hep_candidate(data: bytes) -> bool:
    """Does this datagram look like HEP (by its first bytes only)?

    ``HEP3``/``EEP1``/``EEP3`` magic, or a v1/v2 header: byte 0 is 1 or 2 and either the
    length byte is 16/40 (IPv4/IPv6 header size) or the family byte is 2/10.  The family
    alternative is there because sngrep's v2 sender writes garbage into the length byte
    (HEP-SPEC section 14, sngrep item 3).  This is a sniff, not a decode.
    """
    if len(data) < 16:
        return len(data) >= 6 and data[:4] in _HEP3_MAGICS
    b0 = data[0]
    if b0 == 1 or b0 == 2:
        return data[1] in (16, 40) or data[2] in (2, 10)
    return data[:4] in _HEP3_MAGICS


def is_hep_stream_start(data: bytes) -> bool:
    """Does this TCP payload start a HEP packet (by its first bytes; a sniff, not a decode)?

    ``HEP3``/``EEP1`` magic, or a HEPv1/v2 header (:func:`is_hep_candidate`) followed by a
    SIP start line: v1/v2 have no length, so over TCP (Kamailio's ``siptrace`` sends them
    so) a packet is the header and one SIP message, and the SIP text right after the header
    is what tells it from any binary protocol whose first byte happens to be 1 or 2.  A
    segment holding exactly the header (a sender that writes the header and the SIP
    separately) counts too.
    """
    if data[:4] in (b"HEP3", b"EEP1"):
        return True
    if not (data[:1] in (b"\x01", b"\x02") and is_hep_candidate(data)):
        return False
    version, hlen, fam = data[0], data[1], data[2]
    asz = (4 if fam == 2 else 16 if fam in V12_IPV6_FAMILIES else 4 if hlen == 16
           else 16 if hlen == 40 else 0)
    if not asz:
        return False
    start = 8 + 2 * asz + (12 if version == 2 else 0)
    return len(data) == start or looks_like_sip(data[start:])


class HepPayload(NamedTuple):
    """One HEP packet found in a capture."""

    frame: int  # 1-based frame where the HEP packet starts
    ts_sec: int  # capture time of that frame
    ts_usec: int
    transport: str  # "udp" or "tcp"
    src: str  # outer "ip:port" ("[v6]:port" for IPv6)
    dst: str
    data: bytes  # exactly one HEP packet


class Counters:
    """Named integer counters (subclasses list them in ``__slots__``), all starting at 0."""

    __slots__ = ()

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.as_dict().items())})"


class CaptureStats(Counters):
    """Counters filled in by :func:`iter_hep_payloads` (pass one in to read them)."""

    __slots__ = (
        "fragments_dropped",
        "frames",
        "hep_packets",
        "non_hep_tcp_bytes",
        "not_hep_udp",
        "not_ip",
        "not_port",
        "stream_garbage_bytes",
        "stream_garbage_frame",
        "stream_leftover_bytes",
        "stream_skipped_bytes",
        "tcp_dropped_bytes",
        "tcp_gap_bytes",
        "tcp_segments",
    )


def _endpoint(family: int, ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if family == 6 else f"{ip}:{port}"


def endpoint4(eps: dict[int, str], data: bytes, at: int, port: int) -> str:
    """The ``ip:port`` text of the IPv4 address at ``data[at:at + 4]`` and ``port``, made
    and remembered in ``eps`` under ``address << 16 | port`` (the fast paths look it up
    there first and call this on a miss; the cache is emptied past 65,536 entries)."""
    if len(eps) > 65536:
        eps.clear()
    ip = data[at:at + 4]
    text = eps[int.from_bytes(ip, "big") << 16 | port] = f"{_ip4_str(ip)}:{port}"
    return text


def iter_hep_payloads(
    source: str | os.PathLike[str] | IO[bytes],
    port: int | None = None,
    *,
    stats: CaptureStats | None = None,
    max_tcp_buffer: int = 4 * 1024 * 1024,
) -> Iterator[HepPayload]:
    """Every HEP packet in a capture, in the order its first byte was captured.

    UDP: one HEP packet per datagram whose first bytes look like HEP
    (:func:`is_hep_candidate`), whatever the ports.  TCP: each direction is reassembled
    and split into HEP packets.  ``port`` keeps only traffic with that source or
    destination port.  Everything skipped is counted in ``stats``.
    """
    st = stats if stats is not None else CaptureStats()
    frag = IPReassembler()
    tcp = TcpReassembler(max_buffer=max_tcp_buffer)
    streams: dict[ConnKey, _StreamState] = {}
    extract = extract_transport
    candidate = is_hep_candidate
    new = _new_tuple
    tcp_times: dict[
        int, tuple[int, int]
    ] = {}  # frame -> (sec, usec) of TCP frames still referenced
    eps: dict[int, str] = {}  # outer "ip:port" text per (IPv4 address, port) of the fast path
    udp4 = _udp4_hdr
    magics = _HEP3_MAGICS
    c_udp4 = _c_udp4_hep
    for frame_no, sec, usec, linktype, data in open_capture(source):
        st.frames += 1
        if linktype == 1 and c_udp4 is not None:
            # the same fused fast path in C (heptool.core._speedups): HEP3 magic only
            hit = c_udp4(data, eps, port)
            if hit is not None:
                if hit == 0:
                    st.not_port += 1
                    continue
                st.hep_packets += 1
                yield new(HepPayload, (frame_no, sec, usec, "udp", *hit))
                continue
        # fast path, fused: extract_transport's Ethernet/IPv4/UDP case and the UDP branch
        # below, with the endpoint text cached (same checks, same results)
        if (
            linktype == 1
            and len(data) >= 42
            and data[12] == 8
            and data[13] == 0
            and data[14] == 0x45
            and data[23] == 17
            and not (data[20] & 0x3F or data[21])
        ):
            end = 14 + ((data[16] << 8) | data[17])
            if 42 <= end <= len(data):
                sip, dip, sport, dport, ulen = udp4(data, 26)
                if 8 <= ulen <= end - 34:
                    if port is not None and sport != port and dport != port:
                        st.not_port += 1
                        continue
                    payload = data[42 : 34 + ulen]
                    if (ulen >= 24 and data[42:46] in magics) or candidate(payload):
                        st.hep_packets += 1
                        src = eps.get(sip << 16 | sport) or endpoint4(eps, data, 26, sport)
                        dst = eps.get(dip << 16 | dport) or endpoint4(eps, data, 30, dport)
                        yield new(HepPayload, (frame_no, sec, usec, "udp", src, dst, payload))
                    else:
                        st.not_hep_udp += 1
                    continue
        t = extract(linktype, data, frag)
        if t is None:
            st.not_ip += 1
            continue
        if port is not None and t.sport != port and t.dport != port:
            st.not_port += 1
            continue
        if t.proto == 17:
            payload = t.payload
            if candidate(payload):
                st.hep_packets += 1
                fam = t.family
                yield new(
                    HepPayload,
                    (
                        frame_no,
                        sec,
                        usec,
                        "udp",
                        _endpoint(fam, t.src, t.sport),
                        _endpoint(fam, t.dst, t.dport),
                        payload,
                    ),
                )
            else:
                st.not_hep_udp += 1
            continue
        st.tcp_segments += 1
        key = (t.src, t.sport, t.dst, t.dport)
        if t.flags & TCP_SYN and key in streams and streams[key].end:
            _close_stream(streams.pop(key), st)  # 4-tuple reused: a new stream
        chunks = tcp.add(key, t.seq, t.flags, t.payload, frame_no)
        if chunks:
            tcp_times[frame_no] = (sec, usec)
            for ckey, off, cframe, cdata in chunks:
                s = streams.get(ckey)
                if s is None:
                    s = streams[ckey] = _StreamState(t.family, ckey)
                yield from s.feed(off, cframe, cdata, tcp_times, st)
        if len(tcp_times) > 100_000:
            _prune_times(tcp_times, streams)
    for ckey, off, cframe, cdata in tcp.flush():
        s = streams.get(ckey)
        if s is None:
            continue
        yield from s.feed(off, cframe, cdata, tcp_times, st)
    for s in streams.values():
        _close_stream(s, st)
    st.tcp_dropped_bytes += tcp.dropped_bytes
    st.tcp_gap_bytes += tcp.gap_bytes
    st.fragments_dropped += frag.dropped


def _prune_times(
    tcp_times: dict[int, tuple[int, int]], streams: dict[ConnKey, _StreamState]
) -> None:
    keep = set()
    for s in streams.values():
        keep.update(fr for _o, fr in s.starts)
    for fr in [fr for fr in tcp_times if fr not in keep]:
        del tcp_times[fr]


def _close_stream(s: _StreamState, st: CaptureStats) -> None:
    if s.mode is None:  # never found HEP in it
        st.non_hep_tcp_bytes += s.undecided + s.leftover()
    elif s.mode == "hep":
        st.stream_leftover_bytes += s.leftover()


class _StreamState:
    """Splits one TCP direction into HEP packets and maps them back to frames.

    The framing is the core's :class:`~heptool.core.stream.StreamDecoder` (lenient:
    garbage is skipped up to the next magic and counted), so v3 length framing and
    v1/v2-by-Content-Length framing follow one set of rules.  The decoder hands out
    messages, not bytes, so a mirror of the unconsumed stream is kept to cut out each
    packet's exact bytes: it starts where the decoder's offset stood plus what it
    skipped, and ends at its new offset.
    """

    __slots__ = ("base", "dec", "dst", "end", "mirror", "mode", "src", "starts", "undecided")

    def __init__(self, family: int, key: ConnKey) -> None:
        self.src = _endpoint(family, key[0], key[1])
        self.dst = _endpoint(family, key[2], key[3])
        self.starts: deque[tuple[int, int]] = deque()  # (stream offset, frame) of each chunk
        self.mode: str | None = None  # None = undecided, "hep", "other"
        self.undecided = 0  # bytes skipped before the first HEP packet was found
        self._restart(0)

    def _restart(self, off: int) -> None:
        self.dec = StreamDecoder(strict=False)
        self.mirror = bytearray()
        self.base = off  # stream offset of the decoder's offset 0 (and of mirror[0])
        self.end = off  # stream offset just past the last byte fed

    def leftover(self) -> int:
        return self.dec.buffered

    def _garbage(self, off: int, n: int, st: CaptureStats) -> None:
        """``n`` bytes from stream offset ``off`` were skipped after the stream had carried
        HEP (counted in ``stream_skipped_bytes`` too): also counted as damage, with the frame
        the first such run starts in (``stream_garbage_frame``) for the report."""
        st.stream_garbage_bytes += n
        if not st.stream_garbage_frame:
            frame = self.starts[0][1] if self.starts else 0
            for o, f in self.starts:
                if o > off:
                    break
                frame = f
            st.stream_garbage_frame = frame

    def feed(
        self,
        off: int,
        frame: int,
        data: bytes,
        tcp_times: dict[int, tuple[int, int]],
        st: CaptureStats,
    ) -> Iterator[HepPayload]:
        if self.mode == "other":
            st.non_hep_tcp_bytes += len(data)
            return
        if (
            off != self.end
        ):  # a hole the reassembler skipped (end of capture): drop the partial packet
            lost = self.dec.buffered
            if self.mode is None:
                self.undecided += lost
            else:
                st.stream_skipped_bytes += lost
            self._restart(off)
        self.end = off + len(data)
        self.starts.append((off, frame))
        dec = self.dec
        dec.feed(data)
        mirror = self.mirror
        mirror += data
        base = self.base
        mbase = self.end - len(mirror)  # stream offset of mirror[0]
        starts = self.starts
        while True:
            before = dec.offset
            skipped = dec.skipped_bytes
            try:
                msg = dec.next_message()
            except HepDecodeError:
                msg = None  # framed but undecodable: still a HEP packet for the caller to report
            run = dec.skipped_bytes - skipped
            if run and self.mode == "hep":  # not HEP inside a HEP stream: damage, not a start
                self._garbage(base + before, run, st)
            if msg is NEED_DATA:
                break
            start = base + before + run
            stop = base + dec.offset
            pkt = bytes(mirror[start - mbase : stop - mbase])
            if self.mode is None:
                self.mode = "hep"
                st.stream_skipped_bytes += self.undecided
            while len(starts) > 1 and starts[1][0] <= start:
                starts.popleft()
            fr = starts[0][1]
            sec, usec = tcp_times.get(fr, (0, 0))
            st.hep_packets += 1
            yield _new_tuple(HepPayload, (fr, sec, usec, "tcp", self.src, self.dst, pkt))
        consumed = base + dec.offset - mbase
        if consumed:
            del mirror[:consumed]
        new_skipped = dec.skipped_bytes
        dec.skipped_bytes = 0
        if self.mode is None:
            self.undecided += new_skipped
            if self.end - self.base > _UNDECIDED_LIMIT:
                # no HEP packet in the first 64 KiB: not a HEP stream (SIP over TCP, ...)
                self.mode = "other"
                st.non_hep_tcp_bytes += self.undecided + dec.buffered
                self._restart(self.end)
                starts.clear()
                return
        else:
            st.stream_skipped_bytes += new_skipped
        if not mirror:
            starts.clear()


_UNDECIDED_LIMIT = 64 * 1024
