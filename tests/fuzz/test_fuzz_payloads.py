"""Fuzz the payload parsers: SIP (heptool.sip), the SIP-over-TCP splitter
(heptool.sip.framing), the OpenSIPS and log/RTCP payload parsers and the correlation graph
(heptool.analysis.extract / correlate), plus what the decoder's output goes through next (the JSON
record, the table summary, the flow and graph renderers' text) and the HEP stream decoder on
v1/v2 packets (test_properties covers v3 splits).

Seeds: the SIP and OpenSIPS payloads of every capture in tests/vectors, mutated; generated SIP
messages and OpenSIPS JSON / delimited text.  Invariant: these parsers never raise at all
(a payload is data: they answer None or a partial result), the splitter only hands out
bytes of its stream at their stream offsets and holds at most its header+body limits.
"""

from __future__ import annotations

import contextlib
import functools
import json
import struct

import fuzzutil
import pytest
from hypothesis import strategies as st

from heptool import NEED_DATA, HepDecodeError, HepError, HepMessage, StreamDecoder, encode
from heptool.analysis.correlate import CorrelationGraph
from heptool.analysis.extract import Rules, extract, opensips_fields
from heptool.capture.inputs import iter_input, to_message
from heptool.core.record import to_record
from heptool.sip.framing import SipSplitter, content_length, looks_like_sip
from heptool.sip.ids import call_id
from heptool.sip.info import sip_info
from heptool.sip.payload import sip_payload
from heptool.sip.summary import printable, summary


@functools.cache
def real_messages() -> tuple[HepMessage, ...]:
    out = []
    for path in sorted(fuzzutil.VECTORS.rglob("*.pcap")):
        if path.name.endswith(".sip.pcap"):
            continue
        for p in iter_input(path):
            with contextlib.suppress(HepError):
                out.append(to_message(p))
    return tuple(out)


@functools.cache
def real_payloads() -> tuple[bytes, ...]:
    return tuple(sorted({m.payload for m in real_messages() if m.payload}))


HEADERS = ["Call-ID", "i", "CSeq", "From", "f", "To", "t", "Content-Length", "l", "X-CID",
           "Via", "v", "call-id", "CONTENT-LENGTH", "Max-Forwards"]
sip_text = st.builds(
    lambda start, headers, sep, body: (start + sep + sep.join(
        f"{k}{ws}:{ws}{v}" for k, ws, v in headers) + sep + sep + body).encode("utf-8", "surrogatepass"),
    st.sampled_from(["INVITE sip:a@b SIP/2.0", "SIP/2.0 200 OK", "SIP/2.0 999", "SIP/2.0",
                     "BYE x SIP/2.0", "OPTIONS  SIP/2.0", "", "\x1b[2J SIP/2.0 100 \u202e"]),
    st.lists(st.tuples(st.sampled_from(HEADERS), st.sampled_from(["", " ", "\t", "  "]),
                       st.text(max_size=30)), max_size=8),
    st.sampled_from(["\r\n", "\n", "\r"]),
    st.text(max_size=40),
)

OPENSIPS_KEYS = ["payload", "event", "status", "proto", "type", "first_line", "MICORR", "RESTCORR",
                 "correlation_id", "conn_id", "message", "cmd", "params", "reason", "code",
                 "master-key", "tls", "ws", "src_ip", "dst_ip", "uptime", "level"]
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(OPENSIPS_KEYS), inner, max_size=4)),
    max_leaves=8)
opensips_json = st.dictionaries(st.sampled_from(OPENSIPS_KEYS), json_value, max_size=6).map(
    lambda d: json.dumps(d, indent=2).encode())
delimited = st.lists(st.sampled_from(["INFO", "TCP", "ACCEPTED", "SUCCESS", "uptime", "fifo",
                                      "ERROR", "", "{", "x=y", "call-id"]), max_size=6).map(
    lambda xs: ":".join(xs).encode())


