"""heptool.pipeline.convert from Python: the same bytes as ``heptool convert``, problems
through the callback (no click, no stderr)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from click.testing import CliRunner

from heptool.cli import cli
from heptool.pipeline.convert import (
    Conversion,
    PeekedFile,
    PeekedStream,
    open_input,
    sniff_direction,
)
from heptool.pipeline.reader import Problem

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "kamailio"
HEP_TCP = VECTORS / "kamailio-hep3-tcp.hep.pcap"
SIP_TCP = VECTORS / "kamailio-hep3-tcp.sip.pcap"


def _cli(*args: str, stdin: bytes | None = None) -> tuple[bytes, str, int]:
    r = CliRunner().invoke(cli, ["convert", *args, "-o", "-"], input=stdin)
    return r.stdout_bytes, r.stderr, r.exit_code


def test_peeking_and_the_direction():
    src = open_input(str(HEP_TCP))
    assert isinstance(src, PeekedFile) and src == str(HEP_TCP)
    assert sniff_direction(src) == "hep" and sniff_direction(open_input(str(SIP_TCP))) == "sip"
    data = HEP_TCP.read_bytes()
    stream = open_input("-", io.BytesIO(data))
    assert isinstance(stream, PeekedStream) and stream.name == "<stdin>"
    assert sniff_direction(stream) == "hep"
    # what was looked at is read again, once, in front of the rest
    assert stream.read(10) + stream.read() == data
    assert stream.peek_head(64) == data[:64]  # the head stays what it was


def test_hep_to_packets_writes_what_the_command_writes():
    for fmt in ("pcap", "pcapng"):
        out = io.BytesIO()
        problems: list[Problem] = []
        conv = Conversion(on_problem=problems.append, name=str(HEP_TCP))
        st = conv.hep_to_packets(open_input(str(HEP_TCP)), out, fmt, 1500)
        assert problems == [] and conv.status == 0 and st.frames_out > st.messages > 0
        assert out.getvalue() == _cli(str(HEP_TCP), "-f", fmt)[0]
    # through the general path (a filter), from a stream
    out = io.BytesIO()
    conv = Conversion(match=lambda m: m.src_port == 5060, live=True)
    conv.hep_to_packets(open_input("-", io.BytesIO(HEP_TCP.read_bytes())), out, "pcap", 1500)
    assert out.getvalue() == _cli("-", "--src", ":5060", stdin=HEP_TCP.read_bytes())[0]


def test_sip_to_hep_writes_what_the_command_writes():
    for fmt in ("pcap", "hep", "jsonl"):
        out = io.BytesIO()
        conv = Conversion(on_problem=lambda p: None, name=str(SIP_TCP))
        conv.sip_to_hep(open_input(str(SIP_TCP)), out, fmt, capture_id=0)
        assert conv.written > 0 and conv.status == 0
        assert out.getvalue() == _cli(str(SIP_TCP), "-f", fmt)[0]


def test_problems_arrive_through_the_callback(tmp_path: Path):
    # a HEP stream with garbage in the middle and a packet cut at the end
    one = _cli(str(SIP_TCP), "-f", "hep")[0]
    n = struct.unpack(">H", one[4:6])[0]
    damaged = tmp_path / "damaged.hep"
    damaged.write_bytes(one[:n] + b"junk!" + one[n:] + one[:20])
    problems: list[Problem] = []
    conv = Conversion(on_problem=problems.append, name=str(damaged), verbose=True)
    out = io.BytesIO()
    conv.hep_to_packets(open_input(str(damaged)), out, "pcap", 1500)
    assert conv.status == 3
    assert [p.level for p in problems] == ["warning", "warning", "note"]
    assert problems[0].text == f"{damaged}: skipped 5 bytes that are not HEP"
    assert problems[1].text == f"{damaged}: the last 20 bytes are an incomplete HEP packet"
    assert problems[2].text.startswith("convert: ")
    printed, err, status = _cli(str(damaged), "-v")
    assert status == 3 and printed == out.getvalue()
    assert err.splitlines() == [("Warning: " if p.level == "warning" else "") + p.text
                                for p in problems]
    # a truncated capture: an error naming the input as decode's do (issue 14 #11), what
    # came before written
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(HEP_TCP.read_bytes()[:3000])
    problems.clear()
    conv = Conversion(on_problem=problems.append, name=str(cut))
    conv.hep_to_packets(open_input(str(cut)), io.BytesIO(), "pcapng", 1500)
    assert conv.status == 3 and problems[0].level == "error"
    assert problems[0].text.startswith(f"{cut}: frame ")
    assert "truncated record" in problems[0].text
    # nothing matched: a note, status 0
    problems.clear()
    conv = Conversion(on_problem=problems.append, name="x", match=lambda m: False)
    conv.sip_to_hep(open_input(str(SIP_TCP)), io.BytesIO(), "hep")
    assert conv.status == 0 and [p.level for p in problems] == ["note"]
    assert "nothing written: no SIP message matched" in problems[0].text
