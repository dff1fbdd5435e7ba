"""``heptool correlate -f calls`` / ``-f calls-jsonl``: one line per call, as sngrep's dialog
list, for any capture (issue 14, "Views that make it the tool people reach for")."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import heptool
from heptool.analysis.calls import SipFacts, call_summaries, uri
from heptool.analysis.correlate import CorrelationGraph
from heptool.cli import main
from heptool.cli.env import Environment

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
OPENSIPS = VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap"
SNGREP = VECTORS / "sngrep" / "sngrep-hep3-udp.hep.pcap"


def run(args, **env_kw):
    runner = CliRunner(env={"COLUMNS": ""})
    with runner.isolation() as streams:
        status = main([*map(str, args)], env=Environment(**env_kw))
        sys.stdout.flush()
        sys.stderr.flush()
        out = streams[0].getvalue().decode("utf-8", "replace")
        err = streams[1].getvalue().decode("utf-8", "replace")
    return status, out, err


def jsonl(*args):
    status, out, err = run(["correlate", *args, "-f", "calls-jsonl"])
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()], err


def test_calls_jsonl_of_the_opensips_capture():
    calls, err = jsonl(OPENSIPS)
    assert [c["group"] for c in calls] == list(range(10))  # the SIP groups
    assert "5 groups without SIP left out" in err  # the MI exchanges, said on stderr
    tcp = calls[4]
    assert tcp == {
        "group": 4, "call_ids": ["hc-tcp-call-c7ba77@heptool.test"],
        "from": "sip:alice@heptool.test", "to": "sip:bob@heptool.test",
        "request": "INVITE", "status": 200, "reason": "OK",
        "start": "2026-11-26T08:59:54.649697Z", "duration": 0.604077,
        "messages": {"net_tcp": 4, "sip": 13, "xlog": 6, "rest_request": 1, "rest_reply": 1,
                     "control": 1},
        "linked": ["control", "log", "net", "rest"],
    }
    assert calls[2]["request"] == "REGISTER" and calls[2]["linked"] == ["log", "rest"]
    assert calls[0]["linked"] == [] and calls[0]["messages"] == {"sip": 1}


def test_calls_of_a_sngrep_capture_and_final_statuses():
    calls, err = jsonl(SNGREP)
    assert err == ""
    summary = [(c["request"], c["status"], c["reason"]) for c in calls]
    assert ("MESSAGE", 404, "Not Found") in summary and ("OPTIONS", 200, "Keepalive") in summary
    assert [c["request"] for c in calls].count("INVITE") == 4
    v6 = next(c for c in calls if c["call_ids"] == ["1-14467@::1"])
    assert v6["from"] == "sip:sipp@[::1]:25082" and v6["status"] == 200


def test_filters_apply():
    calls, _ = jsonl(OPENSIPS, "--call-id", "hc-tls-call-c7ba77@heptool.test")
    assert [c["group"] for c in calls] == [5]
    calls, _ = jsonl(OPENSIPS, "--proto", "net")
    assert [c["group"] for c in calls] == [1, 4, 5, 6, 7, 8, 9]
    calls, _ = jsonl(OPENSIPS, "--group", "3")
    assert [c["call_ids"] for c in calls] == [["hc-udp-call-c7ba77@heptool.test"]]



def test_calls_table_to_a_file_is_whole(tmp_path):
    f = tmp_path / "calls.txt"
    status, out, _ = run(["correlate", OPENSIPS, "-f", "calls", "-o", f])
    assert status == 0 and out == ""
    lines = f.read_text().splitlines()
    assert lines[0].split() == ["GROUP", "START", "(UTC)", "DURATION", "REQUEST", "STATUS",
                                "FROM", "TO", "MSGS", "LINKED", "CALL-ID", "KINDS"]
    assert len(lines) == 11
    row = lines[5].split()
    assert row[:6] == ["4", "08:59:54.649697", "0.604s", "INVITE", "200", "OK"]
    assert row[6:11] == ["sip:alice@heptool.test", "sip:bob@heptool.test", "26",
                         "control,log,net,rest", "hc-tcp-call-c7ba77@heptool.test"]
    assert "net_tcp=4 sip=13 xlog=6" in lines[5]
    # aligned: every column starts at the same offset on every line
    head = lines[0]
    assert all(line[head.index("FROM"):].startswith("sip:") for line in lines[1:])
    # on stdout to a pipe it is the same table, as wide as it needs
    status, piped, _ = run(["correlate", OPENSIPS, "-f", "calls"])
    assert piped == f.read_text()


def test_calls_table_on_a_narrow_terminal_drops_columns_never_cuts():
    status, out, _ = run(["correlate", OPENSIPS, "-f", "calls"], stdout_isatty=True,
                         width=150)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[-3:] == ["TO", "MSGS", "CALL-ID"]  # KINDS and LINKED left out
    assert all(len(line) <= 150 for line in lines)
    assert "hc-wss-call-c7ba77@heptool.test" in out and "sip:alice@heptool.test" in out
    # narrower than the columns that remain: the lines are longer, no value is cut
    status, out, _ = run(["correlate", OPENSIPS, "-f", "calls"], stdout_isatty=True,
                         width=100)
    lines = out.splitlines()
    assert lines[0].split()[-4:] == ["STATUS", "FROM", "TO", "CALL-ID"]
    assert lines[10].split()[-1] == "hc-wss-call-c7ba77@heptool.test"
    status, wide, _ = run(["correlate", OPENSIPS, "-f", "calls"], stdout_isatty=True,
                          width=400)
    assert "KINDS" in wide.splitlines()[0]


def test_calls_table_localtime(monkeypatch):
    monkeypatch.setenv("TZ", "XST-05:30")
    time.tzset()
    try:
        status, out, _ = run(["correlate", OPENSIPS, "-f", "calls"], localtime=True)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert status == 0
    assert "START (UTC+05:30)" in out.splitlines()[0]
    assert out.splitlines()[5].split()[1] == "14:29:54.649697"


def _msg(i, payload, t, src=("10.0.0.1", 5060), dst=("10.0.0.2", 5060)):
    return heptool.HepMessage(src_ip=src[0], src_port=src[1], dst_ip=dst[0], dst_port=dst[1],
                              ts_sec=1700000000 + t, ts_usec=0, proto_type=1, payload=payload)


def _calls(messages):
    graph = CorrelationGraph()
    facts = SipFacts()
    for m in messages:
        facts(graph.add(m), m)
    return call_summaries(graph, graph.groups(), facts)


def test_final_status_is_the_last_final_answer_to_the_first_request():
    inv = (b"INVITE sip:b@x SIP/2.0\r\nFrom: \"Al\" <sip:a@x;user=phone>;tag=1\r\n"
           b"t: sip:b@x\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n")
    calls = _calls([
        _msg(0, b"SIP/2.0 100 Trying\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n", 1),
        _msg(1, inv, 0),
        _msg(2, b"SIP/2.0 180 Ringing\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n", 2),
        _msg(3, b"SIP/2.0 486 Busy Here\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n", 3),
        _msg(4, b"SIP/2.0 200 OK\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\n\r\n", 4),  # not the INVITE's
    ])
    assert len(calls) == 1
    c = calls[0]
    assert (c["request"], c["status"], c["reason"]) == ("INVITE", 486, "Busy Here")
    assert c["from"] == "sip:a@x;user=phone" and c["to"] == "sip:b@x"
    assert c["duration"] == 4.0
    ringing = _calls([_msg(0, inv, 0), _msg(1, b"SIP/2.0 180 Ringing\r\nCall-ID: c1\r\n"
                                                b"CSeq: 1 INVITE\r\n\r\n", 1)])[0]
    assert (ringing["status"], ringing["reason"]) == (180, "Ringing")


@pytest.mark.parametrize(("value", "expected"), [
    ('"Alice" <sip:alice@atlanta.example>;tag=1928301774', "sip:alice@atlanta.example"),
    ("sip:bob@biloxi.example;tag=a6c85cf", "sip:bob@biloxi.example"),
    ("<sip:x@y", "sip:x@y"), ("", None), (None, None),
])
def test_uri(value, expected):
    assert uri(value) == expected
