"""Whole-process speed of ``heptool decode -f jsonl`` on a 200,000-packet HEP3-over-UDP pcap.

    python bench/bench_decode_cli.py [--packets N] [--rounds R] [--keep DIR]
    python bench/bench_decode_cli.py --heptool BEFORE_DIR --heptool AFTER_DIR [--pure]

With one or more ``--heptool DIR``, only compares those checkouts (each run as
``python -m heptool`` with ``PYTHONPATH=DIR``; ``--pure`` sets ``HEPTOOL_PURE=1``) on
``decode -f jsonl``, ``decode -f json`` and ``decode --summary -f jsonl``, the checkouts'
runs interleaved round by round (a shared machine slows them alike), best and median of R.

Builds the capture from bench/bench_codec.py's realistic SIP packets (Kamailio, OpenSIPS and
hep-js chunk layouts; a third with a correlation id), each in an Ethernet/IPv4/UDP frame to
port 9060, then times, as whole processes with stdout to /dev/null:

* ``heptool decode -f jsonl FILE``                          target >= 200,000 packets/s
* hep-js 1.0.22 ``decapsulate()`` + ``JSON.stringify`` per packet, reading the same pcap
  (a small node script; hep-js comes from ``scripts/setup-peers.sh`` into
  ``.peers/node_modules``; the row is skipped, saying so, when it is not there)

and prints the start-up time of ``heptool --help`` and of one shell-completion call (target
< 0.15 s each), and the peak RSS of the decode for 50,000 and for N packets (it must stay flat:
decode streams and never holds a capture).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_codec import build

PEERS = ROOT / ".peers" / "node_modules"

HEPJS_SCRIPT = r"""
// hep-js decoding every HEP packet of a classic pcap (Ethernet/IPv4/UDP), one JSON line each.
const fs = require('fs');
const hep = require(process.argv[2]);
const buf = fs.readFileSync(process.argv[3]);
let off = 24, n = 0, out = [];
const le = buf.readUInt32LE(0) === 0xa1b2c3d4;
while (off + 16 <= buf.length) {
  const caplen = le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
  const frame = buf.subarray(off + 16, off + 16 + caplen);
  off += 16 + caplen;
  const ihl = (frame[14] & 0x0f) * 4;
  const data = frame.subarray(14 + ihl + 8);
  out.push(JSON.stringify(hep.decapsulate(data)));
  n++;
  if (out.length >= 1000) { fs.writeSync(1, out.join('\n') + '\n'); out = []; }
}
if (out.length) fs.writeSync(1, out.join('\n') + '\n');
fs.writeSync(2, n + '\n');
"""


def frame(payload: bytes, i: int) -> bytes:
    udp = struct.pack(">HHHH", 40000 + i % 1000, 9060, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, i & 0xFFFF, 0, 64, 17, 0,
                     bytes([192, 0, 2, 1 + i % 200]), bytes([192, 0, 2, 250]))
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


def write_pcap(path: Path, packets: list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        t0 = 1_795_683_906
        for i, p in enumerate(packets):
            fr = frame(p, i)
            f.write(struct.pack("<IIII", t0 + i // 1000, (i % 1000) * 1000, len(fr), len(fr)))
            f.write(fr)


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """(wall seconds, exit status, peak RSS in KiB) of one process, stdout to /dev/null."""
    with open(os.devnull, "wb") as devnull:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=subprocess.PIPE, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()[:300]}")
    _CPU.append(usage.ru_utime + usage.ru_stime)
    return dt, proc.returncode, usage.ru_maxrss


#: CPU seconds (user + system) of every process ``timed`` ran, in order: on a shared, loaded
#: machine they vary far less than wall time
_CPU: list[float] = []


def best(cmd: list[str], rounds: int, env: dict | None = None) -> tuple[float, float, int]:
    """(best, median wall seconds, peak RSS KiB) over ``rounds`` runs."""
    runs = [timed(cmd, env) for _ in range(rounds)]
    times = [r[0] for r in runs]
    return min(times), statistics.median(times), max(r[2] for r in runs)


def heptool_cmd(*args: str) -> list[str]:
    exe = shutil.which("heptool")
    return [exe, *args] if exe else [sys.executable, "-m", "heptool", *args]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="write the pcaps here and keep them")
    ap.add_argument("--heptool", type=Path, action="append", default=[],
                    help="compare this checkout (repeat: before, after); only the decode rows")
    ap.add_argument("--pure", action="store_true", help="with --heptool: the pure-Python build")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="heptool-bench-")) if a.keep is None else a.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        run(a, tmp)
    finally:
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


#: the decode variants compared with --heptool (decode uses the sip view for every JSON format)
VARIANTS = (("-f", "jsonl"), ("-f", "json"), ("--summary", "-f", "jsonl"))


def compare(a: argparse.Namespace, tmp: Path) -> None:
    """Each --heptool checkout on each decode variant, rounds interleaved."""
    n = a.packets
    pcap = tmp / f"hep3-{n}.pcap"
    write_pcap(pcap, build(n))
    dirs = [d.resolve() for d in a.heptool]
    envs = []
    for d in dirs:
        env = dict(os.environ, PYTHONPATH=str(d))
        if a.pure:
            env["HEPTOOL_PURE"] = "1"
        else:
            env.pop("HEPTOOL_PURE", None)
        envs.append(env)
    print(f"capture: {n:,} HEP3/UDP packets; {'pure' if a.pure else 'C'} build; best/median of "
          f"{a.rounds}, runs interleaved")
    for variant in VARIANTS:
        times: list[list[float]] = [[] for _ in dirs]
        cpus: list[list[float]] = [[] for _ in dirs]
        for _ in range(a.rounds):
            for i, env in enumerate(envs):
                cmd = [sys.executable, "-P", "-m", "heptool", "decode", *variant, str(pcap)]
                times[i].append(timed(cmd, env)[0])
                cpus[i].append(_CPU[-1])
        first, first_cpu = min(times[0]), min(cpus[0])
        for d, t, c in zip(dirs, times, cpus):
            print(f"  decode {' '.join(variant):<20} {d!s:<24} wall {n / min(t):>8,.0f}/s best "
                  f"{n / statistics.median(t):>8,.0f}/s median {first / min(t):5.2f}x | cpu "
                  f"{n / min(c):>8,.0f}/s best {first_cpu / min(c):5.2f}x the first")


def run(a: argparse.Namespace, tmp: Path) -> None:
    if a.heptool:
        compare(a, tmp)
        return
    n = a.packets
    small = min(50_000, n)
    packets = build(n)
    big_pcap, small_pcap = tmp / f"hep3-{n}.pcap", tmp / f"hep3-{small}.pcap"
    write_pcap(big_pcap, packets)
    write_pcap(small_pcap, packets[:small])
    print(f"capture: {n:,} HEP3/UDP packets, {big_pcap.stat().st_size / 1e6:.1f} MB "
          f"({sum(map(len, packets)) / n:.0f} bytes of HEP each)")
    del packets

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    b, med, _ = best(heptool_cmd("decode", "-f", "jsonl", str(big_pcap)), a.rounds, env)
    print(f"heptool decode -f jsonl   {n / b:>10,.0f} packets/s  (best of {a.rounds}; median "
          f"{n / med:,.0f}/s; {b:.2f} s)  target >= 200,000")

    node = shutil.which("node")
    hepjs = PEERS / "hep-js"
    if node is None or not hepjs.exists():
        why = "node not found" if node is None else f"{hepjs} missing (run scripts/setup-peers.sh)"
        print(f"hep-js decapsulate+JSON   skipped: {why}")
    else:
        script = tmp / "hepjs_decode.js"
        script.write_text(HEPJS_SCRIPT)
        hb, hmed, _ = best([node, str(script), str(hepjs), str(big_pcap)], a.rounds)
        print(f"hep-js decapsulate+JSON   {n / hb:>10,.0f} packets/s  (best of {a.rounds}; median "
              f"{n / hmed:,.0f}/s; {hb:.2f} s)  heptool = {hb / b:.1f}x hep-js")

    helps = best(heptool_cmd("--help"), 5, env)
    comp_env = dict(env, _HEPTOOL_COMPLETE="bash_complete", COMP_WORDS="heptool decode --pro",
                    COMP_CWORD="2")
    comp = best(heptool_cmd(), 5, comp_env)
    print(f"heptool --help            {helps[0]:.3f} s (best of 5; median {helps[1]:.3f})  "
          "target < 0.15 s")
    print(f"completion call           {comp[0]:.3f} s (best of 5; median {comp[1]:.3f})  "
          "target < 0.15 s")

    # ru_maxrss of a child counts the pages it shared with this (big) process between fork
    # and exec, so measure with /usr/bin/time, which forks from a small process
    gnu_time = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if gnu_time is None:
        print("peak RSS                  skipped: no /usr/bin/time")
        return
    rss = []
    for path in (small_pcap, big_pcap):
        proc = subprocess.run([gnu_time, "-f", "%M", *heptool_cmd("decode", "-f", "jsonl",
                                                                     str(path))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                              check=True)
        rss.append(int(proc.stderr.decode().strip().splitlines()[-1]))
    print(f"peak RSS                  {rss[0] / 1024:.1f} MiB for {small:,} packets, "
          f"{rss[1] / 1024:.1f} MiB for {n:,}  (must stay flat)")


if __name__ == "__main__":
    main()
