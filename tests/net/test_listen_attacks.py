"""``heptool listen`` under attack and load (issue 7): while each attack runs, a good sender's
packets all arrive, and listen counts each drop by reason in its summary.

Real ``heptool listen`` subprocesses on 127.0.0.1 port 0 (127.0.0.2 is the outside source of
the UDP flood: 127.0.0.0/8 is all loopback).  Every loop is bounded, every wait has a timeout,
every process started here is stopped by its pid.  The figures quoted in README "Reliability"
are what these tests assert.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nethelpers import ListenProcess, hep_packets, heptool_cmd, run_heptool, run_sigterm_at


def _chunk(t: int, data: bytes) -> bytes:
    return struct.pack("!HHH", 0, t, 6 + len(data)) + data


def hep3(payload: bytes, auth: str | None = None) -> bytes:
    """A complete HEP3 SIP packet carrying ``payload`` (and auth key ``auth``)."""
    body = (_chunk(1, b"\x02") + _chunk(2, b"\x11") + _chunk(3, socket.inet_aton("10.0.0.1"))
            + _chunk(4, socket.inet_aton("10.0.0.2")) + _chunk(7, struct.pack("!H", 5060))
            + _chunk(8, struct.pack("!H", 5060)) + _chunk(9, struct.pack("!I", 1764147600))
            + _chunk(10, struct.pack("!I", 0)) + _chunk(11, b"\x01")
            + _chunk(12, struct.pack("!I", 2001))
            + (_chunk(14, auth.encode()) if auth is not None else b"") + _chunk(15, payload))
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


def good_file(tmp_path: Path, n: int, auth: str | None = None, name: str = "good.hep") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(hep3(b"good %d" % i, auth) for i in range(n)))
    return path


def all_records(lp: ListenProcess, timeout: float = 10.0) -> list[dict]:
    """Every JSON record listen printed (call after it exited)."""
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lp.stdout_lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        out.append(json.loads(line))
    return out


def good_payloads(records: list[dict]) -> list[str]:
    return [r["payload"] for r in records if str(r.get("payload", "")).startswith("good ")]


def summary(lp: ListenProcess) -> str:
    return "\n".join(lp.stderr_lines)


def drops(lp: ListenProcess) -> dict[str, int]:
    """The summary's 'drops: reason N, reason N' as a dict."""
    line = next(x for x in lp.stderr_lines if x.startswith("listen: "))
    part = line.split("drops: ", 1)[1]
    if part == "none":
        return {}
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"([^,]+?) (\d+)(?:, |$)", part)}


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def tcp_port(lp: ListenProcess) -> int:
    return int(lp.url("tcp").rsplit(":", 1)[1])


def send_good(path: Path, url: str, *extra: str) -> None:
    r = run_heptool("send", str(path), "--to", url, *extra, timeout=60)
    assert r.returncode == 0, r.stderr.decode()


N_GOOD = 300


# -- 1. garbage on the TCP port ----------------------------------------------------------
def test_garbage_on_the_tcp_port_while_a_good_client_sends(tmp_path):
    good = good_file(tmp_path, N_GOOD)
    sent_garbage = 0
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl") as lp:
        try:
            stop = threading.Event()
            closed_by_server = threading.Event()

            def attack() -> None:
                nonlocal sent_garbage
                rnd = random.Random(7)
                with socket.create_connection(("127.0.0.1", tcp_port(lp)), timeout=5) as s:
                    for _ in range(400):  # bounded: at most 400 x 4 KiB
                        if stop.is_set():
                            break
                        junk = bytes(rnd.getrandbits(8) for _ in range(4096))
                        junk = junk.replace(b"HEP", b"hep")  # no accidental HEP3 header
                        try:
                            s.sendall(junk)
                        except OSError:
                            closed_by_server.set()
                            break
                        sent_garbage += len(junk)
                        time.sleep(0.002)

            t = threading.Thread(target=attack, daemon=True)
            t.start()
            time.sleep(0.1)
            send_good(good, lp.url("tcp"))
            t.join(20)
            stop.set()
            assert lp.stop(signal.SIGTERM) == 0
        finally:
            stop.set()
    got = good_payloads(all_records(lp))
    assert got == [f"good {i}" for i in range(N_GOOD)]
    err = summary(lp)
    # the garbage connection is closed after 64 KiB of garbage without a packet
    assert closed_by_server.is_set(), err
    assert "closed: " in err and "garbage 1" in err, err
    assert drops(lp) == {"connection closed: garbage": 1}, err  # a drop like any other
    m = re.search(r"streams: (\d+) garbage bytes skipped", err)
    assert m and 65536 < int(m.group(1)) <= sent_garbage, err
    print(f"\ngarbage: {sent_garbage} bytes sent, {m.group(1)} skipped before the close")
    assert f"listen: {N_GOOD} packets received (tcp {N_GOOD}); {N_GOOD} accepted" in err, err


