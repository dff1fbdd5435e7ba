"""Properties of the frame synthesis and the SIP stream splitter (hypothesis)."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from heptool.capture.frames import FrameSynth, checksum
from heptool.capture.pcap import TcpReassembler, extract_transport
from heptool.sip.framing import SipSplitter

ports = st.integers(0, 65535)
ip4 = st.binary(min_size=4, max_size=4).map(lambda b: ipaddress.IPv4Address(b).compressed)
ip6 = st.binary(min_size=16, max_size=16).map(lambda b: ipaddress.IPv6Address(b).compressed)
addr_pair = st.one_of(st.tuples(ip4, ip4), st.tuples(ip6, ip6))


def rfc1071(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@given(st.binary(max_size=3000))
def test_checksum_matches_rfc1071(data):
    assert checksum(data) == rfc1071(data)


@given(addr_pair, ports, ports, st.binary(max_size=2000))
def test_udp_frame_reads_back(addrs, sport, dport, payload):
    src, dst = addrs
    t = extract_transport(1, FrameSynth().udp(src, sport, dst, dport, payload))
    assert (t.src, t.sport, t.dst, t.dport, t.proto, t.payload) == \
        (src, sport, dst, dport, 17, payload)


@settings(max_examples=60)
@given(addr_pair, ports, ports, st.lists(st.tuples(st.booleans(), st.binary(min_size=1,
                                                                            max_size=4000)),
                                         min_size=1, max_size=6),
       st.integers(576, 9000))
def test_tcp_flow_reassembles_to_the_payloads(addrs, sport, dport, sends, mtu):
    """Whatever the messages, directions and MTU, heptool's own TCP reassembler gets each
    direction's bytes back in order from the synthesised segments."""
    a, b = addrs
    synth = FrameSynth(mtu=mtu)
    tcp = TcpReassembler()
    want: dict[tuple, bytes] = {}
    got: dict[tuple, bytes] = {}
    for i, (forward, data) in enumerate(sends):
        ends = (a, sport, b, dport) if forward else (b, dport, a, sport)
        want[ends] = want.get(ends, b"") + data
        for fr in synth.tcp(*ends[:2], *ends[2:], data):
            t = extract_transport(1, fr)
            assert len(fr) <= 14 + mtu
            for key, _off, _frame, chunk in tcp.add((t.src, t.sport, t.dst, t.dport), t.seq,
                                                    t.flags, t.payload, i):
                got[key] = got.get(key, b"") + chunk
    assert got == want


sip_msgs = st.lists(
    st.tuples(st.sampled_from([b"INVITE sip:a@b SIP/2.0", b"SIP/2.0 200 OK", b"ACK sip:x SIP/2.0"]),
              st.sampled_from([b"Content-Length", b"content-length", b"l", b"CONTENT-LENGTH "]),
              st.binary(max_size=300)),
    min_size=1, max_size=5)


@given(sip_msgs, st.lists(st.integers(1, 200), max_size=30), st.booleans())
def test_splitter_any_split(msgs, cuts, keepalive):
    wire = []
    for first, clen, body in msgs:
        wire.append(first + b"\r\nCall-ID: x\r\n" + clen + b": " + str(len(body)).encode()
                    + b"\r\n\r\n" + body)
    sep = b"\r\n\r\n" if keepalive else b""
    data = sep + sep.join(wire)
    sp = SipSplitter()
    out = []
    pos = 0
    for c in cuts:
        out += sp.feed(data[pos:pos + c])
        pos += c
    out += sp.feed(data[pos:])
    assert [m for _o, m in out] == wire
    assert sp.buffered == 0 and sp.skipped_bytes == 0
