"""``heptool flow``: the ladder of one group (text, SVG, HTML), selection, aliases, --hide."""

from __future__ import annotations

import json
import sys
import xml.dom.minidom
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

import heptool
from heptool.cli import main
from heptool.cli.env import Environment
from heptool.cli.exit import ExitStatus
from heptool.output.flow import build_flow, hidden
from heptool.output.flow_html import render_svg

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.pcap"
TCP_CALL = "hc-tcp-call-c7ba77@heptool.test"


class Result:
    def __init__(self, exit_code: int, out: bytes, err: bytes) -> None:
        self.exit_code = exit_code
        self.stdout = out.decode("utf-8", "replace")
        self.stderr = err.decode("utf-8", "replace")


def invoke(args, *, stdin: bytes | None = None, columns: int = 160, **env_kw) -> Result:
    runner = CliRunner(env={"COLUMNS": str(columns)})
    with runner.isolation(input=stdin) as streams:
        env = Environment(**env_kw)
        status = main([*map(str, args)], env=env)
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Result(status, out, err)


def test_text_ladder_of_the_tcp_call():
    r = invoke(["flow", CAPTURE, "--call-id", TCP_CALL, "--color", "never"])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    # one title: the id is not repeated when the group's label already names it
    assert lines[0] == f"group 4: SIP INVITE, Call-ID {TCP_CALL}"
    header = lines[1]
    for col in ("127.0.0.1:52736", "127.0.0.1:5060", "127.0.0.1:37115", "127.0.0.1:5090"):
        assert col in header
    body = "\n".join(lines[2:])
    assert len(lines) == 2 + 26  # every message of the group, one row each
    assert "─ INVITE (SDP) ─" in body and "─ ACK ─" in body and "100 Giving it a try" in body and "▶" in body and "◀" in body
    for tag in ("[net_tcp] 127.0.0.1:52736 -> 127.0.0.1:5060  TCP ACCEPTED", "[xlog] INFO:",
                "[rest_request] 127.0.0.1:4232 -> 127.0.0.1:15650  GET /hep.json",
                "[rest_reply] 127.0.0.1:15650 -> 127.0.0.1:4232  HTTP/1.0 200 OK",
                "[control] correlate"):
        assert tag in body
    assert "+0.0" in body  # deltas
    assert lines[2].startswith("32 08:59:54.649697")


def test_group_number_is_correlates_and_hide():
    by_group = invoke(["flow", CAPTURE, "--group", "4", "--color", "never"])
    by_id = invoke(["flow", CAPTURE, "--call-id", "10882936439586164051", "--color", "never"])
    assert by_group.stdout.splitlines()[1:] == by_id.stdout.splitlines()[1:]
    r = invoke(["flow", CAPTURE, "--group", "4", "--hide", "log,rest,control,net",
                "--color", "never"])
    body = r.stdout.splitlines()[2:]
    assert len(body) == 13  # the 13 SIP messages
    assert not any("[" in line for line in body)


