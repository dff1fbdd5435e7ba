"""Live capture under bursts: what ``heptool convert -i lo`` and the agent ``heptool send -i
lo`` keep of N back-to-back SIP datagrams, with the default buffer and others.

    sudo python bench/bench_live.py                          # 1,000 / 10,000 / 50,000
    sudo python bench/bench_live.py --bursts 100000 --buffer-size 128M

For each burst size and buffer: datagrams offered (a separate process sends them back to
back to a loopback port), what the kernel counted (matched / dropped, heptool's summary),
what came out (JSON Lines written, or HEP packets received by a counting UDP socket) and
the exit status (1 when the kernel dropped packets).  Needs root or CAP_NET_RAW.
Loopback only.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEPTOOL = [sys.executable, "-m", "heptool"]

SENDER = r"""
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nCall-ID: b{i}@h\r\nCSeq: 1 OPTIONS\r\n"
             f"Content-Length: 0\r\n\r\n".encode(), ("127.0.0.1", port))
"""


def _start(args: list[str]) -> subprocess.Popen:
    p = subprocess.Popen([*HEPTOOL, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    head = []
    while True:
        line = p.stderr.readline()  # type: ignore[union-attr]
        head.append(line)
        if not line or "capturing on" in line:
            break
    p.head = "".join(head)  # type: ignore[attr-defined]
    return p


def _counts(err: str) -> tuple[int, int]:
    m = re.search(r"(\d+) packets matched the filter, (\d+) dropped", err)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def run(kind: str, n: int, buffer: str | None, port: int) -> str:
    extra = ["--buffer-size", buffer] if buffer else []
    sink = None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        if kind == "convert":
            args = ["convert", "-i", "lo", "--filter", f"udp dst port {port}", "--to", "jsonl",
                    "-o", str(out), *extra]
        else:
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:  # SO_RCVBUFFORCE (root): past net.core.rmem_max, so the sink loses nothing
                sink.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)
            except OSError:
                sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
            sink.bind(("127.0.0.1", 0))
            sink.settimeout(0.5)
            args = ["send", "-i", "lo", "--filter", f"udp dst port {port}", "--to",
                    f"udp://127.0.0.1:{sink.getsockname()[1]}", *extra]
        budget = 5 + n / 5000
        p = _start([*args, "--duration", str(budget)])
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", SENDER, str(port), str(n)], check=True)
        offered = time.monotonic() - started
        got = 0
        if sink is not None:
            while True:
                try:
                    sink.recv(65535)
                    got += 1
                except TimeoutError:
                    if p.poll() is not None:
                        break
            sink.close()
        _o, err = p.communicate()
        if kind == "convert":
            got = len(out.read_text().splitlines())
        matched, dropped = _counts(p.head + err)  # type: ignore[attr-defined]
    return (f"{kind:7} burst {n:>7,} buffer {buffer or 'default':>7}: offered in "
            f"{offered:.2f} s; kernel matched {matched:,}, dropped {dropped:,}; out {got:,} "
            f"({100 * got / n:.1f} %); exit {p.returncode}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bursts", default="1000,10000,50000")
    ap.add_argument("--buffer-size", action="append", default=None,
                    help="buffer sizes to try (repeatable; default: 64K and the default)")
    a = ap.parse_args()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))  # a port nothing else on lo uses while the bench runs
    port = probe.getsockname()[1]
    for kind in ("convert", "send"):
        for n in map(int, a.bursts.split(",")):
            for buffer in a.buffer_size or ["64K", None]:
                print(run(kind, n, buffer, port), flush=True)
    probe.close()


if __name__ == "__main__":
    main()