# -- 2./3. half a packet and a stall; a 65535 length with 10 bytes --------------------
@pytest.mark.parametrize("partial", [
    pytest.param(hep3(b"half")[:40], id="half-a-packet"),
    pytest.param(b"HEP3\xff\xff" + bytes(10), id="length-65535-then-10-bytes"),
])
def test_a_stalled_partial_packet_is_closed_and_counted(tmp_path, partial):
    good = good_file(tmp_path, N_GOOD)
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl",
                       "--stall-timeout", "1") as lp:
        bad = socket.create_connection(("127.0.0.1", tcp_port(lp)), timeout=5)
        try:
            bad.sendall(partial)
            t0 = time.monotonic()
            send_good(good, lp.url("tcp"))
            bad.settimeout(8)
            try:
                eof = bad.recv(1) == b""
            except ConnectionResetError:
                eof = True
            waited = time.monotonic() - t0
            assert eof and 0.9 <= waited < 8, waited  # closed after the 1 s stall bound
            assert lp.stop(signal.SIGTERM) == 0
        finally:
            bad.close()
    got = good_payloads(all_records(lp))
    assert got == [f"good {i}" for i in range(N_GOOD)]
    assert drops(lp) == {"stalled inside a packet": 1}, summary(lp)
    err = summary(lp)
    assert "stalled 1" in err and f"{len(partial)} bytes of incomplete packets dropped" in err


# -- 4. 1,000 connections at once --------------------------------------------------------
@pytest.mark.parametrize("limit", [None, 50], ids=["default-1000", "max-connections-50"])
def test_a_thousand_connections_at_once(tmp_path, limit):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for 1,000 connections")
    want = max(soft, 4096) if hard == resource.RLIM_INFINITY else min(max(soft, 4096), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # listen inherits it
    extra = () if limit is None else ("--max-connections", str(limit))
    packets = [hep3(b"good %d" % i) for i in range(N_GOOD)]
    conns: list[socket.socket] = []
    try:
        with ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl", *extra) as lp:
            port = tcp_port(lp)
            goodc = socket.create_connection(("127.0.0.1", port), timeout=5)
            conns.append(goodc)
            goodc.sendall(packets[0])  # the good client is connected and served first
            assert len(lp.read_records(1, timeout=10)) == 1
            time.sleep(0.2)
            before = rss_kb(lp.proc.pid)
            for _ in range(1000):
                conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            # half the attackers each send a partial packet (kept buffered)
            for c in conns[1::2]:
                try:
                    c.sendall(b"HEP3\x01\x00" + bytes(100))
                except OSError:
                    pass  # refused over the limit
            for p in packets[1:]:
                goodc.sendall(p)
            recs = lp.read_records(N_GOOD - 1, timeout=20)
            time.sleep(0.3)
            during = rss_kb(lp.proc.pid)
            for c in conns[1:]:
                c.close()
            goodc.close()
            assert lp.stop(signal.SIGTERM) == 0
    finally:
        for c in conns:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    got = ["good 0"] + [json.loads(r)["payload"] for r in recs]
    assert got == [f"good {i}" for i in range(N_GOOD)]
    cap = 1000 if limit is None else limit
    refused = 1001 - cap
    d = drops(lp)
    assert d.get("connection over --max-connections") == refused, summary(lp)
    err = summary(lp)
    assert f"connections: {cap} accepted" in err, err
    growth = during - before
    print(f"\nRSS with limit {cap}: before {before} kB, with 1,000 connections {during} kB "
          f"(+{growth} kB)")
    # the bound (README "Reliability"): a connection costs a few kB (socket object, decoder
    # and its 100-byte partial packet); 1,000 of them stay under 16 MB
    assert growth < 16 * 1024, (before, during)


# -- 5. a UDP flood from outside --allow ------------------------------------------------
def test_udp_flood_from_outside_allow(tmp_path):
    good = good_file(tmp_path, N_GOOD)
    flood_n = 20000
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl",
                       "--allow", "127.0.0.1/32") as lp:
        port = int(lp.url("udp").rsplit(":", 1)[1])
        flooded = 0

        def flood() -> None:
            nonlocal flooded
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.2", 0))
                pkt = hep3(b"flood")
                for i in range(flood_n):
                    s.sendto(pkt, ("127.0.0.1", port))
                    flooded += 1
                    if i % 200 == 199:
                        time.sleep(0.002)

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        send_good(good, lp.url("udp"), "--rate", "1000")
        t.join(30)
        assert not t.is_alive()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "not allowed" not in "".join(lp.stderr_lines):
            time.sleep(0.05)
        time.sleep(0.3)
        assert lp.stop(signal.SIGTERM) == 0
    got = good_payloads(all_records(lp))
    assert got == [f"good {i}" for i in range(N_GOOD)]
    err = summary(lp)
    kd = re.search(r"kernel receive-buffer drops: (\d+)", err)
    kernel = int(kd.group(1)) if kd else 0
    assert drops(lp).get("not allowed", 0) + kernel == flood_n, err
    assert kernel == 0, err  # the paced flood fits the receive buffer: every drop is counted


