"""Frame dissection: link layers, IPv4/IPv6, UDP/TCP transport.

:func:`extract_transport` takes one frame apart down to UDP or TCP and returns a
:class:`Transport` (or ``None`` for anything else).  Link types: Ethernet (with any number
of 802.1Q / 802.1ad tags), Linux SLL and SLL2, raw IP, BSD NULL/loopback.  IP fragments go
to an :class:`~.reassembly.IPReassembler` when one is given.

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

import struct
from typing import TYPE_CHECKING, NamedTuple

from ..core.addr import ip4_text, ip6_text

if TYPE_CHECKING:
    from .reassembly import IPReassembler

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "Transport",
    "eth_ip4_udp",
    "extract_transport",
]

_new_tuple = tuple.__new__  # builds NamedTuples without the Python-level __new__ (hot loop)


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

# address text: the core's bounded caches (one place, one behaviour)
_ip4_str = ip4_text
_ip6_str = ip6_text


#: Ethernet type; IPv4 version+IHL, total length, flags+fragment offset, protocol, source
#: and destination (as numbers); UDP source port, destination port, length
_ETH_IP4_UDP = struct.Struct(">12xHBxH2xHxB2xIIHHH").unpack_from


def eth_ip4_udp(buf: bytes, off: int, caplen: int) -> tuple[int, int, int, int, int] | None:
    """The common frame, read at fixed offsets: an Ethernet frame of ``caplen`` bytes at
    ``buf[off:]`` carrying IPv4 without options, not fragmented, and UDP.

    ``(source, destination, source port, destination port, end)``, the addresses as
    32-bit numbers and the datagram's payload being ``buf[off + 42:end]``; ``None`` for
    any other frame (read it with :func:`extract_transport`, whose fast path this is).
    The one fixed-offset parser of it: the fused readers (:mod:`.hep`, :mod:`.fused_sip`,
    :mod:`.fused_hep`) call it on their read buffers, no frame copied.
    """
    if caplen < 42:
        return None
    etype, vihl, total, frag, proto, src, dst, sport, dport, ulen = _ETH_IP4_UDP(buf, off)
    if (etype == 0x0800 and vihl == 0x45 and proto == 17 and not frag & 0x3FFF
            and 28 <= total <= caplen - 14 and 8 <= ulen <= total - 20):
        return src, dst, sport, dport, off + 34 + ulen
    return None


def extract_transport(
    linktype: int, frame: bytes, reassembler: IPReassembler | None = None
) -> Transport | None:
    """The UDP/TCP view of one frame, or ``None`` (not IP, not UDP/TCP, malformed, or an IP
    fragment: fragments go to ``reassembler``, which makes the datagram whole; the call
    that completes it returns the reassembled transport)."""
    # fast path: Ethernet, IPv4 without options, not fragmented, UDP
    if linktype == 1:
        h = eth_ip4_udp(frame, 0, len(frame))
        if h is not None:
            return _new_tuple(
                Transport,
                (4, _ip4_str(frame[26:30]), _ip4_str(frame[30:34]), 17, h[2], h[3],
                 frame[42:h[4]], None, None),
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
