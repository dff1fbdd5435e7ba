"""``heptool send -i IFACE``: the capture agent in one command (issue 13, heplify's job).

Real processes on loopback: SIP sent to a loopback port is sniffed by the agent and arrives
as HEP at a plain UDP or TCP socket, with the packet's own addresses, ports, protocol and
time.  Capturing needs root or CAP_NET_RAW: without it the capture tests are skipped with the
reason (this project's machines and CI run them as root).
"""

from __future__ import annotations

import ctypes.util
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from heptool.core.codec import decode
from heptool.core.stream import StreamDecoder

HEPTOOL = [sys.executable, "-m", "heptool"]


def _can_capture() -> str | None:
    if not sys.platform.startswith("linux"):
        return "live capture is Linux-only (AF_PACKET)"
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0).close()
    except PermissionError:
        return "needs root or CAP_NET_RAW to open a packet socket"
    if ctypes.util.find_library("pcap") is None:
        return "libpcap is not installed (it compiles --filter)"
    return None


needs_capture = pytest.mark.skipif(_can_capture() is not None, reason=str(_can_capture()))


def _sip(method: str, call_id: str, body: bytes = b"") -> bytes:
    return (f"{method} sip:bob@127.0.0.1 SIP/2.0\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _start_agent(args: list[str], prefix: tuple[str, ...] | list[str] = ()) -> subprocess.Popen:
    p = subprocess.Popen([*prefix, *HEPTOOL, "send", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = p.stderr.readline()  # type: ignore[union-attr]
        if not line:
            break
        seen.append(line)
        if "capturing on" in line:
            p.seen = seen  # type: ignore[attr-defined]
            return p
    p.kill()
    _out, err = p.communicate()
    raise AssertionError(f"the agent did not start: {''.join(seen)}{err}")


def _stop(p: subprocess.Popen) -> tuple[int, str, str]:
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out, "".join(p.seen) + err  # type: ignore[attr-defined]


@needs_capture
def test_agent_sends_captured_udp_sip_as_hep():
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(10)
    sip_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip_rx.bind(("127.0.0.1", 0))  # the SIP "server" whose port the agent watches
    port = sip_rx.getsockname()[1]
    agent = _start_agent(["-i", "lo", "--filter", f"udp port {port}", "--to",
                          f"udp://127.0.0.1:{collector.getsockname()[1]}", "--capture-id",
                          "2024", "--node-name", "edge-1"])
    sip_tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip_tx.bind(("127.0.0.1", 0))
    tx_port = sip_tx.getsockname()[1]
    sent = [_sip("INVITE", "agent-udp-1@h", b"v=0\r\n"), _sip("BYE", "agent-udp-1@h")]
    before = time.time()
    try:
        for payload in sent:
            sip_tx.sendto(payload, ("127.0.0.1", port))
        got = [decode(collector.recv(65535)) for _ in sent]
    finally:
        status, _out, err = _stop(agent)
        collector_port = collector.getsockname()[1]
        for s in (collector, sip_rx, sip_tx):
            s.close()
    assert [m.payload for m in got] == sent
    for m in got:
        assert m.version == 3 and m.proto_type == 1 and m.ip_proto == 17
        assert (m.src_ip, m.src_port) == ("127.0.0.1", tx_port)
        assert (m.dst_ip, m.dst_port) == ("127.0.0.1", port)
        assert m.capture_id == 2024 and m.node_name == "edge-1"
        assert before - 1 <= m.ts_sec + m.ts_usec / 1e6 <= time.time()
    assert status == 0, err  # SIGTERM is an agent's normal end
    assert f"send udp://127.0.0.1:{collector_port}: 2 packets" in err
    assert "send: 2 SIP messages captured (2 over UDP, 0 over TCP)" in err
    assert "capture lo: 2 packets matched the filter, 0 dropped by the kernel" in err


@needs_capture
def test_agent_reassembles_sip_over_tcp_and_sends_over_tcp():
    """SIP over TCP cut at arbitrary places and two messages in one segment: one HEP
    packet per SIP message (ip proto 6), delivered over a tcp:// target."""
    collector = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    collector.bind(("127.0.0.1", 0))
    collector.listen(1)
    received = StreamDecoder()
    hep_done = threading.Event()
    messages: list = []

    def collect() -> None:
        conn, _ = collector.accept()
        conn.settimeout(15)
        with conn:
            while len(messages) < 3:
                data = conn.recv(65536)
                if not data:
                    break
                received.feed(data)
                messages.extend(received)
        hep_done.set()

    threading.Thread(target=collect, daemon=True).start()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    agent = _start_agent(["-i", "lo", "--filter", f"tcp port {port}", "--to",
                          f"tcp://127.0.0.1:{collector.getsockname()[1]}"])
    first = _sip("INVITE", "agent-tcp@h", b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n")
    second, third = _sip("ACK", "agent-tcp@h"), _sip("BYE", "agent-tcp@h")
    client = socket.create_connection(("127.0.0.1", port))
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer, _ = server.accept()
    client_port = client.getsockname()[1]
    try:
        client.sendall(first[:30])  # a message cut in three segments
        time.sleep(0.1)
        client.sendall(first[30:-5])
        time.sleep(0.1)
        client.sendall(first[-5:])
        time.sleep(0.1)
        client.sendall(second + third)  # two messages in one segment
        assert hep_done.wait(15), messages
    finally:
        status, _out, err = _stop(agent)
        for s in (client, peer, server, collector):
            s.close()
    assert [m.payload for m in messages] == [first, second, third]
    for m in messages:
        assert m.ip_proto == 6 and m.proto_type == 1
        assert (m.src_ip, m.src_port, m.dst_ip, m.dst_port) == ("127.0.0.1", client_port,
                                                                 "127.0.0.1", port)
    assert status == 0, err
    assert "send: 3 SIP messages captured (0 over UDP, 3 over TCP)" in err


@needs_capture
def test_agent_keeps_what_it_captured_while_the_collector_is_down():
    """The collector is down when the agent starts and while SIP is captured; it comes up
    later and gets every message, in order, with no further traffic to carry them (the
    agent keeps its connections going while idle)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    cport = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    sip_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip_rx.bind(("127.0.0.1", 0))
    port = sip_rx.getsockname()[1]
    agent = _start_agent(["-i", "lo", "--filter", f"udp dst port {port}", "--to",
                          f"tcp://127.0.0.1:{cport}"])
    sent = [_sip("OPTIONS", f"while-down-{i}@h") for i in range(3)]
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    collector.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    messages: list = []
    try:
        for payload in sent:
            tx.sendto(payload, ("127.0.0.1", port))
        time.sleep(1.0)  # captured, queued: the collector is still down
        collector.bind(("127.0.0.1", cport))
        collector.listen(1)
        collector.settimeout(15)
        conn, _ = collector.accept()  # the agent reconnects by itself (backoff <= 2 s)
        conn.settimeout(15)
        dec = StreamDecoder()
        while len(messages) < 3:
            data = conn.recv(65536)
            if not data:
                break
            dec.feed(data)
            messages.extend(dec)
        conn.close()
    finally:
        status, _out, err = _stop(agent)
        for s in (collector, sip_rx, tx):
            s.close()
    assert [m.payload for m in messages] == sent, err
    assert status == 0, err
    assert f"send tcp://127.0.0.1:{cport}: 3 packets" in err


def _setpriv() -> str | None:
    import os
    import shutil

    if os.geteuid() != 0:
        return "runs as root to keep only CAP_NET_RAW (setpriv)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    r = subprocess.run(["setpriv", "--bounding-set=-all,+net_raw", "true"], check=False,
                       capture_output=True)
    if r.returncode != 0:
        return f"setpriv cannot drop capabilities here: {r.stderr.decode().strip()}"
    return None


@needs_capture
@pytest.mark.skipif(_setpriv() is not None, reason=str(_setpriv()))
def test_agent_needs_cap_net_raw_and_nothing_else():
    """What contrib/heptool-agent.service grants (CAP_NET_RAW only) is enough: the agent
    captures and sends; the buffer the kernel caps without CAP_NET_ADMIN is said at start.
    Without CAP_NET_RAW it stops at once, naming the capability (status 1)."""
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(10)
    sip_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip_rx.bind(("127.0.0.1", 0))
    port = sip_rx.getsockname()[1]
    target = f"udp://127.0.0.1:{collector.getsockname()[1]}"
    agent = _start_agent(["-i", "lo", "--filter", f"udp dst port {port}", "--to", target],
                         prefix=["setpriv", "--bounding-set=-all,+net_raw", "--inh-caps=-all"])
    try:
        payload = _sip("OPTIONS", "only-net-raw@h")
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(payload, ("127.0.0.1", port))
        got = decode(collector.recv(65535))
    finally:
        status, _out, err = _stop(agent)
        collector.close()
        sip_rx.close()
    assert got.payload == payload and got.dst_port == port
    assert status == 0, err
    rmem_max = int(open("/proc/sys/net/core/rmem_max").read())  # noqa: SIM115
    if rmem_max < 32 << 20:
        assert "net.core.rmem_max caps it without CAP_NET_ADMIN" in err, err
    r = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", *HEPTOOL, "send",
                        "-i", "lo", "--to", target], check=False, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "needs the CAP_NET_RAW capability" in r.stderr


@pytest.mark.parametrize(("args", "text"), [
    (["x.pcap", "-i", "lo"], "either INPUT or -i IFACE"),
    (["--filter", "port 5060"], "--filter needs -i IFACE"),
    (["--buffer-size", "1M"], "--buffer-size needs -i IFACE"),
    (["-i", "lo", "--rate", "10"], "--rate cannot be used with it"),
    (["-i", "lo", "--loop", "0"], "--loop cannot be used with it"),
    (["-i", "lo", "--scenario", "call"], "--scenario builds packets"),
    (["-i", "nosuch0"], "no network interface 'nosuch0'"),
])
def test_agent_usage_errors(tmp_path, args, text):
    (tmp_path / "x.pcap").write_bytes(b"")
    r = subprocess.run([*HEPTOOL, "send", *args, "--to", "udp://127.0.0.1:9"], cwd=tmp_path,
                       check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert text in r.stderr, r.stderr
