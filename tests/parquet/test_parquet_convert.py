"""``heptool convert --to parquet``: HOMER 11's tables, read back with DuckDB's SQL.

The bundled captures (tests/vectors, made by Kamailio, sngrep, hep-js and OpenSIPS) are
converted and queried with ``read_parquet('DIR/**/*.parquet', hive_partitioning=true)``: the
counts per protocol type and the Call-IDs must be those of ``heptool decode --summary -f
json`` and ``heptool decode -f jsonl``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")
duckdb = pytest.importorskip("duckdb")

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
HEP_CAPTURES = sorted(p for p in VECTORS.glob("*/*.pcap") if not p.name.endswith(".sip.pcap"))


def heptool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heptool", *args], capture_output=True,
                          timeout=120, cwd=ROOT, check=False)


def sql(directory: Path, text: str) -> list[tuple]:
    src = f"read_parquet('{directory}/**/*.parquet', hive_partitioning=true)"
    return duckdb.sql(text.format(src=src)).fetchall()


@pytest.mark.parametrize("capture", HEP_CAPTURES, ids=lambda p: p.name)
def test_counts_and_call_ids_match_decode(tmp_path, capture):
    out = tmp_path / "lake"
    r = heptool("convert", str(capture), "--to", "parquet", "-o", str(out))
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(heptool("decode", "--summary", "-f", "json", str(capture)).stdout)
    records = [json.loads(line) for line in
               heptool("decode", "-f", "jsonl", str(capture)).stdout.splitlines()]
    assert len(records) == summary["messages"]

    total = sql(out, "SELECT count(*) FROM {src}")[0][0]
    assert total == summary["messages"]
    # per protocol type: decode names them, the files hold the number
    by_type = dict(sql(out, "SELECT proto_type, count(*) FROM {src} GROUP BY ALL"))
    want = Counter(rec["proto_type"] for rec in records)
    assert by_type == dict(want)
    names = Counter(rec["proto"] for rec in records)
    assert dict(names) == summary["protos"]
    # the Call-IDs, message by message in time order, and each one's count
    call_ids = Counter(rec["sip"]["call_id"] for rec in records
                       if rec.get("sip", {}).get("call_id"))
    # (a SIP message is a row with a method or a status, whatever its protocol type)
    got = Counter(dict(sql(out, "SELECT session_id, count(*) FROM {src} WHERE session_id IS "
                                "NOT NULL AND (method IS NOT NULL OR response_code IS NOT NULL) "
                                "GROUP BY ALL")))
    assert got == call_ids
    # methods and statuses as the summary counts them
    methods = dict(sql(out, "SELECT method, count(*) FROM {src} WHERE method IS NOT NULL "
                            "GROUP BY ALL"))
    assert methods == summary.get("sip_methods", {})
    statuses = dict(sql(out, "SELECT response_code, count(*) FROM {src} "
                             "WHERE response_code IS NOT NULL GROUP BY ALL"))
    assert statuses == summary.get("sip_statuses", {})


@pytest.mark.parametrize("capture", HEP_CAPTURES, ids=lambda p: p.name)
def test_rows_keep_every_field_and_the_payload_whole(tmp_path, capture):
    out = tmp_path / "lake"
    assert heptool("convert", str(capture), "--to", "parquet", "-o", str(out)).returncode == 0
    records = [json.loads(line) for line in
               heptool("decode", "-f", "jsonl", str(capture)).stdout.splitlines()]
    rows = sql(out, "SELECT epoch_us(timestamp), src_ip, dst_ip, src_port, dst_port, protocol, "
                    "node_id, cid, proto_type, node_name, extra_correlation, "
                    "coalesce(encode(payload), payload_raw), CAST(date AS VARCHAR) "
                    "FROM {src} ORDER BY 1, 2, 4")
    want = []
    for rec in records:
        p = rec["payload"]
        payload = (p.encode() if isinstance(p, str) else None if p is None
                   else base64.b64decode(p["base64"]))
        ts = ((rec["ts_sec"] * 1_000_000 + rec["ts_usec"]) if rec["ts_sec"] is not None
              else None)
        want.append((ts, rec["src_ip"], rec["dst_ip"],
                     rec["src_port"], rec["dst_port"], rec["ip_proto"],
                     None if rec["capture_id"] is None else str(rec["capture_id"]),
                     rec["correlation_id"], rec["proto_type"],
                     rec["node_name"], rec["extra_correlation_text"], payload,
                     rec["time"][:10] if rec["time"] else None))
    if want[0][0] is None:  # HEPv1 has no time: its row is timed by the capture frame
        assert all(r[0] > 1_000_000_000_000_000 for r in rows)
        rows = sorted((r[1:-1] for r in rows), key=repr)
        want = sorted((w[1:-1] for w in want), key=repr)
    assert sorted(rows, key=repr) == sorted(want, key=repr)
    if "opensips" in capture.name:  # it carries payloads that are not UTF-8
        assert sql(out, "SELECT count(*) FROM {src} WHERE payload_raw IS NOT NULL "
                        "AND payload IS NULL")[0][0] == 3


def test_homer_tables_and_hive_dates(tmp_path):
    capture = VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap"
    out = tmp_path / "lake"
    assert heptool("convert", str(capture), "--to", "parquet", "-o", str(out)).returncode == 0
    tables = sorted(p.name for p in out.iterdir())
    assert {"hep_proto_1_call", "hep_proto_1_registration", "hep_proto_1_default",
            "hep_proto_100_default"} <= set(tables)
    assert all(d.name == "date=2026-11-26" for t in out.iterdir() for d in t.iterdir())
    # HOMER 11 routes SIP by method; a reply by its CSeq method
    rows = sql(out, "SELECT regexp_extract(filename, 'hep_proto_1_[a-z]+'), "
                    "coalesce(method, cseq_method) FROM read_parquet('" + str(out) +
               "/hep_proto_1_*/**/*.parquet', filename=true)")
    for table, method in rows:
        want = ("hep_proto_1_call" if method in ("INVITE", "ACK", "BYE", "CANCEL", "PRACK",
                                                  "UPDATE", "INFO")
                else "hep_proto_1_registration" if method == "REGISTER"
                else "hep_proto_1_default")
        assert table == want, method
    caller = sql(out, "SELECT DISTINCT caller, callee FROM {src} WHERE method = 'INVITE'")
    assert ("alice", "bob") in caller
    extra = sql(out, "SELECT data_extra->>'to_tag' FROM {src} WHERE response_code = '180'")
    assert extra and all(t for (t,) in extra)


def test_a_second_run_numbers_on_and_a_sip_capture_converts_too(tmp_path):
    out = tmp_path / "lake"
    hep = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    sip = VECTORS / "kamailio" / "kamailio-hep3-udp.sip.pcap"
    assert heptool("convert", str(hep), "--to", "parquet", "-o", str(out)).returncode == 0
    r = heptool("convert", str(sip), "--to", "parquet", "-o", str(out), "--capture-id", "77")
    assert r.returncode == 0, r.stderr.decode()
    files = sorted(p.name for p in out.glob("**/*.parquet"))
    assert "data-00000.parquet" in files and "data-00001.parquet" in files
    n_hep = json.loads(heptool("decode", "--summary", "-f", "json", str(hep)).stdout)["messages"]
    counts = dict(sql(out, "SELECT node_id, count(*) FROM {src} GROUP BY ALL"))
    assert counts.pop("77") == n_hep  # the same SIP messages, wrapped by convert
    assert sum(counts.values()) == n_hep


def test_filters_and_usage_errors(tmp_path):
    capture = VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap"
    out = tmp_path / "lake"
    r = heptool("convert", str(capture), "--to", "parquet", "-o", str(out), "--proto", "log")
    assert r.returncode == 0
    assert sql(out, "SELECT DISTINCT proto_type FROM {src}") == [(100,)]
    r = heptool("convert", str(capture), "--to", "parquet")
    assert r.returncode == 2 and b"-o DIR" in r.stderr
    f = tmp_path / "file"
    f.write_bytes(b"x")
    r = heptool("convert", str(capture), "--to", "parquet", "-o", str(f))
    assert r.returncode == 2 and b"not a directory" in r.stderr
    r = heptool("convert", str(capture), "--to", "pcap", "-o", str(tmp_path))
    assert r.returncode == 2 and b"is a directory" in r.stderr
