"""Against a real Apache Kafka: runs when ``KAFKA_BOOTSTRAP=HOST:PORT`` is set, skipped otherwise.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 python -m pytest tests/kafka/test_kafka_real.py

The test creates a topic of 4 partitions (``heptool-test-<random>``, replication 1: any
single-broker test cluster will do) with the admin API, sends calls to it with ``heptool
send``, reads them back with ``heptool decode`` (no group, then a group) and deletes the
topic.  Client settings (security.protocol, sasl.*...) go in ``HEPTOOL_KAFKA_CONFIG``.
"""

from __future__ import annotations

import collections
import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafkahelpers import hep_packets, make_calls, run_heptool, topic_messages

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP")
pytestmark = pytest.mark.skipif(not BOOTSTRAP, reason="KAFKA_BOOTSTRAP is not set (a real "
                                                      "Kafka to test against)")


@pytest.fixture
def real_topic():
    from confluent_kafka.admin import AdminClient, NewTopic

    from heptool.net.kafka import env_config

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP, **env_config()})
    name = f"heptool-test-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=4, replication_factor=1)])[name].result(30)
    try:
        yield f"kafka://{BOOTSTRAP}/{name}"
    finally:
        admin.delete_topics([name])[name].result(30)


def test_real_kafka_round_trip(real_topic, tmp_path):
    packets = make_calls(tmp_path / "in.hep", calls=20)
    r = run_heptool("send", str(tmp_path / "in.hep"), "--to", real_topic, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    msgs = topic_messages(real_topic)
    assert sorted(v for *_, v in msgs) == sorted(packets)
    parts = collections.defaultdict(set)
    for part, _o, key, _h, _v in msgs:
        parts[key].add(part)
    assert all(len(p) == 1 for p in parts.values())
    for extra in ((), ("--group", f"g-{uuid.uuid4().hex[:8]}")):
        out = tmp_path / "out.hep"
        r = run_heptool("decode", real_topic, "--from-beginning", "--until-idle", "5", "-f",
                        "raw", "-o", str(out), *extra, timeout=180)
        assert r.returncode == 0, r.stderr.decode()
        assert sorted(hep_packets(out)) == sorted(packets)