# -- 6. wrong --auth-key mixed with good packets -------------------------------------
def test_wrong_auth_key_packets_mixed_with_good_ones(tmp_path):
    n_bad = 0
    stream = []
    for i in range(N_GOOD):
        stream.append(hep3(b"good %d" % i, "s3cret"))
        if i % 2 == 0:
            stream.append(hep3(b"bad %d" % i, "wrong"))
            n_bad += 1
        if i % 3 == 0:
            stream.append(hep3(b"bad %d" % i))  # no key at all
            n_bad += 1
    path = tmp_path / "mixed.hep"
    path.write_bytes(b"".join(stream))
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "--bind", "udp://127.0.0.1:0", "-f",
                       "jsonl", "--auth-key", "s3cret", expect=2) as lp:
        send_good(path, lp.url("tcp"))
        send_good(path, lp.url("udp"), "--rate", "2000")
        deadline = time.monotonic() + 10
        recs: list[bytes] = []
        while time.monotonic() < deadline and len(recs) < 2 * N_GOOD:
            recs += lp.read_records(2 * N_GOOD - len(recs), timeout=1)
        assert lp.stop(signal.SIGTERM) == 0
    got = [json.loads(r)["payload"] for r in recs]
    assert got.count("good 0") == 2 and len(got) == 2 * N_GOOD
    assert sorted(got) == sorted([f"good {i}" for i in range(N_GOOD)] * 2)
    assert drops(lp) == {"auth key": 2 * n_bad}, summary(lp)


# -- 7. SIGTERM and SIGINT ------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_flushes_outputs_and_exits_0(tmp_path, sig):
    good = good_file(tmp_path, N_GOOD)
    y, j = tmp_path / "y.pcap", tmp_path / "y.jsonl"
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "--bind", "udp://127.0.0.1:0",
                       "-f", "jsonl", "--write-hep", str(y), "--write-jsonl", str(j),
                       expect=2) as lp:
        send_good(good, lp.url("tcp"))
        send_good(good, lp.url("udp"), "--rate", "2000")
        recs = lp.read_records(2 * N_GOOD, timeout=15)
        assert len(recs) == 2 * N_GOOD
        assert lp.stop(sig) == 0
    expected = good.read_bytes()
    pk = hep_packets(y)  # the pcap is valid and complete
    assert len(pk) == 2 * N_GOOD
    assert b"".join(pk[:N_GOOD]) == expected or b"".join(sorted(pk)) == b"".join(
        sorted(hep_packets(good) * 2))
    lines = j.read_text().splitlines()
    assert len(lines) == 2 * N_GOOD and all(json.loads(x)["payload"].startswith("good ")
                                            for x in lines)
    err = summary(lp)
    assert (f"listen: {2 * N_GOOD} packets received (tcp {N_GOOD}, udp {N_GOOD}); "
            f"{2 * N_GOOD} accepted; drops: none") in err, err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_sigterm_the_moment_listen_says_it_listens_is_a_clean_stop(workers):
    # the handlers are in place before "listening on" is printed: the summary, exit 0
    p = run_sigterm_at("listening on", "listen", "--workers", workers,
                       "--bind", "tcp://127.0.0.1:0", "-q")
    assert p.returncode == 0, p.stderr
    assert "listen: 0 packets received" in p.stderr, p.stderr


