"""heptool.pipeline.reader.MessageReader on the real captures of tests/vectors.

The reader is what decode, correlate and flow print from: the same messages in the same
order with the same indices, problems through ``on_problem`` (with frame/offset/line), and
``import heptool.pipeline`` loads neither click nor rich (a library needs neither).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from heptool.cli import cli
from heptool.output.jsonl import dumps
from heptool.output.records import decode_record
from heptool.pipeline import Item, MessageReader, Problem, ReadError
from heptool.pipeline.correlate import build_graph
from heptool.pipeline.reader import frame_time

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CAPTURES = sorted(p for p in VECTORS.rglob("*.pcap") if ".hep." in p.name)
UDP3 = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"


def _decode_jsonl(*args: str) -> tuple[list[dict], str, int]:
    r = CliRunner().invoke(cli, ["decode", "-f", "jsonl", *args])
    return [json.loads(x) for x in r.stdout.splitlines()], r.stderr, r.exit_code


def _records(pcap: bytes) -> list[int]:
    offs, off = [], 24
    while off + 16 <= len(pcap):
        offs.append(off)
        off += 16 + struct.unpack_from("<I", pcap, off + 8)[0]
    return offs


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """UDP3 with frame 3's HEP packet cut short (its chunk lengths now overrun it) and the
    capture truncated inside frame 6."""
    good = bytearray(UDP3.read_bytes())
    recs = _records(bytes(good))
    # frame 3: the HEP3 total length (bytes 4..6 of the payload) says more than is there
    payload = recs[2] + 16 + 14 + 20 + 8
    assert good[payload:payload + 4] == b"HEP3"
    good[payload + 4:payload + 6] = struct.pack(">H", 7)
    p = tmp_path / "damaged.pcap"
    p.write_bytes(bytes(good[:recs[5] + 30]))
    return p


def test_capture_list_is_not_empty():
    assert UDP3 in CAPTURES and len(CAPTURES) >= 3


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_same_messages_as_decode_prints(capture: Path):
    r = CliRunner().invoke(cli, ["decode", "-f", "jsonl", str(capture)])
    assert r.exit_code == 0, r.stderr
    problems: list[Problem] = []
    items = list(MessageReader([str(capture)], on_problem=problems.append))
    assert problems == []
    assert items and all(isinstance(i, Item) for i in items)
    lines = [dumps(decode_record(i.message, i.index, i.packet.frame, i.packet.hep_transport,
                                 i.packet.hep_src, i.packet.hep_dst, True,
                                 None if i.message.ts_sec is not None else frame_time(i.packet)))
             for i in items]
    assert b"".join(lines).decode() == r.stdout


def test_each_record_gives_what_decode_prints():
    printed, _err, _ = _decode_jsonl(str(UDP3))
    got: list[dict] = []
    reader = MessageReader([str(UDP3)], on_problem=lambda p: None)
    # emit only (no fast path): the records decode builds for its slow path
    reader.each_record(lambda rec, m, p: got.append(rec), need_sip=True)
    assert reader.written == len(printed) == len(got)
    assert [r["index"] for r in got] == [r["index"] for r in printed]
    assert [r["call_id"] if "call_id" in r else r.get("sip", {}).get("call_id") for r in got] \
        == [r["call_id"] if "call_id" in r else r.get("sip", {}).get("call_id") for r in printed]
    # the fast path (write) and a count
    fast: list[dict] = []
    reader = MessageReader([str(UDP3)])
    reader.each_record(lambda rec, m, p: fast.append(rec), need_sip=True, write=fast.append,
                       count=2)
    assert reader.written == 2 and [r["index"] for r in fast] == [0, 1]


def test_problems_go_to_the_callback_with_frame_and_offset(damaged: Path):
    printed, err, status = _decode_jsonl(str(damaged))
    assert status == 3
    problems: list[Problem] = []
    reader = MessageReader([str(damaged)], on_problem=problems.append)
    items = list(reader)
    assert [i.index for i in items] == [r["index"] for r in printed]
    assert reader.bad and not reader.error
    # decode prints the same texts, after Error:/Warning:
    lines = err.splitlines()
    assert [("Warning: " if p.level == "warning" else "Error: ") + p.text for p in problems] \
        == lines
    bad_packet = next(p for p in problems if p.frame == 3)
    assert bad_packet.bad and "frame 3" in bad_packet.text
    truncated = problems[-1]
    assert truncated.frame == 6 and truncated.offset is not None
    assert f"byte offset {truncated.offset}" in truncated.text
    assert all(p.source == str(damaged) and p.bad for p in problems)


def test_without_a_callback_the_first_problem_raises(damaged: Path):
    with pytest.raises(ReadError) as e:
        list(MessageReader([str(damaged)]))
    assert e.value.problem.frame == 3


def test_unreadable_input_and_continuous_index(tmp_path: Path):
    problems: list[Problem] = []
    missing = str(tmp_path / "missing.pcap")
    one = list(MessageReader([str(UDP3)]))
    reader = MessageReader([str(UDP3), missing, str(UDP3)], on_problem=problems.append,
                           continuous_index=True)
    items = list(reader)
    assert [p.level for p in problems] == ["unreadable"] and reader.error and not reader.bad
    n = len(one)
    assert [i.index for i in items] == list(range(n)) + list(range(n, 2 * n))
    # correlate's numbering, through the shared graph run
    graph, _ = build_graph(MessageReader([str(UDP3)]), _rules(), infer=True)
    assert len(graph) == n


def _rules():
    from heptool.analysis.extract import Rules

    return Rules(headers=(), b2b=())


def test_import_loads_no_click_or_rich():
    code = ("import sys, heptool.pipeline, heptool.pipeline.correlate, heptool.pipeline.build; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich')); "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_send_and_encode_settings(tmp_path: Path):
    """packets() as send reads them (bytes undecoded, the SIP fallback after a note),
    name_errors=False (the capture reader's words) and encode's prepare_record."""
    sip = VECTORS / "kamailio" / "kamailio-hep3-udp.sip.pcap"
    notes: list[Problem] = []
    reader = MessageReader([str(UDP3), str(sip)], on_problem=notes.append, warnings=False,
                           sip_fallback=True)
    packets = list(reader.packets())
    hep = [p for p in packets if p.frame is not None]
    fallback = [p for p in packets if p.frame is None]
    assert hep and fallback and all(p.data[:4] == b"HEP3" for p in fallback)
    assert [p.level for p in notes] == ["note"] and "no HEP in this capture" in notes[0].text
    assert [r.name for r in reader.reports] == [str(UDP3), str(sip)]
    assert reader.reports[1].stats.capture.hep_packets == 0
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(UDP3.read_bytes()[:700])
    with pytest.raises(ReadError) as e:
        list(MessageReader([str(cut)], name_errors=False).packets())
    assert str(e.value).startswith("frame 2, byte offset 530: truncated record")
    rec = tmp_path / "r.jsonl"
    rec.write_text('{"payload": "hi"}\n')
    items = list(MessageReader([str(rec)], prepare_record=lambda r: {**r, "capture_id": 7,
                                                                      "ts_sec": 1}))
    assert items[0].message.capture_id == 7 and items[0].message.payload == b"hi"
