"""heptool.capture.convert: sip_to_hep and hep_to_frames on captures built with dpkt."""

from __future__ import annotations

import io
import socket
import struct

import dpkt
import pytest

import heptool
from heptool.capture.convert import (
    ConvertStats,
    FilterSyntaxError,
    SipPacket,
    compile_filter,
    hep_comment,
    hep_to_frames,
    iter_sip_packets,
    sip_to_hep,
)
from heptool.capture.pcap import TCP_SYN, Transport, extract_transport

T0 = 1_795_683_906


def sip(method: str, call: str, body: bytes = b"") -> bytes:
    return (f"{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
            f"Call-ID: {call}\r\nCSeq: 1 {method}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def reply(code: int, call: str) -> bytes:
    return f"SIP/2.0 {code} OK\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n".encode()


def _ip(src: str, dst: str, l4, proto: int):
    if ":" in src:
        ip = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src),
                          dst=socket.inet_pton(socket.AF_INET6, dst), nxt=proto, hlim=64)
        ip.data = l4
        ip.plen = len(bytes(l4))
        return ip, dpkt.ethernet.ETH_TYPE_IP6
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, data=l4)
    ip.len = 20 + len(bytes(l4))
    return ip, dpkt.ethernet.ETH_TYPE_IP


def udp(src, sport, dst, dport, payload):
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = 8 + len(payload)
    ip, et = _ip(src, dst, u, 17)
    return bytes(dpkt.ethernet.Ethernet(type=et, data=ip))


def tcp(src, sport, dst, dport, seq, payload=b"", flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH):
    t = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=1, flags=flags, data=payload)
    ip, et = _ip(src, dst, t, 6)
    return bytes(dpkt.ethernet.Ethernet(type=et, data=ip))


def pcap(frames) -> io.BytesIO:
    buf = io.BytesIO()
    w = dpkt.pcap.Writer(buf)
    for i, fr in enumerate(frames):
        w.writepkt(fr, ts=T0 + i / 1000)
    buf.seek(0)
    return buf


def test_udp_sip_and_not_sip():
    st = ConvertStats()
    msgs = list(sip_to_hep(pcap([
        udp("10.0.0.1", 5060, "10.0.0.2", 5070, sip("OPTIONS", "a@h")),
        udp("10.0.0.1", 5060, "10.0.0.2", 5070, b"\r\n\r\n"),  # keep-alive
        udp("10.0.0.1", 40000, "10.0.0.2", 9, b"\x80\x00rtp"),
        udp("2001:db8::1", 5080, "2001:db8::2", 5060, reply(200, "a@h")),
    ]), stats=st, capture_id=7, node_name="n1", auth_key="k"))
    assert len(msgs) == 2 and st.udp_other == 2
    a, b = msgs
    assert (a.family, a.ip_proto, a.src_ip, a.src_port, a.dst_ip, a.dst_port) == \
        (2, 17, "10.0.0.1", 5060, "10.0.0.2", 5070)
    assert (a.ts_sec, a.ts_usec) == (T0, 0) and (b.ts_sec, b.ts_usec) == (T0, 3000)
    assert (b.family, b.src_ip) == (10, "2001:db8::1")
    assert (a.capture_id, a.node_name, a.auth_key, a.proto_type) == (7, "n1", "k", 1)
    assert a.correlation_id is None  # default: like heplify/captagent
    # and the message encodes and decodes as HEP3 with those values
    again = heptool.decode(heptool.encode(a))
    assert again.payload == sip("OPTIONS", "a@h") and again.node_name == "n1"


def test_ports_filter_correlation_and_versions():
    cap = [udp("10.0.0.1", 5060, "10.0.0.2", 5070, sip("OPTIONS", "a@h")),
           udp("10.0.0.1", 6000, "10.0.0.2", 6001, sip("OPTIONS", "b@h"))]
    st = ConvertStats()
    msgs = list(sip_to_hep(pcap(cap), ports=frozenset({5070}), stats=st,
                           correlation_id_from="call-id", hep_version=2))
    assert [m.correlation_id for m in msgs] == ["a@h"] and st.not_port == 1
    assert msgs[0].version == 2
    assert heptool.decode(heptool.encode(msgs[0])).version == 2
    with pytest.raises(ValueError):
        list(sip_to_hep(pcap(cap), correlation_id_from="x-cid"))


