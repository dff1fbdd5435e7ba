"""heptool.analysis.extract: kinds and ids of every message type, in both OpenSIPS encodings."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from heptool.analysis.extract import (
    Rules,
    extract,
    header_values,
    opensips_fields,
    parse_b2b_pattern,
    parse_link_header,
)
from heptool.core.message import HepMessage

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "opensips"
CAPTURE = VECTORS / "opensips-3.4.15-hep3-udp.pcap"
TRUTH = VECTORS / "opensips-3.4.15-hep3-udp.truth.json"


@cache
def capture_messages() -> tuple:
    from heptool.capture.inputs import iter_input, to_message

    return tuple(to_message(p) for p in iter_input(str(CAPTURE)))


@cache
def truth() -> dict:
    return json.loads(TRUTH.read_text())["capture"]


def msg(proto: int, payload: bytes | str | None = None, **kw) -> HepMessage:
    base = {"src_ip": "10.0.0.1", "src_port": 5060, "dst_ip": "10.0.0.2", "dst_port": 5060,
                "ts_sec": 1700000000, "ts_usec": 0, "proto_type": proto}
    base.update(kw)
    return HepMessage(payload=payload, **base)


SIP = (b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
       b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: abc@host\r\nCSeq: 1 INVITE\r\n"
       b"Content-Length: 0\r\n\r\n")


def test_every_kind_of_the_real_capture_matches_the_truth():
    t = truth()["packets"]
    msgs = capture_messages()
    assert len(msgs) == 151
    assert [extract(m).kind for m in msgs] == [p["kind"] for p in t]


def test_ids_of_the_real_capture_match_chunks_0x11_and_0x65():
    for m, p in zip(capture_messages(), truth()["packets"]):
        e = extract(m)
        own = {v for v, r, o in e.ids if o and r != "call_id"}
        assert own == ({p["internal_id"]} if p["internal_id"] else set())
        refs = [(r[6:], v) for v, r, o in e.ids if r.startswith("extra:")]
        assert refs == [tuple(x) for x in p["external_pairs"] or ()]
        if p["kind"] == "sip":
            assert (p["sip_call_id"], "call_id", True) in e.ids


def test_sip_call_id_compact_form_and_plain_sip():
    e = extract(msg(1, SIP))
    assert e.kind == "sip" and e.label == "INVITE"
    assert e.ids == [("abc@host", "call_id", True)]
    compact = SIP.replace(b"Call-ID:", b"i:")
    assert extract(msg(1, compact)).ids == [("abc@host", "call_id", True)]
    reply = b"SIP/2.0 180 Ringing\r\nCall-ID: abc@host\r\nCSeq: 1 INVITE\r\n\r\n"
    assert extract(msg(1, reply)).label == "180"


def test_hepv1_v2_messages_are_sip_even_without_a_type():
    m = msg(1, SIP)
    m.version = 2
    m.proto_type = None
    assert extract(m).kind == "sip"


def test_x_cid_is_a_reference_to_the_a_leg():
    e = extract(msg(1, SIP.replace(b"CSeq:", b"X-CID: aleg@host\r\nCSeq:")))
    assert ("aleg@host", "header:X-CID", False) in e.ids


def test_link_headers_and_p_charging_vector_icid():
    pcv = b'P-Charging-Vector: icid-value="AyretyU0dm+6O2IrT5tAFrbHLso=";orig-ioi=home1.net\r\n'
    sid = b"Session-ID: 0123456789abcdef0123456789abcdef\r\n"
    e = extract(msg(1, SIP.replace(b"CSeq:", pcv + sid + b"CSeq:")),
                Rules(headers=["P-Charging-Vector", "session-id"]))
    assert ("AyretyU0dm+6O2IrT5tAFrbHLso=", "header:P-Charging-Vector", True) in e.ids
    assert ("0123456789abcdef0123456789abcdef", "header:session-id", True) in e.ids
    assert header_values(b"INVITE x SIP/2.0\r\nfoo: 1\r\nFoo:2\r\n\r\nfoo: 3", b"foo") == ["1", "2"]
    assert parse_link_header("X-Leg;id").param == "id"
    with pytest.raises(ValueError):
        parse_link_header("bad header")
    with pytest.raises(ValueError):
        parse_link_header("Call-ID")


def test_b2b_patterns():
    assert parse_b2b_pattern("*_b2b-1")("abc_b2b-1") == "abc"
    assert parse_b2b_pattern("*_b2b-1")("abc") is None
    assert parse_b2b_pattern("b2b-*")("b2b-abc") == "abc"
    assert parse_b2b_pattern("b2b-*")("b2b-") is None
    assert parse_b2b_pattern(r"re:^(.+)_b2b-\d+$")("x@y_b2b-7") == "x@y"
    for bad in ("b2b", "**", "re:(", "*"):
        with pytest.raises(ValueError):
            parse_b2b_pattern(bad)
    leg = msg(1, SIP.replace(b"abc@host", b"abc@host_b2b-1"))
    e = extract(leg, Rules(b2b=["*_b2b-1"]))
    assert ("abc@host", "b2b", False) in e.ids


@pytest.mark.parametrize(("payload", "kind", "label"), [
    (b'{\n\t"Protocol":\t"TCP",\n\t"Event":\t"ACCEPTED",\n\t"Status":\t"SUCCESS"\n}',
     "net_tcp", "TCP ACCEPTED SUCCESS"),
    (b"TLS:CLOSED:SUCCESS:EOF received", "net_tls", "TLS CLOSED SUCCESS"),
    (b"WSS:CONNECTED:SUCCESS:ok:with:colons", "net_wss", "WSS CONNECTED SUCCESS"),
    (b"", "net", None),
])
def test_net_events_both_encodings(payload, kind, label):
    e = extract(msg(0x59, payload or None, correlation_id="123"))
    assert (e.kind, e.label) == (kind, label)
    assert e.ids == [("123", "conn_id", True)]


def test_net_event_with_a_binary_master_key_and_duplicate_keys():
    raw = (b'{\n\t"Protocol":\t"TLS",\n\t"master-key":\t"\xba\xdf\x00\\u0017\xf8",\n'
           b'\t"Event":\t"ACCEPTED",\n\t"Event":\t"ACCEPTED",\n\t"Status":\t"SUCCESS"\n}')
    fields = opensips_fields(raw)
    assert [k for k, _ in fields] == ["Protocol", "master-key", "Event", "Event", "Status"]
    e = extract(msg(0x59, raw, correlation_id="9"))
    assert (e.kind, e.event) == ("net_tls", "ACCEPTED")


@pytest.mark.parametrize(("payload", "kind"), [
    (b'{\n\t"first_line":\t"GET /x HTTP/1.1"\n}', "rest_request"),
    (b'{\n\t"first_line":\t"HTTP/1.0 200 OK",\n\t"payload":\t"{}"\n}', "rest_reply"),
    (b"GET /x HTTP/1.1", "rest_request"),
    (b'HTTP/1.0 200 OK:{"route":"x"}', "rest_reply"),
])
def test_rest_request_or_reply(payload, kind):
    e = extract(msg(0x58, payload, correlation_id="RESTCORRabc=",
                    extra_correlation='{\n\t"sip":\t"abc@host"\n}'))
    assert e.kind == kind
    assert e.ids == [("RESTCORRabc=", "rest_id", True), ("abc@host", "extra:sip", False)]


@pytest.mark.parametrize(("payload", "kind", "label"), [
    (b'{\n\t"command":\t"uptime",\n\t"backend":\t"fifo"\n}', "mi_request", "MI uptime via fifo"),
    (b'{\n\t"reply":\t"{\\"jsonrpc\\":\\"2.0\\"}"\n}', "mi_reply", None),
    (b"uptime:fifo", "mi_request", "MI uptime via fifo"),
    (b'{"jsonrpc":"2.0","result":{"Now":"Thu Nov 26 09:00:00 2026","Up si', "mi_reply", None),
])
def test_mi_request_or_reply(payload, kind, label):
    e = extract(msg(0x57, payload, correlation_id="MICORRx="))
    assert (e.kind, e.label) == (kind, label)
    assert e.ids == [("MICORRx=", "mi_id", True)]


@pytest.mark.parametrize(("proto", "payload", "ec", "kind"), [
    (100, b'{\n\t"Event":\t"ERROR",\n\t"text":\t"no route"\n}', '{\n\t"sip":\t"c@h"\n}', "xlog"),
    (100, b"INFO:HEPCORPUS INVITE", None, "xlog"),
    (0x56, b"anything", None, "xlog"),
    (100, b"Nov 26 kamailio[1]: ERROR: <core> something", None, "log"),
    (5, b'{"type":200,"ssrc":1}', None, "rtcp"),
    (32, b'{"MOS":4.2}', None, "qos"),
])
def test_logs_and_reports(proto, payload, ec, kind):
    e = extract(msg(proto, payload, correlation_id="c@h", extra_correlation=ec))
    assert e.kind == kind
    assert ("c@h", "internal", True) in e.ids


def test_null_ids_are_not_ids():
    e = extract(msg(100, b"INFO:x", correlation_id="<null>"))
    assert e.ids == []


def test_control_has_only_its_extra_correlation():
    m = msg(0x60, None, extra_correlation='{\n\t"sip":\t"a@h",\n\t"sip":\t"b2b-a@h"\n}')
    e = extract(m)
    assert e.kind == "control"
    assert e.ids == [("a@h", "extra:sip", False), ("b2b-a@h", "extra:sip", False)]
    e = extract(m, Rules(b2b=["b2b-*"]))
    assert ("a@h", "b2b", False) in e.ids


def test_sip_in_json_mode_has_net_flag():
    wrapped = json.dumps({"payload": SIP.decode()}).encode()
    e = extract(msg(1, wrapped, ip_proto=6, extra_correlation='{\n\t"net":\t"0"\n}'))
    assert e.has_net and ("0", "extra:net", False) in e.ids
    assert ("abc@host", "call_id", True) in e.ids


def all_vector_messages():
    from heptool.capture.inputs import iter_input, to_message

    root = Path(__file__).resolve().parent.parent / "vectors"
    for path in sorted(root.glob("*/*.pcap")):
        for p in iter_input(str(path)):
            yield to_message(p)


def test_fast_paths_agree_with_the_general_path(monkeypatch):
    """The plain-SIP and JSON-wrapped-SIP shortcuts give what the general path gives, on
    every real capture (and both shapes of the scenario messages)."""
    import heptool.analysis.extract as ex
    from heptool.analysis.scenarios import call_scenario, opensips_scenario
    from heptool.sip import ids, payload

    msgs = list(all_vector_messages()) + call_scenario(seed=1) + opensips_scenario(seed=2)
    fast = [ex.extract(m) for m in msgs]

    def general(data):
        p = payload.sip_payload(data)
        return ids.sip_ids_general(p) if p is not None else (None, None, None)

    monkeypatch.setattr(ex, "sip_ids", general)
    assert [ex.extract(m) for m in msgs] == fast
    assert sum(1 for e in fast if e.kind == "sip") > 300


def test_unusual_sip_reads_as_the_reference():
    """sip_ids (C or the pure fast path) reads unusual shapes as the line-by-line reference."""
    from heptool.sip import ids as sip

    assert sip.sip_ids(SIP) == sip.sip_ids_ref(SIP) == ("abc@host", "INVITE", None)
    body_only = SIP.replace(b"Call-ID: abc@host\r\n", b"") + b"Call-ID: fake\r\n"
    for unusual in (SIP.replace(b"Call-ID:", b"i:"), SIP.replace(b"CSeq:", b"X-Cid: a\r\nCSeq:"),
                    b"hello world\r\n\r\n", body_only):
        assert sip.sip_ids(unusual) == sip.sip_ids_py(unusual) == sip.sip_ids_ref(unusual)
    assert sip.sip_ids(body_only)[0] is None


def test_wrapped_fast_path_reads_only_the_header_block():
    import heptool.sip.ids as sipmod

    sip = SIP.replace(b"Call-ID: abc@host", b"i: abc@host") + b"Call-ID: in-the-body\r\n"
    wrapped = b'{\n\t"payload":\t' + json.dumps(sip.decode()).encode() + b"\n}"
    assert sipmod.sip_ids_py(wrapped) == ("abc@host", "INVITE", None)
    assert ("abc@host", "call_id", True) in extract(msg(1, wrapped)).ids
