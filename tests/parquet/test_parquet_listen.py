"""``heptool listen --write-parquet DIR``: real packets over loopback, files readable by DuckDB.

Each test runs ``heptool listen`` as a subprocess on port 0, sends a bundled capture with
``heptool send`` and stops it by its pid (SIGTERM), or sends SIGHUP while it runs.  Loopback
only; every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")
duckdb = pytest.importorskip("duckdb")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import VECTORS, ListenProcess, run_heptool

CAPTURE = VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap"


def summary_of(capture: Path) -> dict:
    return json.loads(run_heptool("decode", "--summary", "-f", "json", str(capture)).stdout)


def sql(directory: Path, text: str) -> list[tuple]:
    src = f"read_parquet('{directory}/**/*.parquet', hive_partitioning=true)"
    return duckdb.sql(text.format(src=src)).fetchall()


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def rows_complete(directory: Path) -> int:
    """Rows in the complete files (0 when there is none yet)."""
    if not list(directory.glob("**/*.parquet")):
        return 0
    return sql(directory, "SELECT count(*) FROM {src}")[0][0]


def protos(directory: Path) -> dict:
    rows = sql(directory, "SELECT proto_type, count(*) FROM {src} GROUP BY ALL")
    return dict(rows)


def expected_protos(capture: Path) -> dict:
    out = run_heptool("decode", "-f", "jsonl", str(capture)).stdout.splitlines()
    counts: dict[int, int] = {}
    for line in out:
        pt = json.loads(line)["proto_type"]
        counts[pt] = counts.get(pt, 0) + 1
    return counts


def test_sigterm_writes_complete_files(tmp_path):
    lake = tmp_path / "lake"
    n = summary_of(CAPTURE)["messages"]
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-parquet", str(lake), "-f",
                       "jsonl") as lp:
        r = run_heptool("send", str(CAPTURE), "--to", lp.url("udp"))
        assert r.returncode == 0, r.stderr
        assert len(lp.read_records(n)) == n  # every packet is in
        # without rotation the rows wait in row groups: nothing is complete before the end
        assert not list(lake.glob("**/*.parquet"))
        assert lp.stop(signal.SIGTERM) == 0
    assert not list(lake.glob("**/*.part"))
    assert protos(lake) == expected_protos(CAPTURE)
    got = sql(lake, "SELECT session_id FROM {src} WHERE method IS NOT NULL OR response_code "
                    "IS NOT NULL")
    records = [json.loads(line) for line in
               run_heptool("decode", "-f", "jsonl", str(CAPTURE)).stdout.splitlines()]
    want = [r["sip"].get("call_id") for r in records if "sip" in r]
    assert sorted(c for (c,) in got) == sorted(want)
    files = sorted(str(p) for p in lake.glob("**/*.parquet"))
    written = next(line for line in lp.stderr_lines if "files written" in line)
    assert all(f in written for f in files)


def test_rotation_by_size_makes_several_files_and_loses_nothing(tmp_path):
    lake = tmp_path / "lake"
    n = summary_of(CAPTURE)["messages"]
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-parquet", str(lake), "-q",
                       "--rotate-size", "4K", "--count", str(n)) as lp:
        r = run_heptool("send", str(CAPTURE), "--to", lp.url("udp"))
        assert r.returncode == 0, r.stderr
        assert lp.wait(30) == 0, lp.stderr_lines
    calls = sorted((lake / "hep_proto_1_call" / "date=2026-11-26").glob("*.parquet"))
    assert len(calls) > 1
    assert [p.name for p in calls][:2] == ["data-00000.parquet", "data-00001.parquet"]
    assert protos(lake) == expected_protos(CAPTURE)


def test_rotation_by_time_closes_files_while_running(tmp_path):
    lake = tmp_path / "lake"
    n = summary_of(CAPTURE)["messages"]
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-parquet", str(lake), "-f",
                       "jsonl", "--rotate-time", "1") as lp:
        r = run_heptool("send", str(CAPTURE), "--to", lp.url("udp"))
        assert r.returncode == 0, r.stderr
        assert len(lp.read_records(n)) == n
        # within a few seconds every row is in a complete file, the collector still running
        assert wait_for(lambda: rows_complete(lake) == n)
        assert not list(lake.glob("**/*.part"))
        assert lp.proc.poll() is None
        assert protos(lake) == expected_protos(CAPTURE)
        assert lp.stop(signal.SIGTERM) == 0


def test_sighup_closes_the_files_and_the_next_packets_go_to_new_ones(tmp_path):
    lake = tmp_path / "lake"
    n = summary_of(CAPTURE)["messages"]
    with ListenProcess("--bind", "udp://127.0.0.1:0", "--write-parquet", str(lake), "-f",
                       "jsonl") as lp:
        assert run_heptool("send", str(CAPTURE), "--to", lp.url("udp")).returncode == 0
        assert len(lp.read_records(n)) == n
        lp.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any("output files reopened" in line
                                    for line in lp.stderr_lines))
        assert wait_for(lambda: rows_complete(lake) == n)
        assert not list(lake.glob("**/*.part"))
        first = sorted(lake.glob("**/*.parquet"))
        assert first and all(p.name == "data-00000.parquet" for p in first)
        assert protos(lake) == expected_protos(CAPTURE)  # readable while listen runs
        assert run_heptool("send", str(CAPTURE), "--to", lp.url("udp")).returncode == 0
        assert len(lp.read_records(n)) == n
        assert lp.stop(signal.SIGTERM) == 0
    assert sorted(p.name for p in lake.glob("hep_proto_1_call/*/*.parquet")) == [
        "data-00000.parquet", "data-00001.parquet"]
    assert protos(lake) == {k: 2 * v for k, v in expected_protos(CAPTURE).items()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--workers needs Linux")
def test_two_workers_write_files_of_their_own_into_one_lake(tmp_path):
    # each worker numbers its files after those there, with O_EXCL: together they hold
    # every packet once, no file overwritten
    import socket

    lake = tmp_path / "lake"
    packets = _capture_packets()
    with ListenProcess("--workers", "2", "--bind", "tcp://127.0.0.1:0", "--write-parquet",
                       str(lake), "-q", "--stats", "0.2") as lp:
        port = int(lp.url("tcp").rsplit(":", 1)[1])
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(16)]
        for c in conns:  # the whole capture on every connection: 16 copies
            c.sendall(b"".join(packets))
            c.close()
        n = 16 * len(packets)
        assert wait_for(lambda: any(f"total {n};" in line or f"total {n:,};" in line
                                    for line in lp.stderr_lines), 30), lp.stderr_lines
        assert lp.stop(signal.SIGTERM) == 0, lp.stderr_lines
    per = next(line for line in lp.stderr_lines if line.startswith("  workers: "))
    assert ", 0)" not in per and "(0," not in per, per  # both workers received
    assert not list(lake.glob("**/*.part"))
    want = expected_protos(CAPTURE)
    assert protos(lake) == {k: 16 * v for k, v in want.items()}
    files = list(lake.glob("**/*.parquet"))
    assert len(files) >= 2 and len({str(f) for f in files}) == len(files)


def _capture_packets() -> list[bytes]:
    from nethelpers import hep_packets

    return hep_packets(CAPTURE)
