"""heptool.analysis.correlate: the graph against OpenSIPS's real capture and its truth file, the
homer5-mode and HEP-over-TCP variants of the same traffic, and the rules one by one."""

from __future__ import annotations

import io
import json
import struct
from functools import cache
from pathlib import Path

import pytest

from heptool.analysis.correlate import CorrelationGraph, correlate
from heptool.analysis.extract import Rules, opensips_fields
from heptool.analysis.scenarios import opensips_scenario
from heptool.core.codec import encode
from heptool.core.message import HepMessage
from heptool.core.record import extra_correlation_pairs

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "opensips"
CAPTURE = VECTORS / "opensips-3.4.15-hep3-udp.pcap"
TRUTH = VECTORS / "opensips-3.4.15-hep3-udp.truth.json"


@cache
def truth() -> dict:
    return json.loads(TRUTH.read_text())["capture"]


def read(source) -> list[HepMessage]:
    from heptool.capture.inputs import iter_input, to_message

    return [to_message(p) for p in iter_input(source)]


@cache
def capture() -> tuple[HepMessage, ...]:
    return tuple(read(str(CAPTURE)))


def members(g: CorrelationGraph) -> list[list[int]]:
    return [[g.index(p) for p in grp.members] for grp in g.groups()]



def truth_groups() -> list[list[int]]:
    return [t["members"] for t in truth()["groups"]]


# ---------------------------------------------------------------------------------------
# The acceptance test: OpenSIPS's real capture
# ---------------------------------------------------------------------------------------

def test_groups_equal_the_truth_exactly():
    g = CorrelationGraph(keep_links=True).extend(capture())
    assert len(g) == 151
    assert members(g) == truth_groups()
    assert len(g.groups()) == 15
    # every message in exactly one group
    assert sorted(p for grp in members(g) for p in grp) == list(range(151))


def test_links_equal_the_truth_including_dangling_ones():
    g = CorrelationGraph(keep_links=True).extend(capture())
    links = g.links()
    assert links == truth()["links"]
    dangling = [(x["from"], x["via"], x["value"]) for x in links if not x["to"]]
    assert (41, "net", "0") in dangling
    assert sorted(v for _, via, v in dangling if via == "sip") == sorted(
        f"b2b-hc-{k}-call-c7ba77@heptool.test" for k in ("udp", "tcp", "tls", "ws", "wss"))
    assert [(p, via[6:], v) for p, via, v in g.dangling()] == dangling


def test_group_summaries_match_the_truth():
    """The truth file lists a group's dangling values among its ids; heptool keeps them apart
    (issue 14 #10): they are in ``dangling`` only."""
    g = correlate(capture())
    dangling = {x["value"] for x in truth()["links"] if not x["to"]}
    assert dangling == {"0", *(f"b2b-hc-{k}-call-c7ba77@heptool.test"
                               for k in ("udp", "tcp", "tls", "ws", "wss"))}
    for grp, t in zip(g.groups(), truth()["groups"]):
        assert grp.label == t["label"]
        assert grp.kinds == t["kinds"]
        assert grp.call_ids == [v for v in t["call_ids"] if v not in dangling]
        assert grp.ids.get("net", []) == [v for v in t["net_ids"] if v not in dangling]
        assert grp.ids.get("internal", []) == t["internal_ids"]


def test_dangling_values_are_not_a_groups_ids():
    """issue 14 #10: ``b2b-...`` (a correlate() packet's "sip") and net "0" are dangling, not
    ids of the group; a value its own message owns, or another message owns, stays."""
    doc = correlate(capture()).to_dict()
    tcp = doc["groups"][4]
    assert tcp["call_ids"] == ["hc-tcp-call-c7ba77@heptool.test"]
    assert tcp["ids"]["net"] == ["10882936439586164051", "5478616886741568852"]
    listed = {v for grp in doc["groups"] for v in
              [*grp["call_ids"], *(x for vs in grp["ids"].values() for x in vs)]}
    assert not listed & {d["value"] for d in doc["dangling"]}
    # a reference another message owns is listed: chunk 0x0065 "sip" on the xlog lines
    g = correlate(capture())
    refs = {v for v, p, reason, owns in g.attachments(set(g.groups()[4].members))
            if reason == "extra:sip" and not owns}
    assert "hc-tcp-call-c7ba77@heptool.test" in refs


