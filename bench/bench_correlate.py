"""Whole-process speed and memory of ``heptool correlate -f json`` on a capture of realistic calls.

    python bench/bench_correlate.py [--messages N] [--rounds R] [--keep DIR]

Builds (deterministically) a classic pcap of HEP3-over-UDP frames holding about N messages
(default 200,000) of overlapping calls, in time order, from the scenario module that
``heptool encode --scenario`` uses:

* 60 % ``call``: SIP over UDP (no chunk 0x0011: grouped by the payload's Call-ID), the RTCP
  reports and log lines of the call (0x0011 = Call-ID);
* 40 % ``opensips``: OpenSIPS extended tracing, half in JSON mode (``homer5_on=0``: chunk
  0x0065 links, JSON-wrapped SIP), half in homer5 mode (no ``net`` link: connections are
  inferred from addresses and ports), with TCP events, xlog, REST and MI.

Then times ``heptool correlate -f json FILE > /dev/null`` as whole processes (best of R) and
prints messages/s (target >= 100,000), with ``heptool decode -f jsonl`` of the same file for
scale (the machine's speed and load move both alike), and the peak RSS; and the peak RSS on a
second capture with the same calls whose payloads are padded to ~4x their size: memory must follow the
number of ids, not the payload bytes, so the two RSS figures should be close.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from heptool.analysis.scenarios import call_scenario, opensips_scenario
from heptool.capture.writer import PcapWriter
from heptool.core.codec import encode

T0 = 1_795_683_600


def calls(n_messages: int, pad: int = 0):
    """(messages in time order, number of calls): overlapping calls, one starting every 10 ms."""
    out = []
    seed = 0
    calls_made = 0
    while len(out) < n_messages:
        start = (T0 + seed // 100, (seed % 100) * 10_000)
        kind = seed % 10
        if kind < 6:
            msgs = call_scenario(seed=seed, start=start)
        else:
            mode = "json" if kind < 8 else "homer5"
            msgs = opensips_scenario(seed=seed, start=start, mode=mode)
        if pad:
            for m in msgs:
                if m.payload and m.proto_type == 1 and m.payload[:1] != b"{":
                    m.payload = m.payload.replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"p" * pad
                                                  + b"\r\n\r\n", 1)
                elif m.payload and m.proto_type in (5, 100):
                    m.payload = m.payload + b" " * pad
        out.extend(msgs)
        seed += 1
        calls_made += 1
    out.sort(key=lambda m: (m.ts_sec, m.ts_usec))
    return out[:n_messages], calls_made


def write_capture(path: Path, n: int, pad: int = 0) -> tuple[int, int, int]:
    msgs, ncalls = calls(n, pad)
    with open(path, "wb") as f:
        w = PcapWriter(f)
        for i, m in enumerate(msgs):
            w.write(encode(m), ts=(m.ts_sec, m.ts_usec), src=("192.0.2.200", 40000 + i % 1000))
    return len(msgs), ncalls, path.stat().st_size


def run(path: Path) -> tuple[float, int, dict]:
    """(seconds, peak RSS in KiB of the child, parsed output)"""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "heptool", "correlate", "-f", "json", str(path)],
                           stdout=out, stderr=subprocess.PIPE, check=False)
        dt = time.perf_counter() - t
        if p.returncode != 0:
            raise SystemExit(f"heptool correlate failed ({p.returncode}): {p.stderr.decode()}")
        out.seek(0)
        doc = json.loads(out.read())
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dt, max(rss, before), doc


def rss_of(path: Path) -> int:
    """Peak RSS (KiB) of one correlate run, measured alone in a fresh process."""
    code = ("import resource, subprocess, sys; subprocess.run([sys.executable, '-m', 'heptool', "
            "'correlate', '-f', 'json', sys.argv[1]], stdout=subprocess.DEVNULL, check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return int(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="keep the captures in DIR")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    d = args.keep or Path(tmp.name)
    d.mkdir(parents=True, exist_ok=True)
    plain, padded = d / "calls.pcap", d / "calls-padded.pcap"
    t = time.perf_counter()
    n, ncalls, size = write_capture(plain, args.messages)
    _, _, psize = write_capture(padded, args.messages, pad=1500)
    print(f"capture: {n} messages of {ncalls} calls, {size / 1e6:.1f} MB "
          f"(padded copy {psize / 1e6:.1f} MB); built in {time.perf_counter() - t:.1f} s")
    best = None
    doc = None
    for _ in range(args.rounds):
        dt, _, doc = run(plain)
        best = dt if best is None else min(best, dt)
    assert doc is not None and best is not None
    groups = doc["groups"]
    inferred = sum(1 for e in doc["edges"] if e.get("inferred"))
    print(f"heptool correlate -f json: {best:.2f} s whole process, {n / best:,.0f} messages/s "
          f"(target >= 100,000); {len(groups)} groups, {len(doc['edges'])} edges "
          f"({inferred} inferred), {len(doc['dangling'])} dangling")
    dec = None
    for _ in range(args.rounds):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "heptool", "decode", "-f", "jsonl", str(plain)],
                       stdout=subprocess.DEVNULL, check=True)
        dt = time.perf_counter() - t
        dec = dt if dec is None else min(dec, dt)
    assert dec is not None
    print(f"for scale, on this machine now: heptool decode -f jsonl of the same capture: "
          f"{dec:.2f} s, {n / dec:,.0f} messages/s (correlate/decode time: {best / dec:.2f})")
    r1, r2 = rss_of(plain), rss_of(padded)
    print(f"peak RSS: {r1 / 1024:.0f} MiB; with payloads padded to {psize / size:.1f}x the bytes: "
          f"{r2 / 1024:.0f} MiB (memory follows ids, not payload bytes)")


if __name__ == "__main__":
    main()
