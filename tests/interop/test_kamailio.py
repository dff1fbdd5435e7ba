"""Kamailio's ``siptrace`` (HEP v1, v2, v3 over UDP and TCP) into ``heptool listen``.

Kamailio 5.6 (Debian package ``kamailio``) proxies real SIP on loopback with the config of
``tests/vectors/kamailio/*.kamailio.cfg`` (the one that produced those captures), mirroring
every message with ``siptrace`` (``trace_mode=1``, ``duplicate_uri``, ``hep_version``) to a
``heptool listen`` started on free ports.  The SIP comes from sipsak when it is installed and
from a plain UDP client in the test (so the exact bytes sent are known).  Checked: every
message arrives, none lost, none extra, each decoded right (version, capture id, addresses,
ports, the request's payload byte for byte, Call-IDs).  HEPv1/v2 over TCP has no length
field: listen frames it by the SIP Content-Length (HEP-SPEC section 14).

In CI (``CI=true``) a missing kamailio fails the test; elsewhere it skips with the reason.
Loopback only; every process is stopped by its pid; every wait has a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import VECTORS, ListenProcess

pytestmark = pytest.mark.interop

MODEL = VECTORS / "kamailio" / "kamailio-hep3-udp.kamailio.cfg"
N_OPTIONS = 20


def _need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}")
                                  else None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is not installed (bash scripts/setup-peers.sh installs it)")
        pytest.skip(f"{tool} is not installed (apt-get install {tool}, or "
                    "bash scripts/setup-peers.sh kamailio)")
    return path


def _free_sip_port() -> int:
    """A loopback port free for UDP and for TCP: Kamailio listens on both (a UDP-only check
    let a port whose TCP side was taken through, and Kamailio exited at start)."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise AssertionError("no loopback port free for both UDP and TCP")


def _config(sip_port: int, hep_uri: str, version: int) -> str:
    text = MODEL.read_text()
    out = []
    for line in text.splitlines():
        if line.startswith(("listen=", "alias=")):
            continue
        if '"duplicate_uri"' in line:
            line = f'modparam("siptrace", "duplicate_uri", "{hep_uri}")'
        elif '"hep_version"' in line:
            line = f'modparam("siptrace", "hep_version", {version})'
        elif line.startswith("mpath="):
            out.append(f"listen=udp:127.0.0.1:{sip_port}")
            out.append(f"listen=tcp:127.0.0.1:{sip_port}")  # siptrace's HEP over TCP needs it
            out.append(f'alias="127.0.0.1:{sip_port}"')
        out.append(line)
    return "\n".join(out) + "\n"


