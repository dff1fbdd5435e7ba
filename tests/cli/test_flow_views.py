"""``heptool flow`` views of issue 14: --full, (SDP) markers, separate time and delta
columns with the zone, from/to on REST and net rows, one title, expandable HTML rows without
external resources, --alias merging columns, endpoints never cut (#1), --localtime (#7),
and TLS key material redacted (#12)."""

from __future__ import annotations

import json
import re
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

import heptool
from heptool.cli import main
from heptool.cli.env import Environment
from heptool.output.flow import build_flow, render_text
from heptool.output.flow_html import render_html, render_svg

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
CAPTURE = VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap"


def run(args, *, env=None, columns=None):
    """(exit status, stdout, stderr); ``env``: Environment keywords (built inside the
    isolation, so that it writes to the captured streams)."""
    runner = CliRunner(env={"COLUMNS": str(columns) if columns else ""})
    with runner.isolation() as streams:
        status = main([*map(str, args)], env=Environment(**(env or {})))
        sys.stdout.flush()
        sys.stderr.flush()
        out = streams[0].getvalue().decode("utf-8", "replace")
        err = streams[1].getvalue().decode("utf-8", "replace")
    return status, out, err


def flow_text(*args, **kw):
    status, out, err = run(["flow", CAPTURE, "--color", "never", *args], **kw)
    assert status == 0, err
    return out


def rows_of(out):
    """{index: [row line, lines under it...]} of a text flow."""
    rows: dict[int, list[str]] = {}
    current = None
    for line in out.splitlines()[2:]:
        m = re.match(r"\s*(\d+) \d\d:\d\d:\d\d\.\d{6} ", line)
        if m:
            current = int(m.group(1))
            rows[current] = [line]
        elif current is not None:
            rows[current].append(line)
    return rows


# --- --full, markers, columns, from/to, title ------------------------------------------

def test_full_shows_every_message_under_its_row_escaped_and_indented():
    rows = rows_of(flow_text("--group", "4", "--full"))
    assert len(rows) == 26
    invite = rows[33]
    assert "INVITE (SDP)" in invite[0]
    under = invite[1:]
    assert under[0].strip() == "INVITE sip:bob@127.0.0.1:5060 SIP/2.0"
    assert all(line.startswith("       ") for line in under)  # indented under the row
    for line in ("Call-ID: hc-tcp-call-c7ba77@heptool.test", "Content-Type: application/sdp",
                 "v=0", "m=audio 40000 RTP/AVP 0"):
        assert line in [x.strip() for x in under]
    assert not any("\r" in x for x in under)
    assert any("HTTP/1.0 200 OK" in x for x in rows[36][1:])  # a REST reply in full too


def test_message_n_shows_one_message_and_refuses_what_is_not_an_index():
    rows = rows_of(flow_text("--group", "4", "--message", "45"))
    assert [i for i, lines in rows.items() if len(lines) > 1] == [45]
    assert rows[45][1].strip() == "SIP/2.0 200 OK"
    status, _out, err = run(["flow", CAPTURE, "--group", "4", "--message", "x"])
    assert status == 2 and "--message" in err


def test_full_before_the_input_is_a_flag_not_a_value():
    status, out, _err = run(["flow", "--full", "--group", "4", CAPTURE, "--color", "never"])
    assert status == 0 and "Call-ID: hc-tcp-call-c7ba77@heptool.test" in out


def test_full_escapes_control_characters():
    sip = heptool.HepMessage(
        src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060, ts_sec=1700000000,
        ts_usec=0, proto_type=1,
        payload=b"MESSAGE sip:b@x SIP/2.0\r\nCall-ID: e@x\r\nSubject: \x1b[31mred\r\n\r\n"
                b"<script>\x1b]0;t\x07")
    path = Path(__import__("tempfile").mkdtemp()) / "e.hep"
    path.write_bytes(heptool.encode(sip))
    status, out, _ = run(["flow", path, "--call-id", "e@x", "--full", "--color", "never"])
    assert status == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "Subject: \\x1b[31mred" in out and "(body)" in out  # a body that is not SDP
    html = render_html(build_flow("t", [(0, sip, "sip")]))
    assert "<script>\x1b" not in html and "&lt;script&gt;\\x1b]0;t\\x07" in html


def test_time_and_delta_are_columns_with_the_zone_and_rest_net_rows_have_endpoints():
    out = flow_text("--group", "4")
    lines = out.splitlines()
    assert lines[0] == "group 4: SIP INVITE, Call-ID hc-tcp-call-c7ba77@heptool.test"
    assert out.count("group 4: SIP INVITE") == 1  # one title
    assert re.match(r"\s*# +time UTC +delta ", lines[1])
    rows = rows_of(out)
    assert re.match(r"32 08:59:54\.649697 {17}", rows[32][0])  # no delta on the first row
    assert re.match(r"33 08:59:54\.649975 +\+0\.000278  ", rows[33][0])
    assert "[rest_request] 127.0.0.1:4232 -> 127.0.0.1:15650  GET /hep.json" in rows[35][0]
    assert "[net_tcp] 127.0.0.1:5090 -> 127.0.0.1:37115  TCP CONNECTED" in rows[40][0]
    # OpenSIPS's "no socket" 127.0.0.2:0 is not an endpoint
    assert "[net_tcp] TCP CLOSED SUCCESS" in rows[56][0] and "127.0.0.2" not in out


