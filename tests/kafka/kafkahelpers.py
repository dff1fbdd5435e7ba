"""Helpers of the Kafka tests: read a whole topic with the client itself, make test input."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import hep_packets, run_heptool

__all__ = ["create_topic", "hep_packets", "make_calls", "run_heptool", "topic_messages"]


def create_topic(url: str) -> None:
    """Make the (empty) topic of ``url`` exist: a producer's metadata request creates it on
    the mock broker, with 4 partitions."""
    import confluent_kafka as ck

    from heptool.net.target import parse_target

    t = parse_target(url, kafka=True)
    md = ck.Producer({"bootstrap.servers": t.bootstrap}).list_topics(t.topic, timeout=10)
    assert md.topics[t.topic].error is None and len(md.topics[t.topic].partitions) == 4


def topic_messages(url: str, timeout: float = 30.0) -> list[tuple[int, int, Any, Any, bytes]]:
    """Every message of a topic as (partition, offset, key, headers, value), read with
    confluent-kafka directly (no group, from the start to the end of each partition)."""
    import time

    import confluent_kafka as ck

    from heptool.net.target import parse_target

    t = parse_target(url, kafka=True)
    c = ck.Consumer({"bootstrap.servers": t.bootstrap, "group.id": "test-reader",
                     "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        md = c.list_topics(t.topic, timeout=10)
        parts = sorted(md.topics[t.topic].partitions)
        c.assign([ck.TopicPartition(t.topic, p, ck.OFFSET_BEGINNING) for p in parts])
        at_end: set[int] = set()
        out = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(parts):
            assert time.monotonic() < deadline, "the topic was not read to its end in time"
            for m in c.consume(500, 0.2):
                err = m.error()
                if err is not None:
                    if err.name() == "_PARTITION_EOF":
                        at_end.add(m.partition())
                        continue
                    raise AssertionError(err.str())
                at_end.discard(m.partition())
                out.append((m.partition(), m.offset(), m.key(), m.headers(), m.value()))
        return out
    finally:
        c.close()


def make_calls(path: Path, calls: int = 20) -> list[bytes]:
    """A HEP stream of ``calls`` calls of the 'call' scenario and one 'opensips' call (JSON
    mode: xlog and REST name the call in chunk 0x0065); its packets."""
    a, b = path.with_suffix(".a"), path.with_suffix(".b")
    r = run_heptool("encode", "--scenario", "call", "--count", str(calls), "--time",
                    "2026-11-26T09:00:00Z", "-o", str(a))
    assert r.returncode == 0, r.stderr
    r = run_heptool("encode", "--scenario", "opensips", "--time", "2026-11-26T09:00:00Z",
                    "-o", str(b))
    assert r.returncode == 0, r.stderr
    path.write_bytes(a.read_bytes() + b.read_bytes())
    return hep_packets(path)
