"""``heptool listen --metrics`` and ``--dedup`` as processes on loopback: real packets in,
the endpoint scraped with urllib and parsed with prometheus_client's parser.  Every wait is
bounded; every process is stopped by its pid."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import VECTORS, ListenProcess, hep_packets, run_heptool

from heptool.core.codec import encode
from heptool.core.message import HepMessage

parser = pytest.importorskip("prometheus_client.parser")

SIP = (b"OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nCall-ID: m%d@test\r\nCSeq: 1 OPTIONS\r\n"
       b"Content-Length: 0\r\n\r\n")


def packet(i: int, capture_id: int, proto_type: int = 1, **kw) -> bytes:
    return encode(HepMessage(src_ip="192.0.2.1", src_port=5060, dst_ip="192.0.2.2",
                             dst_port=5060, ts_sec=1_700_000_000 + i, ts_usec=0,
                             proto_type=proto_type, capture_id=capture_id, payload=SIP % i,
                             **kw))


def metrics_url(lp: ListenProcess, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lp.stderr_lines):
            if line.startswith("metrics on "):
                return line.split()[-1]
        time.sleep(0.02)
    raise AssertionError(f"no metrics line: {lp.stderr_lines}")


def scrape(url: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value}."""
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in parser.text_string_to_metric_families(text) for s in f.samples}


def get(m: dict, name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0)


