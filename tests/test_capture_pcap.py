"""Tests of heptool.capture.pcap: file formats, dissection, IP and TCP reassembly.

Frames are built here with struct and dpkt, independently of the parser under test.
"""

from __future__ import annotations

import gzip
import io
import socket
import struct
from pathlib import Path

import dpkt
import pytest

from heptool.capture.pcap import (
    MAX_CAPLEN,
    CaptureError,
    CaptureStats,
    IPReassembler,
    TcpReassembler,
    extract_transport,
    is_hep_candidate,
    iter_frames,
    iter_hep_payloads,
    open_capture,
)

VECTORS = Path(__file__).parent / "vectors"

# --- builders ---------------------------------------------------------------------------


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(
    sport: int, dport: int, seq: int, flags: int, payload: bytes = b"", opts: bytes = b""
) -> bytes:
    hl = 20 + len(opts)
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (hl // 4) << 4, flags, 65535, 0, 0)
        + opts
        + payload
    )


def ipv4(
    src: str, dst: str, proto: int, l4: bytes, *, ident: int = 1, frag: int = 0, opts: bytes = b""
) -> bytes:
    ihl = 20 + len(opts)
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | ihl // 4,
            0,
            ihl + len(l4),
            ident,
            frag,
            64,
            proto,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        + opts
        + l4
    )


def ipv6(src: str, dst: str, nxt: int, l4: bytes, ext: bytes = b"") -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(ext) + len(l4), nxt, 64)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + ext
        + l4
    )


def eth(net: bytes, etype: int = 0x0800, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    hdr = b"\x02" * 6 + b"\x04" * 6
    for tpid, vid in tags:
        hdr += struct.pack("!HH", tpid, vid)
    return hdr + struct.pack("!H", etype) + net


def pcap_bytes(frames, *, linktype: int = 1, order: str = "<", nano: bool = False) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for sec, frac, data in frames:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), len(data)) + data)
    return b"".join(out)


HEP = b"HEP3\x00\x0a\x00\x00\x00\x00"  # a 10-byte HEP3 header + 4 bytes of chunk header (enough to sniff)


def hep3(n: int, body_len: int = 20) -> bytes:
    body = bytes([n]) * body_len
    chunk = struct.pack("!HHH", 0, 0x0F, 6 + len(body)) + body
    return b"HEP3" + struct.pack("!H", 6 + len(chunk)) + chunk


# --- file formats -----------------------------------------------------------------------

FRAMES = [(1700000000, 123456, b"a" * 60), (1700000001, 999999, b"b" * 1), (1700000002, 0, b"")]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_both_byte_orders_and_resolutions(order, nano):
    frames = [(s, u * 1000 + 7 if nano else u, d) for s, u, d in FRAMES]
    got = list(iter_frames(io.BytesIO(pcap_bytes(frames, order=order, nano=nano, linktype=113))))
    assert [(f.frame_no, f.ts_sec, f.ts_usec, f.linktype, f.data) for f in got] == [
        (i + 1, s, u, 113, d) for i, (s, u, d) in enumerate(FRAMES)
    ]


def test_dpkt_written_pcap_reads_the_same():
    buf = io.BytesIO()
    w = dpkt.pcap.Writer(buf, nano=True)
    w.writepkt(b"xyz", ts=1700000000.5)
    got = list(iter_frames(io.BytesIO(buf.getvalue())))
    assert got[0].frame_no == 1 and got[0].data == b"xyz" and got[0].ts_sec == 1700000000
    assert abs(got[0].ts_usec - 500000) <= 1


