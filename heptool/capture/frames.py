"""Synthesise the link-layer frames a packet capture would have held.

:class:`FrameSynth` turns "these bytes went from A to B over UDP/TCP" into Ethernet frames
(IPv4 or IPv6 as the addresses say), fast enough for 200,000 messages a second:

* **UDP**: one frame per datagram (written whole, as a capture on the sending host with
  segmentation offload shows it); IPv4 header checksum right, UDP checksum computed
  (IPv4 and IPv6).
* **TCP**: a proper flow per 4-tuple, so Wireshark and tshark reassemble it: the first
  message on a 4-tuple opens the connection with a three-way handshake (the side that
  sent first is the client), sequence numbers continue across messages in each
  direction, acknowledgement numbers follow the other direction, and a payload larger
  than one MSS (MTU minus the IP and TCP headers) is cut into several segments (PSH on
  the last).  Initial sequence numbers are derived from the 4-tuple (CRC-32), so the
  same input always gives the same bytes.  At most ``max_flows`` flows are remembered
  (the oldest is forgotten: its next message opens a new connection): memory is flat.

Addresses are packed through the core's cached :func:`heptool.core.addr.ip_pack`; the
Internet checksum uses ``int.from_bytes(...) % 0xFFFF`` (RFC 1071's one's-complement sum is
the value of the big-endian number modulo 2**16 - 1), which is C speed in CPython.

MAC addresses are the locally administered ones :mod:`heptool.capture.writer` uses
(``02:00:00:48:e0:01`` -> ``02:00:00:48:e0:02``); its ``udp_frame`` builds the same UDP
frames through :mod:`ipaddress` per call (~4x slower), so this module has its own.
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict

from ..core.addr import ip_pack

__all__ = ["TCP_ACK", "TCP_FIN", "TCP_PSH", "TCP_SYN", "FrameSynth", "checksum"]

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_PSH = 0x08
TCP_ACK = 0x10

#: Locally administered ("made up") MACs, the same as heptool.capture.writer's.
SRC_MAC = bytes.fromhex("02000048e001")
DST_MAC = bytes.fromhex("02000048e002")
_ETH4 = DST_MAC + SRC_MAC + b"\x08\x00"
_ETH6 = DST_MAC + SRC_MAC + b"\x86\xdd"
_IP4 = struct.Struct(">BBHHHBBH4s4s")
_IP6 = struct.Struct(">IHBB16s16s")
_UDP = struct.Struct(">HHHH")
_TCP = struct.Struct(">HHIIBBHHH")
_PSEUDO4 = struct.Struct(">4s4sxBH")
_PSEUDO6 = struct.Struct(">16s16sIxxxB")
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
        self._ident = 0
        self._flows: OrderedDict[tuple, _Flow] = OrderedDict()
        self.flows_opened = 0
        #: frames of handshake at the start of the last :meth:`tcp` result (3 or 0)
        self.last_handshake = 0

    # -- IP ---------------------------------------------------------------------------
    def _ip(self, s: bytes, d: bytes, proto: int, l4: bytes) -> bytes:
        if len(s) == 4:
            self._ident = ident = (self._ident + 1) & 0xFFFF
            total = 20 + len(l4)
            if total > 0xFFFF:
                raise ValueError(f"{len(l4)} bytes do not fit in one IPv4 packet")
            head = _IP4.pack(0x45, 0, total, ident, 0x4000, self.ttl, proto, 0, s, d)
            c = checksum(head)
            return b"".join((_ETH4, head[:10], bytes((c >> 8, c & 0xFF)), head[12:], l4))
        if len(l4) > 0xFFFF:
            raise ValueError(f"{len(l4)} bytes do not fit in one IPv6 packet")
        return b"".join((_ETH6, _IP6.pack(0x60000000, len(l4), proto, self.ttl, s, d), l4))

    @staticmethod
    def _pack(src: str, dst: str) -> tuple[bytes, bytes]:
        s = ip_pack(src)
        d = ip_pack(dst)
        if len(s) != len(d):  # one side unknown or of the other family: use "any" of the family
            if len(s) == 16:
                d = bytes(16)
            else:
                s = bytes(16) if len(d) == 16 else s
        return s, d

    # -- UDP --------------------------------------------------------------------------
    def udp(self, src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
        """One Ethernet frame carrying ``payload`` in UDP (ValueError if it cannot fit)."""
        s, d = self._pack(src, dst)
        ulen = 8 + len(payload)
        if ulen > 0xFFFF:
            raise ValueError(f"a {len(payload)}-byte payload does not fit in one UDP datagram")
        v6 = len(s) == 16
        pseudo = _PSEUDO6.pack(s, d, ulen, 17) if v6 else _PSEUDO4.pack(s, d, 17, ulen)
        c = checksum(pseudo + _UDP.pack(sport, dport, ulen, 0) + payload) or 0xFFFF
        return self._ip(s, d, 17, _UDP.pack(sport, dport, ulen, c) + payload)

    # -- TCP --------------------------------------------------------------------------
    def _tcp_seg(self, s: bytes, d: bytes, sport: int, dport: int, seq: int, ack: int,
                 flags: int, payload: bytes) -> bytes:
        v6 = len(s) == 16
        tlen = 20 + len(payload)
        pseudo = _PSEUDO6.pack(s, d, tlen, 6) if v6 else _PSEUDO4.pack(s, d, 6, tlen)
        head = _TCP.pack(sport, dport, seq, ack, 0x50, flags, 0xFFFF, 0, 0)
        c = checksum(pseudo + head + payload)
        head = head[:16] + bytes((c >> 8, c & 0xFF)) + head[18:]
        return self._ip(s, d, 6, head + payload)

    def tcp(self, src: str, sport: int, dst: str, dport: int, payload: bytes) -> list[bytes]:
        """The frames carrying ``payload`` from src to dst on its TCP flow: a handshake
        first when the 4-tuple is new, then one or more data segments."""
        s, d = self._pack(src, dst)
        key = (src, sport, dst, dport)
        rkey = (dst, dport, src, sport)
        flows = self._flows
        out: list[bytes] = []
        self.last_handshake = 0
        flow = flows.get(key)
        if flow is None:
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
            seg = self._tcp_seg
            out.append(seg(s, d, sport, dport, isn_c, 0, TCP_SYN, b""))
            out.append(seg(d, s, dport, sport, isn_s, flow.seq_c, TCP_SYN | TCP_ACK, b""))
            out.append(seg(s, d, sport, dport, flow.seq_c, flow.seq_s, TCP_ACK, b""))
            self.last_handshake = 3
        else:
            flows.move_to_end(flow.client)
        client = flow.client == key
        seq = flow.seq_c if client else flow.seq_s
        ack = flow.seq_s if client else flow.seq_c
        mss = self.mtu - (60 if len(s) == 16 else 40)
        n = len(payload)
        pos = 0
        while True:
            piece = payload[pos : pos + mss]
            pos += len(piece)
            last = pos >= n
            out.append(self._tcp_seg(s, d, sport, dport, seq, ack,
                                     TCP_ACK | TCP_PSH if last else TCP_ACK, piece))
            seq = (seq + len(piece)) & 0xFFFFFFFF
            if last:
                break
        if client:
            flow.seq_c = seq
        else:
            flow.seq_s = seq
        return out