# -- 8. send against a collector that goes away and comes back ----------------------
def _undelivered(err: str) -> int:
    m = re.search(r"(\d+) NOT delivered", err)
    return int(m.group(1)) if m else 0


def test_send_reconnects_to_a_restarted_collector(tmp_path):
    n = 600
    good = good_file(tmp_path, n)
    a = ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl")
    b = None
    sender = None
    try:
        url = a.url("tcp")
        sender = subprocess.Popen(heptool_cmd("send", str(good), "--to", url, "--rate", "400",
                                              "--retry", "10"), stderr=subprocess.PIPE)
        first = a.read_records(150, timeout=15)
        assert len(first) == 150
        assert a.stop(signal.SIGTERM) == 0  # the collector goes away ...
        time.sleep(0.5)
        b = ListenProcess("--bind", url, "-f", "jsonl")  # ... and comes back on the same port
        _, err = sender.communicate(timeout=30)
        err = err.decode()
        rc = sender.returncode
        time.sleep(0.5)
        assert b.stop(signal.SIGTERM) == 0
    finally:
        for p in (a, b):
            if p is not None and p.proc.poll() is None:
                os.kill(p.proc.pid, signal.SIGKILL)
                p.proc.wait(timeout=5)
        if sender is not None and sender.poll() is None:
            os.kill(sender.pid, signal.SIGKILL)
            sender.wait(timeout=5)
    received = (good_payloads([json.loads(x) for x in first]) + good_payloads(all_records(a))
                + good_payloads(all_records(b)))
    undelivered = _undelivered(err)
    assert "reconnects" in err, err
    # nothing reported sent that was not received; resent packets may arrive twice
    assert len(set(received)) == n - undelivered, (len(set(received)), err)
    assert undelivered == 0 and rc == 0, err
    print(f"\nrestarted collector: {len(set(received))} of {n} received "
          f"({len(received) - len(set(received))} twice); {err.strip()}")


def test_send_reports_exactly_what_a_vanished_collector_did_not_get(tmp_path):
    n = 600
    good = good_file(tmp_path, n)
    a = ListenProcess("--bind", "tcp://127.0.0.1:0", "-f", "jsonl")
    sender = None
    try:
        sender = subprocess.Popen(heptool_cmd("send", str(good), "--to", a.url("tcp"), "--rate",
                                              "1000", "--retry", "1"), stderr=subprocess.PIPE)
        first = a.read_records(100, timeout=15)
        assert len(first) == 100
        assert a.stop(signal.SIGTERM) == 0  # goes away for good
        _, err = sender.communicate(timeout=30)
        err = err.decode()
        rc = sender.returncode
    finally:
        if a.proc.poll() is None:
            os.kill(a.proc.pid, signal.SIGKILL)
            a.proc.wait(timeout=5)
        if sender is not None and sender.poll() is None:
            os.kill(sender.pid, signal.SIGKILL)
            sender.wait(timeout=5)
    received = good_payloads([json.loads(x) for x in first] + all_records(a))
    undelivered = _undelivered(err)
    assert rc == 1 and undelivered > 0, err
    assert len(set(received)) == n - undelivered, (len(set(received)), undelivered, err)
    print(f"\nvanished collector: {len(set(received))} of {n} received; {err.strip()}")


# -- 9. every drop reason, counted once, in --stats and in the summary ---------------------
def _stats_drops(line: str) -> dict[str, int]:
    """The 'drops: reason N, ...' part of a --stats line as a dict."""
    part = line.split("; drops: ", 1)[1].split("; ", 1)[0]
    if part == "none":
        return {}
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"([^,]+?) (\d+)(?:, |$)", part)}


