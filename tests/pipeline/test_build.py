"""heptool.pipeline.build: the defaults, overrides and rewrites encode and send share."""

from __future__ import annotations

import pytest

from heptool.core.codec import decode, encode
from heptool.core.message import HepMessage
from heptool.pipeline.build import (
    Rewrites,
    apply_overrides,
    loopback_like,
    now,
    record_defaults,
    scenario_messages,
)


def _msg(**kw) -> HepMessage:
    base = {"version": 3, "ip_proto": 17, "src_ip": "10.0.0.1", "src_port": 5060,
            "dst_ip": "10.0.0.2", "dst_port": 5080, "ts_sec": 1_700_000_000,
            "ts_usec": 500_000, "proto_type": 1, "capture_id": 1, "payload": b"x"}
    return HepMessage(**{**base, **kw})


def test_now_and_loopback():
    sec, usec = now()
    assert sec > 1_700_000_000 and 0 <= usec < 1_000_000
    assert loopback_like("2001:db8::1") == "::1" and loopback_like("10.1.1.1") == "127.0.0.1"


def test_record_defaults_fill_only_missing_keys():
    rec = record_defaults({"payload": "hi", "dst_ip": "::2", "node_name": None}, (5, 6))
    assert rec["src_ip"] == "::1" and rec["ts_sec"] == 5 and rec["ts_usec"] == 6
    assert rec["node_name"] is None and rec["proto_type"] == 1 and rec["capture_id"] == 1
    decoded = {"chunks": [], "payload": "x"}  # a record decode wrote: as it is
    assert record_defaults(decoded, (1, 2)) is decoded
    assert record_defaults({"version": 1}, (1, 2)) == {"version": 1}


def test_apply_overrides():
    m = apply_overrides(_msg(), src=("::1", 7), dst=("::2", 8), capture_id=9,
                        correlation_id="abc", time=(1, 2), compression="gzip")
    assert (m.src_ip, m.src_port, m.family, m.dst_ip) == ("::1", 7, 10, "::2")
    assert (m.capture_id, m.correlation_id, m.ts_sec, m.ts_usec) == (9, "abc", 1, 2)
    v2 = apply_overrides(_msg(), version=2)
    assert v2.version == 2 and encode(v2) == encode(_msg(), 2)


def test_rewrites_and_restamp():
    assert not Rewrites().any and Rewrites(restamp="now").any
    assert not Rewrites(restamp="now").fields and Rewrites(node_name="n").fields
    with pytest.raises(ValueError):
        Rewrites(restamp="later")
    rw = Rewrites(capture_id=7, auth_key="k", restamp="shift")
    a, b = _msg(), _msg(ts_sec=1_700_000_003, ts_usec=0)
    rw.apply(a)
    rw.apply(b)
    assert (a.capture_id, a.auth_key) == (7, "k")
    assert abs(a.ts_sec - now()[0]) <= 2
    assert (b.ts_sec * 1_000_000 + b.ts_usec) - (a.ts_sec * 1_000_000 + a.ts_usec) == 2_500_000
    rw.restart()
    c = _msg(ts_sec=1_600_000_000)
    rw.apply(c)
    # a new capture (the next --loop pass) starts now, or after the last time given when
    # that is later (here: b, 2.5 s ahead of now): times never go back
    t = lambda m: m.ts_sec * 1_000_000 + m.ts_usec
    assert t(c) == t(b) + 1
    d = _msg(ts_sec=1_600_000_001)
    rw.apply(d)
    assert t(d) == t(c) + 1_000_000


def test_restamp_shift_divides_the_gaps_by_the_speed():
    rw = Rewrites(restamp="shift", speed=4)
    a, b = _msg(ts_sec=1_700_000_000, ts_usec=0), _msg(ts_sec=1_700_000_002, ts_usec=0)
    rw.apply(a)
    rw.apply(b)
    assert (b.ts_sec * 1_000_000 + b.ts_usec) - (a.ts_sec * 1_000_000 + a.ts_usec) == 500_000
    with pytest.raises(ValueError):
        Rewrites(speed=0)


def test_scenario_runs_follow_each_other():
    one = list(scenario_messages("call", seed=3, start=(1_700_000_000, 0)))
    two = list(scenario_messages("call", seed=3, start=(1_700_000_000, 0), count=2))
    assert [encode(m) for m in two[: len(one)]] == [encode(m) for m in one]
    assert two[len(one)].time >= one[-1].time + 1
    assert decode(encode(two[-1])).proto_type in (1, 5, 100)