@st.composite
def mutated_payload(draw):
    p = bytearray(draw(st.sampled_from(real_payloads())))
    for _ in range(draw(st.integers(1, 4))):
        n = len(p)
        if not n:
            break
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "crlf"]))
        i = draw(st.integers(0, n - 1))
        if op == "truncate":
            del p[i:]
        elif op == "flip":
            p[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            p[i:i] = draw(st.sampled_from([b"\r\n", b"\n", b"\0", b"\x1b[2J", b"{", b"\"",
                                           b"\xff", b"Content-Length: 99999999\r\n", b"l:-1\r\n"]))
        elif op == "delete":
            del p[i:i + draw(st.integers(1, 16))]
        else:
            p[i:i] = b"\r\n\r\n"
    return bytes(p)


payloads = st.one_of(mutated_payload(), sip_text, opensips_json, delimited, st.binary(max_size=200))
PTYPES = st.sampled_from([1, 5, 32, 34, 35, 99, 100, 0x56, 0x57, 0x58, 0x59, 0x60, 0x64, 0, 255])

messages = st.builds(
    lambda payload, ptype, cid, extra: HepMessage(
        src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060, ts_sec=1700000000,
        ts_usec=0, proto_type=ptype, payload=payload,
        **({"correlation_id": cid} if cid is not None else {}),
        **({"extra_correlation": extra} if extra is not None else {})),
    payloads, PTYPES, st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.none(), opensips_json.map(lambda b: b.decode()), st.text(max_size=30)))


def sip_body(p: bytes) -> None:
    info = sip_info(p)
    assert info is None or isinstance(info, dict)
    call_id(p)
    sip_payload(p)
    text = printable(p.decode("utf-8", "replace"), 80)
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
    looks_like_sip(p)
    content_length(p)
    opensips_fields(p)


rules = Rules(headers=["X-CID", "X-Leg"])


def extract_body(msgs: list[HepMessage]) -> None:
    g = CorrelationGraph(rules)
    for i, m in enumerate(msgs):
        e = extract(m, rules)
        assert isinstance(e.kind, str)
        summary(m)
        to_record(m)
        g.add(m, i)
    for grp in g.groups():
        for values in grp.ids.values():
            for v in values[:2]:
                g.groups_with_id(v)
    for pos in range(len(g)):
        g.kind(pos), g.label(pos), g.time(pos)


@st.composite
def split_stream(draw):
    parts = draw(st.lists(st.one_of(sip_text, mutated_payload(), st.binary(max_size=40),
                                    st.sampled_from([b"\r\n\r\n", b"\r\n"])), max_size=6))
    data = b"".join(parts)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=10))))
    return data, cuts


def splitter_body(case) -> None:
    data, cuts = case
    sp = SipSplitter(max_header=4096, max_body=8192)
    prev = 0
    for c in [*cuts, len(data)]:
        for off, msg in sp.feed(data[prev:c]):
            assert data[off:off + len(msg)] == msg, (off, msg)
        prev = c
        assert sp.buffered <= 4096 + 8192 + (c - prev) + len(data)
    left = sp.close()
    assert 0 <= left <= len(data)


@st.composite
def v12_stream(draw):
    msgs = []
    for _ in range(draw(st.integers(1, 4))):
        version = draw(st.sampled_from([1, 2]))
        body = draw(sip_text).rstrip(b"\0")
        fields = {"version": version, "family": 2, "ip_proto": 17, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2",
                      "src_port": 5060, "dst_port": 5060, "proto_type": 1, "payload": body}
        if version == 2:
            fields.update(ts_sec=1, ts_usec=2, capture_id=3)
        msgs.append(HepMessage(**fields))
    data = b"".join(encode(m) for m in msgs)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=10))))
    junk = draw(st.one_of(st.just(b""), st.binary(max_size=20), st.just(struct.pack(">BB", 1, 16))))
    return data + junk, cuts


def v12_stream_body(case) -> None:
    data, cuts = case
    dec = StreamDecoder()
    prev = 0
    steps = 0
    for c in [*cuts, len(data)]:
        dec.feed(data[prev:c])
        prev = c
        while True:
            steps += 1
            assert steps < 10 * len(data) + 100
            try:
                r = dec.next_message()
            except HepDecodeError:
                continue
            if r is NEED_DATA:
                break
    assert 0 <= dec.close() <= len(data)


TARGETS = {
    "sip": (payloads, sip_body, []),
    "extract": (st.lists(messages, min_size=1, max_size=6), extract_body, []),
    "sipframe": (split_stream(), splitter_body, []),
    "stream-v12": (v12_stream(), v12_stream_body, []),
}


@pytest.mark.parametrize(("name", "budget"), fuzzutil.targets_params(TARGETS))
def test_fuzz(name, budget):
    strategy, body, examples = TARGETS[name]
    fuzzutil.run(name, strategy, body, budget=budget, examples=examples)


def test_seeds():
    assert len(real_payloads()) > 100
    extract_body(list(real_messages()))
