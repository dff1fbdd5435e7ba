"""Service-grade sending (issue 13): per-target status, write deadlines, background
(re)connection, signals, UDP counts. Loopback only; every wait bounded."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nethelpers import ListenProcess, hep_packets, heptool_cmd, run_heptool

from heptool.net.client import StreamSender, TargetStatus, UdpSender
from heptool.net.target import Target


def test_status_of_udp_and_tcp_senders():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    u = UdpSender(Target("udp", "127.0.0.1", rx.getsockname()[1]))
    u.send(b"HEP3xx")
    st = u.status()
    assert isinstance(st, TargetStatus)
    assert st == TargetStatus(f"udp://127.0.0.1:{rx.getsockname()[1]}", True, 0, 1, 0, 0)
    u.close()
    rx.close()
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    port = ls.getsockname()[1]
    s = StreamSender(Target("tcp", "127.0.0.1", port))
    s.send(b"HEP3\x00\x06")
    st = s.status()
    assert st.target == f"tcp://127.0.0.1:{port}" and st.connected and st.sent == 1
    assert (st.queued, st.undelivered, st.reconnects) == (0, 0, 0)
    c, _ = ls.accept()
    s.close(1.0)
    c.close()
    ls.close()


STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z send ")


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _BlackHole:
    """A TCP peer that accepts every connection and never reads (small receive buffer)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.conns.append(c)

    def wait_connected(self, timeout: float = 30.0) -> None:
        """Until a sender connected (its signal handlers are set just after)."""
        deadline = time.monotonic() + timeout
        while not self.conns and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.conns, "send never connected"

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def _popen_send(*args: str) -> subprocess.Popen:
    return subprocess.Popen(heptool_cmd("send", *args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _first_line(p: subprocess.Popen, timeout: float = 30.0) -> str:
    """The first line ``p`` writes on stderr (bounded wait)."""
    import select

    assert p.stderr is not None
    ready, _, _ = select.select([p.stderr], [], [], timeout)
    assert ready, "no line from send"
    return p.stderr.readline().decode().rstrip("\n")


def _finish(p: subprocess.Popen, timeout: float) -> tuple[int, str, float]:
    """Wait for ``p`` (bounded); its status, stderr and how long it took."""
    t0 = time.monotonic()
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=5)
        raise AssertionError(f"send did not end within {timeout} s") from None
    return p.returncode, err.decode(), time.monotonic() - t0


# -- defect 1: every write has a deadline; signals end the run with its summary ----------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_ends_a_send_into_a_black_hole_with_the_summary(tmp_path, sig):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 60_000)
    hole = _BlackHole()
    try:
        p = _popen_send("--payload", f"@{big}", "--count", "2000", "--to",
                        f"tcp://127.0.0.1:{hole.port}", "--write-timeout", "1", "--retry", "1")
        hole.wait_connected()
        time.sleep(1.0)  # the socket buffers are full by now: the send is stuck
        assert p.poll() is None
        os.kill(p.pid, sig)
        rc, err, took = _finish(p, 20)
    finally:
        hole.close()
    assert rc == 1, err  # stopped, and packets were not delivered: 1 (documented)
    line = err.splitlines()[0]
    assert line.startswith(f"send tcp://127.0.0.1:{hole.port}: ")
    assert "NOT delivered" in line
    sent = int(line.split(": ")[1].split(" packets")[0])
    undelivered = int(re.search(r"(\d+) NOT delivered", line).group(1))
    assert sent + undelivered < 2000 and undelivered > 0
    assert took < 15


def test_a_second_signal_gives_up_at_once(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 60_000)
    hole = _BlackHole()
    try:
        p = _popen_send("--payload", f"@{big}", "--count", "2000", "--to",
                        f"tcp://127.0.0.1:{hole.port}")  # default deadlines: 5 s each
        hole.wait_connected()
        time.sleep(1.0)
        os.kill(p.pid, signal.SIGTERM)
        time.sleep(0.3)
        os.kill(p.pid, signal.SIGTERM)
        rc, err, took = _finish(p, 20)
    finally:
        hole.close()
    assert rc == 1 and "NOT delivered" in err, err
    assert took < 3


# -- defect 3: a destination down at the start does not hold the others back -------------

def test_udp_up_and_tcp_down_udp_gets_everything():
    down = _free_port()
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "--count", "20") as lp:
        r = run_heptool("send", "--payload", "x", "--count", "20", "--to", lp.url("udp"),
                        "--to", f"tcp://127.0.0.1:{down}", "--retry", "0.5", timeout=30)
        assert lp.wait(10) == 0, lp.stderr_lines
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"send {lp.url('udp')}: 20 packets" in err
    assert f"send tcp://127.0.0.1:{down}: 0 packets" in err and "20 NOT delivered" in err


