"""The text views of decode (the table) and correlate (the tree): nothing cut, times marked
UTC or local, widths from --width, $COLUMNS or the terminal, -v payloads as lines (issue 14
#1, #2, #7, #12).

The proof of "never cut an address or port": every bundled capture under tests/vectors is
written as a table to a file, to a 60-column width, and as correlate's tree, and every
endpoint of its records (and every id of its groups) must be found there whole.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import CliRunner

import heptool
from heptool.cli import main
from heptool.cli.env import Environment
from heptool.output.table import FRAME_TIME_MARK, TableWriter
from heptool.output.text import paint, wrap

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
KAMAILIO = VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap"
OPENSIPS = VECTORS / "opensips" / "opensips-3.4.15-hep3-udp.pcap"


class Result(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str


def invoke(args, *, columns: str | None = None, stdin: bytes | None = None,
           extra_env: dict | None = None, **env_kw) -> Result:
    """``heptool ARGS`` in-process through the real error boundary; COLUMNS as given (unset
    by default), the Environment built inside the isolation."""
    runner = CliRunner(env={"COLUMNS": columns, "NO_COLOR": None, "FORCE_COLOR": None,
                            **(extra_env or {})})
    with runner.isolation(input=stdin) as streams:
        env = Environment(**env_kw)
        status = main([*map(str, args)], env=env)
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Result(status, out.decode("utf-8"), err.decode("utf-8"))


def run_process(args, **env_vars) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR",
                                                            "FORCE_COLOR", "TZ")}
    env.update(PYTHONPATH=str(ROOT), **env_vars)
    return subprocess.run([sys.executable, "-m", "heptool", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def endpoint(ip, port) -> str:
    text = f"[{ip}]" if ":" in str(ip) else str(ip)
    return text if port is None else f"{text}:{port}"


def records_of(path: Path) -> list[dict]:
    r = invoke(["decode", "-f", "jsonl", path])
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def _captures() -> list[Path]:
    return sorted(p for p in VECTORS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".bin"))


HEP_CAPTURES = [p for p in _captures() if records_of(p)]


def test_the_proof_covers_the_bundled_captures():
    names = {p.name for p in HEP_CAPTURES}
    assert len(names) >= 10
    assert {"opensips-3.4.15-hep3-udp.pcap", "kamailio-hep1-udp.hep.pcap",
            "hepjs-hep3-tcp.hep.pcap", "sngrep-hep2-udp.hep.pcap"} <= names


# ---------------------------------------------------------------------------------------
# The proof: every endpoint, every id, whole
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("capture", HEP_CAPTURES, ids=lambda p: p.name)
def test_every_endpoint_of_every_record_is_in_the_table_whole(capture, tmp_path):
    records = records_of(capture)
    out = tmp_path / "table.txt"
    r = invoke(["decode", "-f", "table", "-o", out, capture], stdout_isatty=True)
    assert r.exit_code == 0, r.stderr
    to_file = out.read_text()
    narrow = invoke(["decode", "-f", "table", "--width", "60", capture])
    assert narrow.exit_code == 0, narrow.stderr
    on_terminal = invoke(["decode", "-f", "table", capture], columns="60", stdout_isatty=True)
    for rec in records:
        pair = (f"{endpoint(rec['src_ip'], rec['src_port'])} -> "
                f"{endpoint(rec['dst_ip'], rec['dst_port'])}")
        for text in (to_file, narrow.stdout, on_terminal.stdout):
            assert pair in text, (capture.name, rec["index"], pair)
    # to a file: one line per message and the header, nothing wrapped
    assert len(to_file.splitlines()) == len(records) + 1


@pytest.mark.parametrize("capture", HEP_CAPTURES, ids=lambda p: p.name)
def test_every_id_of_every_group_is_in_the_tree_whole(capture, tmp_path):
    doc = json.loads(invoke(["correlate", "-f", "json", capture]).stdout)
    out = tmp_path / "tree.txt"
    assert invoke(["correlate", "-f", "table", "-o", out, capture]).exit_code == 0
    narrow = invoke(["correlate", "-f", "table", "--width", "60", capture])
    assert narrow.exit_code == 0, narrow.stderr
    for text in (out.read_text(), narrow.stdout):
        for g in doc["groups"]:
            assert f"group {g['id']} " in text
            for value in [*g["call_ids"], *(v for vs in g["ids"].values() for v in vs)]:
                assert value in text, (capture.name, g["id"], value)
        for d in doc["dangling"]:
            assert f" {d['value']} " in text or f" {d['value']}\n" in text
    for d in doc["dangling"]:  # unlimited: on one line
        assert f"#{d['from']} {d['via']} {d['value']} (matches nothing)" in out.read_text()


# ---------------------------------------------------------------------------------------
# Widths: unlimited outside a terminal, --width, $COLUMNS, the terminal's
# ---------------------------------------------------------------------------------------

LONG_URI = "sip:" + "x" * 300 + "@[2001:db8::99]:5080"


@pytest.fixture(scope="module")
def wide_hep(tmp_path_factory) -> Path:
    """IPv6 endpoints, a capture agent, a correlation id and a 330-character first line."""
    msgs = [heptool.HepMessage(
        src_ip="2001:db8:aaaa:bbbb:cccc:dddd:eeee:1", src_port=50601,
        dst_ip="2001:db8:aaaa:bbbb:cccc:dddd:eeee:2", dst_port=5061,
        ts_sec=1_795_683_906, ts_usec=600_381, proto_type="sip", capture_id=4242,
        node_name="edge-7", correlation_id="corr-1@example.org",
        payload=f"INVITE {LONG_URI} SIP/2.0\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n".encode())]
    p = tmp_path_factory.mktemp("wide") / "wide.hep"
    p.write_bytes(b"".join(heptool.encode(m) for m in msgs))
    return p


def test_outside_a_terminal_lines_are_as_long_as_their_contents(wide_hep):
    r = invoke(["decode", "-f", "table", wide_hep])
    assert r.exit_code == 0, r.stderr
    head, row = r.stdout.splitlines()
    for col in ("#", "time (UTC)", "proto", "src -> dst", "capture", "correlation", "summary"):
        assert col in head
    assert ("[2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:50601 -> "
            "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:2]:5061") in row
    assert "4242/edge-7" in row and "corr-1@example.org" in row
    assert row.endswith(f"INVITE {LONG_URI} SIP/2.0")


def test_width_leaves_columns_out_and_wraps_the_summary_never_an_endpoint(wide_hep):
    r = invoke(["decode", "-f", "table", "--width", "40", wide_hep])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "capture" not in lines[0] and "correlation" not in lines[0]
    assert "proto" not in lines[0]
    # the endpoint pair is whole, on one line longer than 40 columns
    assert any("[2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:50601 -> "
               "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:2]:5061" in line for line in lines)
    # the summary wrapped at its spaces, the URI (one word) whole on a line of its own
    assert [line.strip() for line in lines[-3:]] == ["INVITE", LONG_URI, "SIP/2.0"]


def test_width_sources_in_order(tmp_path):
    """--width, else $COLUMNS, else the terminal's (80 when it cannot be asked), else none."""
    by_option = invoke(["decode", "-f", "table", "--width", "80", KAMAILIO]).stdout
    lines = by_option.splitlines()
    assert max(map(len, lines)) <= 80
    # a URI wider than the summary column (room 23) sent the summary under its row, whole
    assert "    INVITE sip:service@127.0.0.1:25060 SIP/2.0" in lines
    assert "capture" not in lines[0] and "proto" not in lines[0] and "src -> dst" in lines[0]
    assert invoke(["decode", "-f", "table", KAMAILIO], columns="80").stdout == by_option
    assert invoke(["decode", "-f", "table", "--width", "80", KAMAILIO],
                  columns="200").stdout == by_option
    assert invoke(["decode", "-f", "table", "--color", "never", KAMAILIO],
                  stdout_isatty=True).stdout == by_option
    unlimited = invoke(["decode", "-f", "table", KAMAILIO]).stdout
    assert "capture" in unlimited.splitlines()[0] and max(map(len, unlimited.splitlines())) > 80
    # -o FILE: only --width limits it ($COLUMNS is the terminal's)
    out = tmp_path / "t.txt"
    invoke(["decode", "-f", "table", "-o", out, KAMAILIO], columns="80", stdout_isatty=True)
    assert out.read_text() == unlimited