def test_hide_refuses_unknown_kinds_and_lists_the_known():
    """issue 14 #9: ``--hide logs`` was accepted silently and hid nothing."""
    r = invoke(["flow", CAPTURE, "--group", "4", "--hide", "log,logs", "--color", "never"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert "'logs'" in r.stderr and "--hide" in r.stderr
    for known in ("log", "xlog", "rest", "rest_reply", "net", "net_tls", "mi", "control",
                  "rtcp", "qos", "sip"):
        assert f" {known}," in r.stderr or f" {known}\n" in r.stderr or f" {known}." in r.stderr
    # every family and precise kind still accepted, whatever the case and spacing
    ok = invoke(["flow", CAPTURE, "--group", "4", "--hide", " LOG, rest_reply,net_tcp,mi,,",
                 "--color", "never"])
    assert ok.exit_code == 0, ok.stderr


def test_aliases_name_columns():
    r = invoke(["flow", CAPTURE, "--group", "4", "--alias", "127.0.0.1:5060=OpenSIPS",
                "--alias", "127.0.0.1:5090=UAS", "--color", "never"])
    header = r.stdout.splitlines()[1]
    assert "OpenSIPS" in header and "UAS" in header and "127.0.0.1:52736" in header
    r = invoke(["flow", CAPTURE, "--group", "4", "--alias", "127.0.0.1=host"])
    assert "host:5060" in r.stdout.splitlines()[1]
    assert invoke(["flow", CAPTURE, "--group", "4", "--alias", "nonsense"]).exit_code == 2


def test_mi_group_has_rows_but_no_arrows():
    r = invoke(["flow", CAPTURE, "--group", "10", "--color", "never"])
    assert r.exit_code == 0
    assert "[mi_request] MI uptime via fifo" in r.stdout
    assert "[mi_reply] MI reply" in r.stdout


def test_svg_and_html_files(tmp_path):
    svg = tmp_path / "call.svg"
    r = invoke(["flow", CAPTURE, "--call-id", TCP_CALL, "-f", "svg", "-o", svg])
    assert r.exit_code == 0 and r.stdout == ""
    doc = xml.dom.minidom.parse(str(svg))
    assert doc.documentElement.tagName == "svg"
    rows = [g for g in doc.getElementsByTagName("g") if "row" in g.getAttribute("class")]
    assert len(rows) == 26
    assert len(doc.getElementsByTagName("line")) >= 4 + 13  # lifelines + SIP arrows
    html = tmp_path / "call.html"
    r = invoke(["flow", CAPTURE, "--call-id", TCP_CALL, "-f", "html", "-o", html])
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and text.count("<tr class=") == 26
    HTMLParser().feed(text)


def test_payload_text_is_escaped_in_svg_and_terminal():
    evil = heptool.HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2",
                              dst_port=5060, ts_sec=1700000000, ts_usec=0, proto_type=100,
                              correlation_id="x@y", payload=b"<script>\x1b[31m&")
    sip = heptool.HepMessage(
        src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060, ts_sec=1700000000,
        ts_usec=1, proto_type=1,
        payload=b"INVITE sip:b@x SIP/2.0\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\n\r\n")
    flow = build_flow("t <&>", [(0, sip, "sip"), (1, evil, "log")])
    svg = render_svg(flow)
    xml.dom.minidom.parseString(svg)
    assert "<script>" not in svg and "\x1b" not in svg
    path = Path(__import__("tempfile").mkdtemp()) / "e.hep"
    path.write_bytes(heptool.encode(sip) + heptool.encode(evil))
    r = invoke(["flow", path, "--call-id", "x@y", "--color", "never"])
    assert "\x1b" not in r.stdout and "\\x1b[31m" in r.stdout


def test_hidden_kinds():
    assert hidden("xlog", ["log"]) and hidden("log", ["log"])
    assert hidden("rest_reply", ["rest"]) and hidden("rest_reply", ["rest_reply"])
    assert not hidden("rest_request", ["rest_reply"]) and not hidden("sip", ["log"])


def test_stdin_input_works_in_one_pass():
    data = CAPTURE.read_bytes()
    r = invoke(["flow", "-", "--group", "1", "--color", "never"], stdin=data)
    assert r.exit_code == 0
    assert "OPTIONS" in r.stdout and len(r.stdout.splitlines()) == 2 + 3


@pytest.mark.parametrize(("args", "status"), [
    (["--call-id", "nobody@nowhere"], ExitStatus.ERROR),
    (["--group", "99"], ExitStatus.ERROR),
    ([], ExitStatus.USAGE),
    (["--group", "1", "--call-id", "x"], ExitStatus.USAGE),
])
def test_errors(args, status):
    r = invoke(["flow", CAPTURE, *args])
    assert r.exit_code == status
    assert r.stderr.count("Error:") == 1


def test_json_of_correlate_and_flow_agree():
    doc = json.loads(invoke(["correlate", CAPTURE, "-f", "json"]).stdout)
    r = invoke(["flow", CAPTURE, "--group", "7", "--color", "never"])
    assert len(r.stdout.splitlines()) - 2 == len(doc["groups"][7]["packets"])