def test_tcp_down_at_start_comes_up_and_gets_every_packet_in_order_with_v(tmp_path):
    port = _free_port()
    p = _popen_send("--payload", "x", "--count", "40", "--rate", "20", "--chunk",
                    "node_name=n", "-v", "--to", f"tcp://127.0.0.1:{port}")
    try:
        first = _first_line(p)  # down at the start: said so, then retried in the background
        with ListenProcess("--bind", f"tcp://127.0.0.1:{port}", "-f", "jsonl",
                           "--count", "40") as lp:
            records = lp.read_records(40, timeout=20)
            rc, err, _ = _finish(p, 20)
            assert lp.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert rc == 0, err
    assert len(records) == 40
    times = [json.loads(x)["time"] for x in records]
    assert times == sorted(times)  # in order
    lines = [first, *err.splitlines()]
    events = [x for x in lines if STAMP.match(x)]
    assert "Connection refused; retrying in the background" in first, first
    assert any(re.search(r": connected \(\d+ attempts, \d+ queued\)", x) for x in events), err
    assert any(x.startswith(f"send tcp://127.0.0.1:{port}: 40 packets") for x in lines)


class _Restarting:
    """A TCP collector (thread) that reads ``first`` bytes on its first connection, closes
    it, and reads the second connection to its end."""

    def __init__(self, first: int) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.first = first
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for n in range(2):
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(10)
            got = bytearray()
            while n or len(got) < self.first:
                try:
                    d = c.recv(65536 if n else self.first - len(got))
                except OSError:
                    break
                if not d:
                    break
                got += d
            self.received.append(bytes(got))
            c.close()


def test_v_reports_a_reconnection_with_its_time():
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    one = len(encode(HepMessage(src_ip="127.0.0.1", src_port=5060, dst_ip="127.0.0.1",
                                dst_port=5060, ts_sec=1, ts_usec=0, proto_type=1,
                                capture_id=1, payload=b"x")))
    srv = _Restarting(first=10 * one)
    r = run_heptool("send", "--payload", "x", "--time", "1", "--count", "30", "--rate", "30",
                    "-v", "--to", f"tcp://127.0.0.1:{srv.port}", timeout=30)
    srv.thread.join(10)
    srv.sock.close()
    err = r.stderr.decode()
    assert r.returncode == 0, err
    events = [x for x in err.splitlines() if STAMP.match(x)]
    assert any("connection lost" in x for x in events), err
    assert any(re.search(r": reconnected after \d+\.\d s", x) for x in events), err
    assert "1 reconnects" in err


# -- defect 8: UDP counts do not depend on the pacing --------------------------------------

def test_udp_to_nothing_listening_is_the_same_at_any_pace():
    port = _free_port(socket.SOCK_DGRAM)
    outcomes = []
    for pace in ((), ("--rate", "100")):
        r = run_heptool("send", "--payload", "x", "--count", "30", *pace,
                        "--to", f"udp://127.0.0.1:{port}", timeout=30)
        line = r.stderr.decode().splitlines()[0]
        outcomes.append((r.returncode, line.split(" bytes")[0], "NOT delivered" in line))
        if pace:
            assert "ICMP port unreachable" in line
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 0 and not outcomes[0][2]
    assert outcomes[0][1].startswith(f"send udp://127.0.0.1:{port}: 30 packets, ")


