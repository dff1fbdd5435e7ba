"""``retried`` (requests librdkafka sent again) of a kafka:// forward everywhere the counts
are shown: the ``--stats`` line, the summary, the metrics, and through ``listen --workers``'
merge.  A retry is hard to provoke on the mock broker, so the non-zero value is set on the
sender; the end-to-end tests check the field is there (0) on a real run."""

from __future__ import annotations

import re
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import ListenProcess

from heptool.net.metrics import listen_families, render
from heptool.net.senders import TargetStatus
from heptool.net.stats import ServerStats, status_text
from heptool.pipeline.collector import Collector
from heptool.pipeline.merge import MergedCounts

RETRIED = "heptool_forward_retried_requests_total"


def _metrics(states: list[TargetStatus]) -> dict[tuple, float]:
    parser = pytest.importorskip("prometheus_client.parser")

    class Fw:
        def __init__(self, st: TargetStatus) -> None:
            self.st = st

        def status(self) -> TargetStatus:
            return self.st

    text = render(listen_families(ServerStats(), accepted=0, forwards=[Fw(s) for s in states]))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in parser.text_string_to_metric_families(text) for s in f.samples}


def test_status_text_has_retried_for_kafka_only():
    kafka = TargetStatus("kafka://b:9092/hep", True, 3, 10, 1, 0, 7)
    assert status_text(kafka) == ("up, queued 3, sent 10, undelivered 1, reconnects 0, "
                                  "retried 7")
    assert "retried" not in status_text(TargetStatus("udp://x:1", True, 0, 10, 0, 0))


def test_metrics_family_for_the_kafka_forwards():
    m = _metrics([TargetStatus("kafka://b:9092/hep", True, 0, 5, 0, 0, 0),
                  TargetStatus("kafka://b:9092/other", True, 0, 5, 0, 0, 4),
                  TargetStatus("tcp://x:1", True, 0, 5, 0, 0)])
    assert m[(RETRIED, (("target", "kafka://b:9092/hep"),))] == 0
    assert m[(RETRIED, (("target", "kafka://b:9092/other"),))] == 4
    assert not any(k[0] == RETRIED and k[1] == (("target", "tcp://x:1"),) for k in m)
    # no kafka forward: no such family (the HEP senders have no such count)
    assert not any(k[0] == RETRIED for k in _metrics([TargetStatus("tcp://x:1", True, 0, 5, 0, 0)]))


def test_workers_merge_sums_retried():
    import json

    def snap(retried: int | None) -> dict:
        s = Collector([]).snapshot()
        st = TargetStatus("kafka://b:9092/hep", True, 1, 10, 0, 0, retried)
        # what a worker's report carries through the pipe (JSON, see pipeline/workers.py)
        s["forwards"] = [(TargetStatus(*json.loads(json.dumps(list(st)))), None)]
        return s

    m = MergedCounts()
    m.update(0, snap(2))
    m.update(1, snap(3))
    assert m.forward_status()[0].retried == 5
    assert "  forward kafka://b:9092/hep: 20 sent, 0 undelivered, 0 reconnects, 5 retried" \
        in m.summary_lines()
    assert m.stats_line(time.monotonic()).endswith(
        "; forward kafka://b:9092/hep up, queued 2, sent 20, undelivered 0, reconnects 0, "
        "retried 5")


def test_kafka_sender_status_carries_its_retried(kafka_bootstrap):
    from heptool.net.kafka import KafkaSender
    from heptool.net.target import parse_target

    url = f"kafka://{kafka_bootstrap}/hep-retried"
    # no statistics callback: it would set retried back to the broker's count (0)
    s = KafkaSender(parse_target(url, kafka=True), config={"statistics.interval.ms": 0})
    try:
        assert s.status().retried == 0
        s.stats.retried = 7
        st = s.status()
        assert st.retried == 7 and status_text(st).endswith(", retried 7")
        m = _metrics([st])
        assert m[(RETRIED, (("target", url),))] == 7
    finally:
        s.close(1.0)


def _send_udp(url: str, n: int) -> None:
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    host, port = url.removeprefix("udp://").rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(n):
            s.sendto(encode(HepMessage(
                src_ip="192.0.2.1", src_port=5060, dst_ip="192.0.2.2", dst_port=5060,
                ts_sec=1_700_000_000 + i, ts_usec=0, proto_type=1, capture_id=1,
                payload=b"OPTIONS sip:b@x SIP/2.0\r\nCall-ID: r%d@t\r\n\r\n" % i)),
                (host, int(port)))
            time.sleep(0.001)


def _scrape(lp: ListenProcess, target: str, timeout: float = 15.0) -> dict[tuple, float]:
    parser = pytest.importorskip("prometheus_client.parser")
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        assert time.monotonic() < deadline, lp.stderr_lines
        url = next((ln.split()[-1] for ln in list(lp.stderr_lines)
                    if ln.startswith("metrics on ")), None)
        time.sleep(0.02)
    while True:
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        m = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in parser.text_string_to_metric_families(text) for s in f.samples}
        if m.get(("heptool_forward_sent_packets_total", (("target", target),)), 0) >= 20 \
                or time.monotonic() > deadline:
            return m
        time.sleep(0.1)


@pytest.mark.parametrize("workers", [1, 2])
def test_listen_shows_retried_of_a_kafka_forward(topic_url, workers):
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--forward", topic_url, "-q",
                       "--workers", str(workers), "--stats", "0.2",
                       "--metrics", "127.0.0.1:0") as lp:
        _send_udp(lp.url("udp"), 20)
        m = _scrape(lp, topic_url)
        deadline = time.monotonic() + 15
        while True:  # a stats line that shows all 20 sent
            stats = next((ln for ln in reversed(list(lp.stderr_lines))
                          if ln.startswith("stats: ") and ", sent 20, " in ln), "")
            if stats or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert lp.stop() == 0, lp.stderr_lines
    assert m[("heptool_forward_sent_packets_total", (("target", topic_url),))] == 20
    assert m[(RETRIED, (("target", topic_url),))] == 0
    # (a worker's producer says it is up with its first statistics, after a second)
    assert re.search(rf"; forward {re.escape(topic_url)} (up|DOWN), queued 0, sent 20, "
                     r"undelivered 0, reconnects 0, retried 0$", stats), lp.stderr_lines
    assert f"  forward {topic_url}: 20 sent, 0 undelivered, 0 reconnects, 0 retried" \
        in lp.stderr_lines, lp.stderr_lines


def test_retry_count_never_goes_down_when_librdkafka_starts_again():
    from heptool.net.kafka import RetryCount

    def brokers(a: int, b: int) -> dict:
        return {"b:9092/bootstrap": {"nodeid": -1, "txretries": 50},  # not a broker: left out
                "b:9092/1": {"nodeid": 1, "txretries": a},
                "c:9092/2": {"nodeid": 2, "txretries": b}}

    r = RetryCount()
    assert r.update(brokers(0, 0)) == 0
    assert r.update(brokers(3, 1)) == 4
    assert r.update(brokers(3, 1)) == 4  # the same report again adds nothing
    # broker 1 reconnected: its counter started again from 0 (librdkafka's per-broker
    # statistics do), then counted 2 more
    assert r.update(brokers(0, 1)) == 4
    assert r.update(brokers(2, 5)) == 10
    assert r.update({}) == 10