def test_other_proto_type_wraps_every_udp_payload_on_the_ports():
    cap = [udp("10.0.0.1", 7000, "10.0.0.2", 7001, b"\x81\xc8rtcp"),
           udp("10.0.0.1", 5060, "10.0.0.2", 5060, sip("OPTIONS", "a@h"))]
    msgs = list(sip_to_hep(pcap(cap), ports=frozenset({7001}), proto_type=5))
    assert [(m.proto_type, m.payload) for m in msgs] == [(5, b"\x81\xc8rtcp")]


@pytest.mark.parametrize("v6", [False, True])
def test_tcp_stream_split_reassembled_and_retransmission_dropped(v6):
    a, b = ("2001:db8::1", "2001:db8::2") if v6 else ("10.0.0.1", "10.0.0.2")
    inv = sip("INVITE", "t@h", b"v=0\r\n" * 300)  # ~1.6 KB: sent in 3 segments
    ack = sip("ACK", "t@h")
    bye = sip("BYE", "t@h")
    s = 1000
    frames = [tcp(a, 40000, b, 5060, s - 1, flags=dpkt.tcp.TH_SYN),
              tcp(b, 5060, a, 40000, 5000 - 1, flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK),
              tcp(a, 40000, b, 5060, s, inv[:600]),
              tcp(a, 40000, b, 5060, s + 1200, inv[1200:]),       # out of order
              tcp(a, 40000, b, 5060, s + 600, inv[600:1200]),     # fills the hole
              tcp(a, 40000, b, 5060, s + 600, inv[600:1200]),     # retransmission
              tcp(b, 5060, a, 40000, 5000, reply(200, "t@h")),
              tcp(a, 40000, b, 5060, s + len(inv), ack + bye)]    # two in one segment
    st = ConvertStats()
    msgs = list(sip_to_hep(pcap(frames), stats=st))
    assert [m.payload for m in msgs] == [inv, reply(200, "t@h"), ack, bye]
    assert all(m.ip_proto == 6 for m in msgs)
    assert (msgs[0].src_ip, msgs[0].src_port, msgs[0].dst_port) == (a, 40000, 5060)
    assert (msgs[0].ts_sec, msgs[0].ts_usec) == (T0, 4000)  # the frame that completed it
    assert st.tcp_sip == 4


def test_tcp_stream_that_is_not_sip_is_ignored():
    frames = [tcp("10.0.0.1", 40000, "10.0.0.2", 443, 1, b"\x16\x03\x01\x00\xa5" + bytes(200))]
    st = ConvertStats()
    assert list(sip_to_hep(pcap(frames), stats=st)) == []
    assert st.tcp_streams_other == 1


def test_live_style_frame_iterable():
    from heptool.capture.pcap import Frame

    fr = Frame(1, T0, 5, 1, udp("10.0.0.1", 5060, "10.0.0.2", 5060, sip("OPTIONS", "x@h")))
    assert [m.ts_usec for m in sip_to_hep([fr])] == [5]


# -- HEP -> frames -----------------------------------------------------------------------

def msg(**kw) -> heptool.HepMessage:
    base = {"src_ip": "10.0.0.1", "src_port": 5060, "dst_ip": "10.0.0.2", "dst_port": 5070,
            "ts_sec": T0, "ts_usec": 7, "proto_type": "sip", "capture_id": 2001}
    base.update(kw)
    return heptool.HepMessage(**base)


def frames_of(items, **kw):
    return [(s, u, extract_transport(1, f), c) for s, u, f, c in hep_to_frames(items, **kw)]


