"""Fixtures of the Kafka tests: a Kafka-protocol broker on 127.0.0.1 in a process of its own.

The broker is librdkafka's mock cluster (``kafka_mock_broker.py``), started once per test
session and stopped by its pid at the end.  Without confluent-kafka (the ``heptool[kafka]``
extra, also in the ``test`` extra) the tests that need it are skipped, except under CI
(``CI=true``), where they fail: CI installs the test extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _client() -> object:
    try:
        import confluent_kafka
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("confluent-kafka (pip install heptool[kafka]) is not installed")
    return confluent_kafka


@pytest.fixture(scope="session")
def kafka_bootstrap() -> object:
    """``HOST:PORT`` of the mock broker (one process for the whole session).

    The heptool processes of the tests get ``session.timeout.ms=6000``: the mock cluster
    makes a member joining a group that another member has just left wait that long."""
    _client()
    before = os.environ.get("HEPTOOL_KAFKA_CONFIG")
    os.environ["HEPTOOL_KAFKA_CONFIG"] = "session.timeout.ms=6000"
    proc = subprocess.Popen([sys.executable, str(HERE / "kafka_mock_broker.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip() if proc.stdout is not None else ""
        assert line and ":" in line, "the mock Kafka broker did not start"
        yield line
    finally:
        if before is None:
            os.environ.pop("HEPTOOL_KAFKA_CONFIG", None)
        else:
            os.environ["HEPTOOL_KAFKA_CONFIG"] = before
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def topic_url(kafka_bootstrap: str) -> str:
    """A fresh topic (4 partitions) on the mock broker: ``kafka://HOST:PORT/TOPIC``."""
    return f"kafka://{kafka_bootstrap}/hep-{uuid.uuid4().hex[:12]}"
