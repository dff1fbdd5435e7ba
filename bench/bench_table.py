"""Whole-process speed of ``heptool decode -f table`` against ``decode -f jsonl`` (issue 14 #2).

    python bench/bench_table.py [--packets N] [--rounds R] [--heptool DIR ...] [--keep DIR]

Builds a classic pcap of N HEP3-over-UDP packets (default 50,000) from bench/bench_codec.py's
realistic SIP packets (as bench/bench_decode_cli.py does), then times, as whole processes
writing to a file (``-o FILE``, so the table is the plain-text table of a file, not of a
terminal), in both builds (the C extension, and ``HEPTOOL_PURE=1``):

* ``heptool decode -f jsonl -o FILE``
* ``heptool decode -f table -o FILE``                 target >= 1/3 of the JSON Lines rate

and prints rows/s (best of R, wall and CPU) and table/jsonl.  With ``--heptool DIR`` (repeat
it: before, after) each checkout is run with ``PYTHONPATH=DIR``, rounds interleaved (a shared
machine slows them alike); without, this checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_codec import build
from bench_decode_cli import _CPU, timed, write_pcap

FORMATS = ("jsonl", "table")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--heptool", type=Path, action="append", default=[],
                    help="a checkout to time (repeat: before, after); default: this one")
    ap.add_argument("--keep", type=Path, default=None, help="write the pcap here and keep it")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="heptool-bench-")) if a.keep is None else a.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        run(a, tmp)
    finally:
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run(a: argparse.Namespace, tmp: Path) -> None:
    n = a.packets
    pcap = tmp / f"hep3-{n}.pcap"
    write_pcap(pcap, build(n))
    out = tmp / "out"
    dirs = [d.resolve() for d in a.heptool] or [ROOT]
    print(f"capture: {n:,} HEP3/UDP packets; output to a file; best of {a.rounds}, "
          "runs interleaved")
    for build_name in ("C", "pure"):
        envs = []
        for d in dirs:
            env = dict(os.environ, PYTHONPATH=str(d))
            env.pop("COLUMNS", None)
            if build_name == "pure":
                env["HEPTOOL_PURE"] = "1"
            else:
                env.pop("HEPTOOL_PURE", None)
            envs.append(env)
        # wall and cpu seconds per (checkout, format)
        wall: dict[tuple[int, str], list[float]] = {}
        cpu: dict[tuple[int, str], list[float]] = {}
        for _ in range(a.rounds):
            for i, env in enumerate(envs):
                for fmt in FORMATS:
                    cmd = [sys.executable, "-P", "-m", "heptool", "decode", "-f", fmt,
                           "-o", str(out), str(pcap)]
                    wall.setdefault((i, fmt), []).append(timed(cmd, env)[0])
                    cpu.setdefault((i, fmt), []).append(_CPU[-1])
        for i, d in enumerate(dirs):
            rates = {}
            for fmt in FORMATS:
                w, c = min(wall[(i, fmt)]), min(cpu[(i, fmt)])
                rates[fmt] = n / c
                print(f"  {build_name:<4} {d!s:<28} -f {fmt:<6} wall {n / w:>9,.0f} rows/s  "
                      f"cpu {n / c:>9,.0f} rows/s ({c:.2f} s)")
            print(f"  {build_name:<4} {d!s:<28} table/jsonl (cpu) = "
                  f"{rates['table'] / rates['jsonl']:.2f}  target >= 0.33")


if __name__ == "__main__":
    main()