def test_sdp_marker_only_on_messages_with_a_body():
    rows = rows_of(flow_text("--group", "4"))
    marked = sorted(i for i, lines in rows.items() if "(SDP)" in lines[0])
    assert marked == [33, 41, 45, 47]  # the two INVITEs and the two 200 OKs
    assert "ACK (SDP)" not in "".join(x[0] for x in rows.values())


def test_html_rows_expand_with_the_whole_message_and_fetch_nothing(tmp_path):
    out = tmp_path / "f.html"
    status, _, err = run(["flow", CAPTURE, "--group", "4", "-f", "html", "-o", out])
    assert status == 0, err
    page = out.read_text()
    HTMLParser().feed(page)
    assert page.count("<details>") == 26 and page.count("<pre>") == 26
    assert "<th>time (UTC)</th><th>delta</th>" in page
    assert "INVITE (SDP)</summary>" in page
    assert "Content-Type: application/sdp\nContent-Length: 114\n\nv=0\n" in page
    assert "<td>127.0.0.1:4232</td><td>127.0.0.1:15650</td>" in page  # REST from/to
    # one title: the page heading (the ladder inside does not draw it again)
    title = "group 4: SIP INVITE, Call-ID hc-tcp-call-c7ba77@heptool.test"
    assert page.count(f"<h1>{title}</h1>") == 1
    assert page.count(f">{title}</text>") == 0
    # self-contained: no external script, style, image or font
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page)
    assert not re.search(r"\bsrc\s*=", page) and "@import" not in page and "url(http" not in page
    assert not re.search(r'href="(?!#m\d+")', page)


# --- --alias ---------------------------------------------------------------------------

def test_alias_gives_several_endpoints_one_name_and_one_column():
    out = flow_text("--group", "4", "--alias", "Proxy=127.0.0.1:5060,127.0.0.1:37115",
                    "--alias", "127.0.0.1:5090=UAS")
    header = out.splitlines()[1]
    assert header.split()[4:] == ["127.0.0.1:52736", "Proxy", "UAS"]  # 3 columns, not 4
    rows = rows_of(out)
    assert re.search(r"^33 .{15}  \+0\.000278 +│─+ INVITE \(SDP\) ─+▶ +│$", rows[33][0])
    assert "[net_tcp] UAS -> Proxy  TCP CONNECTED" in rows[40][0]
    # the same by the ENDPOINT=NAME form, one endpoint at a time
    again = flow_text("--group", "4", "--alias", "127.0.0.1:5060=Proxy", "--alias",
                      "127.0.0.1:37115=Proxy", "--alias", "UAS=127.0.0.1:5090")
    assert again == out


@pytest.mark.parametrize("alias", ["nonsense", "=10.0.0.1", "Edge=", "10.0.0.1=10.0.0.2",
                                   "Edge=10.0.0.1,host.example", "A,B=10.0.0.1",
                                   "Edge=10.0.0.1:99999", "Edge"])
def test_alias_refuses_what_it_cannot_read(alias):
    status, out, err = run(["flow", CAPTURE, "--group", "4", "--alias", alias])
    assert status == 2 and out == ""
    assert "--alias" in err and "NAME=ENDPOINT" in err


def test_alias_ipv6_endpoint():
    sip = heptool.HepMessage(
        src_ip="2001:db8::1", src_port=5060, dst_ip="2001:db8::2", dst_port=5080,
        ts_sec=1700000000, ts_usec=0, proto_type=1,
        payload=b"OPTIONS sip:b@x SIP/2.0\r\nCall-ID: v6@x\r\nCSeq: 1 OPTIONS\r\n\r\n")
    path = Path(__import__("tempfile").mkdtemp()) / "v6.hep"
    path.write_bytes(heptool.encode(sip))
    status, out, err = run(["flow", path, "--call-id", "v6@x", "--color", "never",
                            "--alias", "A=[2001:db8:0::1]:5060", "--alias", "2001:db8::2=B"])
    assert status == 0, err
    assert out.splitlines()[1].split()[4:] == ["A", "B"]


# --- #1: never cut an endpoint; #7: zone marked, --localtime ------------------------------

