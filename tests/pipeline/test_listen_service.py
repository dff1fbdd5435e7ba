"""``heptool listen`` as a service an operator leaves running (issue 13): a restart never
destroys a capture, SIGHUP reopens the outputs, a forward down at the start does not stop
it and its state is visible, every dropped packet is told. Real processes on loopback,
ephemeral ports, every wait bounded, every process stopped by its pid."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import VECTORS, ListenProcess, hep_packets, run_heptool

from heptool.core.codec import encode
from heptool.core.message import HepMessage

SOURCE = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
SIP = (b"OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nCall-ID: svc%d@test\r\nCSeq: 1 OPTIONS\r\n"
       b"Content-Length: 0\r\n\r\n")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def packets(n: int, **fields) -> list[bytes]:
    return [encode(HepMessage(src_ip="192.0.2.1", src_port=5060, dst_ip="192.0.2.2",
                              dst_port=5060, ts_sec=1_700_000_000 + i, ts_usec=i,
                              proto_type=1, capture_id=7, payload=SIP % i, **fields))
            for i in range(n)]


def wait_for(cond, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what or cond}"
        time.sleep(0.02)


def sip_frames(path: Path) -> list[bytes]:
    import dpkt

    with open(path, "rb") as f:
        return [bytes(buf) for _ts, buf in dpkt.pcap.Reader(f)]


def files_written(lp: ListenProcess) -> list[str]:
    """The files the summary says were written."""
    for line in lp.stderr_lines:
        m = re.match(r"^  \d+ files? written: (.*)$", line)
        if m:
            return m.group(1).split(", ")
    raise AssertionError(f"no 'files written' in the summary: {lp.stderr_lines}")


def numbered(tmp_path: Path, pattern: str) -> list[Path]:
    return sorted(tmp_path.glob(pattern), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


# -- issue 13 #2: a restart never destroys what an earlier run captured ----------------------

def test_restart_twice_with_rotation_keeps_every_run(tmp_path):
    expected = hep_packets(SOURCE)
    n = len(expected)
    hep, sip, jsonl = tmp_path / "h.pcap", tmp_path / "s.pcap", tmp_path / "r.jsonl"
    for _run in range(3):
        before = set(tmp_path.iterdir())
        with ListenProcess("--bind", "tcp://127.0.0.1:0", "--write-hep", str(hep),
                           "--write-sip", str(sip), "--write-jsonl", str(jsonl),
                           "--rotate-size", "8K", "-q", "--count", str(n)) as lp:
            r = run_heptool("send", str(SOURCE), "--to", lp.url("tcp"))
            assert r.returncode == 0, r.stderr
            assert lp.wait() == 0, lp.stderr_lines
            time.sleep(0.05)  # the stderr pump
        new = set(tmp_path.iterdir()) - before
        # every file written is in the summary, --write-sip's rotated ones too
        assert sorted(files_written(lp)) == sorted(str(p) for p in new)
        assert any(p.name.startswith("s-") for p in new)
    hep_files = numbered(tmp_path, "h-*.pcap")
    assert [p for f in hep_files for p in hep_packets(f)] == expected * 3
    jsonl_files = numbered(tmp_path, "r-*.jsonl")
    assert sum(len(f.read_text().splitlines()) for f in jsonl_files) == 3 * n
    z = tmp_path / "convert.pcap"
    assert run_heptool("convert", str(SOURCE), "-o", str(z)).returncode == 0
    one_run = sip_frames(z)
    assert [fr for f in numbered(tmp_path, "s-*.pcap") for fr in sip_frames(f)] == one_run * 3
    assert not hep.exists() and not sip.exists() and not jsonl.exists()


@pytest.mark.parametrize("option", ["--write-hep", "--write-sip", "--write-jsonl"])
def test_an_output_holding_data_is_refused_unless_overwrite(tmp_path, option):
    path = tmp_path / ("out.jsonl" if option == "--write-jsonl" else "out.pcap")
    path.write_bytes(b"an earlier capture")
    r = run_heptool("listen", "--bind", "udp://127.0.0.1:0", option, str(path), "-q",
                    "--duration", "0.2")
    assert r.returncode == 2, r.stderr
    err = r.stderr.decode().splitlines()
    assert len(err) == 1 and err[0].startswith(f"Error: {option} {path} already holds 18 bytes")
    assert "--overwrite" in err[0]
    assert path.read_bytes() == b"an earlier capture"
    r = run_heptool("listen", "--bind", "udp://127.0.0.1:0", option, str(path), "-q",
                    "--duration", "0.2", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert b"an earlier capture" not in path.read_bytes()
    empty = tmp_path / ("empty" + path.suffix)
    empty.touch()  # nothing to lose: used as it is
    r = run_heptool("listen", "--bind", "udp://127.0.0.1:0", option, str(empty), "-q",
                    "--duration", "0.2")
    assert r.returncode == 0, r.stderr


# -- issue 13 #5: SIGHUP reopens the outputs (logrotate) and goes on -------------------------

@pytest.mark.parametrize("rotated", [False, True], ids=["unrotated", "rotated"])
def test_sighup_during_traffic_loses_nothing(tmp_path, rotated):
    n = 400
    sent = packets(n)
    hep, sip, jsonl = tmp_path / "h.pcap", tmp_path / "s.pcap", tmp_path / "r.jsonl"
    extra = ("--rotate-size", "1G") if rotated else ()
    with ListenProcess("--bind", "tcp://127.0.0.1:0", "--write-hep", str(hep), "--write-sip",
                       str(sip), "--write-jsonl", str(jsonl), "-q", "--count", str(n),
                       *extra) as lp:
        port = int(lp.url("tcp").rsplit(":", 1)[1])
        first = tmp_path / ("h-00000.pcap" if rotated else "h.pcap")

        def sender() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                for p in sent:
                    s.sendall(p)
                    time.sleep(0.003)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        wait_for(lambda: len(hep_packets(first)) >= 100, what="100 packets in the first file")
        if not rotated:  # what logrotate does before it signals
            for p in (hep, sip, jsonl):
                p.rename(p.with_name(p.name + ".1"))
        os.kill(lp.proc.pid, signal.SIGHUP)
        t.join(30)
        assert lp.wait(30) == 0, lp.stderr_lines  # not 129: it went on to --count
        time.sleep(0.05)
    assert any("output files reopened" in line for line in lp.stderr_lines), lp.stderr_lines
    if rotated:
        parts = {name: [tmp_path / f"{name}-0000{i}{ext}" for i in (0, 1)]
                 for name, ext in (("h", ".pcap"), ("s", ".pcap"), ("r", ".jsonl"))}
    else:
        parts = {p.stem: [p.with_name(p.name + ".1"), p] for p in (hep, sip, jsonl)}
    got = [pk for f in parts["h"] for pk in hep_packets(f)]
    assert got == sent
    assert all(len(hep_packets(f)) > 0 for f in parts["h"])  # both files took packets
    lines = [json.loads(x) for f in parts["r"] for x in f.read_text().splitlines()]
    assert [rec["sip"]["call_id"] for rec in lines] == [f"svc{i}@test" for i in range(n)]
    frames = [fr for f in parts["s"] for fr in sip_frames(f)]
    assert len(frames) == n and all(SIP % i in fr for i, fr in enumerate(frames))
    # rotated: every file; unrotated: each name once (what was moved away is the mover's)
    want = [f for k in "hsr" for f in parts[k]] if rotated else [hep, sip, jsonl]
    assert sorted(files_written(lp)) == sorted(str(f) for f in want)


# -- issue 13 #3/#4: a forward down at the start; each forward's state visible ---------------

def _closed_port() -> int:
    """A loopback TCP port nothing listens on (bound without listen(): refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_forward_down_at_start_is_served_later_and_the_others_meanwhile(tmp_path):
    n = 50
    sent = packets(n)
    port = _closed_port()
    down = f"tcp://127.0.0.1:{port}"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "raw", "--count", str(n),
                       "-o", str(tmp_path / "other.hep")) as other, \
         ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "--forward", down, "--forward",
                       other.url("udp"), "--stats", "0.2", "-v") as proxy:
        udp_port = int(proxy.url("udp").rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in sent:
                s.sendto(p, ("127.0.0.1", udp_port))
                time.sleep(0.001)
        assert other.wait(20) == 0, other.stderr_lines  # served while the first is down

        def stats_with(text: str) -> str | None:
            return next((x for x in list(proxy.stderr_lines)
                         if x.startswith("stats: ") and text in x), None)

        wait_for(lambda: stats_with(f"forward {down} DOWN, queued {n}, sent 0"),
                 what="a stats line with the forward down")
        line = stats_with(f"forward {down} DOWN, queued {n}, sent 0")
        assert re.match(rf"^stats: {STAMP} ", line), line
        assert "drops: none" not in line and f"forward {down} down ({n} queued)" in line
        y = tmp_path / "late.pcap"
        with ListenProcess("--bind", down, "--write-hep", str(y), "-q",
                           "--count", str(n)) as late:
            assert late.wait(30) == 0, late.stderr_lines
        assert hep_packets(y) == sent  # the queue, in order
        wait_for(lambda: stats_with(f"forward {down} up, queued 0, sent {n}, undelivered 0"),
                 what="a stats line with the forward up")
        assert stats_with(f"forward {down} up").split("drops: ")[1].startswith("none;")
        assert proxy.stop(signal.SIGTERM) == 0
    summary = "\n".join(proxy.stderr_lines)
    assert re.search(r"^listen: 50 packets received \(udp 50\); 50 accepted; drops: none$",
                     summary, re.MULTILINE), summary
    assert f"  forward {down}: {n} sent, 0 undelivered" in summary
    # -v tells the forward's connection events
    events = [x for x in proxy.stderr_lines if x.startswith(f"forward {down}: ")]
    failed = next(i for i, x in enumerate(events) if "retrying in the background" in x)
    assert any(x.endswith("connected") or "connected (" in x for x in events[failed:]), events


def test_undelivered_forward_packets_are_drops_in_the_summary():
    n = 5
    down = f"tcp://127.0.0.1:{_closed_port()}"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "--forward", down,
                       "--count", str(n)) as proxy:
        udp_port = int(proxy.url("udp").rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in packets(n):
                s.sendto(p, ("127.0.0.1", udp_port))
        assert proxy.wait(30) == 0, proxy.stderr_lines
        time.sleep(0.05)
    first = next(x for x in proxy.stderr_lines if x.startswith("listen: "))
    assert first.endswith(f"drops: forward {down} undelivered {n}"), first
    assert any(x.startswith(f"  forward {down}: 0 sent, {n} undelivered")
               for x in proxy.stderr_lines), proxy.stderr_lines


# -- issue 13 #9: listen -v tells every dropped packet, rate-limited; stats lines timed --------

def test_verbose_tells_auth_key_and_allow_drops_rate_limited():
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "-v", "--auth-key", "k",
                       "--allow", "127.0.0.1/32", "--stats", "0.2") as lp:
        udp_port = int(lp.url("udp").rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in packets(25, auth_key="wrong"):
                s.sendto(p, ("127.0.0.1", udp_port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            for p in packets(3, auth_key="k"):
                s.sendto(p, ("127.0.0.1", udp_port))
        wait_for(lambda: any(x.startswith("stats: ") and "auth key 25" in x
                             and "not allowed 3" in x for x in list(lp.stderr_lines)),
                 what="the drops in a stats line")
        assert lp.stop(signal.SIGTERM) == 0
    err = lp.stderr_lines
    shown = [x for x in err if re.match(r"^dropped a udp packet from 127\.0\.0\.1:\d+: auth key "
                                        r"\(another auth key\)$", x)]
    held = [int(m.group(1)) for x in err
            if (m := re.match(r"^dropped (\d+) more packets?: auth key \(over 10 a second", x))]
    assert held and len(shown) <= 20 and len(shown) + sum(held) == 25, err
    assert sum(bool(re.match(r"^dropped a udp packet from 127\.0\.0\.2:\d+: not allowed$", x))
               for x in err) == 3, err
    stats = [x for x in err if x.startswith("stats: ")]
    assert stats and all(re.match(rf"^stats: {STAMP} ", x) for x in stats), stats


# -- issue 13 #11: Ctrl-C ends listen normally, as documented --------------------------------

def test_ctrl_c_ends_listen_with_status_0_as_documented(tmp_path):
    y = tmp_path / "y.pcap"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-hep", str(y), "-q") as lp:
        r = run_heptool("send", str(SOURCE), "--to", lp.url("udp"))
        assert r.returncode == 0
        wait_for(lambda: len(hep_packets(y)) == 60, what="the packets in the pcap")
        assert lp.stop(signal.SIGINT) == 0
    assert any(x.startswith("listen: 60 packets received") for x in lp.stderr_lines)
    root = Path(__file__).resolve().parents[2]
    man = (root / "man" / "heptool-listen.1").read_text()
    exit_section = man.split('.SH "EXIT STATUS"')[1].split(".SH")[0]
    entry_130 = exit_section.split("\\fB130\\fP")[1].split(".TP")[0]
    assert "listen" in entry_130 and "0" in entry_130, entry_130
    assert "exit status 0 (not 130)" in man.replace("\\-", "-").replace("\n", " ")
    readme = (root / "README.md").read_text()
    assert "Ctrl-C (SIGINT) and SIGTERM end the run normally" in readme.replace("\n", " ")


# -- issue 13: a TLS client certificate for --forward tls:// (mTLS to the collector) ---------

def test_forward_tls_with_a_client_certificate(tmp_path):
    from nethelpers import load_ca, make_cert

    ca_cert, ca_key = make_cert(tmp_path, "ca")
    srv_cert, srv_key = make_cert(tmp_path, "srv", ca=load_ca(ca_cert, ca_key))
    cli_cert, cli_key = make_cert(tmp_path, "cli", ca=load_ca(ca_cert, ca_key))
    n = 20
    sent = packets(n)
    y = tmp_path / "mtls.pcap"
    with ListenProcess("--bind", "tls://127.0.0.1:0", "--cert", str(srv_cert), "--key",
                       str(srv_key), "--client-ca", str(ca_cert), "--write-hep", str(y), "-q",
                       "--count", str(n)) as collector, \
         ListenProcess("--bind", "udp://127.0.0.1:0", "-q", "--forward", collector.url("tls"),
                       "--forward-ca", str(ca_cert), "--forward-cert", str(cli_cert),
                       "--forward-key", str(cli_key), "--count", str(n)) as proxy:
        udp_port = int(proxy.url("udp").rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in sent:
                s.sendto(p, ("127.0.0.1", udp_port))
                time.sleep(0.001)
        assert proxy.wait(30) == 0, proxy.stderr_lines
        assert collector.wait(30) == 0, collector.stderr_lines
    assert hep_packets(y) == sent
    time.sleep(0.05)
    assert any(x.startswith(f"  forward {collector.url('tls')}: {n} sent, 0 undelivered")
               for x in proxy.stderr_lines), proxy.stderr_lines


def test_forward_cert_needs_a_tls_forward(tmp_path):
    pem = tmp_path / "c.pem"
    pem.write_text("x")
    r = run_heptool("listen", "--bind", "udp://127.0.0.1:0", "--forward", "udp://127.0.0.1:9",
                    "--forward-cert", str(pem), "--duration", "0.1")
    assert r.returncode == 2 and b"--forward-cert/--forward-key need a tls:// --forward" in r.stderr
    r = run_heptool("listen", "--bind", "udp://127.0.0.1:0", "--forward", "tls://127.0.0.1:9",
                    "--forward-cert", str(pem), "--duration", "0.1")
    assert r.returncode == 1 and b"cannot load the TLS client certificate" in r.stderr, r.stderr


def test_sigterm_reads_the_datagrams_already_in_the_receive_buffer(tmp_path):
    """Datagrams that reached the kernel before the stop are read, not thrown away with the
    socket: listen is frozen (SIGSTOP) while 3,000 packets queue in its UDP buffer, then
    SIGTERM + SIGCONT; every one is in --write-hep and the summary."""
    pkts = packets(3001)
    out = tmp_path / "h.pcap"
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-hep", str(out),
                       "-f", "jsonl") as lp:
        host, port = lp.url("udp")[len("udp://"):].rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(pkts[0], (host, int(port)))
        assert len(lp.read_records(1)) == 1  # the receive loop runs (signals handled)
        os.kill(lp.proc.pid, signal.SIGSTOP)
        try:
            for p in pkts[1:]:
                s.sendto(p, (host, int(port)))
            s.close()
            os.kill(lp.proc.pid, signal.SIGTERM)
        finally:
            os.kill(lp.proc.pid, signal.SIGCONT)
        assert lp.wait() == 0, lp.stderr_lines
    time.sleep(0.05)
    assert len(sip_frames(out)) == len(pkts), lp.stderr_lines
    assert any("3001 packets received" in line for line in lp.stderr_lines), lp.stderr_lines