def test_to_dict_schema():
    doc = correlate(capture()).to_dict()
    assert set(doc) == {"groups", "edges", "dangling"}
    g0 = doc["groups"][1]
    assert set(g0) == {"id", "label", "packets", "call_ids", "ids", "kinds", "first", "last"}
    assert g0["packets"] == [1, 2, 3]
    assert g0["first"].endswith("Z") and g0["first"] <= g0["last"]
    assert {"from": 2, "to": 1, "via": "extra:net"} in doc["edges"]
    assert {"from": 41, "via": "extra:net", "value": "0"} in doc["dangling"]
    for e in doc["edges"]:
        assert set(e) <= {"from", "to", "via", "inferred"} and e["from"] != e["to"]
    # the edges alone rebuild the groups
    parent = list(range(151))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for e in doc["edges"]:
        a, b = find(e["from"]), find(e["to"])
        parent[max(a, b)] = min(a, b)
    comps: dict[int, list[int]] = {}
    for i in range(151):
        comps.setdefault(find(i), []).append(i)
    assert list(comps.values()) == truth_groups()


# ---------------------------------------------------------------------------------------
# Variants of the same traffic
# ---------------------------------------------------------------------------------------

def homer5(m: HepMessage) -> HepMessage:
    """The message as OpenSIPS sends it with ``homer5_on=1`` (HEP-SPEC 6 and 14.3): payload
    parts joined by ':', raw SIP, no chunk 0x65, the ``sip`` extra correlation written over
    0x11 (the last one wins), ``net`` dropped."""
    h = m.copy()
    h.layout = None
    h.extra_correlation = None
    for key, value in extra_correlation_pairs(m.extra_correlation) or ():
        if key == "sip":
            h.correlation_id = value
    fields = opensips_fields(m.payload)
    if fields is not None:
        if m.proto_type == 1:
            h.payload = dict(fields)["payload"].encode("utf-8", "surrogateescape")
        elif m.proto_type == 0x57 and fields[0][0] == "reply":
            h.payload = fields[0][1].encode()
        else:
            h.payload = ":".join(str(v) for _, v in fields).encode("utf-8", "surrogateescape")
    return h


@cache
def homer5_capture() -> tuple[HepMessage, ...]:
    return tuple(homer5(m) for m in capture())


def test_the_homer5_variant_has_no_net_link_on_the_wire():
    msgs = homer5_capture()
    assert all(m.extra_correlation is None for m in msgs)
    assert msgs[6].correlation_id == "1076833173@127.0.0.1"  # REST lost its RESTCORR id
    assert msgs[1].payload == b"TCP:ACCEPTED:SUCCESS:Connection accepted..."
    assert msgs[141].payload == b"uptime:fifo"


def test_homer5_variant_gives_the_same_groups_with_inferred_net_edges():
    # correlate() packets write the last "sip" value over 0x11: "b2b-<Call-ID>", which only
    # the B2BUA convention links back to the call.
    rules = Rules(b2b=["b2b-*"])
    g = correlate(homer5_capture(), rules)
    assert members(g) == truth_groups()
    inferred = [(a, b) for a, b, via, inf in g.edges() if inf]
    assert all(via == "five_tuple" for _, _, via, inf in g.edges() if inf)
    # the first TCP OPTIONS joins its connection only through the inferred edge
    assert (2, 1) in inferred
    # every SIP message that carried a "net" link over TCP/TLS/WS gets an inferred one
    tcp_sip_with_net = {i for i, m in enumerate(capture())
                        if m.proto_type == 1 and m.ip_proto in (6, 22, 50)}
    assert {a for a, _ in inferred} == tcp_sip_with_net
    # and the JSON capture, with the same rule, is unchanged
    assert members(correlate(capture(), rules)) == truth_groups()


def test_homer5_variant_without_b2b_rule_keeps_control_packets_apart():
    g = correlate(homer5_capture())
    controls = [i for i, m in enumerate(capture()) if m.proto_type == 0x60]
    expected = [[i for i in grp if i not in controls] for grp in truth_groups()]
    expected += [[c] for c in controls]
    assert sorted(members(g)) == sorted(expected)