def test_udp_and_time():
    out = frames_of([msg(payload=sip("OPTIONS", "a@h"))])
    assert len(out) == 1
    s, u, t, c = out[0]
    assert (s, u, t.proto, t.src, t.sport, t.dst, t.dport, t.payload, c) == \
        (T0, 7, 17, "10.0.0.1", 5060, "10.0.0.2", 5070, sip("OPTIONS", "a@h"), None)


def test_v1_uses_the_given_time_then_the_previous_one():
    m1 = heptool.decode(heptool.encode(msg(payload=b"x"), version=1))
    assert m1.ts_sec is None
    out = frames_of([(m1, (T0 + 5, 1)), m1])
    assert [(s, u) for s, u, _t, _c in out] == [(T0 + 5, 1), (T0 + 5, 1)]


@pytest.mark.parametrize("ip_proto", [6, 22, 50])
def test_tcp_family_of_ip_protos_makes_a_flow(ip_proto):
    out = frames_of([msg(ip_proto=ip_proto, payload=sip("INVITE", "a@h")),
                     msg(ip_proto=ip_proto, payload=reply(200, "a@h"), src_ip="10.0.0.2",
                         src_port=5070, dst_ip="10.0.0.1", dst_port=5060)], comments=True)
    assert [t.proto for _s, _u, t, _c in out] == [6] * 5
    assert out[0][2].flags == TCP_SYN
    assert [c is not None for *_x, c in out] == [False, False, False, True, True]
    assert f"ip_proto={ip_proto}(" in out[3][3]


def test_non_sip_types_stay_udp_with_comment():
    log = msg(proto_type="log", ip_proto=6, payload=b"INFO something", correlation_id="a@h")
    out = frames_of([log], comments=True)
    assert out[0][2].proto == 17 and out[0][2].payload == b"INFO something"
    assert out[0][3] == "HEPv3 proto=log(100) ip_proto=6(TCP) capture_id=2001 correlation_id=a@h"


def test_compressed_payload_inflated_and_opensips_json_unwrapped():
    m = heptool.decode(heptool.encode(msg(payload=sip("OPTIONS", "z@h"), compression="gzip")))
    assert m.compression == "gzip"
    wrapped = msg(payload=b'{"payload": "OPTIONS sip:x SIP/2.0\\r\\nCall-ID: j@h\\r\\n\\r\\n"}')
    out = frames_of([m, wrapped], comments=True)
    assert out[0][2].payload == sip("OPTIONS", "z@h")
    assert "compressed=gzip" in out[0][3]
    assert out[1][2].payload == b"OPTIONS sip:x SIP/2.0\r\nCall-ID: j@h\r\n\r\n"


def test_missing_addresses_and_too_big():
    st = ConvertStats()
    out = frames_of([heptool.HepMessage(proto_type="log", ts_sec=T0, ts_usec=0, payload=b"x"),
                     msg(payload=b"x" * 65000, family=10, src_ip="::1",
                         dst_ip="::2")], stats=st)
    assert (out[0][2].src, out[0][2].sport) == ("0.0.0.0", 0)
    assert len(out) == 2 and st.too_big == 0
    st = ConvertStats()
    huge = msg(payload=b"x" * 65530)
    assert frames_of([huge], stats=st) == [] and st.too_big == 1


def test_hep_comment_leaves_the_auth_key_out():
    c = hep_comment(msg(payload=b"x", auth_key="secret", node_name="n",
                        extra_correlation='{"sip": "a@h"}'))
    assert "secret" not in c and "node=n" in c and 'extra_correlation={"sip": "a@h"}' in c