def _endpoints_of(capture):
    status, out, _ = run(["decode", capture, "-f", "jsonl"])
    assert status == 0
    eps = set()
    for line in out.splitlines():
        r = json.loads(line)
        for ip, port in ((r["src_ip"], r["src_port"]), (r["dst_ip"], r["dst_port"])):
            if ip is not None and (ip, port) != ("127.0.0.2", 0):
                eps.add(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
    return eps


@pytest.mark.parametrize("capture", [
    VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap",
    VECTORS / "sngrep" / "sngrep-hep3-udp.hep.pcap",
    VECTORS / "kamailio" / "kamailio-hep3-tcp.hep.pcap",
])
def test_every_endpoint_appears_in_full_in_a_flow_written_to_a_file(capture, tmp_path):
    """issue 14 #1: ``flow x.pcap --group 4 -o f.txt`` cut 127.0.0.1:52736 to 127.0.0.1:527."""
    status, out, _ = run(["correlate", capture, "-f", "json"])
    groups = json.loads(out)["groups"]
    text = ""
    for g in groups:
        f = tmp_path / f"g{g['id']}.txt"
        status, _, err = run(["flow", capture, "--group", g["id"], "-o", f], columns=80)
        assert status == 0, err
        text += f.read_text()
    words = set(re.split(r"[\s│▶◀─]+", text))
    missing = {ep for ep in _endpoints_of(capture) if ep not in words}
    assert not missing


def test_a_narrow_terminal_wraps_column_labels_never_cuts_them():
    env = {"stdout_isatty": True, "width": 70, "color": "never"}
    status, out, err = run(["flow", CAPTURE, "--group", "4"], env=env)
    assert status == 0, err
    lines = out.splitlines()
    head = [line for line in lines[1:4] if not re.match(r"\s*\d+ \d\d:", line)]
    assert len(head) == 2  # the labels take two lines
    tops, bottoms = head[0].split()[4:], head[1].split()  # after "#", "time", "UTC", "delta"
    joined = [t + b for t, b in zip(tops, bottoms, strict=True)]
    assert joined == ["127.0.0.1:52736", "127.0.0.1:5060", "127.0.0.1:37115", "127.0.0.1:5090"]
    assert all(len(line) <= 90 for line in lines if "│" in line and "[" not in line)
    # --width N says the same on the command line
    status, again, _ = run(["flow", CAPTURE, "--group", "4", "--width", "70"],
                           env={"stdout_isatty": True, "color": "never"})
    assert status == 0 and again == out


def test_localtime_shows_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "XST-05:30")  # UTC+05:30, no tz database needed
    time.tzset()
    try:
        out = flow_text("--group", "4", "--localtime")
        html_status, html, _ = run(["flow", CAPTURE, "--group", "4", "--localtime", "-f", "html"])
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    lines = out.splitlines()
    assert re.match(r"\s*# +time UTC\+05:30 +delta", lines[1])
    assert lines[2].startswith("32 14:29:54.649697")
    assert html_status == 0 and "<th>time (UTC+05:30)</th>" in html
    assert "<td>14:29:54.649697</td>" in html


# --- #12: TLS key material redacted --------------------------------------------------------

def test_master_key_of_a_tls_net_event_is_redacted_in_every_format(tmp_path):
    text = flow_text("--group", "5", "--full")
    assert re.search(r'"master-key": +"\[redacted\]"', text)
    for fmt in ("html", "svg"):
        status, out, _ = run(["flow", CAPTURE, "--group", "5", "-f", fmt])
        assert status == 0
        assert "master-key" not in out or "[redacted]" in out
    shown = flow_text("--group", "5", "--full", "--show-secrets")
    assert "[redacted]" not in shown and re.search(r'"master-key": +"\S', shown)
    status, html, _ = run(["flow", CAPTURE, "--group", "5", "-f", "html", "--show-secrets"])
    assert "[redacted]" not in html


def test_master_key_of_a_homer5_tls_event_is_redacted():
    key = bytes(range(0x80, 0x80 + 40)) + b":k\x00y"
    net = heptool.HepMessage(
        src_ip="10.0.0.1", src_port=40000, dst_ip="10.0.0.2", dst_port=5061,
        ts_sec=1700000000, ts_usec=0, proto_type=0x59, ip_proto=22,
        correlation_id="77",
        payload=b"TLS:/CN=client:/CN=ca:/CN=opensips.test:/CN=ca:" + key
                + b":ACCEPTED:SUCCESS:Connection accepted...")
    flow = build_flow("t", [(0, net, "net_tls")])
    row = flow.rows[0]
    assert row.text.startswith("TLS:/CN=client:/CN=ca:/CN=opensips.test:/CN=ca:[redacted]:"
                               "ACCEPTED")
    assert row.body == ("TLS:/CN=client:/CN=ca:/CN=opensips.test:/CN=ca:[redacted]:ACCEPTED:"
                        "SUCCESS:Connection accepted...")
    for page in (render_html(flow), render_svg(flow)):
        assert "[redacted]" in page and "\\x80" not in page and "k\\x00y" not in page
    shown = build_flow("t", [(0, net, "net_tls")], show_secrets=True)
    assert "[redacted]" not in shown.rows[0].body


def test_render_text_unlimited_width_never_cuts_a_row():
    long_line = "x" * 500
    log = heptool.HepMessage(src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2", dst_port=2,
                             ts_sec=1700000000, ts_usec=0, proto_type=100,
                             payload=long_line.encode())
    import io

    from rich.console import Console

    buf = io.StringIO()
    render_text(build_flow("t", [(0, log, "log")]), Console(file=buf, width=80,
                                                              color_system=None))
    assert long_line in buf.getvalue()