# -- defect 7: scenarios repeat with fresh ids and continuing time --------------------------

def _scenario_len(seeds: range) -> int:
    from heptool.analysis.scenarios import scenario

    return sum(len(scenario("call", seed=s)) for s in seeds)


@pytest.mark.parametrize("args,seeds", [(("--count", "12"), range(12)),
                                        (("--loop", "3"), range(3)),
                                        (("--count", "2", "--loop", "2"), range(4))])
def test_scenario_count_and_loop_give_fresh_calls_in_time_order(args, seeds):
    n = _scenario_len(seeds)
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--count", str(n)) as lp:
        r = run_heptool("send", "--scenario", "call", *args, "--rate", "2000",
                        "--to", lp.url("udp"), timeout=60)
        assert r.returncode == 0, r.stderr
        records = [json.loads(x) for x in lp.read_records(n)]
        assert lp.wait(10) == 0
    assert len(records) == n
    call_ids = {x["sip"]["call_id"] for x in records if x.get("sip")}
    assert len(call_ids) == len(seeds)
    times = [x["time"] for x in records]
    assert times == sorted(times)


# -- defect 10: --chunk before the payload -------------------------------------------------

def test_send_chunk_goes_before_the_payload(tmp_path):
    from heptool.core.codec import decode

    y = tmp_path / "y.pcap"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-hep", str(y), "-q",
                       "--count", "1") as lp:
        r = run_heptool("send", "--payload", "INVITE", "--chunk", "0x0003:0x0020=kam",
                        "--to", lp.url("udp"))
        assert r.returncode == 0, r.stderr
        assert lp.wait(10) == 0
    ids = decode(hep_packets(y)[0]).chunk_ids()
    assert ids[-2:] == [(3, 0x20), (0, 0x0F)]


def test_a_sender_that_never_waits_keeps_queueing_and_gives_up_a_stalled_connection():
    """wait_writes=False (listen --forward): a collector that does not read never holds
    the caller up; the half-written packet and the newer ones wait, and after
    write_timeout without progress the connection is given up (and reopened)."""
    hole = _BlackHole()
    lost = []
    try:
        s = StreamSender(Target("tcp", "127.0.0.1", hole.port), wait_writes=False,
                         write_timeout=0.5, backoff=(0.05, 0.1), queue_max=1000,
                         on_event=lambda _s, kind, text: lost.append(kind))
        data = b"HEP3" + b"x" * 60_000
        slowest = 0.0
        t_end = time.monotonic() + 1.5
        sent = 0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            s.send(data)
            slowest = max(slowest, time.monotonic() - t0)
            sent += 1
            time.sleep(0.002)
        st = s.status()
        assert st.queued > 0 and sent > 200
        assert slowest < 0.25  # never waited for the collector
        assert "lost" in lost  # the stalled connection was given up
        s.close(0.2)
        assert s.stats.undelivered + s.stats.packets >= sent - s.stats.dropped
        assert s.stats.undelivered > 0
    finally:
        hole.close()


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_a_sender_that_never_waits_delivers_everything_in_order_to_a_slow_reader(tmp_path,
                                                                               scheme):
    import ssl

    from nethelpers import make_cert

    from heptool.core.stream import NEED_DATA, StreamDecoder
    from heptool.net.tls import client_tls_context, server_tls_context

    sctx = cctx = None
    if scheme == "tls":
        cert, key = make_cert(tmp_path)
        sctx = server_tls_context(str(cert), str(key))
        cctx = client_tls_context(ca=str(cert))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    got = bytearray()

    def slow_reader() -> None:
        c, _ = ls.accept()
        c.settimeout(10)
        if sctx is not None:
            c = sctx.wrap_socket(c, server_side=True)
        while True:
            try:
                d = c.recv(16384)
            except (OSError, ssl.SSLError):
                break
            if not d:
                break
            got.extend(d)
            time.sleep(0.001)
        c.close()

    th = threading.Thread(target=slow_reader, daemon=True)
    th.start()
    packets = [b"HEP3" + (6 + 9000).to_bytes(2, "big") + (b"%06d" % i) * 1500
               for i in range(1500)]
    s = StreamSender(Target(scheme, "127.0.0.1", ls.getsockname()[1]), ssl_context=cctx,
                     wait_writes=False)
    partial_seen = False
    for p in packets:
        s.send(p)
        partial_seen = partial_seen or s.status().queued > 0
    s.close(10)
    th.join(10)
    ls.close()
    assert partial_seen  # the socket was full: packets waited, the caller did not
    assert s.stats.undelivered == 0 and s.stats.packets == 1500
    dec = StreamDecoder()
    frames = []
    for i in range(0, len(got), 65536):
        dec.feed(bytes(got[i:i + 65536]))
        while (f := dec.next_frame()) is not NEED_DATA:
            frames.append(f[1])
    assert frames == packets