def test_correlate_tree_width(tmp_path):
    wide = invoke(["correlate", "-f", "table", OPENSIPS]).stdout
    assert max(map(len, wide.splitlines())) > 100
    narrow = invoke(["correlate", "-f", "table", OPENSIPS], columns="70").stdout
    assert narrow == invoke(["correlate", "-f", "table", "--width", "70", OPENSIPS]).stdout
    # lines wrap at spaces within 70 columns; only an unbreakable word goes past
    for line in narrow.splitlines():
        assert len(line) <= 70 or " " not in line.lstrip("│├└─ ").strip(), line
    def words(text: str) -> list[str]:
        return [w for w in text.split() if w.strip("│├└─")]

    assert words(narrow) == words(wide)  # the same words, only the lines differ


def test_help_documents_width_columns_utc_and_the_frame_mark():
    for cmd in ("decode", "correlate"):
        text = " ".join(invoke([cmd, "--help"]).stdout.split())
        for words in ("--width N", "$COLUMNS", "--localtime", "UTC"):
            assert words in text, (cmd, words)
    decode = " ".join(invoke(["decode", "--help"]).stdout.split())
    assert 'ending in "~" is the capture frame\'s' in decode


# ---------------------------------------------------------------------------------------
# Times: UTC marked, --localtime
# ---------------------------------------------------------------------------------------

