"""Write HEP packets as a classic pcap: each one in its own Ethernet + IPv4/IPv6 + UDP frame.

Classic pcap (magic ``a1 b2 c3 d4``, microsecond timestamps, link type 1 = Ethernet),
streamed: the file header is written first, then one record per :meth:`PcapWriter.write`,
so a pipeline's output is readable while it grows and nothing is held in memory.

Frames are built by :func:`udp_frame` (a general building block: ``convert`` reuses it):
made-up MAC addresses, IPv4 with a correct header checksum (TTL 64, DF, UDP checksum 0,
which RFC 768 allows for IPv4) or IPv6 (hop limit 64, UDP checksum computed, as RFC 8200
requires).  The frame time is the HEP packet's own timestamp (v2/v3), or a time the
caller gives (HEPv1 has none).

Nothing here opens a socket; the output is a file object.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import IO

from ..core.addr import port_number

__all__ = [
    "DEFAULT_HEP_DST",
    "LINKTYPE_ETHERNET",
    "PcapWriter",
    "ip_checksum",
    "parse_endpoint",
    "udp_frame",
]

LINKTYPE_ETHERNET = 1
PCAP_MAGIC_US = 0xA1B2C3D4
SNAPLEN = 262144
DEFAULT_HEP_DST = ("127.0.0.1", 9060)
#: Locally administered, recognisable MACs (02:... = "made up").
SRC_MAC = bytes.fromhex("02000048e001")
DST_MAC = bytes.fromhex("02000048e002")

_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")
_IPV4 = struct.Struct(">BBHHHBBH4s4s")
_IPV6 = struct.Struct(">IHBB16s16s")
_UDP = struct.Struct(">HHHH")


def ip_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def parse_endpoint(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``ADDR:PORT``, ``[v6]:PORT``, a bare address (with ``default_port``) -> (addr, port).

    Raises ValueError with a one-line message.
    """
    t = text.strip()
    host, port_text = t, None
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: missing ']' (use [v6addr]:port)")
        host, rest = t[1:end], t[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
    elif t.count(":") == 1:
        host, port_text = t.split(":")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{text!r} is not ADDR:PORT with an IP address (IPv6: [addr]:port)"
        ) from None
    if port_text is None:
        if default_port is None:
            raise ValueError(f"{text!r}: missing :PORT")
        return addr.compressed, default_port
    port = port_number(port_text)
    if port is None:
        raise ValueError(f"{text!r}: port must be a number 0..65535")
    return addr.compressed, port


def udp_frame(
    payload: bytes,
    src: tuple[str, int],
    dst: tuple[str, int],
    *,
    src_mac: bytes = SRC_MAC,
    dst_mac: bytes = DST_MAC,
    ttl: int = 64,
    ident: int = 0,
) -> bytes:
    """One Ethernet frame carrying ``payload`` in UDP from ``src`` to ``dst`` (both IPv4 or
    both IPv6; raises ValueError otherwise or when the payload does not fit)."""
    s = ipaddress.ip_address(src[0])
    d = ipaddress.ip_address(dst[0])
    if s.version != d.version:
        raise ValueError(f"source {src[0]} and destination {dst[0]} are not the same IP version")
    udp_len = 8 + len(payload)
    if udp_len > 0xFFFF:
        raise ValueError(f"a {len(payload)}-byte payload does not fit in one UDP datagram")
    if s.version == 4:
        total = 20 + udp_len
        if total > 0xFFFF:
            raise ValueError(f"a {len(payload)}-byte payload does not fit in one IPv4 packet")
        head = _IPV4.pack(0x45, 0, total, ident & 0xFFFF, 0x4000, ttl, 17, 0, s.packed, d.packed)
        head = head[:10] + struct.pack(">H", ip_checksum(head)) + head[12:]
        udp = _UDP.pack(src[1], dst[1], udp_len, 0)  # checksum 0: "none" (RFC 768, IPv4 only)
        return dst_mac + src_mac + b"\x08\x00" + head + udp + payload
    head = _IPV6.pack(6 << 28, udp_len, 17, ttl, s.packed, d.packed)
    pseudo = s.packed + d.packed + struct.pack(">IxxxB", udp_len, 17)
    udp0 = _UDP.pack(src[1], dst[1], udp_len, 0)
    csum = ip_checksum(pseudo + udp0 + payload) or 0xFFFF  # 0 means "none", not allowed in v6
    udp = _UDP.pack(src[1], dst[1], udp_len, csum)
    return dst_mac + src_mac + b"\x86\xdd" + head + udp + payload


class PcapWriter:
    """Streaming classic-pcap writer (Ethernet, microseconds) for UDP-wrapped payloads::

    w = PcapWriter(f)                     # writes the file header now
    w.write(hep_bytes, ts=(sec, usec), src=("10.0.0.1", 5060), dst=("127.0.0.1", 9060))
    """

    def __init__(self, f: IO[bytes], *, snaplen: int = SNAPLEN) -> None:
        self.f = f
        self.snaplen = snaplen
        self.count = 0
        f.write(_FILE_HEADER.pack(PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write_frame(self, frame: bytes, ts: tuple[int, int]) -> None:
        """One record holding an already built link-layer frame."""
        sec, usec = ts
        cap = frame[: self.snaplen]
        self.f.write(_RECORD_HEADER.pack(sec & 0xFFFFFFFF, usec, len(cap), len(frame)))
        self.f.write(cap)
        self.count += 1

    def write(
        self,
        payload: bytes,
        *,
        ts: tuple[int, int],
        src: tuple[str, int],
        dst: tuple[str, int] = DEFAULT_HEP_DST,
    ) -> None:
        """One record: ``payload`` in an Ethernet/IP/UDP frame from ``src`` to ``dst``."""
        self.write_frame(udp_frame(payload, src, dst, ident=self.count + 1), ts)