def _options(call_id: str, sip_port: int, local_port: int, cseq: int) -> bytes:
    return (f"OPTIONS sip:127.0.0.1:{sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK-{call_id}\r\n"
            f"From: <sip:heptool@127.0.0.1>;tag=t{cseq}\r\n"
            f"To: <sip:127.0.0.1:{sip_port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} OPTIONS\r\nMax-Forwards: 70\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


class _Kamailio:
    def __init__(self, tmp: Path, sip_port: int, hep_uri: str, version: int) -> None:
        exe = _need("kamailio")
        cfg = tmp / "kamailio.cfg"
        cfg.write_text(_config(sip_port, hep_uri, version))
        run = tmp / "run"
        run.mkdir()
        self.log = open(tmp / "kamailio.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([exe, "-DD", "-E", "-f", str(cfg), "-Y", str(run),
                                      "-w", str(tmp)], stdout=self.log, stderr=self.log)
        self.sip_port = sip_port

    def state(self) -> str:
        """Whether it runs, and the end of its log (for a failure's message)."""
        self.log.flush()
        tail = Path(self.log.name).read_bytes()[-2000:].decode("utf-8", "replace")
        return f"kamailio exit status {self.proc.poll()}; its log ends:\n{tail}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def _sip_client(kam: _Kamailio, n: int, tag: str, timeout: float = 30.0) -> tuple[list[bytes], int]:
    """Send n OPTIONS (after Kamailio answers a first probe), each waiting for its reply."""
    sip_port = kam.sip_port
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", 0))
    local = c.getsockname()[1]
    c.settimeout(0.2)
    deadline = time.monotonic() + timeout
    sent: list[bytes] = []
    i = 0
    while len(sent) < n + 1 and time.monotonic() < deadline:
        msg = _options(f"{tag}-{i}@heptool", sip_port, local, i + 1)
        c.sendto(msg, ("127.0.0.1", sip_port))
        try:
            reply = c.recv(65535)
        except TimeoutError:
            if not sent:  # kamailio not up yet: the probe is retried (not counted)
                continue
            raise
        assert reply.startswith(b"SIP/2.0 ")
        sent.append(msg)
        i += 1
    c.close()
    assert len(sent) == n + 1, f"kamailio did not answer ({kam.state()})"
    return sent, local


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("version", [1, 2, 3])
def test_kamailio_siptrace_into_listen(tmp_path, version, transport):
    _need("kamailio")
    sip_port = _free_sip_port()
    with ListenProcess("--bind", f"{transport}://127.0.0.1:0", "-f", "jsonl") as lp:
        hep_port = int(lp.urls[0].rsplit(":", 1)[1])
        uri = f"sip:127.0.0.1:{hep_port}" + (";transport=tcp" if transport == "tcp" else "")
        kam = _Kamailio(tmp_path, sip_port, uri, version)
        lines: list[bytes] = []
        try:
            sent, local = _sip_client(kam, N_OPTIONS, f"v{version}{transport}")
            # Kamailio mirrors a message after handling it: read (before stopping it) until
            # every request and reply is in, or nothing comes for 3 s
            while len(lines) < 2 * len(sent):
                more = lp.read_records(1, timeout=3.0)
                if not more:
                    break
                lines += more
        finally:
            kam.stop()
        lines += lp.read_records(100, timeout=0.5)
        assert lp.stop() == 0
    recs = [json.loads(x) for x in lines]
    requests = [r for r in recs if r["payload"].startswith("OPTIONS ")]
    replies = [r for r in recs if r["payload"].startswith("SIP/2.0 ")]
    assert len(requests) + len(replies) == len(recs), "only SIP is traced"
    # every OPTIONS that was answered, and its reply, arrived; nothing is lost
    by_payload = {r["payload"].encode(): r for r in requests}
    for msg in sent:
        assert msg in by_payload, f"lost: {msg[:60]!r}"
    reply_ids = {r["sip"]["call_id"] for r in replies}
    assert {m.split(b"Call-ID: ")[1].split(b"\r\n")[0].decode() for m in sent} <= reply_ids
    for r in requests:
        assert r["version"] == version
        assert r["hep_transport"] == transport
        assert (r["src_ip"], r["src_port"]) == ("127.0.0.1", local)
        assert (r["dst_ip"], r["dst_port"]) == ("127.0.0.1", sip_port)
        assert r["ip_proto"] == 17
        if version >= 2:
            assert r["capture_id"] == 2001
            assert r["ts_sec"] is not None and abs(r["ts_sec"] - time.time()) < 120
    for r in replies:
        assert (r["src_ip"], r["src_port"]) == ("127.0.0.1", sip_port)
        assert (r["dst_ip"], r["dst_port"]) == ("127.0.0.1", local)
    # the summary agrees: no drops of any kind
    summary = [x for x in lp.stderr_lines if x.startswith("listen: ")]
    assert summary and "drops: none" in summary[0], lp.stderr_lines


def test_sipsak_through_kamailio_into_listen(tmp_path):
    sipsak = _need("sipsak")
    _need("kamailio")
    sip_port = _free_sip_port()
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl") as lp:
        uri = f"sip:127.0.0.1:{lp.urls[0].rsplit(':', 1)[1]}"
        kam = _Kamailio(tmp_path, sip_port, uri, 3)
        try:
            _sip_client(kam, 0, "probe")  # kamailio is up
            r = subprocess.run([sipsak, "-s", f"sip:alice@127.0.0.1:{sip_port}", "-v"],
                               capture_output=True, timeout=30, check=False)
        finally:
            kam.stop()
        lines: list[bytes] = []
        while more := lp.read_records(1, timeout=2.0):
            lines += more
        assert lp.stop() == 0
    recs = [json.loads(x) for x in lines]
    sipsak_msgs = [x for x in recs if "sipsak" in x["payload"].lower()
                   or (x.get("sip") or {}).get("cseq_method") == "OPTIONS"]
    assert r.returncode in (0, 1, 2, 3), r.stderr  # sipsak exits non-zero on a 404
    methods = [(x.get("sip") or {}).get("method") for x in sipsak_msgs]
    assert "OPTIONS" in methods
    assert any((x.get("sip") or {}).get("status") for x in sipsak_msgs)
    assert all(x["version"] == 3 and x["capture_id"] == 2001 for x in recs)
