"""heptool.pipeline.dedup: identical packets within a window, bounded memory (pure logic)."""

from __future__ import annotations

import pytest

from heptool.core.message import HepMessage
from heptool.pipeline.dedup import Dedup


def msg(payload: bytes = b"INVITE sip:b@x SIP/2.0\r\n\r\n", **kw) -> HepMessage:
    f = {"src_ip": "192.0.2.1", "src_port": 5060, "dst_ip": "192.0.2.2", "dst_port": 5060,
         "ts_sec": 1_700_000_000, "ts_usec": 0, "proto_type": 1, "capture_id": 1,
         "payload": payload}
    f.update(kw)
    return HepMessage(**f)


def test_same_packet_within_the_window_is_a_duplicate():
    d = Dedup(2.0)
    k = d.key(msg())
    assert not d.duplicate(k, 100.0)
    assert d.duplicate(k, 101.0)
    assert d.duplicate(k, 101.99)
    assert d.duplicates == 2
    # the window counts from the first copy: 2 s after it the packet is new again
    assert not d.duplicate(k, 102.0)
    assert d.duplicate(k, 103.5)


def test_envelope_differences_do_not_matter_but_the_packet_does():
    d = Dedup(1.0)
    base = d.key(msg())
    # another agent, another timestamp: the same packet
    assert d.key(msg(capture_id=2, ts_sec=1_700_000_001, ts_usec=5, node_name="b")) == base
    for other in (msg(payload=b"BYE sip:b@x SIP/2.0\r\n\r\n"), msg(src_port=5061),
                  msg(dst_ip="192.0.2.3"), msg(src_ip="192.0.2.9"), msg(dst_port=1),
                  msg(proto_type=5), msg(ip_proto=6)):
        assert d.key(other) != base


def test_memory_is_bounded_oldest_forgotten_first():
    d = Dedup(60.0, max_entries=100)
    for i in range(1000):
        assert not d.duplicate(i, 1.0 + i * 0.001)
    assert len(d) == 100
    assert d.evicted == 900
    assert d.duplicate(999, 2.0)  # the newest are remembered
    assert not d.duplicate(0, 2.0)  # the oldest were forgotten early


def test_expired_entries_are_swept():
    d = Dedup(0.5)
    for i in range(50):
        d.duplicate(i, 10.0)
    assert len(d) == 50
    d.duplicate(1000, 10.6)  # a sweep: everything from 10.0 is out of the window
    assert len(d) == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="more than 0"):
        Dedup(0)
    with pytest.raises(ValueError, match="at least 1"):
        Dedup(1, max_entries=0)