def test_times_are_marked_utc():
    recs = records_of(KAMAILIO)
    lines = invoke(["decode", "-f", "table", KAMAILIO]).stdout.splitlines()
    assert "time (UTC)" in lines[0]
    assert recs[0]["time"][11:-1] in lines[1]
    tree = invoke(["correlate", "-f", "table", OPENSIPS]).stdout
    assert "08:59:53.361522 UTC\n" in tree
    assert "08:59:53.375575 .. 08:59:53.386380 UTC (0.011 s)" in tree


def test_localtime_shows_the_local_zone():
    recs = records_of(KAMAILIO)
    r = run_process(["decode", "-f", "table", "--localtime", KAMAILIO], TZ="Asia/Kolkata")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "time (UTC+05:30)" in lines[0]
    assert recs[0]["time"] == "2026-11-26T09:05:06.262373Z"
    assert "14:35:06.262373" in lines[1]
    tree = run_process(["correlate", "-f", "table", "--localtime", OPENSIPS], TZ="Asia/Kolkata")
    assert "14:29:53.375575 .. 14:29:53.386380 UTC+05:30 (0.011 s)" in tree.stdout
    # the same in UTC without the option, whatever TZ says
    utc = run_process(["decode", "-f", "table", KAMAILIO], TZ="Asia/Kolkata")
    assert "time (UTC)" in utc.stdout and "09:05:06.262373" in utc.stdout


def _table(records, **kw) -> str:
    out = io.StringIO()
    w = TableWriter(out, **kw)
    for rec in records:
        w.write(rec)
    w.close()
    return out.getvalue()


def test_a_message_without_hep_time_shows_its_frame_time_marked():
    base = {"index": 0, "version": 1, "src_ip": "10.0.0.1", "src_port": 5060,
            "dst_ip": "10.0.0.2", "dst_port": 5060, "proto": "sip", "proto_type": 1,
            "payload": "OPTIONS sip:a@b SIP/2.0\r\n\r\n"}
    text = _table([{**base, "time": None, "frame_time": "2026-11-26T09:05:06.600381Z"},
                   {**base, "index": 1, "time": None},
                   {**base, "index": 2, "time": "2026-11-26T09:05:07.000001Z"}])
    rows = text.splitlines()[1:]
    assert f"09:05:06.600381{FRAME_TIME_MARK}" in rows[0]
    assert rows[1].split()[1] == "-"
    assert "09:05:07.000001 " in rows[2] and FRAME_TIME_MARK not in rows[2]


# ---------------------------------------------------------------------------------------
# -v: the payload as lines
# ---------------------------------------------------------------------------------------

def test_verbose_shows_the_sip_payload_line_by_line():
    r = invoke(["decode", "-f", "table", "-v", "--count", "1", KAMAILIO])
    assert r.exit_code == 0, r.stderr
    assert "\\r\\n" not in r.stdout
    stripped = [line.strip() for line in r.stdout.splitlines()]
    assert any(s.endswith("payload     OPTIONS sip:127.0.0.1:2506 SIP/2.0") for s in stripped)
    for header in ("Via: SIP/2.0/UDP 127.0.0.1:55768;branch=z9hG4bK.0c24fe3b;rport;alias",
                   "Call-ID: 1779326919@127.0.0.1", "CSeq: 1 OPTIONS", "Accept: text/plain"):
        assert header in stripped
    # the payload's lines sit under its first line's value, one column
    lines = r.stdout.splitlines()
    first = next(line for line in lines if "OPTIONS sip:127.0.0.1:2506 SIP/2.0" in line
                 and "payload" in line)
    via = next(line for line in lines if line.strip().startswith("Via: "))
    assert via.index("Via: ") == first.index("OPTIONS sip:")


def test_verbose_unwraps_sip_in_json():
    r = invoke(["decode", "-f", "table", "-v", "--count", "1", OPENSIPS])
    stripped = [line.strip() for line in r.stdout.splitlines()]
    assert any(s.endswith("payload         (SIP in JSON)") for s in stripped)
    assert "CSeq: 1 OPTIONS" in stripped and "\\r\\n" not in r.stdout


