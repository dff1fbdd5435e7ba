"""Whole-process speed of ``heptool convert`` on 200,000 SIP messages, both directions.

    python bench/bench_convert.py [--messages N] [--rounds R] [--keep DIR] [--heptool DIR]
                                  [--compile-each-run]

Builds a plain SIP capture of N messages from the ``call`` scenario's SIP (INVITE with SDP,
100, 180, 200 with SDP, ACK, BYE, 200; ~500 bytes each), every tenth call over TCP (a real
flow: handshake, segments) and the rest over UDP, IPv4, then times as whole processes:

* ``heptool convert sip.pcap -o hep.pcap``     SIP -> HEPv3 pcap      target >= 250,000/s
* ``heptool convert hep.pcap -o out.pcap``     HEP -> plain pcap      target >= 200,000/s
* ``sngrep -I sip.pcap -H udp:127.0.0.1:P -N -q`` side by side when sngrep is installed
  (it sends HEP to a local UDP socket that this script binds and discards; its own
  pcap -> HEP path, ~40,000/s on these machines)

and the peak RSS of both conversions for 50,000 and for N messages (it must stay flat:
nothing holds the capture).

Every figure is a whole ``python -P -m heptool`` process (what the installed script runs,
without a version manager's shell shim), its bytecode cached as after a pip install
(``--compile-each-run`` to compile the sources every time instead); ``--heptool DIR``
times another checkout under the same conditions (before/after).  The machines are
shared: compare runs side by side, best and median of several rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from heptool.analysis.scenarios import call_scenario
from heptool.capture.frames import FrameSynth
from heptool.capture.pcapng_writer import PcapFrameWriter


def build(path: Path, n: int) -> int:
    """Write a SIP capture of ``n`` messages; return the number of frames."""
    calls = []
    for seed in range(64):
        sip = [m for m in call_scenario(seed=seed) if m.proto_type == 1]
        calls.append(sip)
    synth = FrameSynth()
    frames = 0
    with open(path, "wb") as f:
        w = PcapFrameWriter(f)
        t0 = 1_795_683_906_000_000
        i = 0
        call_no = 0
        while i < n:
            sip = calls[call_no % len(calls)]
            tcp = call_no % 10 == 9
            base = 20000 + call_no % 20000
            for m in sip:
                if i >= n:
                    break
                t = t0 + i * 50
                # vary the ports per call so that every TCP call is its own connection
                sport = base if m.src_port == 5060 and m.src_ip.startswith("192.") else 5060
                dport = base if m.dst_port == 5060 and m.dst_ip.startswith("192.") else 5060
                if tcp:
                    out = synth.tcp(m.src_ip, sport, m.dst_ip, dport, m.payload)
                else:
                    out = [synth.udp(m.src_ip, sport, m.dst_ip, dport, m.payload)]
                for fr in out:
                    w.write(t // 1_000_000, t % 1_000_000, fr)
                    frames += 1
                i += 1
            call_no += 1
    return frames


def timed(cmd: list[str], env: dict | None = None) -> float:
    with open(os.devnull, "wb") as devnull:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=devnull, stderr=subprocess.PIPE, env=env,
                              stdin=subprocess.DEVNULL, check=False)
        dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): "
                         f"{proc.stderr.decode(errors='replace').strip()[:300]}")
    return dt


def best(cmd: list[str], rounds: int, env: dict | None = None) -> tuple[float, float]:
    runs = [timed(cmd, env) for _ in range(rounds)]
    return min(runs), statistics.median(runs)


def heptool_cmd(*args: str) -> list[str]:
    """``python -P -m heptool``: what the installed ``heptool`` script runs, without a
    version manager's shell shim in front (pyenv's adds ~50 ms of bash per run, which is
    not heptool's); ``-P`` and PYTHONPATH make it this checkout's heptool."""
    return [sys.executable, "-P", "-m", "heptool", *args]


def which_heptool(env: dict) -> str:
    """The heptool package the timed processes import (this checkout's, or say so)."""
    out = subprocess.run([sys.executable, "-P", "-c", "import heptool; print(heptool.__file__)"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    return str(Path(out).parent.parent)


def peak_rss(cmd: list[str], env: dict) -> int | None:
    """Peak RSS (KiB) through /usr/bin/time, which forks from a small process."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time")
                                        else None)
    if gnu_time is None:
        return None
    proc = subprocess.run([gnu_time, "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env, check=True)
    return int(proc.stderr.decode().strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="write the pcaps here and keep them")
    ap.add_argument("--heptool", type=Path, default=ROOT, metavar="DIR",
                    help="time the heptool of this checkout (default: the bench's own; "
                         "another one, e.g. an older commit, for a before/after)")
    ap.add_argument("--compile-each-run", action="store_true",
                    help="do not cache bytecode: every run compiles heptool's sources, as "
                         "happens when PYTHONDONTWRITEBYTECODE is set (~60 ms a run here)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="heptool-bench-")) if a.keep is None else a.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        run(a, tmp)
    finally:
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run(a: argparse.Namespace, tmp: Path) -> None:
    n = a.messages
    small = min(50_000, n)
    sip_big, sip_small = tmp / f"sip-{n}.pcap", tmp / f"sip-{small}.pcap"
    frames = build(sip_big, n)
    build(sip_small, small)
    hep_big, hep_small = tmp / f"hep-{n}.pcap", tmp / f"hep-{small}.pcap"
    out = tmp / "out.pcap"
    print(f"capture: {n:,} SIP messages in {frames:,} frames (every 10th call over TCP), "
          f"{sip_big.stat().st_size / 1e6:.1f} MB")
    env = dict(os.environ, PYTHONPATH=str(a.heptool.resolve()))
    if a.compile_each_run:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        how = "sources compiled on every run"
    else:
        # as an installed heptool runs: its bytecode compiled once (pip does it at install),
        # cached here rather than in the checkout
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        subprocess.run(heptool_cmd("convert", str(sip_small), "-o", str(out)), env=env,
                       check=True)
        how = "bytecode cached"
    print(f"heptool: {which_heptool(env)} ({sys.executable} -P -m heptool; {how})")
    b, med = best(heptool_cmd("convert", str(sip_big), "-o", str(hep_big)), a.rounds, env)
    print(f"convert SIP -> HEP pcap   {n / b:>10,.0f} messages/s  (best of {a.rounds}; median "
          f"{n / med:,.0f}/s; {b:.2f} s)  target >= 250,000")
    b2, med2 = best(heptool_cmd("convert", str(hep_big), "-o", str(out)), a.rounds, env)
    print(f"convert HEP -> pcap       {n / b2:>10,.0f} messages/s  (best of {a.rounds}; median "
          f"{n / med2:,.0f}/s; {b2:.2f} s)  target >= 200,000")

    sngrep = shutil.which("sngrep")
    if sngrep is None:
        print("sngrep -I x -H udp:...    skipped: sngrep not installed")
    else:
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))  # nothing reads it: the kernel drops what overflows
        port = sink.getsockname()[1]
        try:
            sb, smed = best([sngrep, "-I", str(sip_big), "-H", f"udp:127.0.0.1:{port}", "-N",
                             "-q"], a.rounds)
        finally:
            sink.close()
        print(f"sngrep -I x -H udp:...    {n / sb:>10,.0f} messages/s  (best of {a.rounds}; "
              f"median {n / smed:,.0f}/s; {sb:.2f} s)  heptool = {sb / b:.1f}x sngrep")

    subprocess.run(heptool_cmd("convert", str(sip_small), "-o", str(hep_small)), env=env,
                   check=True)
    rows = []
    for label, cmd_small, cmd_big in (
        ("SIP -> HEP", heptool_cmd("convert", str(sip_small), "-o", str(out)),
         heptool_cmd("convert", str(sip_big), "-o", str(out))),
        ("HEP -> pcap", heptool_cmd("convert", str(hep_small), "-o", str(out)),
         heptool_cmd("convert", str(hep_big), "-o", str(out))),
    ):
        r1, r2 = peak_rss(cmd_small, env), peak_rss(cmd_big, env)
        if r1 is None or r2 is None:
            print("peak RSS                  skipped: no /usr/bin/time")
            return
        rows.append(f"peak RSS {label:<12}     {r1 / 1024:.1f} MiB for {small:,}, "
                    f"{r2 / 1024:.1f} MiB for {n:,}  (must stay flat)")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