def _pcapng_block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _pcapng(order: str, ifaces, packets) -> bytes:
    shb = _pcapng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    out = [shb]
    for linktype, tsresol in ifaces:
        opts = b""
        if tsresol is not None:
            opts = (
                struct.pack(order + "HH", 9, 1)
                + bytes([tsresol])
                + b"\x00" * 3
                + struct.pack(order + "HH", 0, 0)
            )
        out.append(_pcapng_block(order, 1, struct.pack(order + "HHI", linktype, 0, 0) + opts))
    for iface, ts, data in packets:
        body = (
            struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
            + data
        )
        out.append(_pcapng_block(order, 6, body))
    return b"".join(out)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_sections(order):
    ifaces = [(1, None), (101, 9)]  # microseconds (default) and nanoseconds
    packets = [(0, 1700000000_123456, b"e" * 5), (1, 1700000001_987654321, b"r" * 7)]
    data = _pcapng(order, ifaces, packets) + _pcapng(
        ">" if order == "<" else "<", [(113, 9)], [(0, 1700000002_000001000, b"s")]
    )
    got = list(iter_frames(io.BytesIO(data)))
    assert [tuple(f) for f in got] == [
        (1, 1700000000, 123456, 1, b"e" * 5),
        (2, 1700000001, 987654, 101, b"r" * 7),
        (3, 1700000002, 1, 113, b"s"),
    ]


def test_pcapng_written_by_dpkt():
    buf = io.BytesIO()
    w = dpkt.pcapng.Writer(buf, linktype=1)
    w.writepkt(b"abc", ts=1700000000.25)
    got = list(iter_frames(io.BytesIO(buf.getvalue())))
    assert [(f.frame_no, f.ts_sec, f.linktype, f.data) for f in got] == [(1, 1700000000, 1, b"abc")]
    assert abs(got[0].ts_usec - 250000) <= 1


class _NoSeek(io.RawIOBase):
    """A pipe-like reader: no seek, short reads."""

    def __init__(self, data: bytes) -> None:
        self._b = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._b.read(n if n is None or n < 0 else min(n, 7))


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip_detected_by_magic_even_without_seek(kind, tmp_path):
    raw = pcap_bytes(FRAMES) if kind == "pcap" else _pcapng("<", [(1, None)], [(0, 5_000001, b"q")])
    plain = [tuple(f) for f in iter_frames(io.BytesIO(raw))]
    gz = gzip.compress(raw)
    assert [tuple(f) for f in iter_frames(_NoSeek(gz))] == plain
    path = tmp_path / "capture.bin"  # no telling extension
    path.write_bytes(gz)
    assert [tuple(f) for f in open_capture(path)] == plain
    assert [tuple(f) for f in open_capture(str(path))] == plain


def test_truncated_pcap_yields_complete_frames_then_names_frame_and_offset():
    data = pcap_bytes(FRAMES)
    # cut inside frame 2's data: frame 1 = 24 + 16 + 60 bytes
    cut = data[: 24 + 16 + 60 + 16]
    it = iter_frames(io.BytesIO(cut + b""))
    got = []
    with pytest.raises(CaptureError) as ei:
        for f in it:
            got.append(f)  # noqa: PERF402 - keep what came before the error
    # frame 2 has 1 byte of data, none present
    assert [f.frame_no for f in got] == [1]
    assert ei.value.frame == 2 and ei.value.offset == 100
    assert "frame 2" in str(ei.value) and "byte offset 100" in str(ei.value)
    # cut inside a record header
    got = []
    with pytest.raises(CaptureError) as ei:
        for f in iter_frames(io.BytesIO(data[: 24 + 16 + 60 + 5])):
            got.append(f)
    assert len(got) == 1 and ei.value.frame == 2 and ei.value.offset == 100


def test_truncated_gzip_reports_frame():
    data = pcap_bytes([(1, 2, b"x" * 1000)] * 50)
    gz = gzip.compress(data)
    got = []
    with pytest.raises(CaptureError) as ei:
        for f in iter_frames(io.BytesIO(gz[: len(gz) - 20])):
            got.append(f)  # noqa: PERF402 - keep what came before the error
    assert ei.value.frame is not None and ei.value.frame == len(got) + 1