def test_verbose_escapes_each_line(tmp_path):
    m = heptool.HepMessage(src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2", dst_port=2,
                           payload=b"OPTIONS sip:a@b SIP/2.0\r\nX-Evil: \x1b[2J\tx\r\n\r\n")
    p = tmp_path / "evil.hep"
    p.write_bytes(heptool.encode(m))
    r = invoke(["decode", "-f", "table", "-v", p])
    assert "\x1b" not in r.stdout
    assert "X-Evil: \\x1b[2J\\tx" in [line.strip() for line in r.stdout.splitlines()]


# ---------------------------------------------------------------------------------------
# The record path and the message path print the same; colour; wrapping
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("capture", HEP_CAPTURES, ids=lambda p: p.name)
def test_summary_from_the_record_is_the_messages(capture):
    from heptool.pipeline.reader import MessageReader
    from heptool.sip.summary import record_summary, summary

    pairs = []
    reader = MessageReader([str(capture)], on_problem=lambda p: None)
    reader.each_record(lambda rec, m, p: pairs.append((rec, m)), need_sip=False)
    assert pairs
    for rec, m in pairs:
        assert record_summary(rec) == summary(m)


def test_table_without_a_filter_equals_the_table_with_one():
    """No filter: records come from the packet's bytes (the fast path); with one, from the
    decoded message: the same table."""
    plain = invoke(["decode", "-f", "table", OPENSIPS]).stdout
    filtered = invoke(["decode", "-f", "table", "--capture-id", "2342", OPENSIPS]).stdout
    assert plain == filtered and len(plain.splitlines()) > 100


def test_colour_only_when_asked(monkeypatch):
    always = invoke(["decode", "-f", "table", "--color", "always", KAMAILIO]).stdout
    assert "\x1b[1m#\x1b[0m" in always and "\x1b[36msip\x1b[0m" in always
    on_tty = invoke(["decode", "-f", "table", "--width", "200", KAMAILIO], stdout_isatty=True,
                    extra_env={"TERM": "xterm"})
    assert "\x1b[" in on_tty.stdout
    no_color = invoke(["decode", "-f", "table", "--width", "200", KAMAILIO],
                      stdout_isatty=True, extra_env={"NO_COLOR": "1", "TERM": "xterm"})
    assert "\x1b" not in no_color.stdout
    forced = invoke(["decode", "-f", "table", KAMAILIO], extra_env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.stdout
    never = invoke(["correlate", "-f", "table", "--color", "never", OPENSIPS],
                   stdout_isatty=True, extra_env={"TERM": "xterm"})
    assert "\x1b" not in never.stdout
    tree = invoke(["correlate", "-f", "table", "--color", "always", OPENSIPS]).stdout
    assert "\x1b[1mgroup 0\x1b[0m" in tree
    # colour does not change what is shown
    assert _strip_ansi(always) == invoke(["decode", "-f", "table", KAMAILIO]).stdout


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_wrap_breaks_at_spaces_only():
    assert wrap("a bb ccc", None) == ["a bb ccc"]
    assert wrap("a bb ccc", 4) == ["a bb", "ccc"]
    assert wrap("10.0.0.1:5060 -> [2001:db8::1]:5060", 10) == ["10.0.0.1:5060", "->",
                                                              "[2001:db8::1]:5060"]
    assert wrap("aaa bbb ccc ddd", 7, 3) == ["aaa bbb", "ccc", "ddd"]
    assert paint("x", "red", False) == "x" and paint("x", "red", True) == "\x1b[31mx\x1b[0m"


def test_a_rich_console_still_drives_the_table():
    """listen passes a rich Console: its file, its colour, its width when a terminal."""
    from rich.console import Console

    buf = io.StringIO()
    rec = {"index": 0, "time": "2026-11-26T09:05:06.600381Z", "src_ip": "10.0.0.1",
           "src_port": 5060, "dst_ip": "10.0.0.2", "dst_port": 5060, "proto": "log",
           "proto_type": 100, "payload": "hello " * 40}
    w = TableWriter(Console(file=buf, width=60, force_terminal=True, color_system=None),
                    batch=1)
    w.write(rec)
    w.close()
    lines = buf.getvalue().splitlines()
    assert max(map(len, lines)) <= 60 and "\x1b" not in buf.getvalue()
    assert " ".join(buf.getvalue().split()).endswith(("hello " * 40).strip())
    # not a terminal (listen -o FILE): no width, one line per message
    buf = io.StringIO()
    w = TableWriter(Console(file=buf, width=60, force_terminal=False), batch=1)
    w.write(rec)
    w.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].endswith("hello")
