"""Issue 14 #12: records from several inputs start with "input" (the input's name); from
one input they have no such key.  Both builds print the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KAM = ROOT / "tests" / "vectors" / "kamailio"
A = KAM / "kamailio-hep3-udp.hep.pcap"  # 60 HEPv3 (the C fast path's)
B = KAM / "kamailio-hep1-udp.hep.pcap"  # 60 HEPv1 (the record path's)


def decode(*args: object, pure: bool = False, stdin: bytes | None = None) -> bytes:
    env = dict(os.environ)
    env.pop("HEPTOOL_PURE", None)
    if pure:
        env["HEPTOOL_PURE"] = "1"
    r = subprocess.run([sys.executable, "-m", "heptool", "decode", *map(str, args)],
                       input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("args", [["-f", "jsonl"], ["-f", "json"], ["-f", "jsonl", "--proto", "sip"],
                                  ["-f", "jsonl", "--summary"]],
                         ids=["jsonl", "json", "filtered", "summary"])
def test_several_inputs_name_theirs_in_both_builds(args):
    out = decode(*args, A, B)
    assert out == decode(*args, A, B, pure=True)
    lines = out.splitlines()
    recs = json.loads(out) if "json" in args else [json.loads(x) for x in lines]
    assert [r["input"] for r in recs] == [str(A)] * 60 + [str(B)] * 60
    assert all(next(iter(r)) == "input" for r in recs)
    assert [r["index"] for r in recs] == list(range(60)) * 2  # indexes count per input


def test_one_input_has_no_input_key():
    for src in (A, B):
        assert b'"input"' not in decode("-f", "jsonl", src)


def test_standard_input_is_named_stdin():
    out = decode("-f", "jsonl", "-", B, stdin=A.read_bytes())
    recs = [json.loads(x) for x in out.splitlines()]
    assert {r["input"] for r in recs[:60]} == {"<stdin>"} and recs[60]["input"] == str(B)