def tcp_pcap(packets: list[bytes], segment: int = 700) -> bytes:
    """A classic pcap of one TCP connection 127.0.0.1:40000 -> 127.0.0.1:9060 carrying the
    HEP packets back to back, cut into ``segment``-byte segments (HEP packets split across
    segments), with SYN and FIN."""
    out = io.BytesIO()
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    stream = b"".join(packets)
    seq = 1000

    def frame(flags: int, data: bytes, t: int) -> None:
        tcp = struct.pack(">HHIIBBHHH", 40000, 9060, seq, 0, 5 << 4, flags, 65535, 0, 0)
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(data), 0, 0x4000, 64, 6,
                         0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
        eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
        f = eth + ip + tcp + data
        out.write(struct.pack("<IIII", 1795683593 + t // 1000, (t % 1000) * 1000, len(f), len(f)))
        out.write(f)

    frame(0x02, b"", 0)  # SYN
    seq += 1
    t = 1
    for i in range(0, len(stream), segment):
        data = stream[i:i + segment]
        frame(0x18, data, t)
        seq += len(data)
        t += 1
    frame(0x11, b"", t)  # FIN
    return out.getvalue()


@pytest.mark.parametrize("mode", ["json", "homer5"])
def test_hep_over_tcp_variant_gives_the_same_groups(mode):
    msgs = capture() if mode == "json" else homer5_capture()
    pcap = tcp_pcap([encode(m) for m in msgs])
    again = read(io.BytesIO(pcap))
    assert len(again) == 151
    g = correlate(again, Rules(b2b=["b2b-*"]))
    assert members(g) == truth_groups()


def test_hep_stream_variant_gives_the_same_groups():
    stream = b"".join(encode(m) for m in capture())
    g = CorrelationGraph(keep_links=True).extend(read(io.BytesIO(stream)))
    assert members(g) == truth_groups()
    assert g.links() == truth()["links"]


# ---------------------------------------------------------------------------------------
# The opensips scenario (what `heptool encode --scenario opensips` sends), both modes
# ---------------------------------------------------------------------------------------

def scenario_calls(mode: str, n: int = 4) -> list[HepMessage]:
    out: list[HepMessage] = []
    for i in range(n):
        out += opensips_scenario(mode=mode, seed=i, start=(1700000000 + 60 * i, 0))
    return out


def test_scenario_json_and_homer5_give_the_same_groups():
    js = correlate(scenario_calls("json"))
    h5 = correlate(scenario_calls("homer5"))
    assert members(js) == members(h5)
    assert len(js.groups()) == 8  # per call: {SIP, xlog, REST, net events}, {MI pair}
    labels = [grp.label for grp in h5.groups()]
    assert labels[1::2] == ["MI uptime via fifo"] * 4
    assert not any(inf for *_, inf in js.edges())
    assert any(inf for *_, inf in h5.edges())
    assert js.dangling() == h5.dangling() == []


def test_scenario_over_hep_tcp_gives_the_same_groups():
    msgs = scenario_calls("homer5")
    again = read(io.BytesIO(tcp_pcap([encode(m) for m in msgs], segment=333)))
    assert members(correlate(again)) == members(correlate(msgs))


# ---------------------------------------------------------------------------------------
# The rules, one at a time
# ---------------------------------------------------------------------------------------

def sip(call_id: str, first: str = "INVITE sip:b@x SIP/2.0", extra_headers: str = "",
        t: int = 0, **kw) -> HepMessage:
    payload = (f"{first}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK{t}\r\nFrom: <sip:a@x>;tag=1\r\n"
               f"To: <sip:b@x>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n{extra_headers}"
               f"Content-Length: 0\r\n\r\n")
    base = {"src_ip": "10.0.0.1", "src_port": 5060, "dst_ip": "10.0.0.2", "dst_port": 5060,
                "ts_sec": 1700000000 + t, "ts_usec": 0, "proto_type": 1}
    base.update(kw)
    return HepMessage(payload=payload, **base)


def other(proto: int, t: int = 0, payload: str | None = "x", **kw) -> HepMessage:
    base = {"src_ip": "10.0.0.1", "src_port": 5060, "dst_ip": "10.0.0.2", "dst_port": 5060,
                "ts_sec": 1700000000 + t, "ts_usec": 0, "proto_type": proto}
    base.update(kw)
    return HepMessage(payload=payload, **base)


def groups_of(msgs, rules=None) -> list[list[int]]:
    return members(correlate(msgs, rules))


def test_sip_without_chunk_0x11_groups_by_payload_call_id():
    msgs = [sip("a@h"), sip("b@h"), sip("a@h", "SIP/2.0 200 OK"), other(5, correlation_id="a@h"),
            other(100, correlation_id="b@h")]
    assert groups_of(msgs) == [[0, 2, 3], [1, 4]]


def test_never_merge_calls_that_nothing_links():
    ref0 = '{\n\t"net":\t"0"\n}'
    msgs = [sip("a@h", extra_correlation=ref0, ip_proto=6),
            sip("b@h", extra_correlation=ref0, ip_proto=6),
            other(100, correlation_id="<null>"), other(100, correlation_id="<null>"),
            other(100, correlation_id="")]
    g = correlate(msgs)
    assert members(g) == [[0], [1], [2], [3], [4]]
    assert [d[2] for d in g.dangling()] == ["0", "0"]


def test_reference_before_its_owner_still_links():
    msgs = [other(100, extra_correlation='{\n\t"sip":\t"a@h"\n}'), sip("a@h")]
    g = correlate(msgs)
    assert members(g) == [[0, 1]]
    assert g.edges() == [(0, 1, "extra:sip", False)]


def test_x_cid_links_b_leg_to_a_leg():
    msgs = [sip("a@h"), sip("b@h", extra_headers="X-CID: a@h\r\n"), sip("c@h", t=1)]
    g = correlate(msgs)
    assert members(g) == [[0, 1], [2]]
    assert (1, 0, "header:X-CID", False) in g.edges()


def test_b2b_suffix_links_legs_only_when_asked():
    msgs = [sip("a@h"), sip("a@h_b2b-1")]
    assert groups_of(msgs) == [[0], [1]]
    g = correlate(msgs, Rules(b2b=["*_b2b-1"]))
    assert members(g) == [[0, 1]]
    assert (1, 0, "b2b", False) in g.edges()


def test_link_header_values_join_messages():
    pcv = 'P-Charging-Vector: icid-value=XYZ;orig-ioi=a\r\n'
    pcv2 = 'P-Charging-Vector: icid-value=XYZ;term-ioi=b\r\n'
    msgs = [sip("a@h", extra_headers=pcv), sip("b@h", extra_headers=pcv2), sip("c@h")]
    assert groups_of(msgs) == [[0], [1], [2]]
    assert groups_of(msgs, Rules(headers=["P-Charging-Vector"])) == [[0, 1], [2]]


def test_rest_and_mi_request_reply_by_guid():
    msgs = [other(0x58, payload="GET / HTTP/1.1", correlation_id="RESTCORRx"),
            other(0x57, payload="ps:fifo", correlation_id="MICORRy"),
            other(0x58, payload="HTTP/1.1 200 OK", correlation_id="RESTCORRx"),
            other(0x57, payload='{"jsonrpc"', correlation_id="MICORRy")]
    g = correlate(msgs)
    assert members(g) == [[0, 2], [1, 3]]
    assert g.edges() == [(2, 0, "rest_id", False), (3, 1, "mi_id", False)]
    assert [grp.label for grp in g.groups()][1] == "MI ps via fifo"


def conn_event(event: str, conn: str, t: int, a=("10.0.0.9", 40000), b=("10.0.0.1", 5060),
               proto: int = 6) -> HepMessage:
    if event == "CLOSED":
        a = b = ("127.0.0.2", 0)
    return other(0x59, t=t, payload=f"TCP:{event}:SUCCESS:x", correlation_id=conn,
                 src_ip=a[0], src_port=a[1], dst_ip=b[0], dst_port=b[1], ip_proto=proto)


def tcp_sip(call_id: str, t: int, a=("10.0.0.9", 40000), b=("10.0.0.1", 5060), proto=6, **kw):
    return sip(call_id, t=t, src_ip=a[0], src_port=a[1], dst_ip=b[0], dst_port=b[1],
               ip_proto=proto, **kw)


def test_five_tuple_inference_within_the_connection_lifetime():
    msgs = [conn_event("ACCEPTED", "111", 0), tcp_sip("a@h", 1),
            tcp_sip("a@h", 2, a=("10.0.0.1", 5060), b=("10.0.0.9", 40000)),  # other direction
            conn_event("CLOSED", "111", 3),
            tcp_sip("b@h", 4),  # same 4-tuple after the close: not this connection
            conn_event("ACCEPTED", "222", 5), tcp_sip("c@h", 6), conn_event("CLOSED", "222", 7)]
    g = correlate(msgs)
    assert members(g) == [[0, 1, 2, 3], [4], [5, 6, 7]]
    inferred = [(a, b) for a, b, _, inf in g.edges() if inf]
    assert inferred == [(1, 0), (2, 0), (6, 5)]
    assert correlate(msgs, infer=False).groups()[0].members == [0, 3]


def test_five_tuple_needs_the_same_ip_proto_and_a_stream_transport():
    msgs = [conn_event("ACCEPTED", "111", 0, proto=22), tcp_sip("a@h", 1, proto=6),
            tcp_sip("b@h", 2, proto=17)]
    assert groups_of(msgs) == [[0], [1], [2]]


def test_no_inference_when_net_is_on_the_wire():
    msgs = [conn_event("ACCEPTED", "111", 0),
            tcp_sip("a@h", 1, extra_correlation='{\n\t"net":\t"0"\n}')]
    g = correlate(msgs)
    assert members(g) == [[0], [1]]
    assert g.dangling() == [(1, "extra:net", "0")]


def test_ambiguous_connections_infer_nothing():
    msgs = [conn_event("ACCEPTED", "111", 0), conn_event("ACCEPTED", "222", 1),
            tcp_sip("a@h", 2)]
    assert groups_of(msgs) == [[0], [1], [2]]


def test_correlate_control_links_two_calls():
    ec = '{\n\t"sip":\t"a@h",\n\t"sip":\t"b@h"\n}'
    msgs = [sip("a@h"), sip("b@h"), other(0x60, payload=None, extra_correlation=ec)]
    assert groups_of(msgs) == [[0, 1, 2]]


def test_input_indices_are_kept():
    g = CorrelationGraph()
    g.add(sip("a@h"), index=10)
    g.add(sip("a@h"), index=11)
    g.add(sip("b@h"), index=12)
    doc = g.to_dict()
    assert [x["packets"] for x in doc["groups"]] == [[10, 11], [12]]
    assert doc["edges"] == [{"from": 11, "to": 10, "via": "call_id"}]


def test_groups_with_id_and_subset_to_dict():
    g = correlate(capture())
    (grp,) = g.groups_with_id("hc-tcp-call-c7ba77@heptool.test")
    assert grp.id == 4
    assert g.groups_with_id("10882936439586164051") == [grp]
    doc = g.to_dict([grp])
    assert [x["id"] for x in doc["groups"]] == [4]
    assert {d["value"] for d in doc["dangling"]} == {"0", "b2b-hc-tcp-call-c7ba77@heptool.test"}
    assert all(32 <= e["from"] <= 57 for e in doc["edges"])


def test_memory_is_per_id_not_per_payload():
    big = "x" * 20000
    g = CorrelationGraph()
    for i in range(50):
        g.add(other(100, payload=big, correlation_id=f"c{i % 5}"))
    assert len(g.groups()) == 5
    assert all(not isinstance(v, (bytes, bytearray)) for v in vars_of(g))


def vars_of(g):
    for name in ("_kinds", "_labels"):
        yield from getattr(g, name)


def test_messages_without_time_hepv1():
    a = sip("a@h", ip_proto=6)
    b = sip("a@h", "SIP/2.0 200 OK", ip_proto=6)
    for m in (a, b):
        m.version, m.ts_sec, m.ts_usec = 1, None, None
    msgs = [conn_event("ACCEPTED", "111", 0), a, b]
    g = correlate(msgs)
    assert members(g) == [[0], [1, 2]]  # no time, no inference
    doc = g.to_dict()
    assert doc["groups"][1]["first"] is None and doc["groups"][1]["last"] is None
    assert doc["groups"][0]["first"] == doc["groups"][0]["last"] == "2023-11-14T22:13:20.000000Z"


def test_thousands_of_distinct_extra_keys_do_not_break_the_graph():
    msgs = [sip("a@h")]
    for i in range(1500):
        msgs.append(other(0x60, payload=None,
                          extra_correlation=f'{{\n\t"k{i}":\t"a@h"\n}}'))
    g = correlate(msgs)
    assert members(g) == [list(range(1501))]
    vias = {via for _, _, via, _ in g.edges()}
    assert "extra:k0" in vias and "other" in vias


KAMAILIO = ["kamailio/kamailio-hep1-udp.hep.pcap", "kamailio/kamailio-hep2-udp.hep.pcap",
            "kamailio/kamailio-hep3-udp.hep.pcap", "kamailio/kamailio-hep3-tcp.hep.pcap",
            "sngrep/sngrep-hep2-udp.hep.pcap", "sngrep/sngrep-hep3-udp.hep.pcap"]


def test_kamailio_and_sngrep_captures_group_by_payload_call_id_in_every_hep_version():
    """No chunk 0x11 on most of these (and none at all in v1/v2): the Call-ID of the payload
    groups them, identically in every version and transport: 4 sipsak requests + 4 calls."""
    root = VECTORS.parent
    results = []
    for name in KAMAILIO:
        g = correlate(read(str(root / name)))
        results.append(([grp.members for grp in g.groups()], [grp.call_ids for grp in g.groups()]))
        assert len(g.groups()) == 8 and g.dangling() == []
    assert all(len(r[0]) == 8 for r in results)
    sizes = {tuple(sorted(len(m) for m in r[0])) for r in results}
    assert len(sizes) == 1
