"""heptool.capture.frames and pcapng_writer: frames checked with dpkt, written files read back."""

from __future__ import annotations

import io
import itertools
import struct

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heptool.capture.frames import TCP_ACK, TCP_PSH, TCP_SYN, FrameSynth, checksum
from heptool.capture.pcap import extract_transport, open_capture
from heptool.capture.pcapng_writer import PcapFrameWriter, PcapngWriter
from heptool.capture.writer import DST_MAC, SRC_MAC


def rfc1071(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@pytest.mark.parametrize("data", [b"", b"\0", b"\0\0\0", b"\xff\xff", b"\x01", b"abc",
                                  bytes(range(256)) * 3, b"\xff\xff\x00\x00\xff\xff"])
def test_checksum_is_rfc1071(data):
    assert checksum(data) == rfc1071(data)


def _dpkt_checksums_ok(frame: bytes) -> bool:
    """Recompute every checksum with dpkt (an independent implementation)."""
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    l4 = ip.data
    want = (getattr(ip, "sum", None), l4.sum)
    if isinstance(ip, dpkt.ip.IP):
        ip.sum = 0
    l4.sum = 0
    again = dpkt.ethernet.Ethernet(bytes(eth))
    got = (getattr(again.data, "sum", None), again.data.data.sum)
    return want == got


@pytest.mark.parametrize("src,dst", [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "::1")])
def test_udp_frame(src, dst):
    fr = FrameSynth().udp(src, 5060, dst, 5070, b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    t = extract_transport(1, fr)
    assert (t.src, t.sport, t.dst, t.dport, t.proto) == (src, 5060, dst, 5070, 17)
    assert t.payload == b"OPTIONS sip:x SIP/2.0\r\n\r\n"
    if ":" in src:
        assert _dpkt_checksums_ok(fr)
    else:  # IPv4: UDP checksum 0 ("not computed", RFC 768), the IP header's right
        ip = dpkt.ethernet.Ethernet(fr).data
        assert ip.data.sum == 0
        want = ip.sum
        ip.sum = 0
        assert dpkt.ip.IP(bytes(ip)).sum == want


def test_udp_too_big_raises_value_error():
    with pytest.raises(ValueError):
        FrameSynth().udp("10.0.0.1", 1, "10.0.0.2", 2, b"x" * 70000)


def test_missing_or_mixed_family_addresses():
    fr = FrameSynth().udp("::1", 1, "0.0.0.0", 2, b"x")
    t = extract_transport(1, fr)
    assert (t.family, t.src, t.dst) == (6, "::1", "::")


@pytest.mark.parametrize("src,dst,mss", [("10.0.0.1", "10.0.0.2", 1460), ("::1", "::2", 1440)])
def test_tcp_flow(src, dst, mss):
    fs = FrameSynth()
    big = bytes(range(256)) * 20  # 5120 bytes: 4 segments
    first = fs.tcp(src, 5060, dst, 5070, big)
    assert fs.last_handshake == 3
    segs = [extract_transport(1, f) for f in first]
    assert [s.flags for s in segs[:3]] == [TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK]
    assert (segs[1].src, segs[1].sport) == (dst, 5070)
    data = segs[3:]
    assert [len(s.payload) for s in data] == [mss, mss, mss, 5120 - 3 * mss]
    assert [s.flags for s in data] == [TCP_ACK] * 3 + [TCP_ACK | TCP_PSH]
    assert b"".join(s.payload for s in data) == big
    isn_c, isn_s = segs[0].seq, segs[1].seq
    assert data[0].seq == isn_c + 1
    for a, b in itertools.pairwise(data):
        assert b.seq == a.seq + len(a.payload)
    assert all(_dpkt_checksums_ok(f) for f in first)
    # the reply continues the server's sequence, acknowledging everything sent so far
    reply = fs.tcp(dst, 5070, src, 5060, b"pong")
    assert fs.last_handshake == 0 and len(reply) == 1
    r = dpkt.ethernet.Ethernet(reply[0]).data.data
    assert (r.seq, r.ack) == (isn_s + 1, isn_c + 1 + 5120)
    # and the client's next message continues its own
    nxt = extract_transport(1, fs.tcp(src, 5060, dst, 5070, b"again")[0])
    assert nxt.seq == isn_c + 1 + 5120
    assert fs.flows_opened == 1


def test_tcp_isn_deterministic_and_flows_bounded():
    a = FrameSynth(max_flows=2)
    b = FrameSynth(max_flows=2)
    assert a.tcp("10.0.0.1", 1, "10.0.0.2", 2, b"x") == b.tcp("10.0.0.1", 1, "10.0.0.2", 2, b"x")
    a.tcp("10.0.0.1", 3, "10.0.0.2", 2, b"x")
    a.tcp("10.0.0.1", 4, "10.0.0.2", 2, b"x")  # evicts the first flow
    assert len(a._flows) == 2
    a.tcp("10.0.0.1", 1, "10.0.0.2", 2, b"x")
    assert a.last_handshake == 3 and a.flows_opened == 4


def test_mtu_bounds():
    with pytest.raises(ValueError):
        FrameSynth(mtu=100)


def test_pcap_writer_reads_back():
    buf = io.BytesIO()
    w = PcapFrameWriter(buf)
    fs = FrameSynth()
    w.write(1_700_000_000, 123456, fs.udp("10.0.0.1", 1, "10.0.0.2", 2, b"a"), "ignored")
    w.write(1_700_000_001, 0, fs.udp("10.0.0.1", 1, "10.0.0.2", 2, b"b"))
    buf.seek(0)
    frames = list(open_capture(buf))
    assert [(f.ts_sec, f.ts_usec, f.linktype) for f in frames] == \
        [(1_700_000_000, 123456, 1), (1_700_000_001, 0, 1)]
    buf.seek(0)
    assert [ts for ts, _ in dpkt.pcap.Reader(buf)] == pytest.approx([1_700_000_000.123456,
                                                                     1_700_000_001.0])


def test_pcapng_writer_comments_read_back():
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    fs = FrameSynth()
    f1 = fs.udp("10.0.0.1", 1, "10.0.0.2", 2, b"abc")  # odd length: padding
    w.write(1_700_000_000, 5, f1, "HEPv3 proto=sip(1) node=n\u00e9")
    w.write(1_700_000_002, 999999, fs.udp("10.0.0.1", 1, "10.0.0.2", 2, b"abcd"))
    w.close()
    buf.seek(0)
    frames = list(open_capture(buf))
    assert (frames[0].ts_sec, frames[0].ts_usec, frames[0].data) == (1_700_000_000, 5, f1)
    assert frames[1].ts_usec == 999999
    buf.seek(0)
    r = dpkt.pcapng.Reader(buf)
    pkts = list(r)
    assert len(pkts) == 2
    # the comment is option 1 of the first enhanced packet block
    raw = buf.getvalue()
    assert "HEPv3 proto=sip(1) node=n\u00e9".encode() in raw


def test_same_bytes_as_writer_py():
    """PcapFrameWriter writes what heptool.capture.writer.PcapWriter writes, and the UDP
    frames agree with its udp_frame (same MACs, same IPv4 header, checksum 0 over IPv4)."""
    from heptool.capture.writer import PcapWriter, udp_frame

    a, b = io.BytesIO(), io.BytesIO()
    PcapWriter(a).write_frame(b"frame", (1_700_000_000, 5))
    PcapFrameWriter(b).write(1_700_000_000, 5, b"frame")
    assert a.getvalue() == b.getvalue()
    fs = FrameSynth()
    for src, dst in (("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "::1")):
        mine = fs.udp(src, 5060, dst, 9060, b"payload")
        ref = udp_frame(b"payload", (src, 5060), (dst, 9060), ident=fs.ip_ident)
        assert mine == ref


# -- FrameSynth.tcp against the implementation it replaced (byte for byte) ---------------

class _PreviousSynth(FrameSynth):
    """FrameSynth.tcp as first written (a segment header packed alone, the checksum
    folded part by part, the IP header in a helper): the reference for the faster one."""

    def _frame(self, pair, proto, l4_head, payload):
        s, d, v6, _w = pair
        n = len(l4_head) + len(payload)
        if v6:
            if n > 0xFFFF:
                raise ValueError("too big")
            return (DST_MAC + SRC_MAC + b"\x86\xdd"
                    + struct.pack(">IHBB16s16s", 0x60000000, n, proto, self.ttl, s, d)
                    + l4_head + payload)
        total = 20 + n
        if total > 0xFFFF:
            raise ValueError("too big")
        self.ip_ident = ident = (self.ip_ident + 1) & 0xFFFF
        c = (0x4500 + 0x4000 + (self.ttl << 8 | proto) + _w + total + ident) % 0xFFFF
        return (DST_MAC + SRC_MAC + b"\x08\x00"
                + struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, self.ttl, proto,
                              ~c & 0xFFFF if c else 0, s, d) + l4_head + payload)

    @staticmethod
    def _sum(payload):
        v = int.from_bytes(payload, "big")
        return (v << 8 if len(payload) & 1 else v) % 0xFFFF

    def _tcp_seg(self, pair, sport, dport, seq, ack, flags, payload):
        tlen = 20 + len(payload)
        t = (pair[3] + 6 + tlen + sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16)
             + (ack & 0xFFFF) + (0x5000 | flags) + 0xFFFF + self._sum(payload)) % 0xFFFF
        head = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 0xFFFF,
                           ~t & 0xFFFF if t else 0, 0)
        return self._frame(pair, 6, head, payload)

    def tcp(self, src, sport, dst, dport, payload):
        import zlib

        from heptool.capture.frames import _Flow

        pair = self._pair(src, dst)
        rpair = self._pair(dst, src)
        key = (src, sport, dst, dport)
        rkey = (dst, dport, src, sport)
        flows = self._flows
        out = []
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
            out.append(seg(pair, sport, dport, isn_c, 0, TCP_SYN, b""))
            out.append(seg(rpair, dport, sport, isn_s, flow.seq_c, TCP_SYN | TCP_ACK, b""))
            out.append(seg(pair, sport, dport, flow.seq_c, flow.seq_s, TCP_ACK, b""))
            self.last_handshake = 3
        else:
            flows.move_to_end(flow.client)
        client = flow.client == key
        seq = flow.seq_c if client else flow.seq_s
        ack = flow.seq_s if client else flow.seq_c
        mss = self.mtu - (60 if pair[2] else 40)
        n = len(payload)
        pos = 0
        while True:
            piece = payload[pos : pos + mss]
            pos += len(piece)
            last = pos >= n
            out.append(self._tcp_seg(pair, sport, dport, seq, ack,
                                     TCP_ACK | TCP_PSH if last else TCP_ACK, piece))
            seq = (seq + len(piece)) & 0xFFFFFFFF
            if last:
                break
        if client:
            flow.seq_c = seq
        else:
            flow.seq_s = seq
        return out


