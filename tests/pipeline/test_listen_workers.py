"""``heptool listen --workers N`` (issue 15 #2): N processes on the same ports
(SO_REUSEPORT), one supervisor that merges the counts and writes one summary. Real processes
on loopback, ephemeral ports, every wait bounded, every process stopped by its pid."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import ListenProcess, hep_packets, run_heptool

from heptool.core.codec import encode
from heptool.core.message import HepMessage
from heptool.pipeline.merge import MergedCounts
from heptool.pipeline.workers import worker_path

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="--workers needs Linux (SO_REUSEPORT balancing)")

SIP = (b"OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nCall-ID: w%d@test\r\nCSeq: 1 OPTIONS\r\n"
       b"Content-Length: 0\r\n\r\n")


def packets(n: int, start: int = 0) -> list[bytes]:
    return [encode(HepMessage(src_ip="192.0.2.1", src_port=5060, dst_ip="192.0.2.2",
                              dst_port=5060, ts_sec=1_700_000_000 + i, ts_usec=i,
                              proto_type=1, capture_id=7, payload=SIP % i))
            for i in range(start, start + n)]


def wait_for(cond, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what or cond}"
        time.sleep(0.02)


def port_of(lp: ListenProcess, scheme: str) -> int:
    return int(lp.url(scheme).rsplit(":", 1)[1])


def worker_pids(lp: ListenProcess) -> list[int]:
    for line in lp.stderr_lines:
        m = re.match(r"^(\d+) workers: pids (.*)$", line)
        if m:
            return [int(p) for p in m.group(2).split(", ")]
    raise AssertionError(f"no worker pids on stderr: {lp.stderr_lines}")


def summary(lp: ListenProcess) -> list[str]:
    lines = [s for s in lp.stderr_lines if s.startswith("listen: ")]
    assert len(lines) == 1, lp.stderr_lines  # ONE summary, whatever the number of workers
    return lines


def per_worker(lp: ListenProcess) -> list[int]:
    for line in lp.stderr_lines:
        m = re.match(r"^  workers: \d+ \(packets received: (.*)\)$", line)
        if m:
            return [int(x.replace(",", "")) for x in m.group(1).split(", ")]
    raise AssertionError(f"no workers line in the summary: {lp.stderr_lines}")


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].startswith("Z")  # a zombie has ended
    except FileNotFoundError:
        return True


def send_spread(udp_port: int | None, tcp_port: int | None, sent: list[bytes],
                sockets: int = 16) -> None:
    """``sent`` round robin over ``sockets`` UDP sockets (distinct source ports: the kernel
    hashes them over the workers) and/or as many TCP connections."""
    socks = []
    try:
        for _ in range(sockets):
            if udp_port is not None:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.connect(("127.0.0.1", udp_port))
                socks.append(u)
            if tcp_port is not None:
                socks.append(socket.create_connection(("127.0.0.1", tcp_port), timeout=10))
        for i, p in enumerate(sent):
            s = socks[i % len(socks)]
            if s.type == socket.SOCK_DGRAM:
                s.send(p)
            else:
                s.sendall(p)
            if i % 50 == 49:
                time.sleep(0.002)  # paced: nothing lost in a receive buffer on a busy machine
    finally:
        for s in socks:
            s.close()


def test_two_workers_udp_and_tcp_every_packet_counted_once():
    sent = packets(1200)
    with ListenProcess("--workers", "2", "--bind", "udp://127.0.0.1:0", "--bind",
                       "tcp://127.0.0.1:0", "-f", "jsonl", expect=2) as lp:
        pids = worker_pids(lp)
        assert len(pids) == 2 and lp.proc.pid not in pids
        send_spread(port_of(lp, "udp"), port_of(lp, "tcp"), sent)
        lines = lp.read_records(len(sent), timeout=30)
        assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    # stdout: whole JSON lines only, each packet once
    records = [json.loads(line) for line in lines]
    assert sorted(r["sip"]["call_id"] for r in records) == sorted(
        f"w{i}@test" for i in range(len(sent)))
    assert Counter(r["hep_transport"] for r in records) == {"udp": 600, "tcp": 600}
    # the summary: sum over the workers = sent, each worker got its share
    assert summary(lp)[0].startswith(
        "listen: 1200 packets received (tcp 600, udp 600); 1200 accepted; drops: none")
    counts = per_worker(lp)
    assert len(counts) == 2 and sum(counts) == 1200 and min(counts) > 0, counts
    assert all(gone(p) for p in pids)


def test_two_workers_write_hep_files_hold_every_packet_once(tmp_path):
    sent = packets(800)
    hep = tmp_path / "h.pcap"
    with ListenProcess("--workers", "2", "--bind", "udp://127.0.0.1:0", "--bind",
                       "tcp://127.0.0.1:0", "--write-hep", str(hep), "-q", "--stats", "0.2",
                       expect=2) as lp:
        send_spread(port_of(lp, "udp"), port_of(lp, "tcp"), sent)
        wait_for(lambda: any("; total 800;" in s for s in lp.stderr_lines), 30,
                 "800 packets in a --stats line")
        assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    files = [tmp_path / "h-w0.pcap", tmp_path / "h-w1.pcap"]
    assert sorted(tmp_path.iterdir()) == files
    assert f"  2 files written: {files[0]}, {files[1]}" in lp.stderr_lines
    got = [p for f in files for p in hep_packets(f)]
    assert Counter(got) == Counter(sent)  # the union is every packet, none twice
    assert all(hep_packets(f) for f in files), "each worker wrote a share"
    stats = [s for s in lp.stderr_lines if s.startswith("stats: ")]
    assert stats and all(s.count("; total ") == 1 for s in stats)  # one merged line each time


def test_sigkill_of_a_worker_is_reported_and_listen_exits_1(tmp_path):
    with ListenProcess("--workers", "2", "--bind", "udp://127.0.0.1:0", "--write-hep",
                       str(tmp_path / "h.pcap"), "-q") as lp:
        pids = worker_pids(lp)
        send_spread(port_of(lp, "udp"), None, packets(100), sockets=8)
        time.sleep(0.3)
        os.kill(pids[1], signal.SIGKILL)
        rc = lp.wait(20)
        time.sleep(0.1)
    assert rc == 1, lp.stderr_lines
    err = "\n".join(lp.stderr_lines)
    assert (f"worker 1 (pid {pids[1]}) was killed by SIGKILL: its counts are those "
            "of its last report; stopping the other workers") in err
    summary(lp)  # the summary is still printed, once
    assert lp.stderr_lines[-1].startswith(f"Error: worker 1 (pid {pids[1]}) was killed by "
                                          "SIGKILL")
    assert all(gone(p) for p in pids)
    assert hep_packets(tmp_path / "h-w0.pcap") is not None  # the survivor's file is complete


def test_workers_stop_by_themselves_when_the_supervisor_is_killed():
    with ListenProcess("--workers", "2", "--bind", "udp://127.0.0.1:0", "-q") as lp:
        pids = worker_pids(lp)
        os.kill(lp.proc.pid, signal.SIGKILL)
        lp.proc.wait(10)
        wait_for(lambda: all(gone(p) for p in pids), 10, "the orphaned workers to end")


def test_sigint_and_count_end_every_worker_with_one_summary():
    with ListenProcess("--workers", "2", "--bind", "udp://127.0.0.1:0", "-q",
                       "--count", "300") as lp:
        pids = worker_pids(lp)
        send_spread(port_of(lp, "udp"), None, packets(300), sockets=8)
        assert lp.wait(20) == 0, lp.stderr_lines
        time.sleep(0.1)
    assert summary(lp)[0].startswith("listen: 300 packets received (udp 300); 300 accepted")
    assert all(gone(p) for p in pids)


def test_one_metrics_endpoint_sums_the_workers():
    with ListenProcess("--workers", "2", "--bind", "udp://127.0.0.1:0", "-q",
                       "--metrics", "127.0.0.1:0") as lp:
        wait_for(lambda: any(s.startswith("metrics on ") for s in lp.stderr_lines), 10)
        url = next(s.split()[-1] for s in lp.stderr_lines if s.startswith("metrics on "))
        send_spread(port_of(lp, "udp"), None, packets(400), sockets=16)

        def scrape() -> str:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()

        wait_for(lambda: 'heptool_received_packets_total{transport="udp"} 400' in scrape(),
                 15, "the merged count on /metrics")
        body = scrape()
        assert 'heptool_hep_packets_total{capture_id="7",proto="sip"} 400' in body
        assert "heptool_accepted_packets_total 400" in body
        assert lp.stop(signal.SIGTERM) == 0
    assert per_worker(lp)[0] > 0 and per_worker(lp)[1] > 0


def test_a_worker_file_holding_data_is_refused(tmp_path):
    (tmp_path / "h-w1.pcap").write_bytes(b"an earlier capture")
    r = run_heptool("listen", "--workers", "2", "--bind", "udp://127.0.0.1:0", "--write-hep",
                    str(tmp_path / "h.pcap"), "-q", "--duration", "0.2")
    assert r.returncode == 2, r.stderr
    err = r.stderr.decode().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"Error: --write-hep {tmp_path / 'h-w1.pcap'} already holds 18 bytes")
    assert (tmp_path / "h-w1.pcap").read_bytes() == b"an earlier capture"


@pytest.mark.parametrize("args,text", [
    (["--workers", "0"], "is not a number of processes"),
    (["--workers", "two"], "is not a number of processes"),
    (["--workers", "2", "-f", "table"], "--workers 2 prints -f jsonl or -f raw"),
])
def test_bad_workers_usage(args, text):
    r = run_heptool("listen", "--bind", "udp://127.0.0.1:0", "--duration", "0.1", *args)
    assert r.returncode == 2, r.stderr
    assert text in r.stderr.decode()


def test_merged_counts_sum_the_snapshots():
    def snap(udp: int, accepted: int, sip: int, kd: int | None, files: list[str]) -> dict:
        return {"packets": {"udp": udp}, "bytes": {"udp": udp * 10}, "drops": {"auth key": 1},
                "connections": 1, "open_connections": 0, "closed": {"closed by peer": 1},
                "garbage_bytes": 3, "resyncs": 1, "truncated_bytes": 0, "accepted": accepted,
                "protos": {"sip": sip}, "kernel_drops": kd, "files": files,
                "forwards": [(("udp://x:1", True, 0, accepted, 0, 0), None)],
                "hep_counts": {(7, 1): [udp, udp * 10]}}

    m = MergedCounts()
    m.update(0, snap(5, 4, 4, 2, ["a-w0.pcap"]))
    m.update(1, snap(7, 6, 6, None, ["a-w1.pcap"]))
    m.update(0, snap(9, 8, 8, 3, ["a-w0.pcap"]))  # a later report replaces the earlier one
    assert m.stats.total == 16 and m.accepted == 14 and m.kernel_drops == 3
    assert m.stats.drops == {"auth key": 2} and m.stats.garbage_bytes == 6
    assert m.files == ["a-w0.pcap", "a-w1.pcap"] and m.per_worker() == [9, 7]
    assert m.forward_status()[0].sent == 14
    lines = m.summary_lines()
    assert lines[0] == ("listen: 16 packets received (udp 16); 14 accepted; drops: auth key 2")
    assert "  protocols: sip 14" in lines
    assert "  forward udp://x:1: 14 sent, 0 undelivered, 0 reconnects" in lines


def test_worker_path():
    assert worker_path("/d/hep.pcap", 0) == "/d/hep-w0.pcap"
    assert worker_path("out.jsonl", 3) == "out-w3.jsonl"
    assert worker_path("noext", 1) == "noext-w1"


def test_sighup_reaches_every_worker(tmp_path):
    hep = tmp_path / "h.pcap"
    with ListenProcess("--workers", "2", "--bind", "udp://127.0.0.1:0", "--write-hep", str(hep),
                       "--rotate-size", "1G", "-q", "--stats", "0.2") as lp:
        port = port_of(lp, "udp")
        send_spread(port, None, packets(200), sockets=16)
        wait_for(lambda: any("; total 200;" in s for s in lp.stderr_lines), 15)
        os.kill(lp.proc.pid, signal.SIGHUP)
        wait_for(lambda: sum("output files reopened" in s for s in lp.stderr_lines) == 2, 15,
                 "both workers' notices")
        send_spread(port, None, packets(200, start=200), sockets=16)
        wait_for(lambda: any("; total 400;" in s for s in lp.stderr_lines), 15)
        assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    assert {s.split(":", 1)[0] for s in lp.stderr_lines if "output files reopened" in s} == {
        "worker 0", "worker 1"}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["h-w0-00000.pcap", "h-w0-00001.pcap", "h-w1-00000.pcap", "h-w1-00001.pcap"]
    got = [p for f in sorted(tmp_path.iterdir()) for p in hep_packets(f)]
    assert Counter(got) == Counter(packets(400))


def test_a_reader_gone_ends_every_worker_with_141():
    import subprocess

    from nethelpers import heptool_cmd

    proc = subprocess.Popen(heptool_cmd("listen", "--workers", "2", "--bind",
                                        "udp://127.0.0.1:0", "-f", "jsonl"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = b""
        while b"listening on" not in err:
            line = proc.stderr.readline()
            assert line, err
            err += line
        pids = [int(p) for p in re.search(rb"pids ([\d, ]+)", err).group(1).split(b", ")]
        port = int(re.search(rb"udp://127.0.0.1:(\d+)", err).group(1))
        send_spread(port, None, packets(20), sockets=4)
        assert proc.stdout.readline().startswith(b"{")
        proc.stdout.close()  # `| head -1`
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                send_spread(port, None, packets(20), sockets=4)
            except ConnectionRefusedError:  # (listen just ended: an ICMP port unreachable)
                pass
            time.sleep(0.1)
        assert proc.wait(timeout=5) == 141
        assert b"listen: " in proc.stderr.read()  # the summary, on stderr
        wait_for(lambda: all(gone(p) for p in pids), 10, "the workers to end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_tls_connections_spread_over_two_workers(tmp_path):
    import ssl

    from nethelpers import make_cert

    cert, key = make_cert(tmp_path)
    ctx = ssl.create_default_context(cafile=str(cert))
    with ListenProcess("--workers", "2", "--bind", "tls://127.0.0.1:0", "--cert", str(cert),
                       "--key", str(key), "-f", "jsonl") as lp:
        port = port_of(lp, "tls")
        sent = packets(16 * 20)
        conns = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                 server_hostname="127.0.0.1") for _ in range(16)]
        for i, p in enumerate(sent):
            conns[i % 16].sendall(p)
        for c in conns:  # read what the server sent (TLS 1.3 session tickets) to its EOF:
            c.shutdown(socket.SHUT_WR)  # a close with unread bytes is a reset, and the reset
            while c.recv(4096):  # throws away what listen had not read yet
                pass
            c.close()
        lines = lp.read_records(len(sent), timeout=20)
        assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    assert summary(lp)[0].startswith(f"listen: {len(sent)} packets received (tls {len(sent)})")
    assert min(per_worker(lp)) > 0
    assert sorted(json.loads(x)["sip"]["call_id"] for x in lines) == sorted(
        f"w{i}@test" for i in range(len(sent)))


def test_pipe_stream_sends_whole_writes_in_few_messages():
    from heptool.pipeline.workers import PipeStream

    class Conn:
        def __init__(self) -> None:
            self.msgs: list[bytes] = []

        def send_bytes(self, b) -> None:
            self.msgs.append(bytes(b))

    c = Conn()
    p = PipeStream(c, limit=50, delay=10.0)
    p.write(b"a" * 20 + b"\n")
    p.flush()  # younger than delay: kept
    assert c.msgs == []
    p.write(b"b" * 30 + b"\n")  # past limit: sent, whole writes only
    assert c.msgs == [b"D" + b"a" * 20 + b"\n" + b"b" * 30 + b"\n"]
    p.write(b"c\n")
    p.send()
    assert c.msgs[-1] == b"Dc\n"
    p.delay = 0.0
    p.write(b"d\n")
    p.flush()
    assert c.msgs[-1] == b"Dd\n" and len(c.msgs) == 3


def test_forwards_of_every_worker_are_summed():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # 300 packets wait here
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    target = f"udp://127.0.0.1:{rx.getsockname()[1]}"
    sent = packets(300)
    try:
        with ListenProcess("--workers", "2", "--bind", "udp://127.0.0.1:0", "-q", "--forward",
                           target) as lp:
            send_spread(port_of(lp, "udp"), None, sent, sockets=16)
            got = [rx.recv(65536) for _ in sent]
            assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    finally:
        rx.close()
    assert Counter(got) == Counter(sent)
    assert f"  forward {target}: 300 sent, 0 undelivered, 0 reconnects" in lp.stderr_lines
    assert min(per_worker(lp)) > 0