def test_restamp_shift_honours_speed_and_loops_go_on_in_time(tmp_path):
    both = tmp_path / "ab.hep"
    data = b""
    for payload, t in (("a", "100"), ("b", "102")):
        out = tmp_path / f"{payload}.hep"
        assert run_heptool("encode", "--payload", payload, "--time", t, "-o",
                           str(out)).returncode == 0
        data += out.read_bytes()
    both.write_bytes(data)
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--count", "4") as lp:
        r = run_heptool("send", str(both), "--to", lp.url("udp"), "--restamp", "shift",
                        "--speed", "4", "--loop", "2")
        assert r.returncode == 0, r.stderr
        got = [json.loads(x) for x in lp.read_records(4)]
        assert lp.wait() == 0
    us = [x["ts_sec"] * 1_000_000 + x["ts_usec"] for x in got]
    assert us[1] - us[0] == 500_000 and us[3] - us[2] == 500_000  # 2 s at speed 4
    assert us[2] > us[1]  # the second pass goes on, never back in time


def test_a_signal_ends_a_long_pacing_wait_at_once(tmp_path):
    """--pace original with 1000 s between two packets: SIGTERM after the first ends the
    run at once (Python resumes an interrupted sleep; the replay sleeps in slices)."""
    both = tmp_path / "ab.hep"
    data = b""
    for payload, t in (("a", "100"), ("b", "1100")):
        out = tmp_path / f"{payload}.hep"
        assert run_heptool("encode", "--payload", payload, "--time", t, "-o",
                           str(out)).returncode == 0
        data += out.read_bytes()
    both.write_bytes(data)
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl") as lp:
        p = _popen_send(str(both), "--to", lp.url("udp"), "--pace", "original")
        try:
            assert lp.read_records(1, timeout=30)
            time.sleep(0.3)
            os.kill(p.pid, signal.SIGTERM)
            rc, err, took = _finish(p, 20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        assert lp.stop() == 0
    assert rc == 130, err
    assert err.startswith(f"send {lp.url('udp')}: 1 packets")
    assert took < 3


def test_a_signal_while_the_first_connection_is_tried_ends_with_the_summary():
    """A listener whose accept queue is full drops SYNs: the first connection attempt waits
    (up to its timeout); SIGTERM then still ends the run with its summary."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    for _ in range(3):  # fill the accept queue (never accepted)
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.2)
    try:
        p = _popen_send("--payload", "x", "--to", f"tcp://127.0.0.1:{port}")
        time.sleep(3.0)  # started, and waiting for the connection (5 s timeout)
        os.kill(p.pid, signal.SIGTERM)
        rc, err, _ = _finish(p, 20)
    finally:
        for c in fillers:
            c.close()
        ls.close()
    assert rc == 130, err
    assert err.startswith(f"send tcp://127.0.0.1:{port}: 0 packets"), err