def test_absurd_caplen_is_an_error_not_a_huge_read():
    data = pcap_bytes([(1, 2, b"ok")]) + struct.pack("<IIII", 3, 4, MAX_CAPLEN + 1, 5)
    got = []
    with pytest.raises(CaptureError, match="limit") as ei:
        for f in iter_frames(io.BytesIO(data)):
            got.append(f)  # noqa: PERF402 - keep what came before the error
    assert len(got) == 1 and ei.value.frame == 2 and ei.value.offset == 24 + 16 + 2


@pytest.mark.parametrize("data", [b"", b"\xd4\xc3", b"not a capture file"])
def test_not_a_capture(data):
    with pytest.raises(CaptureError):
        list(iter_frames(io.BytesIO(data)))


def test_truncated_pcapng_block():
    data = _pcapng("<", [(1, None)], [(0, 1, b"a" * 40), (0, 2, b"b" * 40)])
    got = []
    with pytest.raises(CaptureError) as ei:
        for f in iter_frames(io.BytesIO(data[:-10])):
            got.append(f)  # noqa: PERF402 - keep what came before the error
    assert len(got) == 1 and ei.value.frame == 2


@pytest.mark.parametrize("btype", [6, 2])  # enhanced / obsolete packet block
@pytest.mark.parametrize("fields", [0, 4, 16])
def test_pcapng_packet_block_shorter_than_its_fields(btype, fields):
    """A packet block whose length leaves fewer than its 20 bytes of fields raised
    struct.error ("internal error"); it is a CaptureError naming the frame and offset,
    after the frames before it."""
    good = _pcapng("<", [(1, None)], [(0, 1, b"a" * 40)])
    data = good + _pcapng_block("<", btype, b"\x00" * fields)
    got = []
    with pytest.raises(CaptureError) as ei:
        for f in iter_frames(io.BytesIO(data)):
            got.append(f)  # noqa: PERF402 - keep what came before the error
    assert len(got) == 1 and ei.value.frame == 2 and ei.value.offset == len(good)
    assert "less than the 32 bytes of its fields" in str(ei.value)


# --- dissection -------------------------------------------------------------------------

PAYLOAD = b"HEP3\x00\x06"


def _check(t, family, src, dst, proto, sport, dport, payload):
    assert t is not None
    assert tuple(t)[:7] == (family, src, dst, proto, sport, dport, payload)


def test_fast_path_ethernet_ipv4_udp_and_padding_trimmed():
    frame = (
        eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(5060, 9060, PAYLOAD))) + b"\x00" * 12
    )  # Ethernet padding
    _check(extract_transport(1, frame), 4, "10.0.0.1", "10.0.0.2", 17, 5060, 9060, PAYLOAD)


def test_dpkt_built_frames():
    u = dpkt.udp.UDP(sport=1234, dport=9060, data=b"HEP3 dpkt")
    u.ulen = len(bytes(u))
    ip = dpkt.ip.IP(
        src=socket.inet_aton("192.0.2.1"), dst=socket.inet_aton("192.0.2.2"), p=17, data=u
    )
    e = dpkt.ethernet.Ethernet(src=b"\x01" * 6, dst=b"\x02" * 6, type=0x0800, data=ip)
    _check(
        extract_transport(1, bytes(e)), 4, "192.0.2.1", "192.0.2.2", 17, 1234, 9060, b"HEP3 dpkt"
    )
    t = dpkt.tcp.TCP(
        sport=40000,
        dport=9061,
        seq=77,
        flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
        opts=b"\x01\x01\x08\x0a" + b"\x00" * 8,
        data=b"HEP3 tcp",
    )
    t.off = (20 + len(t.opts)) // 4
    ip6 = dpkt.ip6.IP6(
        src=socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
        dst=socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
        nxt=6,
        hlim=64,
        data=t,
    )
    ip6.plen = len(bytes(t))
    e6 = dpkt.ethernet.Ethernet(src=b"\x01" * 6, dst=b"\x02" * 6, type=0x86DD, data=ip6)
    r = extract_transport(1, bytes(e6))
    _check(r, 6, "2001:db8::1", "2001:db8::2", 6, 40000, 9061, b"HEP3 tcp")
    assert r.seq == 77 and r.flags == dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH


def test_link_types_and_vlans():
    net4 = ipv4("10.1.1.1", "10.2.2.2", 17, udp(1, 2, PAYLOAD), opts=b"\x01" * 4)  # with IP options
    net6 = ipv6("::1", "::2", 17, udp(3, 4, PAYLOAD))
    want4 = (4, "10.1.1.1", "10.2.2.2", 17, 1, 2, PAYLOAD)
    want6 = (6, "::1", "::2", 17, 3, 4, PAYLOAD)
    cases = [
        (1, eth(net4, tags=((0x8100, 5),)), want4),
        (1, eth(net4, tags=((0x88A8, 6), (0x8100, 5))), want4),
        (1, eth(net6, etype=0x86DD, tags=((0x8100, 5),)), want6),
        (113, b"\x00\x00\x03\x04\x00\x06" + b"\x00" * 8 + b"\x08\x00" + net4, want4),
        (113, b"\x00\x00\x03\x04\x00\x06" + b"\x00" * 8 + b"\x86\xdd" + net6, want6),
        (276, b"\x08\x00\x00\x00" + b"\x00" * 16 + net4, want4),
        (276, b"\x86\xdd\x00\x00" + b"\x00" * 16 + net6, want6),
        (101, net4, want4),
        (101, net6, want6),
        (228, net4, want4),
        (229, net6, want6),
        (0, struct.pack("<I", 2) + net4, want4),
        (0, struct.pack(">I", 2) + net4, want4),
        (0, struct.pack("<I", 30) + net6, want6),
        (0, struct.pack(">I", 24) + net6, want6),
        (108, struct.pack(">I", 2) + net4, want4),
    ]
    for linktype, frame, want in cases:
        t = extract_transport(linktype, frame)
        assert t is not None and tuple(t)[:7] == want, (linktype, frame[:24].hex())


def test_ipv6_extension_headers():
    hop = bytes([17, 0]) + b"\x01\x04\x00\x00\x00\x00"  # hop-by-hop, 8 bytes, next = UDP
    net = ipv6("fe80::1", "fe80::2", 0, udp(7, 8, PAYLOAD), ext=hop)
    _check(extract_transport(101, net), 6, "fe80::1", "fe80::2", 17, 7, 8, PAYLOAD)


@pytest.mark.parametrize(
    "linktype,frame",
    [
        (1, eth(b"\x00" * 28, etype=0x0806)),  # ARP
        (1, eth(ipv4("1.1.1.1", "2.2.2.2", 1, b"\x08\x00" + b"\x00" * 6))),  # ICMP
        (1, eth(ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 2, b"x")))[:40]),  # truncated
        (1, b"\x00" * 10),
        (147, b"whatever"),  # unknown link type
        (101, b""),
        (0, struct.pack("<I", 7) + b"\x00" * 40),
    ],
)
def test_not_udp_or_tcp_gives_none(linktype, frame):
    assert extract_transport(linktype, frame) is None


