"""Issue 14 #3: a capture with no HEP is said (one line, exit 3) by decode, correlate and
flow; HEPv1 (no time of its own) from a capture is timed by its frame: ``frame_time`` in
its record, and ``--since``/``--until`` match it in decode, correlate and convert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KAM = ROOT / "tests" / "vectors" / "kamailio"
SIP_ONLY = KAM / "kamailio-hep3-udp.sip.pcap"
V1 = KAM / "kamailio-hep1-udp.hep.pcap"  # 60 HEPv1 packets, frames at 09:04:42.6..43.7 UTC
SPLIT = "2026-11-26T09:04:43"  # 8 frames before it, 52 at or after (no zone: UTC)


@pytest.fixture(params=["c", "pure"])
def build(request) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HEPTOOL_PURE", None)
    if request.param == "pure":
        env["HEPTOOL_PURE"] = "1"
    return env


def heptool(env: dict[str, str], *args: object, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "heptool", *map(str, args)], input=stdin,
                          capture_output=True, env=env, cwd=ROOT, timeout=60, check=False)


@pytest.mark.parametrize("command", [["decode", "-f", "jsonl"], ["correlate", "-f", "json"],
                                     ["flow", "--group", "0"]])
def test_a_capture_without_hep_is_said_in_one_line(build, command):
    r = heptool(build, *command, SIP_ONLY)
    assert r.returncode == 3
    assert r.stderr.decode().splitlines() == [
        f"Error: {SIP_ONLY}: 90 frames, no HEP (plain SIP? try: heptool convert {SIP_ONLY})"]
    assert b"HEP" not in r.stdout


def test_stdin_without_hep_and_other_inputs_still_read(build, tmp_path):
    r = heptool(build, "decode", "-f", "jsonl", "-", stdin=SIP_ONLY.read_bytes())
    assert r.returncode == 3
    assert r.stderr.decode() == ("Error: <stdin>: 90 frames, no HEP (plain SIP? try: heptool "
                                 "convert FILE)\n")
    r = heptool(build, "decode", "-f", "jsonl", SIP_ONLY, KAM / "kamailio-hep3-udp.hep.pcap")
    assert r.returncode == 3 and len(r.stdout.splitlines()) == 60
    assert "no HEP" in r.stderr.decode()


def frame_times(path: Path) -> list[str]:
    from heptool.capture.inputs import iter_input
    from heptool.core.record import format_time

    return [format_time(*p.outer_ts) for p in iter_input(str(path))]


def test_hepv1_records_carry_their_frame_time(build):
    r = heptool(build, "decode", "-f", "jsonl", V1)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["frame_time"] for x in recs] == frame_times(V1)
    assert all(x["time"] is None and x["ts_sec"] is None for x in recs)
    assert list(recs[0])[:6] == ["index", "frame", "hep_transport", "hep_src", "hep_dst",
                                 "frame_time"]
    r3 = heptool(build, "decode", "-f", "jsonl", KAM / "kamailio-hep2-udp.hep.pcap")
    assert b"frame_time" not in r3.stdout  # a message with its own time keeps only that


def test_since_until_match_hepv1_by_frame_time(build):
    def count(*args, stdin=None):
        r = heptool(build, "decode", "-f", "jsonl", *args, stdin=stdin)
        assert r.returncode == 0, r.stderr
        return len(r.stdout.splitlines())

    assert count(V1, "--since", SPLIT) == 52
    assert count(V1, "--until", SPLIT) == 8
    assert count(V1, "--since", SPLIT + "Z", "--until", "2026-11-26T09:04:43.2Z") == 22
    # decode's records read back keep the frame time
    jl = heptool(build, "decode", "-f", "jsonl", V1).stdout
    assert count("-", "--since", SPLIT, stdin=jl) == 52


def test_correlate_and_convert_select_hepv1_by_frame_time(build, tmp_path):
    every = json.loads(heptool(build, "correlate", "-f", "json", V1).stdout)["groups"]
    late = json.loads(heptool(build, "correlate", "-f", "json", V1, "--since", SPLIT)
                      .stdout)["groups"]
    assert 0 < len(late) < len(every)
    out = tmp_path / "late.pcap"
    r = heptool(build, "convert", V1, "-o", out, "--since", SPLIT)
    assert r.returncode == 0 and r.stderr == b""
    back = heptool(build, "convert", out, "--to", "jsonl")
    assert len(back.stdout.splitlines()) == 52
