"""heptool.analysis.scenarios: deterministic, realistic, correlated scenarios.

The opensips scenario is checked against the real OpenSIPS 3.4.15 capture in
tests/vectors/opensips/: chunk orders per packet kind, payload shapes, and the correlation
groups that its truth.json's "how_groups_are_built" rule gives.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from heptool import decode, encode
from heptool.analysis.scenarios import SCENARIOS, call_scenario, opensips_scenario, scenario
from heptool.core.errors import HepValueError
from heptool.core.record import extra_correlation_pairs

ROOT = Path(__file__).resolve().parents[2]
TRUTH = ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.truth.json"
START = (1795683593, 375575)


def groups(msgs):
    """The truth.json rule: union-find over packets by equal 0x0011, plus every 0x0065
    key/value linking to the packets whose 0x0011 equals the value."""
    parent = list(range(len(msgs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_cid = defaultdict(list)
    for i, m in enumerate(msgs):
        if m.correlation_id is not None:
            by_cid[m.correlation_id].append(i)
    for members in by_cid.values():
        for j in members[1:]:
            parent[find(j)] = find(members[0])
    for i, m in enumerate(msgs):
        for _k, v in extra_correlation_pairs(m.extra_correlation) or []:
            for j in by_cid.get(v, []):
                parent[find(j)] = find(i)
    out = defaultdict(list)
    for i in range(len(msgs)):
        out[find(i)].append(i)
    return sorted(out.values())


def kinds(msgs):
    return [(m.proto_type, (m.payload or b"")[:40]) for m in msgs]


@pytest.mark.parametrize(
    "name, opts", [("call", {}), ("opensips", {"mode": "json"}), ("opensips", {"mode": "homer5"})]
)
def test_deterministic_and_encodable(name, opts):
    a = scenario(name, seed=3, start=START, **opts)
    b = scenario(name, seed=3, start=START, **opts)
    c = scenario(name, seed=4, start=START, **opts)
    assert [encode(m) for m in a] == [encode(m) for m in b]
    assert [encode(m) for m in a] != [encode(m) for m in c]
    times = [(m.ts_sec, m.ts_usec) for m in a]
    assert times == sorted(times) and times[0] >= START
    for m in a:
        d = decode(encode(m), strict=True)
        assert not d.warnings and d == m


def test_unknown_scenario_and_mode():
    with pytest.raises(HepValueError, match="unknown scenario"):
        scenario("nope")
    with pytest.raises(HepValueError, match="opensips mode"):
        opensips_scenario(mode="homer7")
    assert set(SCENARIOS) == {"call", "opensips"}


def test_call_scenario():
    msgs = call_scenario(seed=1, start=START)
    sip = [m for m in msgs if m.proto_type == 1]
    first_lines = [m.payload.split(b"\r\n", 1)[0].decode() for m in sip]
    assert [re.sub(r" sip:\S+", "", f) for f in first_lines] == [
        "INVITE SIP/2.0",
        "SIP/2.0 100 Trying",
        "SIP/2.0 180 Ringing",
        "SIP/2.0 200 OK",
        "ACK SIP/2.0",
        "BYE SIP/2.0",
        "SIP/2.0 200 OK",
    ]
    call_ids = {re.search(rb"Call-ID: (\S+)", m.payload).group(1).decode() for m in sip}
    assert len(call_ids) == 1
    call_id = call_ids.pop()
    assert b"application/sdp" in sip[0].payload and b"m=audio" in sip[3].payload
    for m in sip:  # SIP carries no 0x0011 (heplify/captagent convention)
        assert m.correlation_id is None
        body = m.payload.split(b"\r\n\r\n", 1)[1]
        assert f"Content-Length: {len(body)}\r\n".encode() in m.payload
    rtcp = [m for m in msgs if m.proto_type == 5]
    logs = [m for m in msgs if m.proto_type == 100]
    assert len(rtcp) >= 4 and len(logs) >= 2
    for m in rtcp + logs:
        assert m.correlation_id == call_id
    for m in rtcp:
        report = json.loads(m.payload)
        assert report["type"] == 200 and report["report_blocks"][0]["source_ssrc"]
        assert m.src_port % 2 == 1 and m.dst_port % 2 == 1  # RTCP = RTP port + 1
    # RTCP flows between the SDP's media ports
    ports = {int(p) for p in re.findall(rb"m=audio (\d+)", sip[0].payload + sip[3].payload)}
    assert {m.src_port - 1 for m in rtcp} == ports
    assert len(msgs) == len(sip) + len(rtcp) + len(logs)


def _truth():
    return json.loads(TRUTH.read_text())["capture"]["packets"]


def _kind(m):
    """The truth.json 'kind' of a message (net/rest/mi split as there)."""
    p = m.proto_type
    if p == 1:
        return "sip"
    if p == 100:
        return "xlog"
    if p == 0x59:
        return "net_tcp"
    text = m.payload.decode()
    if p == 0x58:
        return "rest_reply" if "HTTP/1.1 2" in text.split("\n")[0] + text[:40] else "rest_request"
    if p == 0x57:
        return (
            "mi_reply"
            if '"reply"' in text or not text.startswith(('{\n\t"command', "uptime"))
            else "mi_request"
        )
    raise AssertionError(p)


def test_opensips_json_matches_the_real_capture():
    msgs = opensips_scenario(seed=5, start=START, mode="json")
    truth = _truth()
    orders = defaultdict(set)
    for p in truth:
        orders[(p["kind"], p["external"] is not None)].add(tuple(t for _v, t in p["chunks"]))
    seen = set()
    for m in msgs:
        kind = _kind(m)
        seen.add(kind)
        ids = decode(encode(m)).chunk_ids()
        assert all(v == 0 for v, _ in ids)  # every chunk vendor 0, 0x0065 included
        key = (kind, m.extra_correlation is not None)
        assert tuple(t for _, t in ids) in orders[key], (kind, ids)
        assert m.ip_proto in (6, 17)
        if kind != "sip":
            assert m.ip_proto == 6
    assert seen == {
        "sip",
        "xlog",
        "net_tcp",
        "rest_request",
        "rest_reply",
        "mi_request",
        "mi_reply",
    }
    # payload shapes: cJSON formatted objects with the keys the real ones have
    real_keys = defaultdict(set)
    for p in truth:
        if p["payload_json_keys"] is not None:
            real_keys[p["kind"]].add(tuple(sorted(p["payload_json_keys"])))
    for m in msgs:
        text = m.payload.decode()
        assert re.fullmatch(r'\{\n(\t"[^"]+":\t"(?:[^"\\]|\\.)*"(,\n)?)+\n\}', text), text
        assert tuple(sorted(json.loads(text))) in real_keys[_kind(m)]
        assert m.src_ip != "127.0.0.1"  # documentation addresses, not loopback, except:
    loop = [m for m in msgs if m.src_ip == "127.0.0.2"]
    assert {(_kind(m), m.src_port, m.dst_ip, m.dst_port) for m in loop} == {
        ("net_tcp", 0, "127.0.0.2", 0),
        ("mi_request", 0, "127.0.0.2", 0),
        ("mi_reply", 0, "127.0.0.2", 0),
    }
    events = [json.loads(m.payload)["Event"] for m in msgs if m.proto_type == 0x59]
    assert events == ["ACCEPTED", "CLOSED"]
    xlog = [m for m in msgs if m.proto_type == 100]
    assert all((m.src_ip, m.src_port) == (m.dst_ip, m.dst_port) for m in xlog)


def test_opensips_json_correlation():
    msgs = opensips_scenario(seed=5, start=START, mode="json")
    sip = [m for m in msgs if m.proto_type == 1]
    call_id = sip[0].correlation_id
    conn = next(m for m in msgs if m.proto_type == 0x59).correlation_id
    assert conn.isdigit() and int(conn) < 2**64
    for m in sip:
        pairs = extra_correlation_pairs(m.extra_correlation)
        assert m.correlation_id == call_id
        # {"net": conn} on the TCP leg, and on the relayed ACK (OpenSIPS oddity)
        if m.ip_proto == 6 or m.payload.startswith(b'{\n\t"payload":\t"ACK'):
            assert pairs == [["net", conn]]
        else:
            assert pairs is None
    rest = [m for m in msgs if m.proto_type == 0x58]
    assert len(rest) == 2 and rest[0].correlation_id == rest[1].correlation_id
    assert rest[0].correlation_id.startswith("RESTCORR")
    assert (rest[0].src_port, rest[0].dst_port) == (rest[1].dst_port, rest[1].src_port)
    assert rest[0].dst_port == 0x901F  # 8080 byte-swapped, as OpenSIPS writes REST ports
    for m in rest + [m for m in msgs if m.proto_type == 100]:
        assert extra_correlation_pairs(m.extra_correlation) == [["sip", call_id]]
    mi = [m for m in msgs if m.proto_type == 0x57]
    assert len(mi) == 2 and mi[0].correlation_id == mi[1].correlation_id
    assert mi[0].correlation_id.startswith("MICORR") and mi[0].extra_correlation is None
    # the truth.json rule: one group for the call and its connection, one for the MI pair
    g = groups(msgs)
    assert [[msgs[i].proto_type for i in grp] for grp in g if len(grp) == 2] == [[0x57, 0x57]]
    assert len(g) == 2 and len(g[0]) == len(msgs) - 2


def test_opensips_homer5():
    j = opensips_scenario(seed=5, start=START, mode="json")
    h = opensips_scenario(seed=5, start=START, mode="homer5")
    assert len(j) == len(h)
    call_id = j[1].correlation_id
    for a, b in zip(j, h):
        assert (
            a.ts_sec,
            a.ts_usec,
            a.src_ip,
            a.src_port,
            a.dst_ip,
            a.dst_port,
            a.proto_type,
            a.ip_proto,
        ) == (
            b.ts_sec,
            b.ts_usec,
            b.src_ip,
            b.src_port,
            b.dst_ip,
            b.dst_port,
            b.proto_type,
            b.ip_proto,
        )
        assert b.extra_correlation is None
        assert [t for _, t in decode(encode(b)).chunk_ids()] == [
            1,
            2,
            7,
            8,
            9,
            10,
            11,
            12,
            3,
            4,
            0x0F,
            0x11,
        ]
        if a.proto_type == 1:  # raw SIP instead of {"payload": ...}
            assert json.loads(a.payload)["payload"].encode() == b.payload
        elif a.proto_type == 0x58:  # the sip extra correlation overwrote RESTCORR
            assert b.correlation_id == call_id
        else:
            assert b.correlation_id == a.correlation_id
            values = [v for _, v in json.loads(a.payload, object_pairs_hook=list)]
            assert b.payload.decode() == (
                values[0] if a.proto_type == 0x57 and len(values) == 1 else ":".join(values)
            )
    texts = {m.payload.decode() for m in h if m.proto_type != 1}
    assert "TCP:ACCEPTED:SUCCESS:Connection accepted..." in texts
    assert "uptime:fifo" in texts
    assert any(t.startswith("INFO:INVITE from") for t in texts)
    assert any(t.startswith("HTTP/1.1 200 OK:{") for t in texts)
    # net link dropped: the connection events form their own group
    g = groups(h)
    assert sorted(len(x) for x in g) == [2, 2, len(h) - 4]
    assert sorted([h[i].proto_type for i in x] for x in g if len(x) == 2) == [
        [0x57, 0x57],
        [0x59, 0x59],
    ]
