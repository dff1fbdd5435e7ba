"""heptool.output.parquet.ParquetWriter in-process: file names, numbering, rotation, routing."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("pyarrow")
import pyarrow.parquet as pq

from heptool.core.message import HepMessage
from heptool.output.parquet import COLUMNS, ParquetWriter, sip_table, users

T0 = 1_795_683_600  # 2026-11-26T09:00:00Z


def sip(i: int, first: str = "INVITE sip:bob@b SIP/2.0", cseq: str = "1 INVITE") -> HepMessage:
    text = (f"{first}\r\nFrom: Alice <sip:alice@a>;tag=x\r\nTo: <sip:bob@b>\r\n"
            f"Call-ID: c{i}@h\r\nCSeq: {cseq}\r\n\r\n")
    return HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060,
                      ts_sec=T0 + i, ts_usec=0, proto_type=1, capture_id=7,
                      payload=text.encode())


def test_sip_tables_by_method_and_cseq():
    assert sip_table("INVITE", "INVITE", None) == "hep_proto_1_call"
    assert sip_table(None, "BYE", 200) == "hep_proto_1_call"
    assert sip_table(None, "REGISTER", 401) == "hep_proto_1_registration"
    assert sip_table("OPTIONS", "OPTIONS", None) == "hep_proto_1_default"
    assert sip_table(None, None, None) == "hep_proto_1_default"


def test_caller_and_callee_from_the_first_from_and_to():
    text = ("INVITE sip:x SIP/2.0\r\nTo: <sip:bob@b>\r\nf: A <SIP:alice@a>;tag=1\r\n"
            "From: <sip:zed@z>\r\nt: <sip:other@o>\r\n\r\nFrom: <sip:body@x>")
    assert users(text) == ("alice", "bob")
    assert users("OPTIONS sip:x SIP/2.0\r\nFrom: <sip:a.example>\r\nTo: x\r\n\r\n") == (
        None, None)
    assert users("SIP/2.0 200 OK\r\nfrom : \"A\" <sips:carol@c:5061>\r\n") == ("carol", None)


def test_part_files_until_closed_and_numbering_goes_on(tmp_path):
    d = tmp_path / "hep_proto_1_call" / "date=2026-11-26"
    d.mkdir(parents=True)
    (d / "data-00003.parquet.part").write_bytes(b"left by a killed run")
    w = ParquetWriter(str(tmp_path), row_group=2)
    for i in range(3):
        w.write(sip(i))
    # a row group is written: the file exists, under its .part name only
    assert sorted(p.name for p in d.iterdir()) == ["data-00003.parquet.part",
                                                   "data-00004.parquet.part"]
    w.close()
    assert sorted(p.name for p in d.iterdir()) == ["data-00003.parquet.part",
                                                   "data-00004.parquet"]
    t = pq.read_table(d / "data-00004.parquet")
    assert t.column_names == list(COLUMNS)
    assert t.column("session_id").to_pylist() == ["c0@h", "c1@h", "c2@h"]
    assert t.column("caller").to_pylist() == ["alice"] * 3
    assert t.column("node_id").to_pylist() == ["7"] * 3
    assert str(t.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert w.files == [str(d / "data-00004.parquet")]


def test_rotation_by_size_time_and_reopen(tmp_path):
    w = ParquetWriter(str(tmp_path), size=1)  # a row group is never bigger than size: one row
    for i in range(6):
        w.write(sip(i))
    assert len(w.files) == 6  # each closed as soon as it reached size
    w.close()
    assert [pq.read_table(f).num_rows for f in w.files] == [1] * 6

    w = ParquetWriter(str(tmp_path / "t"), every=10)
    w.write(sip(0))
    now = time.monotonic()
    w.tick(now + 5)
    assert w.files == []
    w.tick(now + 11)
    assert len(w.files) == 1
    w.write(sip(1))
    w.reopen()
    assert len(w.files) == 2 and w.files[1].endswith("data-00001.parquet")
    w.close()
    assert len(w.files) == 2  # nothing buffered: no empty file


def test_background_writes_the_same_files_and_reports_errors(tmp_path):
    rows = {}
    for background in (False, True):
        out = tmp_path / str(background)
        w = ParquetWriter(str(out), row_group=3, background=background)
        for i in range(10):
            w.write(sip(i))
        w.close()
        assert w.thread is None  # joined
        rows[background] = sorted(r["session_id"] for f in w.files
                                  for r in pq.read_table(f).to_pylist())
    assert rows[True] == rows[False] == sorted(f"c{i}@h" for i in range(10))
    w = ParquetWriter(str(tmp_path / "gone"), row_group=1, background=True)
    (tmp_path / "gone").rmdir()
    (tmp_path / "gone").write_bytes(b"not a directory")
    w.write(sip(0))  # its row group fails in the thread
    with pytest.raises(OSError):
        w.close()


def test_dates_types_and_payloads(tmp_path):
    w = ParquetWriter(str(tmp_path))
    w.write(sip(0))
    w.write(sip(86400, "SIP/2.0 200 OK", "2 REGISTER"))  # the next day
    rtp = HepMessage(src_ip="10.0.0.1", src_port=4000, dst_ip="10.0.0.2", dst_port=4002,
                     ts_sec=T0, ts_usec=5, proto_type=34, capture_id=0,
                     correlation_id="c0@h", payload=b"\x80\xc8\xff\x00")
    w.write(rtp)
    v1 = HepMessage(version=1, src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2",
                    dst_port=2, payload=b"x")
    w.write(v1, (T0, 7))
    w.close()
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("**/*.parquet"))
    assert names == ["hep_proto_0_default/date=2026-11-26/data-00000.parquet",
                     "hep_proto_1_call/date=2026-11-26/data-00000.parquet",
                     "hep_proto_1_registration/date=2026-11-27/data-00000.parquet",
                     "hep_proto_34_default/date=2026-11-26/data-00000.parquet"]
    t = pq.read_table(tmp_path / "hep_proto_34_default")
    assert t.column("payload").to_pylist() == [None]
    assert t.column("payload_raw").to_pylist() == [b"\x80\xc8\xff\x00"]
    assert t.column("session_id").to_pylist() == ["c0@h"]  # the correlation id
    reg = pq.read_table(tmp_path / "hep_proto_1_registration").to_pylist()[0]
    assert (reg["response_code"], reg["cseq_method"], reg["method"]) == ("200", "REGISTER", None)
    v1row = pq.read_table(tmp_path / "hep_proto_0_default").to_pylist()[0]
    assert v1row["timestamp"].timestamp() == T0 + 7e-6
