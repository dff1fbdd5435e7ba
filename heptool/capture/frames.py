"""Synthesise the link-layer frames a packet capture would have held.

:class:`FrameSynth` turns "these bytes went from A to B over UDP/TCP" into Ethernet frames
(IPv4 or IPv6 as the addresses say), fast enough for 200,000 messages a second:

* **UDP**: one frame per datagram (written whole, as a capture on the sending host with
  segmentation offload shows it); IPv4 header checksum right; UDP checksum 0 ("none",
  RFC 768) over IPv4, computed over IPv6 (mandatory there).
* **TCP**: a proper flow per 4-tuple, so Wireshark and tshark reassemble it: the first
  message on a 4-tuple opens the connection with a three-way handshake (the side that
  sent first is the client), sequence numbers continue across messages in each
  direction, acknowledgement numbers follow the other direction, and a payload larger
  than one MSS (MTU minus the IP and TCP headers) is cut into several segments (PSH on
  the last).  Initial sequence numbers are derived from the 4-tuple (CRC-32), so the
  same input always gives the same bytes.  At most ``max_flows`` flows are remembered
  (the oldest is forgotten: its next message opens a new connection): memory is flat.

The IPv4 header, TCP and IPv6 UDP checksums are computed.  The Internet checksum uses
``int.from_bytes(...) % 0xFFFF``: RFC 1071's one's-complement sum is the value of the
big-endian number modulo 2**16 - 1, so the payload is summed at C speed without being
copied, and the constant parts (addresses, protocol) are summed once per address pair.

MAC addresses are :mod:`heptool.capture.writer`'s locally administered ones
(``02:00:00:48:e0:01`` -> ``02:00:00:48:e0:02``).  Its ``udp_frame`` is the general
reference for one UDP frame; this module adds TCP flows and builds UDP frames ~5x faster
(cached address pairs instead of :mod:`ipaddress` per call), which HEP -> pcap needs.
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict

from ..core.addr import ip_pack
from .writer import DST_MAC, SRC_MAC  # the made-up MACs every heptool frame uses

__all__ = ["TCP_ACK", "TCP_FIN", "TCP_PSH", "TCP_SYN", "FrameSynth", "checksum"]

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_PSH = 0x08
TCP_ACK = 0x10

_ETH4 = DST_MAC + SRC_MAC + b"\x08\x00"
_ETH6 = DST_MAC + SRC_MAC + b"\x86\xdd"
_IP4UDP = struct.Struct(">HHHHBBH4s4sHHHH").pack
_IP6UDP = struct.Struct(">IHBB16s16sHHHH").pack
#: Ethernet type + IPv4 + TCP header, Ethernet type + IPv6 + TCP header (urgent pointer 0)
_ETH4_IP4TCP = struct.Struct(">14sHHHHBBH4s4sHHIIBBHH2x").pack
_ETH6_IP6TCP = struct.Struct(">14sIHBB16s16sHHIIBBHH2x").pack
_from_bytes = int.from_bytes


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) & 1:
        data += b"\0"
    s = _from_bytes(data, "big") % 0xFFFF
    if s == 0 and data.strip(b"\0"):
        s = 0xFFFF  # a one's-complement sum of non-zero data is never +0
    return ~s & 0xFFFF


class _Flow:
    __slots__ = ("client", "seq_c", "seq_s")

    def __init__(self, client: tuple[str, int, str, int], seq_c: int, seq_s: int) -> None:
        self.client = client  # (src, sport, dst, dport) of the side that opened it
        self.seq_c = seq_c  # next sequence number of the client
        self.seq_s = seq_s  # next sequence number of the server


class FrameSynth:
    """Builds Ethernet frames for UDP datagrams and TCP flows (see module doc)."""

    def __init__(self, *, mtu: int = 1500, max_flows: int = 65536, ttl: int = 64) -> None:
        if not 576 <= mtu <= 65535:
            raise ValueError(f"MTU must be 576..65535, not {mtu}")
        self.mtu = mtu
        self.max_flows = max_flows
        self.ttl = ttl
        self.ip_ident = 0
        self._flows: OrderedDict[tuple, _Flow] = OrderedDict()
        self._pairs: dict[tuple[str, str], tuple] = {}
        self.flows_opened = 0
        #: frames of handshake at the start of the last :meth:`tcp` result (3 or 0)
        self.last_handshake = 0

    # -- addresses ----------------------------------------------------------------------
    def _pair(self, src: str, dst: str) -> tuple:
        """Per (src, dst): (s, d, v6, one's-complement sum of the address words).

        A bounded cache: a capture holds few address pairs, and this saves two address
        lookups and the address part of every checksum per frame."""
        key = (src, dst)
        p = self._pairs.get(key)
        if p is None:
            s = ip_pack(src)
            d = ip_pack(dst)
            if len(s) != len(d):  # one side unknown or of the other family: "any" address
                if len(s) == 16:
                    d = bytes(16)
                else:
                    s = bytes(16) if len(d) == 16 else s
            words = _from_bytes(s, "big") % 0xFFFF + _from_bytes(d, "big") % 0xFFFF
            if len(self._pairs) > 4096:
                self._pairs.clear()
            p = self._pairs[key] = (s, d, len(s) == 16, words)
        return p

    # -- UDP --------------------------------------------------------------------------
    def udp(self, src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
        """One Ethernet frame carrying ``payload`` in UDP (ValueError if it cannot fit).

        IPv4: UDP checksum 0, which RFC 768 defines as "not computed" (as a capture of a
        host with checksum offload shows it; ``heptool.capture.writer`` does the same): the
        checksum of a 500-byte payload would cost more than the rest of the frame.  IPv6:
        the checksum, which RFC 8200 makes mandatory, from the pseudo header's constant
        part and the payload's word sum (no copy).  The hot path of HEP -> pcap, written
        out inline."""
        pair = self._pairs.get((src, dst)) or self._pair(src, dst)
        n = len(payload)
        ulen = 8 + n
        s, d, v6, words = pair
        ttl = self.ttl
        if v6:
            if ulen > 0xFFFF:
                raise ValueError(f"a {n}-byte payload does not fit in one UDP datagram")
            v = _from_bytes(payload, "big")
            t = (words + 17 + 2 * ulen + sport + dport + (v << 8 if n & 1 else v)) % 0xFFFF
            c = ~t & 0xFFFF if t else 0xFFFF  # 0 would mean "no checksum": sent as 0xFFFF
            return _ETH6 + _IP6UDP(0x60000000, ulen, 17, ttl, s, d, sport, dport, ulen,
                                   c or 0xFFFF) + payload
        total = 20 + ulen
        if total > 0xFFFF:
            raise ValueError(f"a {n}-byte payload does not fit in one UDP datagram")
        self.ip_ident = ident = (self.ip_ident + 1) & 0xFFFF
        h = (0x8500 + (ttl << 8 | 17) + words + total + ident) % 0xFFFF
        return _ETH4 + _IP4UDP(0x4500, total, ident, 0x4000, ttl, 17, ~h & 0xFFFF if h else 0,
                               s, d, sport, dport, ulen, 0) + payload

    def udp_builder(self, src: str, sport: int, dst: str, dport: int):
        """``build(payload) -> frame`` for many datagrams between one fixed pair of
        endpoints (HEP packets to a collector): :meth:`udp` with the endpoints bound."""
        udp = self.udp

        def build(payload: bytes) -> bytes:
            return udp(src, sport, dst, dport, payload)

        return build

    # -- TCP --------------------------------------------------------------------------
    def _tcp_seg(self, pair: tuple, sport: int, dport: int, seq: int, ack: int,
                 flags: int, payload: bytes) -> bytes:
        """One TCP segment in its frame.  The TCP checksum is one sum modulo 0xFFFF: the
        address words (cached per pair), the protocol and length, the header's 16-bit words
        (a 32-bit number is congruent to the sum of its halves modulo 0xFFFF, so ``seq``
        and ``ack`` are added whole) and the payload read as one big number."""
        s, d, v6, words = pair
        n = len(payload)
        tlen = 20 + n
        v = _from_bytes(payload, "big")
        t = (words + 6 + tlen + sport + dport + seq + ack + (0x5000 | flags) + 0xFFFF
             + (v << 8 if n & 1 else v)) % 0xFFFF
        tc = ~t & 0xFFFF if t else 0
        ttl = self.ttl
        if v6:
            if tlen > 0xFFFF:
                raise ValueError(f"{n} bytes do not fit in one IPv6 packet")
            return _ETH6_IP6TCP(_ETH6, 0x60000000, tlen, 6, ttl, s, d, sport, dport, seq, ack,
                                0x50, flags, 0xFFFF, tc) + payload
        total = 20 + tlen
        if total > 0xFFFF:
            raise ValueError(f"{n} bytes do not fit in one IPv4 packet")
        self.ip_ident = ident = (self.ip_ident + 1) & 0xFFFF
        c = (0x8500 + (ttl << 8 | 6) + words + total + ident) % 0xFFFF
        return _ETH4_IP4TCP(_ETH4, 0x4500, total, ident, 0x4000, ttl, 6, ~c & 0xFFFF if c else 0,
                            s, d, sport, dport, seq, ack, 0x50, flags, 0xFFFF, tc) + payload

    def tcp(self, src: str, sport: int, dst: str, dport: int, payload: bytes) -> list[bytes]:
        """The frames carrying ``payload`` from src to dst on its TCP flow: a handshake
        first when the 4-tuple is new, then one or more data segments."""
        pairs = self._pairs
        pair = pairs.get((src, dst)) or self._pair(src, dst)
        key = (src, sport, dst, dport)
        flows = self._flows
        seg = self._tcp_seg
        flow = flows.get(key)
        if flow is None:
            rkey = (dst, dport, src, sport)
            flow = flows.get(rkey)
            if flow is None:
                if len(flows) >= self.max_flows:
                    old = flows.popitem(last=False)[1]
                    flows.pop(old.client[2:] + old.client[:2], None)
                isn_c = zlib.crc32(repr(key).encode()) & 0xFFFFFFFF
                isn_s = zlib.crc32(repr(rkey).encode()) & 0xFFFFFFFF
                flow = _Flow(key, (isn_c + 1) & 0xFFFFFFFF, (isn_s + 1) & 0xFFFFFFFF)
                flows[key] = flow
                self.flows_opened += 1
                rpair = pairs.get((dst, src)) or self._pair(dst, src)
                out = [seg(pair, sport, dport, isn_c, 0, TCP_SYN, b""),
                       seg(rpair, dport, sport, isn_s, flow.seq_c, TCP_SYN | TCP_ACK, b""),
                       seg(pair, sport, dport, flow.seq_c, flow.seq_s, TCP_ACK, b"")]
                self.last_handshake = 3
            else:
                flows.move_to_end(flow.client)
                out = []
                self.last_handshake = 0
        else:
            flows.move_to_end(key)
            out = []
            self.last_handshake = 0
        client = flow.client == key
        seq = flow.seq_c if client else flow.seq_s
        ack = flow.seq_s if client else flow.seq_c
        mss = self.mtu - (60 if pair[2] else 40)
        n = len(payload)
        if n <= mss:  # one segment (the common case)
            out.append(seg(pair, sport, dport, seq, ack, TCP_ACK | TCP_PSH, payload))
            seq = (seq + n) & 0xFFFFFFFF
        else:
            pos = 0
            while True:
                piece = payload[pos : pos + mss]
                pos += len(piece)
                last = pos >= n
                out.append(seg(pair, sport, dport, seq, ack,
                               TCP_ACK | TCP_PSH if last else TCP_ACK, piece))
                seq = (seq + len(piece)) & 0xFFFFFFFF
                if last:
                    break
        if client:
            flow.seq_c = seq
        else:
            flow.seq_s = seq
        return out
