#!/usr/bin/env python3
"""Make tests/vectors/heptool-made/kamailio-hep2-tcp.hep.pcap: Kamailio siptrace sending HEPv2
over TCP, captured on loopback with dumpcap.

    python3 scripts/capture-kamailio-hep2-tcp.py OUT_DIR

Kamailio (the Debian package, ``kamailio`` on PATH or in /usr/sbin) runs the config of
``tests/vectors/kamailio/kamailio-hep2-udp.kamailio.cfg`` with only the listen lines (127.0.0.1
only), ``duplicate_uri`` (TCP to a local sink) and the ports changed; this script sends it
plain SIP over UDP and TCP (OPTIONS, REGISTER, MESSAGE with bodies of several sizes) and
Kamailio mirrors each request and reply as HEPv2 over one TCP connection to a sink here,
which only reads.  dumpcap records that connection (``-i lo``, ``tcp port HEP``, classic
pcap).  Written out: the pcap, the exact Kamailio config, and the bytes the sink received
(``.stream.bin``: what ``heptool decode`` of the pcap must frame).

Loopback only; every process started here is stopped by its pid; every wait is bounded.
Needs root or CAP_NET_RAW for dumpcap.  Nothing of Kamailio's is copied: only run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "tests" / "vectors" / "kamailio" / "kamailio-hep2-udp.kamailio.cfg"
SIP_PORT = 25160
HEP_PORT = 29065


def config() -> str:
    out = []
    for line in MODEL.read_text().splitlines():
        if line.startswith(("listen=", "alias=", "# generated")):
            continue
        if '"duplicate_uri"' in line:
            line = f'modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:{HEP_PORT};transport=tcp")'
        elif line.startswith("mpath="):
            out.append(f"listen=udp:127.0.0.1:{SIP_PORT}")
            out.append(f"listen=tcp:127.0.0.1:{SIP_PORT}")
            out.append(f'alias="127.0.0.1:{SIP_PORT}"')
        out.append(line)
    assert any("hep_version\", 2" in x for x in out)
    return f"#!KAMAILIO\n# HEPv2 over tcp to sip:127.0.0.1:{HEP_PORT}\n" + "\n".join(out[1:]) + "\n"


def sip(method: str, n: int, local: int, transport: str, body: bytes = b"",
        user: str = "") -> bytes:
    ruri = f"sip:{user + '@' if user else ''}127.0.0.1:{SIP_PORT}"
    head = (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:{local};branch=z9hG4bK-hep2tcp-{n}\r\n"
            f"From: <sip:heptool@127.0.0.1>;tag=f{n}\r\n"
            f"To: <sip:{user or 'kamailio'}@127.0.0.1>\r\n"
            f"Call-ID: hep2tcp-{n}@heptool\r\nCSeq: {n} {method}\r\nMax-Forwards: 70\r\n")
    if method == "REGISTER":
        head += f"Contact: <sip:heptool@127.0.0.1:{local}>\r\nExpires: 60\r\n"
    if body:
        head += "Content-Type: text/plain\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body



def _stop(proc: subprocess.Popen) -> None:
    """End a process this script started, by its pid: SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

def main() -> int:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / "kamailio-hep2-tcp"
    kam_exe = shutil.which("kamailio") or "/usr/sbin/kamailio"
    dumpcap = shutil.which("dumpcap") or "/usr/bin/dumpcap"
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"kam-hep2tcp-{os.getpid()}"
    (work / "run").mkdir(parents=True)
    cfg = base.with_suffix(".kamailio.cfg")
    cfg.write_text(config())

    # the HEP sink: accepts Kamailio's connection and keeps every byte
    sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sink.bind(("127.0.0.1", HEP_PORT))
    sink.listen(4)
    sink.settimeout(1.0)
    received = bytearray()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sink.accept()
            except TimeoutError:
                continue
            conn.settimeout(0.5)
            with conn:
                while not stop.is_set():
                    try:
                        data = conn.recv(65536)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    received.extend(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    pcap = base.with_suffix(".hep.pcap")
    cap = subprocess.Popen([dumpcap, "-q", "-P", "-i", "lo", "-f", f"tcp port {HEP_PORT}",
                            "-w", str(pcap)], stderr=subprocess.PIPE)
    time.sleep(2.0)  # dumpcap -q prints nothing: give it time to open the interface
    kam_log = open(work / "kamailio.log", "wb")  # noqa: SIM115
    kam = subprocess.Popen([kam_exe, "-DD", "-E", "-f", str(cfg), "-Y", str(work / "run"),
                            "-w", str(work)], stdout=kam_log, stderr=kam_log)
    sent = 0
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.settimeout(0.5)
        local = u.getsockname()[1]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait for Kamailio: a probe OPTIONS, retried
            u.sendto(sip("OPTIONS", 0, local, "udp"), ("127.0.0.1", SIP_PORT))
            try:
                u.recv(65535)
                break
            except TimeoutError:
                continue
        else:
            raise SystemExit("kamailio did not answer")
        sent = 1
        bodies = [b"", b"hello over HEPv2/TCP", b"x" * 1500, b"line 1\r\n\r\nline 3\r\n"]
        n = 1
        for i, body in enumerate(bodies):
            for method, user in (("OPTIONS", ""), ("MESSAGE", f"nobody{i}")):
                if method == "OPTIONS" and body:
                    continue
                u.sendto(sip(method, n, local, "udp", body, user), ("127.0.0.1", SIP_PORT))
                u.recv(65535)  # its reply (200 Keepalive / 404 Not Found)
                sent += 1
                n += 1
        u.sendto(sip("REGISTER", n, local, "udp", user="heptool"), ("127.0.0.1", SIP_PORT))
        u.recv(65535)
        sent += 1
        n += 1
        # SIP over TCP too: two messages in one write (Kamailio traces them one by one)
        c = socket.create_connection(("127.0.0.1", SIP_PORT), timeout=5)
        lp = c.getsockname()[1]
        c.sendall(sip("MESSAGE", n, lp, "tcp", b"tcp body", "nobody-tcp")
                  + sip("OPTIONS", n + 1, lp, "tcp"))
        got = b""
        end = time.monotonic() + 5
        while got.count(b"SIP/2.0 ") < 2 and time.monotonic() < end:
            got += c.recv(65535)
        c.close()
        sent += 2
        # every request and its reply mirrored: wait (bounded) until the sink has them all
        end = time.monotonic() + 10
        while received.count(b"\r\nCSeq: ") < 2 * sent and time.monotonic() < end:
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        _stop(kam)
        kam_log.close()
        time.sleep(1.0)
        _stop(cap)
        stop.set()
        t.join(5)
        sink.close()
    base.with_suffix(".stream.bin").write_bytes(bytes(received))
    traced = received.count(b"\r\nCSeq: ")
    print(f"{sent} SIP requests sent, {traced} messages traced, "
          f"{len(received)} HEP bytes; {pcap}", file=sys.stderr)
    print((work / "kamailio.log").read_text(errors="replace")[-2000:], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
