"""``heptool listen`` UDP -> Kafka: what a collector forwarding to a topic keeps up with.

    python bench/bench_kafka.py                       # 100,000 packets/s offered for 5 s
    python bench/bench_kafka.py --rates 50000,100000,150000 --duration 10

The broker is librdkafka's mock cluster (a real Kafka-protocol broker on 127.0.0.1, in a
process of its own, the one the tests use; topics of 4 partitions).  A separate sender
process offers ~700-byte HEP3 SIP packets (64 calls) over UDP at a fixed rate to ``heptool
listen --forward kafka://.../TOPIC -q``; after the offer listen is stopped (SIGINT: its
forward flushes) and the figures are:

* offered: packets the sender sent (and the rate it managed);
* received: listen's own count;
* produced: messages appended to the (fresh) topic: the sum of its partitions' end offsets
  (the mock broker keeps only a few MB per partition, dropping its oldest segments beyond:
  what it still holds is printed too);
* lost: offered - produced; and listen's forward line (sent, undelivered, retried);
* how much listen read while the offer lasted, and how long it took to read the rest from
  its receive buffer (listen asks for a 256 MiB buffer: a burst is absorbed, not lost).

The producer's settings (heptool.net.kafka.PRODUCER_SETTINGS: linger, batch size,
compression...) are printed with the figures.  Loopback only; every process is stopped by
its pid.  On a 2-core machine the mock broker, listen (its Python thread and librdkafka's
threads) and the sender share the cores: the figures are a floor for a real deployment.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from bench_listen import Listen, run_sender

_FORWARD = re.compile(r"forward (kafka://\S+): (\d+) sent, (\d+) undelivered(?:, (\d+) retried)?")


def start_broker() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "kafka" / "kafka_mock_broker.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if ":" not in line:
        proc.kill()
        raise RuntimeError("the mock Kafka broker did not start")
    return proc, line


def topic_size(bootstrap: str, topic: str) -> tuple[int, int]:
    """(messages appended to the fresh topic: the sum of its partitions' high watermarks,
    the messages it still holds: high - low; the mock broker keeps a few MB per partition
    and drops its oldest segments beyond)."""
    import confluent_kafka as ck

    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-count"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        appended = held = 0
        for p in parts:
            lo, hi = c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
            appended += hi
            held += hi - lo
        return appended, held
    finally:
        c.close()


def bench(bootstrap: str, rate: int, duration: float) -> None:
    topic = f"bench-{rate}-{uuid.uuid4().hex[:8]}"
    url = f"kafka://{bootstrap}/{topic}"
    lp = Listen("--bind", "udp://127.0.0.1:0", "--forward", url, "-q", "--stats", "0.25")
    try:
        time.sleep(0.5)
        sent, elapsed = run_sender("udp", lp.port, rate, duration)
        at_end = lp.total()
        # let listen read what waits in its receive buffer (its count stops moving)
        last, still, t_end = -1, 0.0, time.monotonic()
        while time.monotonic() - t_end < 60:
            time.sleep(0.25)
            cur = lp.total()
            if cur >= sent:
                break
            still = still + 0.25 if cur == last else 0.0
            if still >= 1.0:
                break
            last = cur
        t_stop = time.monotonic()
        drained = t_stop - t_end
    finally:
        got, kd = lp.stop()
    flush = time.monotonic() - t_stop
    produced, held = topic_size(bootstrap, topic)
    fw = next((m for line in lp.err for m in [_FORWARD.search(line)] if m
               and line.startswith("  forward")), None)
    fsent, fund, fretried = (int(fw.group(2)), int(fw.group(3)), int(fw.group(4) or 0)) \
        if fw else (-1, -1, -1)
    offered = sent / elapsed
    lost = sent - produced
    print(f"UDP -> Kafka asked {rate:>8,}/s offered {offered:>9,.0f}/s for {elapsed:.1f} s: "
          f"offered {sent:,} received {got:,} produced {produced:,} lost {lost:,} "
          f"({100 * lost / max(sent, 1):.2f}%) (the mock broker still holds {held:,}); forward: {fsent:,} sent, {fund:,} undelivered, "
          f"{fretried:,} retried; kernel drops {kd}; read {at_end:,} during the offer "
          f"({at_end / elapsed:,.0f}/s), the rest from the receive buffer in {drained:.1f} s; "
          f"stop + flush {flush:.1f} s"
          + lp.cpu_text(got), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="100000", help="comma-separated packets/s to offer")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per rate")
    a = ap.parse_args()
    from heptool.net.kafka import PRODUCER_SETTINGS

    shown = {k: v for k, v in PRODUCER_SETTINGS.items() if k != "statistics.interval.ms"}
    print("producer settings: " + ", ".join(f"{k}={v}" for k, v in shown.items())
          + ", queue.buffering.max.messages=100000 (listen --forward: never blocks; a full "
          "queue is counted undelivered)", flush=True)
    proc, bootstrap = start_broker()
    try:
        for rate in [int(r) for r in a.rates.split(",")]:
            bench(bootstrap, rate, a.duration)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


if __name__ == "__main__":
    main()