def scrape_until(url: str, cond, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(url)
        if cond(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def test_metrics_count_transports_capture_ids_drops_and_forwards(tmp_path):
    udp_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_sink.bind(("127.0.0.1", 0))
    udp_sink.settimeout(0.5)
    fw_udp = f"udp://127.0.0.1:{udp_sink.getsockname()[1]}"
    # 105 capture ids over UDP (100 get their own series, 5 go under "other"), RTCP over TCP
    over_udp = [packet(i, 1000 + i) for i in range(105)]
    over_tcp = [packet(200 + i, 1000, proto_type=5) for i in range(10)]  # a known id
    n = len(over_udp) + len(over_tcp)
    try:
        with ListenProcess("--bind", "tcp://127.0.0.1:0", "-q", "--write-hep",
                           str(tmp_path / "fwd.pcap"), "--count", str(n)) as sink, \
             ListenProcess("--bind", "udp://127.0.0.1:0", "--bind", "tcp://127.0.0.1:0", "-q",
                           "--metrics", "127.0.0.1:0", "--forward", sink.url("tcp"),
                           "--forward", fw_udp,
                           expect=2) as lp:
            url = metrics_url(lp)
            host, port = lp.url("udp").rsplit("/", 1)[1].rsplit(":", 1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for p in over_udp:
                    s.sendto(p, (host, int(port)))
                    time.sleep(0.0005)
                s.sendto(b"not hep at all", (host, int(port)))
            t_host, t_port = lp.url("tcp").rsplit("/", 1)[1].rsplit(":", 1)
            with socket.create_connection((t_host, int(t_port)), timeout=10) as c:
                c.sendall(b"".join(over_tcp))
            fw_tcp = sink.url("tcp")
            m = scrape_until(url, lambda m: get(
                m, "heptool_forward_sent_packets_total", target=fw_tcp) >= n)
            got_udp = 0
            while True:
                try:
                    udp_sink.recv(65536)
                except TimeoutError:
                    break
                got_udp += 1
            assert lp.stop() == 0
            assert sink.wait() == 0
    finally:
        udp_sink.close()
    assert get(m, "heptool_received_packets_total", transport="udp") == 106
    assert get(m, "heptool_received_bytes_total", transport="udp") == sum(
        map(len, over_udp)) + len(b"not hep at all")
    assert get(m, "heptool_received_packets_total", transport="tcp") == 10
    assert get(m, "heptool_received_bytes_total", transport="tcp") == sum(map(len, over_tcp))
    assert get(m, "heptool_accepted_packets_total") == n
    assert get(m, "heptool_dropped_total", reason="not HEP") == 1
    for i in range(100):
        assert get(m, "heptool_hep_packets_total", capture_id=str(1000 + i), proto="sip") == 1
    assert get(m, "heptool_hep_packets_total", capture_id="other", proto="sip") == 5
    assert get(m, "heptool_hep_bytes_total", capture_id="other", proto="sip") == sum(
        map(len, over_udp[100:]))
    assert get(m, "heptool_hep_packets_total", capture_id="1000", proto="rtcp") == 10
    assert get(m, "heptool_connections_total") == 1
    for t in (fw_tcp, fw_udp):
        assert get(m, "heptool_forward_connected", target=t) == 1
        assert get(m, "heptool_forward_sent_packets_total", target=t) == n
        assert get(m, "heptool_forward_undelivered_packets_total", target=t) == 0
        assert get(m, "heptool_forward_queued_packets", target=t) == 0
    assert got_udp == n
    assert hep_packets(tmp_path / "fwd.pcap") == over_udp + over_tcp
    assert abs(get(m, "process_start_time_seconds") - time.time()) < 120


def test_dedup_drops_identical_packets_and_counts_them(tmp_path):
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    expected = hep_packets(source)
    n = len(expected)
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--dedup", "30",
                       "--metrics", "127.0.0.1:0") as lp:
        url = metrics_url(lp)
        for _ in range(3):
            r = run_heptool("send", str(source), "--to", lp.url("udp"))
            assert r.returncode == 0, r.stderr
        # the same packets from another agent: other capture id, node and timestamps
        r = run_heptool("send", str(source), "--to", lp.url("udp"), "--capture-id", "4242",
                        "--restamp", "now")
        assert r.returncode == 0, r.stderr
        m = scrape_until(url, lambda m: get(
            m, "heptool_received_packets_total", transport="udp") >= 4 * n)
        records = lp.read_records(n, timeout=10)
        assert lp.stop() == 0
    assert get(m, "heptool_dropped_total", reason="duplicate") == 3 * n
    assert get(m, "heptool_accepted_packets_total") == n
    assert [json.loads(r)["sip"]["call_id"] for r in records] == [
        json.loads(r)["sip"]["call_id"] for r in run_heptool(
            "decode", str(source), "-f", "jsonl").stdout.splitlines()]
    assert lp.stdout_lines.get(timeout=5) is None  # nothing more was printed
    summary = next(x for x in lp.stderr_lines if x.startswith("listen: "))
    assert f"{4 * n} packets received" in summary and f"{n} accepted" in summary
    assert f"duplicate {3 * n}" in summary


def test_without_dedup_every_copy_is_kept():
    source = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    n = len(hep_packets(source))
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "--count", str(2 * n)) as lp:
        for _ in range(2):
            assert run_heptool("send", str(source), "--to", lp.url("udp")).returncode == 0
        assert lp.wait() == 0
    assert any(f"{2 * n} accepted; drops: none" in x for x in lp.stderr_lines)


def test_metrics_port_in_use_is_exit_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_heptool("listen", "--bind", "udp://127.0.0.1:0", "--metrics",
                        f"127.0.0.1:{port}", timeout=30)
    assert r.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in r.stderr.decode()


def test_metrics_and_dedup_usage_errors():
    r = run_heptool("listen", "--metrics", "localhost:9096")
    assert r.returncode == 2 and "--metrics" in r.stderr.decode()
    r = run_heptool("listen", "--dedup", "0")
    assert r.returncode == 2 and "--dedup" in r.stderr.decode()


def test_metrics_show_a_forward_that_went_down():
    first = [packet(i, 9) for i in range(5)]
    later = [packet(100 + i, 9) for i in range(5)]
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "-q", "--count", str(len(first))) as sink:
        target = sink.url("tcp")
        with ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "--metrics", "127.0.0.1:0",
                           "--forward", target) as lp:
            url = metrics_url(lp)
            host, port = lp.url("udp").rsplit("/", 1)[1].rsplit(":", 1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for p in first:
                    s.sendto(p, (host, int(port)))
                m = scrape_until(url, lambda m: get(
                    m, "heptool_forward_sent_packets_total", target=target) >= len(first))
                assert get(m, "heptool_forward_connected", target=target) == 1
                assert sink.wait() == 0  # the sink got its 5 and is gone
                for p in later:  # written into a dead connection, then queued for a retry
                    s.sendto(p, (host, int(port)))
                    time.sleep(0.05)
                m = scrape_until(url, lambda m: get(
                    m, "heptool_forward_connected", target=target) == 0 and get(
                    m, "heptool_forward_queued_packets", target=target) > 0)
            assert lp.stop() == 0
    assert get(m, "heptool_forward_connected", target=target) == 0
    assert get(m, "heptool_forward_queued_packets", target=target) > 0
    assert get(m, "heptool_accepted_packets_total") == len(first) + len(later)
