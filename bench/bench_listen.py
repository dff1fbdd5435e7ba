"""How much HEP ``heptool listen`` takes in on loopback, and how fast ``heptool send`` sends.

    python bench/bench_listen.py                      # everything, 10 s per UDP rate
    python bench/bench_listen.py --duration 3 --rates 100000,200000 --only udp

1. UDP: a separate sender process offers ~700-byte HEP3 SIP packets at fixed rates for
   ``--duration`` seconds each to ``heptool listen`` (a) ``-f jsonl > /dev/null`` and (b)
   ``--write-hep file.pcap -q``; listen's own summary says what it received; loss = offered -
   received (listen also reports the kernel's receive-buffer drops).
2. TCP: the sender writes the packets back to back as fast as the connection takes them;
   listen ``-f jsonl > /dev/null`` with ``--count N``: sustained packets/s = N / time.
3. ``heptool send --pace max`` over UDP to a plain counting socket: packets/s as its
   summary says.

Each figure says which side limited it: when the sender could not offer the rate asked for,
the sender did. Listen's own CPU time (packets per CPU-second) is printed too: on a busy
machine it moves much less than the wall-clock rates. ``--heptool DIR`` runs another
checkout's heptool with this same bench (before/after comparisons). Loopback only.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
#: the checkout whose heptool runs (--heptool DIR: compare another one with the same bench)
HEPTOOL = ROOT


def make_packets(n: int = 64) -> list[bytes]:
    """Distinct ~700-byte HEP3 packets carrying SIP INVITEs."""
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    out = []
    for i in range(n):
        call = f"{i:08x}bench@192.0.2.10"
        sip = (f"INVITE sip:bob@198.51.100.20 SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{i:06d}\r\n"
               f"From: <sip:alice@192.0.2.10>;tag={i:06d}\r\n"
               f"To: <sip:bob@198.51.100.20>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\n"
               f"Contact: <sip:alice@192.0.2.10:5060>\r\nMax-Forwards: 70\r\n"
               f"Content-Type: application/sdp\r\n")
        body = ("v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
        sip += f"Content-Length: {len(body)}\r\n\r\n{body}"
        m = HepMessage(src_ip="192.0.2.10", src_port=5060, dst_ip="198.51.100.20",
                       dst_port=5060, ts_sec=1_795_000_000 + i, ts_usec=i, proto_type=1,
                       capture_id=2001, payload=sip.encode())
        out.append(encode(m))
    return out


# -- the sender process -----------------------------------------------------------------------
def sender_main(argv: list[str]) -> None:
    mode, host, port, rate, duration = argv[0], argv[1], int(argv[2]), float(argv[3]), float(argv[4])
    packets = make_packets()
    if mode == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.connect((host, port))
        send = s.send
        sent = 0
        n = len(packets)
        start = time.perf_counter()
        end = start + duration
        tick = 0.001
        per_tick = rate * tick
        due = 0.0
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            due = (now - start) * rate
            k = int(due) - sent
            if k <= 0:
                time.sleep(tick / 2)
                continue
            for _ in range(min(k, int(per_tick * 20) + 1)):
                try:
                    send(packets[sent % n])
                except OSError:
                    pass
                sent += 1
        elapsed = time.perf_counter() - start
        print(f"{sent} {elapsed:.4f}", flush=True)
    else:  # tcp: as fast as the connection takes them, `rate` = number of packets
        s = socket.create_connection((host, port))
        total = int(rate)
        blob = b"".join(packets)
        per = len(packets)
        start = time.perf_counter()
        sent = 0
        while sent + per <= total:
            s.sendall(blob)
            sent += per
        if sent < total:
            s.sendall(b"".join(packets[: total - sent]))
            sent = total
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        print(f"{sent} {time.perf_counter() - start:.4f}", flush=True)


# -- helpers ----------------------------------------------------------------------------------
_LISTEN = re.compile(r"^listening on (udp|tcp)://([\d.]+):(\d+)$")
_SUMMARY = re.compile(r"^listen: (\d+) packets received")
_KDROPS = re.compile(r"kernel receive-buffer drops:? (\d+)")
_TOTAL = re.compile(r"^stats: .*; total (\d+);")


class Listen:
    def __init__(self, *args: str, stdout: int | None = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "heptool", "listen", *args],
                                     stdout=stdout, stderr=subprocess.PIPE, cwd=HEPTOOL, text=True)
        self.err: list[str] = []
        self.cpu: float | None = None  # listen's user + system CPU seconds, once it ended
        self.port = 0
        self.ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self.ready.wait(20):
            self.kill()
            raise RuntimeError(f"listen did not start: {self.err}")

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            self.err.append(line)
            m = _LISTEN.match(line)
            if m:
                self.port = int(m.group(3))
                self.ready.set()

    def total(self) -> int:
        """Packets received so far, from the latest --stats line."""
        for line in reversed(self.err):
            m = _TOTAL.match(line)
            if m:
                return int(m.group(1))
        return 0

    def wait(self, timeout: float) -> None:
        """Wait for listen to end and take its CPU time (os.wait4: a figure that depends
        much less than wall time on what else the machine runs)."""
        deadline = time.monotonic() + timeout
        while self.proc.returncode is None:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.cpu = ru.ru_utime + ru.ru_stime
                return
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.proc.args, timeout)
            time.sleep(0.01)

    def cpu_text(self, packets: int) -> str:
        if not self.cpu:
            return ""
        return f"; listen CPU {self.cpu:.2f} s = {packets / self.cpu:,.0f} packets per CPU-second"

    def stop(self) -> tuple[int, int | None]:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            self.wait(60)
        finally:
            self.kill()
        time.sleep(0.1)
        got, kd = 0, None
        for line in self.err:
            m = _SUMMARY.match(line)
            if m:
                got = int(m.group(1))
            m = _KDROPS.search(line)
            if m:
                kd = int(m.group(1))
        return got, kd

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def run_sender(mode: str, port: int, rate: float, duration: float) -> tuple[int, float]:
    out = subprocess.run([sys.executable, __file__, "--_sender", mode, "127.0.0.1", str(port),
                          str(rate), str(duration)], capture_output=True, text=True,
                         timeout=duration + 120, check=True).stdout.split()
    return int(out[0]), float(out[1])


def bench_udp(label: str, args: list[str], rates: list[int], duration: float) -> None:
    for rate in rates:
        lp = Listen("--bind", "udp://127.0.0.1:0", "--stats", "0.25", *args)
        try:
            time.sleep(0.3)
            sent, elapsed = run_sender("udp", lp.port, rate, duration)
            at_end = lp.total()
            # what sits in the kernel's receive buffer (256 MiB asked) is not lost: wait until
            # listen has read it (its count stops moving), at most 2 minutes
            t_end = time.monotonic()
            last, still = -1, 0.0
            while time.monotonic() - t_end < 120:
                time.sleep(0.25)
                cur = lp.total()
                if cur >= sent:
                    break
                if cur == last:
                    still += 0.25
                    if still >= 1.0:
                        break
                else:
                    still = 0.0
                last = cur
            drained = time.monotonic() - t_end
        finally:
            got, kd = lp.stop()
        offered = sent / elapsed
        loss = sent - got
        parts = []
        if offered < 0.98 * rate:
            parts.append(f"the sender could offer only {offered:,.0f}/s")
        if loss > 0:
            parts.append("listen lost packets (it read slower than offered, its receive buffer "
                         "overflowed)")
        limited = "; ".join(parts) or "neither (offered in full, nothing lost)"
        print(f"UDP {label:28s} asked {rate:>8,}/s offered {offered:>9,.0f}/s for {elapsed:.1f} s:"
              f" sent {sent:>9,} received {got:>9,} lost {loss:>7,} ({100 * loss / max(sent, 1):.2f}%)"
              f" kernel drops {kd}; read {at_end:,} during the offer ({at_end / elapsed:,.0f}/s),"
              f" the rest from the receive buffer in {drained:.1f} s; limit: {limited}"
              + lp.cpu_text(got), flush=True)


def bench_tcp(n: int, label: str, args: list[str]) -> None:
    lp = Listen("--bind", "tcp://127.0.0.1:0", "--count", str(n), *args)
    try:
        t0 = time.perf_counter()
        sent, _ = run_sender("tcp", lp.port, n, 0)
        lp.wait(300)
        t = time.perf_counter() - t0
    finally:
        got, _ = lp.stop()
    print(f"TCP {label}: {got:,} of {sent:,} packets in {t:.2f} s = {got / t:,.0f} packets/s "
          "sustained (limit: listen; the sender writes back to back and waits on TCP "
          "backpressure)" + lp.cpu_text(got), flush=True)


def bench_send(n: int) -> None:
    packets = make_packets()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.hep"
        with open(path, "wb") as f:
            f.writelines(packets[i % len(packets)] for i in range(n))
        # the receiver is a socket nobody reads (the kernel queues, then drops): all the CPU
        # left goes to the sender, whose own rate is what is measured here
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        port = rx.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "heptool", "send", str(path), "--to",
                            f"udp://127.0.0.1:{port}", "--pace", "max"], capture_output=True,
                           text=True, timeout=600, cwd=HEPTOOL, check=False)
        rx.close()
    line = r.stderr.strip().splitlines()[0] if r.stderr.strip() else r.stderr
    print(f"send --pace max over UDP ({n:,} packets from a HEP file): {line}", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_sender":
        sender_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rates", default="50000,100000,200000,300000")
    ap.add_argument("--only", choices=["udp-jsonl", "udp-pcap", "tcp", "send"], action="append")
    ap.add_argument("--tcp-packets", type=int, default=1_500_000)
    ap.add_argument("--send-packets", type=int, default=1_000_000)
    ap.add_argument("--heptool", type=Path, default=ROOT, metavar="DIR",
                    help="run the heptool of this checkout (default: this one)")
    a = ap.parse_args()
    global HEPTOOL
    HEPTOOL = a.heptool.resolve()
    rates = [int(x) for x in a.rates.split(",")]
    only = set(a.only or ["udp-jsonl", "udp-pcap", "tcp", "send"])
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; heptool {HEPTOOL}",
          flush=True)
    if "udp-jsonl" in only:
        bench_udp("listen -f jsonl >/dev/null", ["-f", "jsonl"], rates, a.duration)
    if "udp-pcap" in only:
        with tempfile.TemporaryDirectory() as d:
            # --overwrite: one listen per rate, each on the same file
            bench_udp("listen --write-hep f.pcap -q", ["--write-hep", str(Path(d) / "f.pcap"),
                                                        "-q", "--overwrite"], rates, a.duration)
    if "tcp" in only:
        bench_tcp(a.tcp_packets, "listen -f jsonl >/dev/null", ["-f", "jsonl"])
        with tempfile.TemporaryDirectory() as d:
            bench_tcp(a.tcp_packets, "listen --write-hep f.pcap -q",
                      ["--write-hep", str(Path(d) / "f.pcap"), "-q"])
    if "send" in only:
        bench_send(a.send_packets)


if __name__ == "__main__":
    main()