def test_ipv4_fragments_out_of_order_with_overlap():
    payload = bytes(range(256)) * 10
    l4 = udp(5060, 9060, payload)
    pieces = [(0, l4[:1000]), (1000, l4[1000:2000]), (2000, l4[2000:])]
    frames = [
        eth(
            ipv4(
                "10.0.0.1",
                "10.0.0.2",
                17,
                d,
                ident=42,
                frag=(off // 8) | (0x2000 if off < 2000 else 0),
            )
        )
        for off, d in pieces
    ]
    dup = eth(ipv4("10.0.0.1", "10.0.0.2", 17, l4[992:1500], ident=42, frag=(992 // 8) | 0x2000))
    r = IPReassembler()
    assert extract_transport(1, frames[2], r) is None
    assert extract_transport(1, dup, r) is None
    assert extract_transport(1, frames[0], r) is None
    t = extract_transport(1, frames[1], r)
    _check(t, 4, "10.0.0.1", "10.0.0.2", 17, 5060, 9060, payload)
    assert r.completed == 1
    assert extract_transport(1, frames[0]) is None  # no reassembler: fragments are dropped


def test_ipv6_fragments():
    l4 = udp(1, 2, b"z" * 3000)
    r = IPReassembler()
    out = None
    for off, more in ((1504, False), (0, True)):
        piece = l4[off : off + 1504] if more else l4[off:]
        fh = struct.pack("!BBHI", 17, 0, off | int(more), 99)
        out = extract_transport(101, ipv6("::a", "::b", 44, piece, ext=fh), r) or out
    _check(out, 6, "::a", "::b", 17, 1, 2, b"z" * 3000)


def test_hep_candidates():
    assert is_hep_candidate(hep3(1))
    assert is_hep_candidate(b"EEP1\x00\x06")
    assert is_hep_candidate(b"\x02\x10\x02\x11" + b"\x00" * 24)
    assert is_hep_candidate(b"\x02\x01\x02\x11" + b"\x00" * 24)  # sngrep: garbage length byte
    assert not is_hep_candidate(b"OPTIONS sip:x SIP/2.0\r\n")
    assert not is_hep_candidate(b"\x01\x00\x00\x00" + b"\x00" * 20)
    assert not is_hep_candidate(b"HEP")


# --- TCP reassembly ---------------------------------------------------------------------

K = ("10.0.0.1", 40000, "10.0.0.2", 9060)


def _stream(chunks):
    data = b""
    for key, off, frame, piece in chunks:
        assert key == K and off == len(data), (off, len(data))
        data += piece
    return data


def test_tcp_in_order_out_of_order_retransmit_overlap():
    r = TcpReassembler()
    isn = 1000
    out = r.add(K, isn, 0x02, b"", 1)  # SYN
    out += r.add(K, isn + 1 + 10, 0x18, b"KLMNOPQRST", 3)  # arrives early
    out += r.add(K, isn + 1, 0x18, b"ABCDEFGHIJ", 4)  # fills the hole
    out += r.add(K, isn + 1, 0x18, b"ABCDEFGHIJ", 5)  # retransmission
    out += r.add(K, isn + 1 + 15, 0x18, b"PQRSTUVWXYZ", 6)  # overlaps the end
    out += r.add(K, isn + 1 + 26, 0x11, b"", 7)  # FIN
    assert _stream(out) == b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert [(o, f) for _k, o, f, _d in out] == [(0, 4), (10, 3), (20, 6)]
    assert r.retransmitted_bytes == 10 + 5


def test_tcp_seq_wraparound_and_syn_data():
    r = TcpReassembler()
    isn = 0xFFFFFFF0
    out = r.add(K, isn, 0x02, b"0123", 1)  # data on the SYN (TFO)
    out += r.add(K, (isn + 5 + 20) & 0xFFFFFFFF, 0x18, b"y" * 20, 3)
    out += r.add(K, (isn + 5) & 0xFFFFFFFF, 0x18, b"x" * 20, 2)
    assert _stream(out) == b"0123" + b"x" * 20 + b"y" * 20


def test_tcp_mid_stream_start_and_bounded_buffer():
    r = TcpReassembler(max_buffer=100)
    out = r.add(K, 5000, 0x18, b"a" * 10, 1)  # no SYN seen: stream starts here
    out += r.add(K, 5000 + 50, 0x18, b"c" * 80, 2)  # waits behind a hole
    out += r.add(K, 5000 + 200, 0x18, b"d" * 80, 3)  # would exceed 100 bytes: dropped
    assert r.dropped_bytes == 80 and r.drops == [(K, 200, 80, 3)]
    out += r.add(K, 5000 + 10, 0x18, b"b" * 40, 4)
    assert _stream(out) == b"a" * 10 + b"b" * 40 + b"c" * 80


def test_tcp_flush_skips_holes_and_new_syn_restarts():
    r = TcpReassembler()
    out = r.add(K, 0, 0x02, b"", 1)
    out += r.add(K, 1, 0x18, b"abc", 2)
    out += r.add(K, 10, 0x18, b"xyz", 3)
    assert [(o, d) for _k, o, _f, d in out] == [(0, b"abc")]
    assert [(o, d) for _k, o, _f, d in r.flush()] == [(9, b"xyz")]
    assert r.gap_bytes == 6
    out = r.add(K, 500, 0x02, b"", 4)  # the 4-tuple is reused
    out += r.add(K, 501, 0x18, b"new", 5)
    assert [(o, d) for _k, o, _f, d in out] == [(0, b"new")]
    r.add(K, 504, 0x04, b"", 6)  # RST
    assert r.add(K, 504, 0x18, b"late", 7) == []


# --- HEP extraction ---------------------------------------------------------------------


def _write(tmp_path, frames, name="t.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes([(1700000000 + i, i, f) for i, f in enumerate(frames)]))
    return path


def test_iter_hep_payloads_udp_tcp_and_port_filter(tmp_path):
    p = [hep3(i, 10 + i) for i in range(6)]
    stream = p[2] + p[3] + p[4]
    A, B = "10.0.0.1", "10.0.0.2"
    frames = [
        eth(ipv4(A, B, 17, udp(5060, 9060, p[0]))),  # 1: HEP over UDP
        eth(ipv4(A, B, 17, udp(5060, 5060, b"OPTIONS sip:x SIP/2.0\r\n\r\n"))),  # 2: not HEP
        eth(ipv4(A, B, 6, tcp(40000, 9061, 100, 0x02))),  # 3: SYN
        eth(ipv4(A, B, 6, tcp(40000, 9061, 101 + 20, 0x18, stream[20:50]))),  # 4: out of order
        eth(ipv4(A, B, 6, tcp(40000, 9061, 101, 0x18, stream[:20]))),  # 5: fills the hole
        eth(ipv4(A, B, 6, tcp(40000, 9061, 101, 0x18, stream[:20]))),  # 6: retransmission
        eth(ipv4(A, B, 6, tcp(40000, 9061, 101 + 50, 0x19, stream[50:]))),  # 7: rest + FIN
        eth(ipv6("::1", "::2", 17, udp(1111, 9999, p[5])), etype=0x86DD),  # 8: HEP, other port
        eth(ipv4(A, B, 6, tcp(5060, 5061, 1, 0x02))),  # 9: SIP over TCP (not HEP)
        eth(ipv4(A, B, 6, tcp(5060, 5061, 2, 0x18, b"INVITE sip:x SIP/2.0\r\n\r\n"))),  # 10
    ]
    path = _write(tmp_path, frames)
    st = CaptureStats()
    got = list(iter_hep_payloads(path, stats=st))
    assert [(g.frame, g.transport, g.src, g.dst, g.data) for g in got] == [
        (1, "udp", "10.0.0.1:5060", "10.0.0.2:9060", p[0]),
        (5, "tcp", "10.0.0.1:40000", "10.0.0.2:9061", p[2]),
        (4, "tcp", "10.0.0.1:40000", "10.0.0.2:9061", p[3]),
        (
            4,
            "tcp",
            "10.0.0.1:40000",
            "10.0.0.2:9061",
            p[4],
        ),  # starts at offset 49, in frame 4's bytes
        (8, "udp", "[::1]:1111", "[::2]:9999", p[5]),
    ]
    # stream: p2 = bytes 0..24 (frame 5 supplied byte 0), p3 = 24..49 and p4 = 49..75 (frame 4 has 20..50)
    assert (got[1].ts_sec, got[1].ts_usec) == (1700000004, 4)
    assert st.frames == 10 and st.hep_packets == 5 and st.not_hep_udp == 1
    assert st.non_hep_tcp_bytes == len(b"INVITE sip:x SIP/2.0\r\n\r\n")
    assert [g.frame for g in iter_hep_payloads(path, port=9061)] == [5, 4, 4]


def test_iter_hep_payloads_stream_garbage_is_skipped_and_counted(tmp_path):
    p = [hep3(i) for i in range(3)]
    stream = p[0] + b"garbage!" + p[1] + p[2][:10]  # ends inside a packet
    frames = [eth(ipv4("1.1.1.1", "2.2.2.2", 6, tcp(1, 9060, 0, 0x02)))]
    frames += [
        eth(ipv4("1.1.1.1", "2.2.2.2", 6, tcp(1, 9060, 1 + i, 0x18, stream[i : i + 7])))
        for i in range(0, len(stream), 7)
    ]
    st = CaptureStats()
    got = list(iter_hep_payloads(_write(tmp_path, frames), stats=st))
    assert [g.data for g in got] == p[:2]
    assert st.stream_skipped_bytes == len(b"garbage!") and st.stream_leftover_bytes == 10


def test_real_vectors_counts():
    counts = {}
    for f in sorted(VECTORS.glob("*/*.pcap")):
        counts[f.name] = len(list(iter_hep_payloads(f)))
    assert counts == {
        "hepjs-hep3-tcp.hep.pcap": 21,
        "hepjs-hep3-udp.hep.pcap": 21,
        "kamailio-hep1-udp.hep.pcap": 60,
        "kamailio-hep1-udp.sip.pcap": 0,
        "kamailio-hep2-tcp.hep.pcap": 18,  # local/: HEPv2 over TCP, framed by Content-Length
        "kamailio-hep2-udp.hep.pcap": 60,
        "kamailio-hep2-udp.sip.pcap": 0,
        "kamailio-hep3-tcp.hep.pcap": 60,
        "kamailio-hep3-tcp.sip.pcap": 0,
        "kamailio-hep3-udp.hep.pcap": 60,
        "kamailio-hep3-udp.sip.pcap": 0,
        "opensips-3.4.15-hep3-udp.pcap": 151,
        "sngrep-hep2-udp.hep.pcap": 60,
        "sngrep-hep3-udp.hep.pcap": 60,
    }


def test_hepjs_tcp_stream_equals_the_raw_bin():
    got = list(iter_hep_payloads(VECTORS / "hepjs" / "hepjs-hep3-tcp.hep.pcap"))
    assert b"".join(g.data for g in got) == (VECTORS / "hepjs" / "hepjs-hep3.bin").read_bytes()


@pytest.mark.parametrize("cut", range(14, 34))
def test_frame_cut_inside_the_ip_header_is_skipped_not_a_crash(cut):
    """An Ethernet frame whose IPv4 header is cut short (snaplen, damage) is counted as not
    IP; it used to raise TypeError from the address formatting (found by the convert
    speed work's generated captures)."""
    from heptool.capture.pcap import (
        CaptureStats,
        IPReassembler,
        extract_transport,
        iter_hep_payloads,
    )

    ip = bytes([0x45, 0, 0, 48, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    frame = (bytes(12) + b"\x08\x00" + ip + struct.pack(">HHHH", 5060, 9060, 28, 0) + b"HEP3")[:cut]
    assert extract_transport(1, frame, IPReassembler()) is None
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    out += struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame
    st = CaptureStats()
    assert list(iter_hep_payloads(io.BytesIO(out), stats=st)) == []
    assert st.frames == 1 and st.not_ip == 1