def test_every_drop_reason_is_in_stats_and_in_the_summary(tmp_path):
    """One listener meets every kind of drop in turn; each is counted once, by reason, and the
    periodic --stats line shows exactly what the final summary shows (a garbage-closed
    connection used to be in the summary's 'closed:' only)."""
    good = good_file(tmp_path, N_GOOD, auth="s3cret")
    expected = {
        "connection closed: garbage": 1,
        "stalled inside a packet": 1,
        "incomplete at connection end": 1,
        "connection over --max-connections": 1,
        "not allowed": 50,
        "auth key": 20,
        "not HEP": 5,
    }
    stats_lines: list[str] = []

    def wait_stats(want: dict[str, int], timeout: float = 20.0) -> dict[str, int]:
        """The first --stats line (from now on) whose drops include ``want``."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            lines = [x for x in list(lp.stderr_lines) if x.startswith("stats: ")]
            for line in lines[seen:]:
                got = _stats_drops(line)
                if all(got.get(k) == v for k, v in want.items()):
                    stats_lines.append(line)
                    return got
            seen = len(lines)
            time.sleep(0.05)
        raise AssertionError(f"no --stats line with {want}: {lp.stderr_lines[-5:]}")

    def wait_closed_by_peer(n: int, timeout: float = 20.0) -> None:
        """Until listen (-v) reported ``n`` connections closed by their client."""
        deadline = time.monotonic() + timeout
        while sum("closed (closed by peer)" in x for x in list(lp.stderr_lines)) < n:
            assert time.monotonic() < deadline, lp.stderr_lines[-5:]
            time.sleep(0.02)

    with ListenProcess("--bind", "tcp://127.0.0.1:0", "--bind", "udp://127.0.0.1:0",
                       "-f", "jsonl", "--auth-key", "s3cret", "--allow", "127.0.0.1/32",
                       "--max-connections", "3", "--stall-timeout", "1", "--stats", "0.2",
                       "-v", expect=2) as lp:
        port = tcp_port(lp)
        udp_port = int(lp.url("udp").rsplit(":", 1)[1])
        # garbage until the listener closes the connection (bounded: 200 x 4 KiB)
        rnd = random.Random(9)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as g:
            for _ in range(200):
                junk = bytes(rnd.getrandbits(8) for _ in range(4096)).replace(b"HEP", b"hep")
                try:
                    g.sendall(junk)
                except OSError:
                    break
        wait_stats({"connection closed: garbage": 1})
        # half a packet, then silence: closed after --stall-timeout
        with socket.create_connection(("127.0.0.1", port), timeout=8) as h:
            h.sendall(hep3(b"half")[:40])
            wait_stats({"stalled inside a packet": 1})
        # half a packet, then the client closes
        with socket.create_connection(("127.0.0.1", port), timeout=5) as h:
            h.sendall(hep3(b"half")[:30])
        wait_stats({"incomplete at connection end": 1})
        # --max-connections 3: the 4th connection is refused (closed at once)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        try:
            for c in idle:
                c.sendall(hep3(b"idle", "s3cret"))  # accepted: each one's packet arrives
            assert len(lp.read_records(3, timeout=15)) == 3
            with socket.create_connection(("127.0.0.1", port), timeout=8) as extra:
                try:
                    assert extra.recv(1) == b""
                except ConnectionResetError:
                    pass
            wait_stats({"connection over --max-connections": 1})
        finally:
            for c in idle:
                c.close()
        wait_closed_by_peer(4)  # (and the half packet's): the good client is not refused
        # UDP: from outside --allow, with a wrong auth key, not HEP at all
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            for _ in range(50):
                s.sendto(hep3(b"outside", "s3cret"), ("127.0.0.1", udp_port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(20):
                s.sendto(hep3(b"bad %d" % i, "wrong"), ("127.0.0.1", udp_port))
            for _ in range(5):
                s.sendto(b"hello, not HEP", ("127.0.0.1", udp_port))
        # and the good client, over TCP and UDP, all through
        send_good(good, lp.url("tcp"))
        send_good(good, lp.url("udp"), "--rate", "2000")
        last = wait_stats(expected)
        recs = lp.read_records(2 * N_GOOD, timeout=15)
        assert lp.stop(signal.SIGTERM) == 0
    got = good_payloads([json.loads(r) for r in recs])
    assert sorted(got) == sorted([f"good {i}" for i in range(N_GOOD)] * 2)
    err = summary(lp)
    assert last == expected, stats_lines
    assert drops(lp) == expected, err  # the summary says the same
    assert re.search(r"streams: \d+ garbage bytes skipped in \d+ resyncs; 70 bytes of "
                     r"incomplete packets dropped", err), err
    assert "; streams: " in stats_lines[-1]
    closed = re.search(r"^  connections: 7 accepted; closed: (.*)$", err, re.MULTILINE)
    assert closed, err
    for reason in ("garbage 1", "stalled 1", "max connections 1", "closed by peer 5"):
        assert reason in closed.group(1), err
    print(f"\nevery drop reason: good {len(got)}/{2 * N_GOOD}; summary: "
          f"{next(x for x in lp.stderr_lines if x.startswith('listen: '))}")


# -- 10. the same over TLS ----------------------------------------------------------------
def _tls_listen(cert: Path, key: Path, bind: str = "tls://127.0.0.1:0") -> ListenProcess:
    return ListenProcess("--bind", bind, "--cert", str(cert), "--key", str(key), "-f", "jsonl")


def _kill_all(*procs: object) -> None:
    for p in procs:
        proc = getattr(p, "proc", p)
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _summary_line(err: str, url: str) -> str:
    return next(x for x in err.splitlines() if x.startswith(f"send {url}: "))


def _sent(err: str, url: str) -> int:
    return int(re.match(r"send \S+: (\d+) packets", _summary_line(err, url)).group(1))


def test_send_reconnects_to_a_restarted_tls_collector(tmp_path):
    from nethelpers import make_cert

    cert, key = make_cert(tmp_path)
    n = 600
    good = good_file(tmp_path, n)
    a = _tls_listen(cert, key)
    b = None
    sender = None
    try:
        url = a.url("tls")
        sender = subprocess.Popen(heptool_cmd("send", str(good), "--to", url, "--ca", str(cert),
                                              "--rate", "400", "--retry", "10"),
                                  stderr=subprocess.PIPE)
        first = a.read_records(150, timeout=15)
        assert len(first) == 150
        assert a.stop(signal.SIGTERM) == 0  # the collector goes away ...
        time.sleep(0.5)
        b = _tls_listen(cert, key, url)  # ... and comes back on the same port, same certificate
        _, err = sender.communicate(timeout=40)
        err = err.decode()
        rc = sender.returncode
        assert b.stop(signal.SIGTERM) == 0
    finally:
        _kill_all(a, b, sender)
    received = (good_payloads([json.loads(x) for x in first]) + good_payloads(all_records(a))
                + good_payloads(all_records(b)))
    undelivered = _undelivered(err)
    assert "reconnects" in err, err
    # nothing reported sent that was not received; the collectors got what send reports
    assert len(set(received)) == n - undelivered == _sent(err, url), (len(set(received)), err)
    assert undelivered == 0 and rc == 0, err
    assert "TLS: " not in err, err  # no alert at the end (close_notify is sent)
    # in order on each connection: the second collector starts where the first stopped
    firsts = [int(p.split()[1]) for p in received]
    assert sorted(set(firsts)) == list(range(n))
    print(f"\nrestarted TLS collector: {len(set(received))} of {n} received "
          f"({len(received) - len(set(received))} twice); {err.strip()}")


def test_send_reports_exactly_what_a_vanished_tls_collector_did_not_get(tmp_path):
    from nethelpers import make_cert

    cert, key = make_cert(tmp_path)
    n = 600
    good = good_file(tmp_path, n)
    a = _tls_listen(cert, key)
    sender = None
    try:
        url = a.url("tls")
        sender = subprocess.Popen(heptool_cmd("send", str(good), "--to", url, "--ca", str(cert),
                                              "--rate", "1000", "--retry", "1"),
                                  stderr=subprocess.PIPE)
        first = a.read_records(100, timeout=15)
        assert len(first) == 100
        assert a.stop(signal.SIGTERM) == 0  # goes away for good
        _, err = sender.communicate(timeout=40)
        err = err.decode()
        rc = sender.returncode
    finally:
        _kill_all(a, sender)
    received = good_payloads([json.loads(x) for x in first] + all_records(a))
    undelivered = _undelivered(err)
    assert rc == 1 and undelivered > 0, err
    assert len(set(received)) == n - undelivered == _sent(err, url), (len(set(received)), err)
    print(f"\nvanished TLS collector: {len(set(received))} of {n} received; {err.strip()}")


# -- 11. SIGKILL of listen while send is sending to it --------------------------------------
def _decoded(path: Path) -> tuple[list[str], str, int]:
    """``heptool decode -f jsonl PATH``: the payloads read, stderr, exit status."""
    r = run_heptool("decode", "-f", "jsonl", str(path), timeout=60)
    payloads = [json.loads(line)["payload"] for line in r.stdout.splitlines()]
    return payloads, r.stderr.decode(), r.returncode


def test_sigkill_of_listen_while_send_is_sending(tmp_path):
    """listen is killed (SIGKILL, by its pid) mid-stream. Its --write-hep pcap and
    --write-jsonl file are read back by 'heptool decode': each holds the first packets in
    order, whole (a cut last record would be one error line, exit 3, never a traceback).
    send loses its collector for good: it reports every packet it could not get
    acknowledged as NOT delivered, exit 1. What the collector's host acknowledged but the
    killed process had not yet written (its last 0.1 s, its socket buffer) is the one gap
    send cannot see (module doc of heptool.net.client); the test measures it."""
    n = 3000
    good = good_file(tmp_path, n)
    pcap, jsonl = tmp_path / "k.pcap", tmp_path / "k.jsonl"
    lp = ListenProcess("--bind", "tcp://127.0.0.1:0", "-q", "--write-hep", str(pcap),
                       "--write-jsonl", str(jsonl), stdout=subprocess.DEVNULL)
    sender = None
    try:
        sender = subprocess.Popen(heptool_cmd("send", str(good), "--to", lp.url("tcp"),
                                              "--rate", "1000", "--retry", "1"),
                                  stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while jsonl.read_bytes().count(b"\n") < 300:  # written and committed: mid-stream
            assert time.monotonic() < deadline and lp.proc.poll() is None, lp.stderr_lines
            assert sender.poll() is None, sender.stderr.read().decode()
            time.sleep(0.01)
        os.kill(lp.proc.pid, signal.SIGKILL)
        assert lp.proc.wait(timeout=10) == -signal.SIGKILL
        _, err = sender.communicate(timeout=60)
        err = err.decode()
        rc = sender.returncode
    finally:
        _kill_all(lp, sender)
    in_order = [f"good {i}" for i in range(n)]
    results = {}
    for path in (pcap, jsonl):
        payloads, derr, drc = _decoded(path)
        if drc == 0:
            assert derr == "", derr
        else:  # only a cut last record: one line, exit 3, with its place
            assert drc == 3 and len(derr.splitlines()) == 1, derr
            assert derr.startswith("Error: ") and "Traceback" not in derr, derr
        assert payloads == in_order[:len(payloads)], path  # the first packets, in order
        assert len(payloads) >= 300, path
        results[path.suffix] = (len(payloads), drc)
        if drc == 0:
            # had the kill cut the last record (a write cut short), decode would keep the
            # records before it and say where, in one line: the same file, cut by hand
            cut = tmp_path / f"cut{path.suffix}"
            cut.write_bytes(path.read_bytes()[:-5])
            cpayloads, cerr, crc = _decoded(cut)
            assert crc == 3 and len(cerr.splitlines()) == 1, cerr
            assert cerr.startswith("Error: ") and cpayloads == payloads[:-1], cerr
            print(f"\n{path.suffix} cut by 5 bytes: {cerr.strip()}")
    sent, undelivered = _sent(err, lp.url("tcp")), _undelivered(err)
    assert rc == 1 and sent + undelivered == n, err
    assert "Traceback" not in err, err
    # nothing in the files that send did not count as sent
    written = max(c for c, _ in results.values())
    assert sent >= written, (sent, results, err)
    print(f"\nSIGKILL during send: pcap {results['.pcap']}, jsonl {results['.jsonl']} "
          f"(records, decode exit); send: {sent} acknowledged, {undelivered} NOT delivered, "
          f"exit {rc}; acknowledged but not yet written when killed: {sent - written}")