def test_iter_sip_packets_is_the_reading_half():
    cap = [udp("10.0.0.1", 5060, "10.0.0.2", 5070, sip("OPTIONS", "a@h")),
           tcp("10.0.0.1", 40000, "10.0.0.2", 5060, 1, sip("BYE", "a@h"))]
    pk = list(iter_sip_packets(pcap(cap)))
    assert pk == [SipPacket(4, 17, "10.0.0.1", 5060, "10.0.0.2", 5070, T0, 0,
                            sip("OPTIONS", "a@h")),
                  SipPacket(4, 6, "10.0.0.1", 40000, "10.0.0.2", 5060, T0, 1000,
                            sip("BYE", "a@h"))]
    only_tcp = list(iter_sip_packets(pcap(cap), packet_filter=compile_filter("tcp")))
    assert [p.ip_proto for p in only_tcp] == [6]


T4 = Transport(4, "10.0.0.1", "10.0.0.2", 17, 5060, 5070, b"")
T6 = Transport(6, "2001:db8::1", "::1", 6, 40000, 5060, b"", 1, 0)


@pytest.mark.parametrize("expr,m4,m6", [
    ("udp", True, False), ("tcp", False, True), ("ip", True, False), ("ip6", False, True),
    ("port 5060", True, True), ("src port 5060", True, False), ("dst port 5060", False, True),
    ("udp port 5060", True, False), ("portrange 5065-5075", True, False),
    ("host 10.0.0.2", True, False), ("dst host ::1", False, True),
    ("src net 2001:db8::/32", False, True), ("net 10.0.0.0/8", True, False),
    ("not udp", False, True), ("! tcp && port 5070", True, False),
    ("udp or tcp and port 40000", False, True),  # left to right: (udp or tcp) and port
    ("udp or (tcp and port 40000)", True, True),
])
def test_compile_filter(expr, m4, m6):
    f = compile_filter(expr)
    assert (f(T4), f(T6)) == (m4, m6)


@pytest.mark.parametrize("expr", ["", "udp port", "port 70000", "portrange 5", "host x",
                                  "net 10.0.0.0/33", "vlan 5", "(udp", "udp)", "ether host x"])
def test_compile_filter_errors(expr):
    with pytest.raises(FilterSyntaxError) as e:
        compile_filter(expr)
    assert "\n" not in str(e.value)


def test_link_types_vlans_and_ip_fragments():
    """SIP in every framing extract_transport reads: 802.1Q + QinQ, Linux SLL and SLL2, raw
    IP, BSD loopback, and a UDP datagram in three IPv4 fragments."""
    big = sip("MESSAGE", "frag@h", b"x" * 3000)
    ip_frame = udp("10.0.0.1", 5060, "10.0.0.2", 5060, sip("OPTIONS", "a@h"))
    ip = ip_frame[14:]
    qinq = ip_frame[:12] + b"\x88\xa8\x00\x05\x81\x00\x00\x07" + ip_frame[12:]
    sll = b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 6 + b"\x00\x00" + b"\x08\x00" + ip
    sll2 = b"\x08\x00\x00\x00" + b"\x00" * 16 + ip
    loop = b"\x02\x00\x00\x00" + ip
    l4 = struct.pack(">HHHH", 5060, 5060, 8 + len(big), 0) + big
    frags = []
    for off in range(0, len(l4), 1480):
        part = l4[off:off + 1480]
        more = 0x2000 if off + 1480 < len(l4) else 0
        head = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(part), 77, more | off // 8, 64,
                           17, 0, socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2"))
        frags.append(b"\x02" * 12 + b"\x08\x00" + head + part)
    assert len(frags) == 3

    def cap(linktype, frames):
        buf = io.BytesIO()
        w = dpkt.pcap.Writer(buf, linktype=linktype)
        for fr in frames:
            w.writepkt(fr, ts=T0)
        buf.seek(0)
        return buf

    for linktype, frames in ((1, [qinq]), (113, [sll]), (276, [sll2]), (101, [ip]), (0, [loop]),
                             (1, frags[::-1])):
        msgs = list(sip_to_hep(cap(linktype, frames)))
        assert len(msgs) == 1, linktype
        assert msgs[0].payload in (sip("OPTIONS", "a@h"), big)
    assert [m.payload for m in sip_to_hep(cap(1, frags))] == [big]