_ENDPOINTS = [("10.0.0.1", 5060), ("10.0.0.2", 5070), ("192.168.7.9", 65535), ("0.0.0.0", 0),
              ("2001:db8::1", 5060), ("2001:db8::2", 5061), ("::", 1)]
_calls = st.lists(st.tuples(
    st.sampled_from(["tcp", "tcp", "tcp", "udp"]),
    st.sampled_from(_ENDPOINTS), st.sampled_from(_ENDPOINTS),
    st.one_of(st.binary(max_size=40),
              st.integers(0, 5000).map(lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256)),
              st.sampled_from([b"", b"\xff" * 1461, b"\x00\x01" * 3000, b"\xff\xff"]))),
    max_size=30)


@settings(max_examples=300, deadline=None)
@given(_calls, st.sampled_from([576, 1280, 1500, 9000]), st.sampled_from([2, 3, 65536]))
def test_tcp_same_bytes_as_the_previous_implementation(calls, mtu, max_flows):
    new, old = FrameSynth(mtu=mtu, max_flows=max_flows), _PreviousSynth(mtu=mtu,
                                                                        max_flows=max_flows)
    for kind, (src, sport), (dst, dport), payload in calls:
        if (":" in src) != (":" in dst):
            dst = "::" if ":" in src else "0.0.0.0"
        for synth in (new, old):
            try:
                got = (getattr(synth, kind)(src, sport, dst, dport, payload), synth.last_handshake,
                       synth.flows_opened, synth.ip_ident)
            except ValueError as e:
                got = ("error", str(e)[:0])
            if synth is new:
                a = got
            else:
                assert a == got
