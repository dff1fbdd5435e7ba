"""A Kafka-protocol broker for the tests: librdkafka's mock cluster, in this process.

librdkafka (inside confluent-kafka) starts a mock cluster of real TCP brokers on 127.0.0.1
when a client is created with ``test.mock.num.brokers``; this script creates one, prints
the bootstrap address (``HOST:PORT``) on a line of its own and keeps the cluster up until
its standard input is closed (so it never outlives the test run that started it).  Topics
are created on first use with 4 partitions (the mock cluster's default).

    python tests/kafka/kafka_mock_broker.py        # prints e.g. 127.0.0.1:40123
"""

from __future__ import annotations

import sys


def main() -> int:
    import confluent_kafka

    # the client that owns the mock cluster; its own bootstrap setting is replaced by the
    # cluster's address, which the cluster's metadata tells
    owner = confluent_kafka.Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "mock:1",
                                      "log_level": 3})
    md = owner.list_topics(timeout=30)
    broker = next(iter(md.brokers.values()))
    print(f"{broker.host}:{broker.port}", flush=True)
    sys.stdin.read()  # until the test run closes the pipe (or exits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
