"""Whole-process speed of ``heptool convert hep.pcap --to parquet -o DIR`` (issue 15 #3).

    python bench/bench_parquet.py [--messages N] [--rounds R] [--keep DIR]

Builds the bench capture of bench/bench_convert.py (N plain SIP messages of the ``call``
scenario, ~500 bytes each, every tenth call over TCP), converts it to a HEPv3 pcap with
``heptool convert`` (not timed), then times ``python -P -m heptool convert hep.pcap --to
parquet -o DIR`` as a whole process into a fresh directory each round, and prints messages/s
(best and median of R rounds), the rows DuckDB counts in the files (when duckdb is
installed) and their size.  Needs pyarrow (``pip install heptool[parquet]``).  The machines
are shared: compare runs side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_convert import build, heptool_cmd, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="write the files here and keep them")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="heptool-bench-")) if a.keep is None else a.keep
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        sip, hep = tmp / "sip.pcap", tmp / "hep.pcap"
        build(sip, a.messages)
        timed(heptool_cmd("convert", str(sip), "-o", str(hep)), env)
        runs = []
        lake = tmp / "lake"
        for _ in range(a.rounds):
            shutil.rmtree(lake, ignore_errors=True)
            runs.append(timed(heptool_cmd("convert", str(hep), "--to", "parquet", "-o",
                                          str(lake)), env))
        files = list(lake.glob("**/*.parquet"))
        size = sum(f.stat().st_size for f in files)
        print(f"pcap -> Parquet, {a.messages:,} messages ({hep.stat().st_size / 1e6:.1f} MB "
              f"HEP pcap): best {a.messages / min(runs):,.0f} msg/s, median "
              f"{a.messages / statistics.median(runs):,.0f} msg/s ({a.rounds} rounds, whole "
              f"processes)")
        print(f"  {len(files)} files, {size / 1e6:.1f} MB (zstd)")
        try:
            import duckdb
        except ImportError:
            return
        rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/**/*.parquet', "
                          "hive_partitioning=true)").fetchall()[0][0]
        print(f"  DuckDB counts {rows:,} rows")
        if rows != a.messages:
            raise SystemExit(f"expected {a.messages} rows")
    finally:
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
