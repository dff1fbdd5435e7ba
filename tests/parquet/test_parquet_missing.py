"""Without pyarrow, ``--to parquet`` and ``--write-parquet`` refuse in one line naming the extra.

pyarrow is blocked in a subprocess (``sys.modules['pyarrow'] = None`` makes its import fail),
so this runs whether or not it is installed here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "vectors" / "kamailio" / "kamailio-hep3-udp.hep.pcap"
BLOCKED = ("import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None; "
           "from heptool.cli import main; sys.exit(main())")


def run_blocked(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, *args], capture_output=True,
                          timeout=60, cwd=ROOT, check=False)


def test_convert_to_parquet_without_pyarrow(tmp_path):
    out = tmp_path / "lake"
    r = run_blocked("convert", str(CAPTURE), "--to", "parquet", "-o", str(out))
    assert r.returncode == 2
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "pip install heptool[parquet]" in lines[0]
    assert "--to parquet" in lines[0]
    assert r.stdout == b""
    assert not out.exists()


def test_listen_write_parquet_without_pyarrow(tmp_path):
    out = tmp_path / "lake"
    r = run_blocked("listen", "--bind", "udp://127.0.0.1:0", "--write-parquet", str(out),
                    "--duration", "5")
    assert r.returncode == 2
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "pip install heptool[parquet]" in lines[0]
    assert "--write-parquet" in lines[0] and "listening" not in lines[0]
    assert not out.exists()


def test_other_formats_do_not_need_pyarrow(tmp_path):
    r = run_blocked("convert", str(CAPTURE), "-o", str(tmp_path / "x.pcap"))
    assert r.returncode == 0, r.stderr.decode()
