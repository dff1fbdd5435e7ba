"""SIP pcap -> HEP3 pcap, fused: the speed path of ``heptool convert sip.pcap -o hep.pcap``.

:func:`sip_to_hep3_pcap` reads a classic little-endian microsecond pcap
(:data:`~.pcapfile.PCAP_LE_USEC`) straight out of its read buffer (the records as
:func:`~.pcapfile.iter_records` spans), handles the common frame (Ethernet, IPv4 without
options, not fragmented, UDP, SIP) at fixed offsets (:func:`~.dissect.eth_ip4_udp`) and packs
each HEP-over-UDP output record with one precompiled struct; everything else goes, in
order, through :class:`~.sip_packets.SipReader` and the caller's general path.  Byte for
byte the general path's output (tests/capture/test_convert_fused.py checks it).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator

from heptool.sip.framing import looks_like_sip

from ..core.addr import ip4_text, ip_pack
from ..core.message import HepMessage
from .dissect import eth_ip4_udp
from .frames import FrameSynth
from .pcapfile import PCAP_LE_RECORD, PCAP_LE_USEC, CaptureError, iter_records, read_exact
from .sip_packets import SipPacket, SipReader, packet_message
from .stats import ConvertStats
from .writer import DST_MAC, SRC_MAC

__all__ = ["sip_to_hep3_pcap"]

#: Ethernet type; IPv4 version+IHL, total length, flags+fragment offset, protocol, source,
#: destination; UDP source port, destination port, length (the frame's first 40 bytes)
_ETH_IP4_UDP = struct.Struct(">12xHBxH2xHxB2x4s4sHHH")
#: TCP sequence number and flags (at offset 4 of the TCP header; the data offset is between)
_TCP_SEQ_FLAGS = struct.Struct(">I5xB")
#: Ethernet type; IPv4 version+IHL, total length, flags+fragment offset, protocol; TCP
#: source port, destination port, sequence number, flags (the frame's first 48 bytes)
_ETH_IP4_TCP = struct.Struct(">12xHBxH2xHxB2x8xHHI5xB")
_CHUNK = struct.Struct(">HHH").pack
#: What one read asks for (the records are cut out of these blocks).
_READ = 1 << 18
#: Output records gathered before one write.
_BATCH = 512


def _ip4_int(text: str) -> int:
    """An IPv4 address text as the 32-bit number the output struct packs."""
    return int.from_bytes(ip_pack(text), "big")


def _text_chunk(ctype: int, value: str | None) -> bytes:
    if value is None:
        return b""
    b = value.encode()
    return _CHUNK(0, ctype, 6 + len(b)) + b


def sip_to_hep3_pcap(
    path: str | os.PathLike[str],
    synth: FrameSynth,
    hep_src: tuple[str, int],
    hep_dst: tuple[str, int],
    *,
    capture_id: int = 0,
    node_name: str | None = None,
    auth_key: str | None = None,
    ports: frozenset[int] | None = None,
    stats: ConvertStats | None = None,
    max_streams: int = 65536,
    max_tcp_buffer: int = 4 * 1024 * 1024,
) -> Iterator[bytes | HepMessage]:
    """:func:`sip_to_hep` (HEPv3, SIP, default correlation) encoded and framed as classic
    pcap records of HEP-over-UDP frames from ``hep_src`` to ``hep_dst`` (IPv4), fused into
    one loop: the same bytes as ``encode`` + ``synth.udp`` + :class:`PcapFrameWriter`
    (without the file header), ~2x faster.

    ``path`` is a classic little-endian microsecond pcap (:data:`PCAP_LE_USEC`).  Yields
    ``bytes`` (whole records, several at a time) and, in between, the :class:`HepMessage`
    of every message the fused path leaves to the caller's general path (``encode`` then
    ``synth.udp``; ``synth`` is shared, so the IPv4 identifications run on): SIP over TCP,
    IPv6, other link types, VLANs, fragments, and messages too big for one datagram.

    The common frame (Ethernet, IPv4 without options, not fragmented, UDP, SIP) is read at
    fixed offsets straight from the read buffer and packed with one precompiled struct:
    no per-packet objects besides the output pieces.  Whether a datagram starts with SIP
    is decided by :func:`looks_like_sip` on its first line, remembered per distinct line
    (the answer depends on nothing else).  Capture errors are raised as the general
    reader raises them, after every record before them was yielded.
    """
    st = stats if stats is not None else ConvertStats()
    reader = SipReader(ports, None, True, st, max_streams, max_tcp_buffer)
    general = reader.frame
    to_message = packet_message
    # the frame header and the HEP chunks up to the payload's length, in one struct
    s_out, d_out = ip_pack(hep_src[0]), ip_pack(hep_dst[0])
    if len(s_out) != 4 or len(d_out) != 4:
        raise ValueError("the fused path writes IPv4 HEP frames only")
    ttl = synth.ttl
    tail = (_CHUNK(0, 0x0B, 7) + b"\x01" + _CHUNK(0, 0x0C, 10) + capture_id.to_bytes(4, "big")
            + _text_chunk(0x0E, auth_key) + _text_chunk(0x13, node_name) + b"\0\0\0\x0f")
    pack = struct.Struct(f">16sHH4sH12sH6sH13sB6sI6sI6sH6sH6sI6sI{len(tail)}sH").pack
    c_eth = DST_MAC + SRC_MAC + b"\x08\x00\x45\x00"
    c_ip = bytes((0x40, 0, ttl, 17))
    c_udp = s_out + d_out + hep_src[1].to_bytes(2, "big") + hep_dst[1].to_bytes(2, "big")
    c_hep = b"\0\0HEP3"
    c_fam = _CHUNK(0, 1, 7) + b"\x02" + _CHUNK(0, 2, 7)
    c3, c4, c7, c8 = _CHUNK(0, 3, 10), _CHUNK(0, 4, 10), _CHUNK(0, 7, 8), _CHUNK(0, 8, 8)
    c9, c10 = _CHUNK(0, 9, 10), _CHUNK(0, 10, 10)
    hep_fixed = 6 + 13 + 1 + 10 + 10 + 8 + 8 + 10 + 10 + len(tail) + 2  # all but the payload
    # IPv4 header checksum: the constant words once, then + total length + identification
    k_ip = (0x8500 + (ttl << 8 | 17) + int.from_bytes(s_out, "big") % 0xFFFF
            + int.from_bytes(d_out, "big") % 0xFFFF)
    max_payload = 0xFFFF - 28 - hep_fixed  # larger: the general path reports it
    rec = PCAP_LE_RECORD.pack
    e4u = eth_ip4_udp
    unpack_tcp = _ETH_IP4_TCP.unpack_from
    tcp_segment = reader.tcp_segment
    is_sip = looks_like_sip
    first_lines: dict[bytes, bool] = {}
    n_frames = n_sip = n_other = n_port = n_not_ip = 0
    sec = usec = 0
    out: list[bytes] = []
    put = out.append
    f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in finally
    ident = synth.ip_ident
    try:
        head = read_exact(f.read, 24)
        if len(head) < 24 or head[:4] != PCAP_LE_USEC:
            raise ValueError(f"{path}: not a classic little-endian microsecond pcap")
        linktype = int.from_bytes(head[20:24], "little") & 0xFFFF
        try:
            for buf, f0, stop, sec, usec in iter_records(f.read, block=_READ):
                n_frames += 1
                h = e4u(buf, f0, stop - f0) if linktype == 1 else None
                if h is not None:
                    src, dst, sport, dport, b = h
                    if ports is not None and sport not in ports and dport not in ports:
                        n_port += 1
                        continue
                    a = f0 + 42
                    eol = buf.find(b"\n", a, b)
                    if eol < 0:
                        ok = False
                    elif eol - a < 256:
                        line = buf[a:eol + 1]
                        ok = first_lines.get(line)
                        if ok is None:
                            ok = is_sip(line)
                            if len(first_lines) > 4096:
                                first_lines.clear()
                            first_lines[line] = ok
                    else:
                        ok = is_sip(buf[a:eol + 1])
                    if not ok:
                        n_other += 1
                        continue
                    n_sip += 1
                    plen = b - a
                    if plen <= max_payload:
                        hlen = hep_fixed + plen
                        ulen = hlen + 8
                        total = ulen + 20
                        ident = (ident + 1) & 0xFFFF
                        c = (k_ip + total + ident) % 0xFFFF
                        put(rec(sec, usec, total + 14, total + 14))
                        put(pack(c_eth, total, ident, c_ip, ~c & 0xFFFF if c else 0, c_udp,
                                 ulen, c_hep, hlen, c_fam, 17, c3, src, c4, dst, c7, sport,
                                 c8, dport, c9, sec, c10, usec, tail, plen + 6))
                        put(buf[a:b])
                        if len(out) >= _BATCH:
                            yield b"".join(out)
                            out.clear()
                        continue
                    p = (4, 17, ip4_text(buf[f0 + 26:f0 + 30]), sport,
                         ip4_text(buf[f0 + 30:f0 + 34]), dport, sec, usec, buf[a:b])
                    found: Iterable[SipPacket] = (p,)
                    n_sip -= 1  # counted with the others below
                elif linktype == 1 and stop - f0 >= 54:
                    # TCP over IPv4 at fixed offsets too (extract_transport's result, without
                    # it; dissect has no fixed-offset TCP case to share)
                    etype, vihl, total, frag, proto, sport, dport, seq, flags = unpack_tcp(buf, f0)
                    if not (etype == 0x0800 and vihl == 0x45 and proto == 6
                            and not frag & 0x3FFF and 40 <= total <= stop - f0 - 14):
                        found = general(n_frames, sec, usec, linktype, buf[f0:stop])
                    else:
                        hl = (buf[f0 + 46] >> 4) * 4
                        if hl < 20 or hl > total - 20:
                            n_not_ip += 1
                            continue
                        if ports is not None and sport not in ports and dport not in ports:
                            n_port += 1
                            continue
                        found = tcp_segment(4, ip4_text(buf[f0 + 26:f0 + 30]), sport,
                                            ip4_text(buf[f0 + 30:f0 + 34]), dport, seq, flags,
                                            buf[f0 + 34 + hl:f0 + 14 + total], n_frames, sec,
                                            usec)
                else:
                    found = general(n_frames, sec, usec, linktype, buf[f0:stop])
                for p in found:
                    pfam, pproto, psrc, psport, pdst, pdport, psec, pusec, payload = p
                    if pproto == 17:
                        n_sip += 1
                    plen = len(payload)
                    if pfam == 4 and plen <= max_payload:
                        hlen = hep_fixed + plen
                        ulen = hlen + 8
                        total = ulen + 20
                        ident = (ident + 1) & 0xFFFF
                        c = (k_ip + total + ident) % 0xFFFF
                        put(rec(psec, pusec, total + 14, total + 14))
                        put(pack(c_eth, total, ident, c_ip, ~c & 0xFFFF if c else 0, c_udp,
                                 ulen, c_hep, hlen, c_fam, pproto, c3, _ip4_int(psrc), c4,
                                 _ip4_int(pdst), c7, psport, c8, pdport, c9, psec, c10, pusec,
                                 tail, plen + 6))
                        put(payload)
                        continue
                    if out:
                        yield b"".join(out)
                        out.clear()
                    synth.ip_ident = ident
                    yield to_message(p, 3, 1, capture_id, auth_key, node_name, False)
                    ident = synth.ip_ident
        except CaptureError:
            if out:  # every record before the damage is written before the error
                yield b"".join(out)
                out.clear()
            raise
        synth.ip_ident = ident
        if out:
            yield b"".join(out)
            out.clear()
        for p in reader.close(sec, usec):
            yield to_message(p, 3, 1, capture_id, auth_key, node_name, False)
    finally:
        f.close()
        st.frames += n_frames
        st.udp_sip += n_sip
        st.messages += n_sip
        st.udp_other += n_other
        st.not_port += n_port
        st.not_ip += n_not_ip
