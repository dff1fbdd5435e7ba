"""--method/--status in every command that filters messages: decode, correlate, convert,
send and listen (issue 14 #4), on plain SIP and OpenSIPS JSON-mode payloads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import heptool
from heptool.cli import main
from heptool.cli.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import ListenProcess, run_heptool

SIP = {
    "invite": b"INVITE sip:b@x SIP/2.0\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@x>;tag=1"
              b"\r\nTo: <sip:b@x>\r\n\r\n",
    "busy": b"SIP/2.0 486 Busy Here\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@x>;tag=1"
            b"\r\nTo: <sip:b@x>;tag=2\r\n\r\n",
    "options": b"OPTIONS sip:x SIP/2.0\r\nCall-ID: k1\r\nCSeq: 7 OPTIONS\r\n\r\n",
    "ok": b"SIP/2.0 200 OK\r\nCall-ID: k1\r\nCSeq: 7 OPTIONS\r\n\r\n",
}


def wrapped(sip: bytes) -> bytes:
    return json.dumps({"payload": sip.decode()}).encode()


def messages() -> list[heptool.HepMessage]:
    """INVITE (OpenSIPS JSON mode), 486 (plain), OPTIONS, 200 (wrapped), a log line."""
    out = []
    payloads = [(1, wrapped(SIP["invite"])), (1, SIP["busy"]), (1, SIP["options"]),
                (1, wrapped(SIP["ok"])), (100, b"INVITE sip:b@x SIP/2.0 in a log line")]
    for i, (proto, payload) in enumerate(payloads):
        out.append(heptool.HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2",
                                      dst_port=5060, ts_sec=1_700_000_000 + i, ts_usec=0,
                                      proto_type=proto, capture_id=1, payload=payload))
    return out


@pytest.fixture
def stream(tmp_path) -> Path:
    path = tmp_path / "x.hep"
    path.write_bytes(b"".join(heptool.encode(m) for m in messages()))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    with runner.isolation() as streams:
        env = Environment(stdout_isatty=False, stderr_isatty=False, stdin_isatty=False)
        status = main([*map(str, args)], env=env)
        sys.stdout.flush()
        sys.stderr.flush()
        return status, streams[0].getvalue().decode(), streams[1].getvalue().decode()


def indexes(out: str) -> list[int]:
    return [json.loads(x)["index"] for x in out.splitlines() if x.strip()]


@pytest.mark.parametrize("args,expected", [
    (["--method", "INVITE"], [0, 1]),
    (["--method", "invite", "--status", "4xx"], [1]),
    (["--status", "2xx"], [3]),
    (["--status", "486,200"], [1, 3]),
    (["--method", "!OPTIONS"], [0, 1, 4]),
    (["--method", "OPTIONS", "--method", "INVITE"], [0, 1, 2, 3]),
    (["--status", "!1xx,!2xx"], [0, 1, 2, 4]),
])
def test_decode(stream, args, expected):
    status, out, err = invoke("decode", stream, "-f", "jsonl", *args)
    assert status == 0, err
    assert indexes(out) == expected


def test_decode_usage_errors(stream):
    status, _, err = invoke("decode", stream, "--status", "4x")
    assert status == 2 and "--status: '4x' is not a SIP status" in err
    status, _, err = invoke("decode", stream, "--method", "IN VITE")
    assert status == 2 and "--method: 'IN VITE' is not a SIP method" in err


def test_convert_filters_by_method(stream, tmp_path):
    out = tmp_path / "y.pcap"
    status, _, err = invoke("convert", stream, "-f", "pcap", "-o", out, "--method", "!OPTIONS")
    assert status == 0, err
    status, text, err = invoke("convert", out, "--to", "jsonl")
    assert status == 0, err
    # the INVITE and its 486 are left (the log line is no SIP a SIP capture holds)
    assert [json.loads(x)["ts_sec"] - 1_700_000_000 for x in text.splitlines()] == [0, 1]


def test_correlate_selects_groups(stream):
    status, out, err = invoke("correlate", stream, "-f", "json", "--status", "486")
    assert status == 0, err
    groups = json.loads(out)["groups"]
    assert len(groups) == 1 and groups[0]["call_ids"] == ["c1"]
    status, out, err = invoke("correlate", stream, "-f", "json", "--method", "OPTIONS")
    assert [g["call_ids"] for g in json.loads(out)["groups"]] == [["k1"]]


def test_send_and_listen(stream):
    """send --method INVITE sends the INVITE and its reply; listen --method '!OPTIONS' ...
    is tested with everything sent: OPTIONS and its 200 are counted as filtered out."""
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl", "--method",
                       "!OPTIONS") as lp:
        r = run_heptool("send", str(stream), "--to", lp.url("udp"))
        assert r.returncode == 0, r.stderr
        recs = [json.loads(x) for x in lp.read_records(3)]
        assert lp.stop() == 0
    assert [r["payload"][:12] for r in recs] == [wrapped(SIP["invite"]).decode()[:12],
                                                 "SIP/2.0 486 ", "INVITE sip:b"]
    err = "\n".join(lp.stderr_lines)
    assert "filtered out 2" in err and "3 accepted" in err, err
    with ListenProcess("--bind", "udp://127.0.0.1:0", "-f", "jsonl") as lp:
        r = run_heptool("send", str(stream), "--to", lp.url("udp"), "--method", "invite")
        assert r.returncode == 0, r.stderr
        recs = [json.loads(x) for x in lp.read_records(2)]
        assert lp.stop() == 0
    assert [r["ts_sec"] - 1_700_000_000 for r in recs] == [0, 1]


def test_flow_draws_only_the_selected_sip_rows(stream):
    status, out, err = invoke("flow", stream, "--call-id", "c1")
    assert status == 0, err
    assert "INVITE" in out and "486 Busy Here" in out
    status, out, err = invoke("flow", stream, "--call-id", "c1", "--status", "4xx")
    assert status == 0, err
    assert "INVITE ─" not in out and "486 Busy Here" in out
    status, out, err = invoke("flow", stream, "--call-id", "k1", "--method", "!OPTIONS")
    assert status == 0, err
    assert "OPTIONS" not in out.split("\n", 1)[1] and "200" not in out
