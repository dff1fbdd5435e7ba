"""``heptool listen --workers``: the zero-loss UDP rate with 1 and 2 workers, side by side.

    python bench/bench_workers.py                     # 4 s per rate, both outputs
    python bench/bench_workers.py --duration 3 --rates 60000,90000,120000 --only jsonl
    python bench/bench_workers.py --drain-only --only jsonl --only pcap --only parquet

For each output (``-f jsonl > /dev/null``, ``--write-hep f.pcap -q``; with ``--only parquet``,
``--write-parquet DIR -q``, which needs heptool[parquet]) and each number of workers (1, 2):

* the climb: a separate sender process offers ~700-byte HEP3 SIP INVITEs (those of
  bench_listen.py) at rising fixed rates for ``--duration`` seconds, from 512 UDP sockets
  (512 source ports, ``BENCH_SOCKETS`` to change: SO_REUSEPORT hashes a datagram by its
  addresses and ports, so one socket reaches one worker only, and with few flows the split
  is uneven); listen's summary says what it received.  The zero-loss rate is the highest
  rate that was offered in full, received in full, and at least 90% read while it was
  offered (what sits in the kernel's 256 MiB receive buffer when the offer ends is waited
  for and counted, but a listen that reads slower than the offer only looks loss-free for as
  long as that buffer lasts).  The climb stops at the first rate that fails.  The sender
  shares the 2 cores with listen here (in real use it is other hosts).
* the burst drain (``--drain N``, 200,000 by default): listen's processes are stopped
  (SIGSTOP), N packets fill their receive buffers, then they resume with the sender idle;
  the time to the last write of the output (``-f jsonl -o FILE``, ``--write-hep``; Parquet,
  written at the end: the stats line, 0.1-0.2 s late) gives what 1 and 2 workers do with
  the cores to themselves.

First the sender's own ceiling: the same sender at full speed into a socket nobody reads
(the receiver costs nothing), alone on the machine.  A rate above ~90% of it cannot be
offered while listen runs on the same cores.  Loopback only.  The machine is shared: other
jobs take CPU at times, so figures move between runs: compare runs side by side.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_listen import ROOT, Listen, make_packets

#: sender sockets (source ports): SO_REUSEPORT gives each flow to one worker by a hash, so
#: few flows split unevenly (64 flows: 40/60 is common) and the busier worker sets the pace
SOCKETS = int(os.environ.get("BENCH_SOCKETS", "512"))
#: listen "kept up" when it had read this share of the packets by the end of the offer (the
#: 256 MiB receive buffer would otherwise hide a reader too slow for the rate for seconds)
KEPT_UP = 0.9


def sender_main(argv: list[str]) -> None:
    """``PORT RATE DURATION``: offer RATE packets/s (0: as fast as it can) for DURATION s
    over SOCKETS sockets, round robin; prints ``sent elapsed``."""
    port, rate, duration = int(argv[0]), float(argv[1]), float(argv[2])
    limit = int(argv[3]) if len(argv) > 3 else None
    packets = make_packets()
    socks = []
    for _ in range(SOCKETS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.connect(("127.0.0.1", port))
        socks.append(s.send)
    n, k = len(packets), len(socks)
    sent = 0
    start = time.perf_counter()
    end = start + duration
    while True:
        now = time.perf_counter()
        if now >= end or sent == limit:
            break
        due = int((now - start) * rate) - sent if rate else 2000
        if due <= 0:
            time.sleep(0.0005)
            continue
        if limit is not None:
            due = min(due, limit - sent)
        for _ in range(min(due, 2000)):
            try:
                socks[sent % k](packets[sent % n])
            except OSError:
                pass
            sent += 1
    print(f"{sent} {time.perf_counter() - start:.4f}", flush=True)


def run_sender(port: int, rate: float, duration: float) -> tuple[int, float]:
    out = subprocess.run([sys.executable, __file__, "--_sender", str(port), str(rate),
                          str(duration)], capture_output=True, text=True,
                         timeout=duration + 60, check=True).stdout.split()
    return int(out[0]), float(out[1])


def sender_ceiling(duration: float) -> float:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    try:
        sent, elapsed = run_sender(rx.getsockname()[1], 0, duration)
    finally:
        rx.close()
    return sent / elapsed


def one_rate(args: list[str], workers: int, rate: int, duration: float) -> dict:
    lp = Listen("--workers", str(workers), "--bind", "udp://127.0.0.1:0", "--stats", "0.25",
                *args)
    try:
        time.sleep(0.3)
        sent, elapsed = run_sender(lp.port, rate, duration)
        at_end = lp.total()
        t_end = time.monotonic()
        last, still = -1, 0.0
        while time.monotonic() - t_end < 60:  # let listen read what the buffers hold
            time.sleep(0.25)
            cur = lp.total()
            if cur >= sent:
                break
            still = still + 0.25 if cur == last else 0.0
            if still >= 1.0:
                break
            last = cur
    finally:
        got, kd = lp.stop()
    return {"rate": rate, "offered": sent / elapsed, "sent": sent, "got": got, "kd": kd,
            "cpu": lp.cpu, "during": at_end / elapsed, "kept_up": at_end >= KEPT_UP * sent}


def climb(label: str, args: list[str], workers: int, rates: list[int],
          duration: float) -> int:
    """The zero-loss rate (0: none)."""
    best = 0
    for rate in rates:
        r = one_rate(args, workers, rate, duration)
        lost = r["sent"] - r["got"]
        full = r["offered"] >= 0.98 * rate
        cpu = (f"; listen CPU {r['cpu']:.1f} s = {r['got'] / r['cpu']:,.0f} packets per "
               "CPU-second" if r["cpu"] else "")
        print(f"  {label:30s} workers {workers}: asked {rate:>7,}/s offered "
              f"{r['offered']:>9,.0f}/s sent {r['sent']:>9,} received {r['got']:>9,} lost "
              f"{lost:>7,} (kernel drops {r['kd']}); read {r['during']:,.0f}/s during the "
              f"offer{cpu}" + ("" if full else "  [the sender fell short]")
              + ("" if r["kept_up"] else "  [listen fell behind: the rest came from the "
                 "receive buffer]"), flush=True)
        if lost > 0 or not full or not r["kept_up"]:
            break
        best = rate
    return best


def _size(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def drain(args: list[str], workers: int, packets: int, out: Path | None = None) -> dict:
    """The burst drain rate: listen's receiving processes stopped (SIGSTOP), ``packets``
    offered into their receive buffers (the sender at its own pace, nothing read yet), then
    resumed (SIGCONT) with the sender idle: packets/s from the resume until the last write
    to the files under ``out`` (they grow as the records are written; 5 ms resolution), or
    without ``out`` until listen's stats show them all (0.1-0.2 s late: the workers report
    every 0.1 s).  What listen can do with the cores to itself, the sender out of the
    picture."""
    lp = Listen("--workers", str(workers), "--bind", "udp://127.0.0.1:0", "--stats", "0.1",
                *args)
    try:
        time.sleep(0.3)
        pids = [lp.proc.pid]
        for line in lp.err:
            if "workers: pids " in line:
                pids = [int(p) for p in line.split("pids ", 1)[1].split(", ")]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            sent, _ = run_sender_count(lp.port, packets)
        finally:
            t0 = time.monotonic()
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        took = None
        size, grew = -1, t0
        while time.monotonic() - t0 < 60:
            now = time.monotonic()
            if out is not None:
                cur = _size(out)
                if cur != size:
                    size, grew = cur, now
                if lp.total() >= sent and now - grew >= 0.5:
                    took = grew - t0
                    break
            elif lp.total() >= sent:
                took = now - t0
                break
            time.sleep(0.005)
    finally:
        got, kd = lp.stop()
    split = next((line.split("(packets received: ", 1)[1].rstrip(")") for line in lp.err
                  if line.startswith("  workers: ")), "")
    return {"sent": sent, "got": got, "kd": kd, "took": took, "split": split, "cpu": lp.cpu}


def run_sender_count(port: int, count: int) -> tuple[int, float]:
    """Offer ``count`` packets as fast as the sender goes (the receivers are stopped:
    their buffers take them)."""
    out = subprocess.run([sys.executable, __file__, "--_sender", str(port), "0", "60",
                          str(count)], capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    return int(out[0]), float(out[1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_sender":
        sender_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--rates", default="40000,60000,80000,100000,120000,140000,160000,"
                                       "180000,200000,240000,280000")
    ap.add_argument("--only", choices=["jsonl", "pcap", "parquet"], action="append")
    ap.add_argument("--drain", type=int, default=200_000, metavar="N",
                    help="packets per burst drain run (0: no drain runs)")
    ap.add_argument("--drain-only", action="store_true", help="no rate climbs")
    a = ap.parse_args()
    rates = [int(x) for x in a.rates.split(",")]
    only = a.only or ["jsonl", "pcap"]
    print(f"machine: {os.cpu_count()} cores (shared with other jobs), Python "
          f"{sys.version.split()[0]}; heptool {ROOT}; {SOCKETS} sender sockets; "
          f"{a.duration:g} s per rate", flush=True)
    ceiling = sender_ceiling(a.duration)
    print(f"sender ceiling (alone, into a socket nobody reads): {ceiling:,.0f} packets/s",
          flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        outputs = {"jsonl": ("listen -f jsonl >/dev/null", ["-f", "jsonl"]),
                   "pcap": ("listen --write-hep f.pcap -q",
                            ["--write-hep", str(Path(d) / "f.pcap"), "-q", "--overwrite"]),
                   "parquet": ("listen --write-parquet DIR -q",  # (needs heptool[parquet])
                               ["--write-parquet", str(Path(d) / "lake"), "-q"])}
        for key in only:
            label, args = outputs[key]
            for workers in (1, 2):
                results[(key, workers)] = (0 if a.drain_only else
                                           climb(label, args, workers, rates, a.duration))
    drains = {}
    if a.drain:
        with tempfile.TemporaryDirectory() as d:
            for key in only:
                for workers in (1, 2):
                    o = Path(d) / f"{key}-{workers}"  # (parquet: written at the end: stats)
                    o.mkdir()
                    args = {"jsonl": ["-f", "jsonl", "-o", str(o / "out.jsonl")],
                            "pcap": ["--write-hep", str(o / "f.pcap"), "-q"],
                            "parquet": ["--write-parquet", str(o / "lake"), "-q"]}[key]
                    r = drains[(key, workers)] = drain(args, workers, a.drain,
                                                       None if key == "parquet" else o)
                    rate = f"{r['got'] / r['took']:,.0f}/s" if r["took"] else "-"
                    print(f"  burst drain {outputs[key][0]:30s} workers {workers}: "
                          f"{r['sent']:,} sent into the stopped listen, {r['got']:,} received "
                          f"(kernel drops {r['kd']}), read in "
                          + (f"{r['took']:.2f} s = {rate}" if r["took"] else "- (not all)")
                          + (f"; per worker {r['split']}" if r["split"] else "")
                          + (f"; listen CPU {r['cpu']:.2f} s (from start to end)" if r["cpu"]
                             else ""),
                          flush=True)
    print("zero-loss UDP rate (highest rate offered in full, received in full, at least "
          f"{KEPT_UP:.0%} of it read during the offer):" if not a.drain_only else "summary:")
    for key in only:
        one, two = results[(key, 1)], results[(key, 2)]
        ratio = f"{two / one:.2f}x" if one else "-"
        print(f"  {outputs[key][0]:30s} " + (
            f"1 worker {one:>8,}/s   2 workers {two:>8,}/s   "
            f"({ratio}; sender ceiling {ceiling:,.0f}/s)" if not a.drain_only else ""),
            flush=True)
        d1, d2 = drains.get((key, 1)), drains.get((key, 2))
        if d1 and d2 and d1["took"] and d2["took"] and d1["got"] == d1["sent"] \
                and d2["got"] == d2["sent"]:
            r1, r2 = d1["got"] / d1["took"], d2["got"] / d2["took"]
            print(f"  {'':30s} burst drain, the sender idle: 1 worker {r1:>8,.0f}/s   "
                  f"2 workers {r2:>8,.0f}/s   ({r2 / r1:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
