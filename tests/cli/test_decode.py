"""``heptool decode``: inputs, formats, filters, errors and exit statuses, through the CLI.

Captures are built here with dpkt (independently of heptool's own pcap reader) from HEP
packets made by ``heptool.encode``; the real third-party captures in tests/vectors/ are
decoded through the CLI and checked against their independent references with the
helpers of tests/test_vectors.py (imported, not copied).
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner

import heptool
from heptool.cli import cli, main
from heptool.cli.env import Environment
from heptool.cli.exit import ExitStatus

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_vectors as tv  # the comparison helpers of the vector tests

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_683_906


def sip(method: str, call: str, n: int = 1) -> bytes:
    return (f"{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{n}\r\n"
            f"From: <sip:alice@example.com>;tag=f{n}\r\nTo: <sip:bob@example.com>\r\n"
            f"Call-ID: {call}\r\nCSeq: {n} {method}\r\nContent-Length: 0\r\n\r\n").encode()


def reply(code: int, call: str) -> bytes:
    return (f"SIP/2.0 {code} Whatever\r\nFrom: <sip:alice@example.com>;tag=f1\r\n"
            f"To: <sip:bob@example.com>;tag=t1\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\n\r\n").encode()


def messages() -> list[heptool.HepMessage]:
    """A small mixed set: SIP requests and replies, a log line, IPv6, another capture id."""
    def m(i, **kw):
        base = {"src_ip": "10.0.0.1", "src_port": 5060, "dst_ip": "10.0.0.2", "dst_port": 5060,
                "ts_sec": T0 + i, "ts_usec": 1000 * i, "proto_type": "sip", "capture_id": 2001}
        base.update(kw)
        return heptool.HepMessage(**base)

    return [
        m(0, payload=sip("INVITE", "call-a@h")),
        m(1, payload=reply(100, "call-a@h"), src_ip="10.0.0.2", dst_ip="10.0.0.1"),
        m(2, payload=reply(200, "call-a@h"), src_ip="10.0.0.2", dst_ip="10.0.0.1"),
        m(3, payload=b"INFO route failed for call-a@h", proto_type="log",
          correlation_id="call-a@h"),
        m(4, payload=sip("OPTIONS", "call-b@h"), src_ip="2001:db8::1", dst_ip="2001:db8::2",
          capture_id=7, node_name="edge-1"),
        m(5, payload=sip("BYE", "call-a@h", 2)),
    ]


def hep_packets() -> list[bytes]:
    return [heptool.encode(m) for m in messages()]


def eth_udp(payload: bytes, sport: int = 40000, dport: int = 9060, src: str = "192.0.2.1",
            dst: str = "192.0.2.2") -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=17, data=udp)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip))


def write_pcap(path: Path, payloads: list[bytes], **kw) -> Path:
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f)
        for i, p in enumerate(payloads):
            w.writepkt(eth_udp(p, **kw), ts=T0 + i)
    return path


def write_pcapng(path: Path, payloads: list[bytes]) -> Path:
    with open(path, "wb") as f:
        w = dpkt.pcapng.Writer(f)
        for i, p in enumerate(payloads):
            w.writepkt(eth_udp(p), ts=T0 + i)
    return path


@pytest.fixture
def pcap(tmp_path):
    return write_pcap(tmp_path / "x.pcap", hep_packets())


class Result:
    def __init__(self, exit_code: int, stdout_bytes: bytes, stderr_bytes: bytes) -> None:
        self.exit_code = exit_code
        self.stdout_bytes = stdout_bytes
        self.stdout = stdout_bytes.decode("utf-8", "replace")
        self.stderr = stderr_bytes.decode("utf-8", "replace")


def invoke(args, *, stdin: bytes | None = None, columns: int | None = None, **env_kw) -> Result:
    """``heptool ARGS`` through ``heptool.cli.main`` (the real error boundary), with the
    Environment built inside CliRunner's isolation so that it writes to captured streams."""
    runner = CliRunner(env={"COLUMNS": str(columns)} if columns else None)
    with runner.isolation(input=stdin) as streams:
        env = Environment(**env_kw)
        status = main([*map(str, args)], env=env)
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Result(status, out, err)


def run(args, *, stdin: bytes | None = None, tty: bool = False, stderr_tty: bool = False,
        columns: int | None = None) -> Result:
    return invoke(["decode", *args], stdin=stdin, columns=columns, stdout_isatty=tty,
                  stderr_isatty=stderr_tty, stdin_isatty=False)


def records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def err_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------


def test_pcap_to_jsonl_records(pcap):
    r = run([pcap])
    assert r.exit_code == 0, r.stderr
    recs = records(r)
    want = messages()
    assert len(recs) == len(want)
    for i, (rec, m) in enumerate(zip(recs, want)):
        assert rec["index"] == i and rec["frame"] == i + 1
        assert (rec["hep_transport"], rec["hep_src"], rec["hep_dst"]) == \
            ("udp", "192.0.2.1:40000", "192.0.2.2:9060")
        base = {k: v for k, v in rec.items()
                if k not in ("index", "frame", "hep_transport", "hep_src", "hep_dst", "sip")}
        assert base == heptool.to_record(heptool.decode(heptool.encode(m)))
    assert recs[0]["sip"] == {"method": "INVITE", "ruri": "sip:bob@example.com",
                              "call_id": "call-a@h", "cseq": 1, "cseq_method": "INVITE",
                              "from_tag": "f1"}
    assert recs[2]["sip"]["status"] == 200 and recs[2]["sip"]["to_tag"] == "t1"
    assert "sip" not in recs[3]  # a log line
    assert r.stderr == ""


def test_stdin_and_dash(pcap):
    data = pcap.read_bytes()
    assert records(run([], stdin=data)) == records(run([pcap]))
    assert records(run(["-"], stdin=data)) == records(run([pcap]))


def test_multiple_inputs(pcap, tmp_path):
    other = write_pcap(tmp_path / "y.pcap", hep_packets()[:2])
    recs = records(run([pcap, other]))
    assert len(recs) == 8
    assert [r["index"] for r in recs] == [0, 1, 2, 3, 4, 5, 0, 1]  # position in its input


def test_gzip_pcap_and_pcapng(pcap, tmp_path):
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(pcap.read_bytes()))
    ng = write_pcapng(tmp_path / "x.pcapng", hep_packets())
    want = records(run([pcap]))
    assert records(run([gz])) == want
    assert records(run([ng])) == want
    ngz = tmp_path / "renamed.txt"  # the name does not matter
    ngz.write_bytes(gzip.compress(ng.read_bytes()))
    assert records(run([ngz])) == want


def test_raw_hep_stream(pcap, tmp_path):
    raw = tmp_path / "x.hep"
    raw.write_bytes(b"".join(hep_packets()))
    recs = records(run([raw]))
    want = records(run([pcap]))
    strip = ("frame", "hep_transport", "hep_src", "hep_dst")
    assert [{k: v for k, v in r.items() if k not in strip} for r in want] == recs
    assert records(run([], stdin=raw.read_bytes())) == recs


def test_jsonl_input_round_trip(pcap):
    first = run(["-f", "jsonl", pcap])
    second = run(["-f", "jsonl"], stdin=first.stdout.encode())
    assert second.exit_code == 0, second.stderr
    assert records(second) == records(first)
    # and the JSON array form
    arr = run(["-f", "json", pcap])
    assert records(run(["-f", "jsonl"], stdin=arr.stdout.encode())) == records(first)


def test_jsonl_round_trip_keeps_original_index_after_filtering(pcap):
    first = run(["--proto", "log", pcap])
    again = run([], stdin=first.stdout.encode())
    assert [r["index"] for r in records(again)] == [3]


def test_raw_output_reproduces_the_hep_bytes(pcap, tmp_path):
    out = tmp_path / "out.hep"
    r = run(["-f", "raw", "-o", out, pcap])
    assert r.exit_code == 0 and r.stdout == ""
    assert out.read_bytes() == b"".join(hep_packets())
    # from JSON records too (re-encoded)
    jl = run([pcap]).stdout.encode()
    r2 = run(["-f", "raw"], stdin=jl)
    assert r2.stdout_bytes == b"".join(hep_packets())


# ---------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------


def test_auto_is_jsonl_off_a_terminal_and_table_on_one(pcap):
    assert records(run([pcap])) == records(run(["-f", "jsonl", pcap]))
    t = run(["--color", "never", pcap], tty=True, columns=160)
    assert t.exit_code == 0
    assert "INVITE sip:bob@example.com SIP/2.0" in t.stdout
    assert "{" not in t.stdout.splitlines()[0]


def test_json_array(pcap):
    r = run(["-f", "json", pcap])
    assert json.loads(r.stdout) == records(run([pcap]))
    empty = run(["-f", "json", "--proto", "rtcp", pcap])
    assert json.loads(empty.stdout) == []


def test_table_columns_and_verbose(pcap):
    r = run(["-f", "table", "--color", "never", pcap], tty=True, columns=200)
    assert r.exit_code == 0, r.stderr
    head = r.stdout.splitlines()[0]
    for col in ("#", "time (UTC)", "proto", "src -> dst", "capture", "correlation", "summary"):
        assert col in head
    rows = [line for line in r.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 6
    assert "09:05:06.000000" in rows[0] and "10.0.0.1:5060 -> 10.0.0.2:5060" in rows[0]
    assert "SIP/2.0 200 Whatever" in rows[2]
    assert "log" in rows[3] and "call-a@h" in rows[3] and "INFO route failed" in rows[3]
    assert "[2001:db8::1]:5060" in rows[4] and "7/edge-1" in rows[4]
    v = run(["-f", "table", "-v", "--color", "never", pcap], tty=True, columns=200)
    assert "0x0000:0x000c" in v.stdout and "capture_id" in v.stdout
    assert "call_id=call-a@h" in v.stdout


def test_table_escapes_control_characters(tmp_path):
    evil = heptool.encode(heptool.HepMessage(src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2",
                                             dst_port=2, proto_type="log",
                                             payload=b"\x1b[2J\x1b]0;owned\x07 [bold]x[/bold]"))
    p = write_pcap(tmp_path / "evil.pcap", [evil])
    r = run(["-f", "table", "--color", "always", p], tty=True, columns=200)
    assert "\x1b[2J" not in r.stdout and "\x07" not in r.stdout
    assert "\\x1b[2J" in r.stdout and "[bold]x[/bold]" in r.stdout


def test_hex(pcap):
    pytest.importorskip("heptool.output.hexdump")
    r = run(["-f", "hex", "--count", "1", pcap])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("# message 0, frame 1, udp 192.0.2.1:40000 -> 192.0.2.2:9060\n")
    assert "48 45 50 33" in r.stdout.lower() or "4845" in r.stdout.lower()


def test_binary_refused_on_a_terminal(pcap):
    r = run(["-f", "raw", pcap], tty=True)
    assert r.exit_code == ExitStatus.USAGE
    assert r.stdout == ""
    assert err_lines(r)[-1].startswith("Error: refusing to write binary HEP to a terminal")
    assert run(["-f", "raw", pcap], tty=False).exit_code == 0


# ---------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,indexes", [
    (["--proto", "sip"], [0, 1, 2, 4, 5]),
    (["--proto", "log"], [3]),
    (["--proto", "sip,log"], [0, 1, 2, 3, 4, 5]),
    (["--proto", "100"], [3]),
    (["--call-id", "call-a@h"], [0, 1, 2, 3, 5]),
    (["--call-id", "call-b@h"], [4]),
    (["--call-id", "call-b@h", "--call-id", "nope"], [4]),
    (["--grep", "^SIP/2.0 [12]"], [1, 2]),
    (["--grep", "(?i)^bye"], [5]),
    (["--src", "10.0.0.2"], [1, 2]),
    (["--src", "10.0.0.0/24:5060"], [0, 1, 2, 3, 5]),
    (["--dst", "[2001:db8::2]:5060"], [4]),
    (["--dst", "2001:db8::/32"], [4]),
    (["--capture-id", "7"], [4]),
    (["--node", "edge-1"], [4]),
    (["--since", str(T0 + 2)], [2, 3, 4, 5]),
    (["--until", "2026-11-26T09:05:07.001Z"], [0, 1]),
    (["--since", str(T0 + 1), "--until", str(T0 + 3)], [1, 2]),  # until T0+3.000 < T0+3.003
    (["--count", "2"], [0, 1]),
    (["--proto", "sip", "--src", "10.0.0.1", "--count", "1"], [0]),
])
def test_filters(pcap, args, indexes):
    r = run([*args, pcap])
    assert r.exit_code == 0, r.stderr
    assert [rec["index"] for rec in records(r)] == indexes


@pytest.mark.parametrize("args,fragment", [
    (["--proto", "nope"], "unknown protocol type 'nope'"),
    (["--src", "10.0.0.1:x"], "bad port"),
    (["--grep", "("], "bad regular expression"),
    (["--since", "yesterday"], "--since"),
    (["--count", "0"], "--count"),
    (["--port", "70000"], "--port"),
])
def test_bad_filter_values_are_usage_errors(pcap, args, fragment):
    r = run([*args, pcap])
    assert r.exit_code == ExitStatus.USAGE
    assert fragment in r.stderr
    assert r.stdout == ""


def test_port_narrows_capture_reading(tmp_path):
    a = write_pcap(tmp_path / "a.pcap", hep_packets()[:2], dport=9060)
    assert len(records(run(["--port", "9060", a]))) == 2
    assert records(run(["--port", "9999", a])) == []


def test_proto_completion():
    from click.shell_completion import ShellComplete

    comp = ShellComplete(cli, {}, "heptool", "_HEPTOOL_COMPLETE")
    values = [c.value for c in comp.get_completions(["decode", "--proto"], "si")]
    assert "sip" in values and "sip_json" in values
    values = [c.value for c in comp.get_completions(["decode", "--proto"], "sip,lo")]
    assert values == ["sip,log"]


# ---------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------


def test_summary_on_stderr(pcap):
    r = run(["--summary", pcap])
    assert r.exit_code == 0
    assert len(records(r)) == 6
    text = r.stderr
    assert "summary: 6 messages from 1 input; 0 errors, 0 damaged" in text
    assert "versions: v3 6" in text
    assert "protocol types: sip 5, log 1" in text
    assert "capture agents (id/node): 2001 5, 7/edge-1 1" in text
    assert "SIP methods: INVITE 1, OPTIONS 1, BYE 1" in text
    assert "SIP statuses: 100 1, 200 1" in text


def test_summary_is_the_output_with_json(pcap):
    r = run(["--summary", "-f", "json", pcap])
    assert r.stderr == ""
    s = json.loads(r.stdout)
    assert s == {"messages": 6, "errors": 0, "warnings": 0, "inputs": 1, "versions": {"v3": 6},
                 "protos": {"sip": 5, "log": 1},
                 "capture_agents": {"2001": 5, "7/edge-1": 1},
                 "sip_methods": {"INVITE": 1, "OPTIONS": 1, "BYE": 1},
                 "sip_statuses": {"100": 1, "200": 1}}


# ---------------------------------------------------------------------------------------
# Bad input and exit statuses
# ---------------------------------------------------------------------------------------


def corrupt(packet: bytes) -> bytes:
    """The packet with its last chunk's length made 5 bytes too long (header length fixed)."""
    # find the last chunk: walk the chunks
    off, last = 6, 6
    while off < len(packet):
        last = off
        off += struct.unpack_from(">H", packet, off + 4)[0]
    ln = struct.unpack_from(">H", packet, last + 4)[0]
    return packet[:last + 4] + struct.pack(">H", ln + 5) + packet[last + 6:]


def test_corrupt_packet_reported_and_decoding_goes_on(tmp_path):
    pk = hep_packets()
    pk[2] = corrupt(pk[2])
    p = write_pcap(tmp_path / "bad.pcap", pk)
    r = run([p])
    assert r.exit_code == ExitStatus.BAD_INPUT
    lines = err_lines(r)
    assert len(lines) == 1
    assert lines[0].startswith("Warning: frame 3, offset ") or lines[0].startswith("Error: frame 3, offset ")
    assert "exceeds" in lines[0] or "length" in lines[0]
    assert len(records(r)) >= 5  # the others are all there


def test_undecodable_packet_is_an_error_line(tmp_path):
    pk = hep_packets()
    pk[1] = b"HEP3\x00\x10" + b"\x00" * 10  # HEP3 length 16 with a 6-byte-short chunk header
    p = write_pcap(tmp_path / "bad.pcap", pk)
    r = run([p])
    assert r.exit_code == ExitStatus.BAD_INPUT
    lines = err_lines(r)
    assert len(lines) == 1 and lines[0].startswith(("Error: frame 2", "Warning: frame 2"))


def test_strict_stops_at_the_first_bad_packet(tmp_path):
    pk = hep_packets()
    pk[2] = corrupt(pk[2])
    p = write_pcap(tmp_path / "bad.pcap", pk)
    r = run(["--strict", p])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert [rec["index"] for rec in records(r)] == [0, 1]
    lines = err_lines(r)
    assert len(lines) == 1 and lines[0].startswith("Error: frame 3, offset ")


def test_unknown_input_is_one_line_naming_the_file(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, this is not a capture\n")
    r = run([junk])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert r.stdout == ""
    lines = err_lines(r)
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(junk) in lines[0]
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    r = run([empty])
    assert r.exit_code == ExitStatus.BAD_INPUT and "empty" in r.stderr


def test_unknown_input_among_others_still_decodes_the_rest(pcap, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 100)
    r = run([junk, pcap])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert len(records(r)) == 6
    assert len(err_lines(r)) == 1


def test_truncated_pcap_outputs_everything_before_the_cut(pcap, tmp_path):
    data = pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-30])
    r = run([cut])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert [rec["index"] for rec in records(r)] == [0, 1, 2, 3, 4]
    lines = err_lines(r)
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "frame 6" in lines[0]


def test_truncated_hep_stream_is_reported(tmp_path):
    raw = tmp_path / "x.hep"
    raw.write_bytes(b"".join(hep_packets())[:-10])
    r = run([raw])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert len(records(r)) == 5
    assert "incomplete HEP packet" in r.stderr and len(err_lines(r)) == 1


def test_bad_jsonl_line(pcap):
    lines = run([pcap]).stdout.splitlines()
    lines[1] = '{"version": 9}'
    lines[2] = "not json"
    r = run([], stdin=("\n".join(lines) + "\n").encode())
    assert r.exit_code == ExitStatus.BAD_INPUT
    errs = err_lines(r)
    assert len(errs) == 2
    assert errs[0].startswith("Error: line 2") and errs[1].startswith("Error: line 3")
    assert len(records(r)) == 4


def test_missing_input_is_a_usage_error(tmp_path):
    r = run([tmp_path / "nope.pcap"])
    assert r.exit_code == ExitStatus.USAGE
    assert "does not exist" in r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_input_is_exit_1(pcap):
    pcap.chmod(0)
    try:
        r = run([pcap])
    finally:
        pcap.chmod(0o644)
    assert r.exit_code == ExitStatus.ERROR
    assert err_lines(r) == [f"Error: Permission denied: {pcap}"]


def test_every_error_is_one_line_and_no_traceback(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(os.urandom(64) + b"x")
    r = run([junk])
    assert "Traceback" not in r.stderr
    assert all(line.startswith(("Error:", "Warning:")) for line in err_lines(r))


# ---------------------------------------------------------------------------------------
# Whole process: pipes and streaming
# ---------------------------------------------------------------------------------------


def _heptool(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "heptool", *args], env=env, **kw)


def test_head_1_is_quiet(tmp_path):
    p = write_pcap(tmp_path / "big.pcap", hep_packets() * 3000)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(f"{sys.executable} -m heptool decode {p} | head -1", shell=True,
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["index"] == 0


def test_first_record_out_before_stdin_ends(pcap):
    """JSON output streams: with live input each record is flushed as it is decoded."""
    data = pcap.read_bytes()
    proc = _heptool("decode", "-f", "jsonl", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    try:
        first_frame_end = 24 + 16 + len(eth_udp(hep_packets()[0]))
        proc.stdin.write(data[:first_frame_end])
        proc.stdin.flush()
        line = proc.stdout.readline()  # would block forever if output waited for the end
        assert json.loads(line)["index"] == 0
        proc.stdin.write(data[first_frame_end:])
        proc.stdin.close()
        rest = proc.stdout.read().splitlines()
        assert len(rest) == 5
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_output_file(pcap, tmp_path):
    out = tmp_path / "out.jsonl"
    r = run(["-o", out, pcap], tty=True)  # -o FILE counts as "not a terminal": jsonl
    assert r.exit_code == 0 and r.stdout == ""
    assert [json.loads(x) for x in out.read_text().splitlines()] == records(run([pcap]))


# ---------------------------------------------------------------------------------------
# The real captures in tests/vectors/, through the CLI, against their independent references
# ---------------------------------------------------------------------------------------

_CLI_CACHE: dict[str, list[dict]] = {}
_LIB_PACKETS = tv.packets


def cli_records(capture: str) -> list[dict]:
    if capture not in _CLI_CACHE:
        r = run(["-f", "jsonl", tv.VECTORS / capture])
        assert r.exit_code == 0, r.stderr
        assert r.stderr == ""
        _CLI_CACHE[capture] = records(r)
    return _CLI_CACHE[capture]


def cli_packets(capture: str) -> tuple:
    """tests/test_vectors.py's packets(), rebuilt from the CLI's records: the HEP bytes are
    re-encoded from each record (which must therefore carry every byte)."""
    lib = _LIB_PACKETS(capture)
    out = []
    for i, rec in enumerate(cli_records(capture)):
        data = heptool.encode(heptool.from_record(rec))
        ts = (lib[i].ts_sec, lib[i].ts_usec)  # the outer capture time is not in records
        out.append(tv.HepPayload(rec["frame"], ts[0], ts[1], rec["hep_transport"],
                                 rec["hep_src"], rec["hep_dst"], data))
    return tuple(out)


def cli_messages(capture: str) -> tuple:
    return tuple(heptool.from_record(rec) for rec in cli_records(capture))


@pytest.fixture
def through_cli(monkeypatch):
    """Point tests/test_vectors.py at the CLI's output instead of the library's."""
    monkeypatch.setattr(tv, "packets", cli_packets)
    monkeypatch.setattr(tv, "messages", cli_messages)


@pytest.mark.parametrize("capture", tv.NAMES)
def test_vectors_through_cli_count_and_round_trip(capture, through_cli):
    tv.test_packet_count_version_and_transport(capture)
    tv.test_decode_reencode_and_record_round_trip(capture)
    # the CLI's packets are byte for byte the library's
    assert [p.data for p in cli_packets(capture)] == [p.data for p in tv.iter_hep_payloads(
        tv.VECTORS / capture)]


@pytest.mark.parametrize("capture", tv._with(".tshark.json"))
def test_vectors_through_cli_tshark(capture, through_cli):
    tv.test_tshark_hep_fields(capture)


@pytest.mark.parametrize("capture", tv._with(".hepjs.jsonl"))
def test_vectors_through_cli_hepjs(capture, through_cli):
    tv.test_hepjs_fields(capture)


@pytest.mark.parametrize("capture", tv._with(".kamrecv-chunks.jsonl"))
def test_vectors_through_cli_kamailio_chunks(capture, through_cli):
    tv.test_kamailio_chunks(capture)


@pytest.mark.parametrize("capture", tv._with(".kamrecv-sip.jsonl"))
def test_vectors_through_cli_kamailio_sip(capture, through_cli):
    tv.test_kamailio_sip_view(capture)


def test_vectors_through_cli_opensips_truth(through_cli):
    tv.test_opensips_truth()


@pytest.mark.parametrize("capture", tv._with(".kamrecv-sip.jsonl"))
def test_vectors_sip_object_matches_kamailio(capture):
    """The records' ``sip`` object against Kamailio sipcapture's own SIP parse."""
    bad = tv.Mismatches(capture, "Kamailio sipcapture SIP (sip object)")
    refs = tv._jsonl(tv._ref(capture, ".kamrecv-sip.jsonl"))
    recs = [r for r in cli_records(capture) if r["proto_type"] not in (32, 100)]
    assert len(refs) == len(recs)
    for rec, ref in zip(recs, refs):
        where = f"frame {rec['frame']}"
        s = rec.get("sip") or {}
        bad.eq(where, "kind", "reply" if "status" in s else "request", ref["kind"])
        if "status" in s:
            bad.eq(where, "status", str(s["status"]), ref["status"])
            bad.eq(where, "cseq method", s.get("cseq_method"), ref["method"])
        else:
            bad.eq(where, "method", s.get("method"), ref["method"])
            bad.eq(where, "ruri", s.get("ruri"), ref["ruri"])
        bad.eq(where, "call_id", s.get("call_id"), ref["call_id"])
        bad.eq(where, "cseq", str(s.get("cseq")), ref["cseq"])
    bad.check()


def test_vectors_sip_object_matches_opensips_truth():
    capture = "opensips/opensips-3.4.15-hep3-udp.pcap"
    truth = json.loads(tv._ref(capture, ".truth.json").read_text(encoding="utf-8"))["capture"]
    bad = tv.Mismatches(capture, "OpenSIPS truth (sip object of JSON-wrapped SIP)")
    for rec, t in zip(cli_records(capture), truth["packets"]):
        where = f"index {rec['index']}"
        if t["sip_call_id"] is None:
            continue
        s = rec.get("sip") or {}
        bad.eq(where, "call_id", s.get("call_id"), t["sip_call_id"])
        first = (f"SIP/2.0 {s['status']} {s['reason']}" if "status" in s
                 else f"{s.get('method')} {s.get('ruri')} SIP/2.0")
        bad.eq(where, "first line", first, t["sip_first_line"])
    bad.check()




@pytest.mark.parametrize("kind", ["hep", "jsonl"])
def test_decode_streams_from_a_pipe_that_stays_open(kind):
    """`heptool listen | heptool decode -` must print each packet as it arrives, not once a
    64 KiB block (or the end of input) has come: one packet in, one record out, stdin open."""
    import select

    msg = heptool.HepMessage(src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060, dst_port=5060,
                             ts_sec=1, ts_usec=2, proto_type=1, payload=b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    data = heptool.encode(msg)
    if kind == "jsonl":
        data = json.dumps(heptool.to_record(msg)).encode() + b"\n"
    proc = subprocess.Popen([sys.executable, "-m", "heptool", "decode", "-f", "jsonl", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(data)
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "no record within 20 s while stdin stays open"
        line = proc.stdout.readline()
        assert json.loads(line)["payload"].startswith("OPTIONS")
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)


@pytest.mark.parametrize("pure", ["1", "0"])
def test_short_tail_inside_hep3_length_is_a_warning_in_both_builds(tmp_path, pure):
    """A known-layout HEP3 packet whose length leaves 1-5 bytes after the last chunk: the
    pure-Python fast record builder raised struct.error ("internal error", exit 1).  Both
    builds must print what decode() + to_record gives (the bytes kept as "tail"), warn with
    the place, and exit 3 with every packet decoded."""
    base = heptool.encode(messages()[0])
    packets = []
    for k in range(1, 6):
        body = base[6:] + bytes(range(1, k + 1))
        packets.append(b"HEP3" + struct.pack(">H", 6 + len(body)) + body)
    p = tmp_path / "tails.bin"
    p.write_bytes(b"".join(packets))
    env = dict(os.environ, PYTHONPATH=str(ROOT), HEPTOOL_PURE=pure)
    proc = subprocess.run([sys.executable, "-m", "heptool", "decode", "-f", "jsonl", str(p)],
                          capture_output=True, env=env, timeout=120, check=False)
    err = proc.stderr.decode()
    assert "internal error" not in err and "Traceback" not in err
    assert proc.returncode == ExitStatus.BAD_INPUT, err
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    from heptool.output.records import decode_record  # decode() + to_record, and the sip view

    want = [decode_record(heptool.decode(d), i) for i, d in enumerate(packets)]
    assert got == want
    assert [r["tail"] for r in got] == [bytes(range(1, k + 1)).hex() for k in range(1, 6)]
    lines = err.splitlines()
    assert len(lines) == 5
    assert all(f"offset {len(base)}: {k} bytes left" in line for k, line in zip(range(1, 6), lines))


def test_v2_stream_with_huge_content_length_is_bad_input_not_internal_error(tmp_path):
    """A HEPv2-over-TCP SIP Content-Length of 5,000 digits was int() past Python's 4,300-digit
    limit: "internal error", exit 1, and the packets after it lost."""
    def v2(payload: bytes) -> bytes:
        return heptool.encode(heptool.HepMessage(
            version=2, src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060, dst_port=5060,
            ip_proto=6, ts_sec=1, ts_usec=2, capture_id=3, proto_type=1, payload=payload))

    good = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    bad = b"OPTIONS sip:b SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"
    p = tmp_path / "v2.hep"
    p.write_bytes(v2(good) + v2(bad) + v2(good))
    r = run(["-f", "jsonl", str(p)])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert "internal error" not in r.stderr
    assert [x["payload"] for x in records(r)] == [good.decode(), good.decode()]
    assert len(err_lines(r)) == 1 and "not HEP" in r.stderr


def test_capture_without_hep_says_so(tmp_path):
    """A capture with no HEP: exit 3 (the input is not HEP, issue 14 #3), stdout empty, one
    line on stderr naming the file, what it holds and what to try."""
    sip_only = ROOT / "tests" / "vectors" / "kamailio" / "kamailio-hep3-udp.sip.pcap"
    r = run(["-f", "jsonl", sip_only])
    assert r.exit_code == ExitStatus.BAD_INPUT and r.stdout == ""
    assert err_lines(r) == [(f"Error: {sip_only}: 90 frames, no HEP (plain SIP? try: heptool "
                             f"convert {sip_only})")]
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(sip_only.read_bytes()))
    assert err_lines(run([gz])) == [(f"Error: {gz}: 90 frames, no HEP (plain SIP? try: "
                                     f"heptool convert {gz})")]
    hep = ROOT / "tests" / "vectors" / "kamailio" / "kamailio-hep3-udp.hep.pcap"
    r = run(["-f", "jsonl", "--port", "9", hep])
    assert r.exit_code == ExitStatus.BAD_INPUT and r.stdout == ""
    assert err_lines(r) == [(f"Error: {hep}: 60 frames, no HEP on port 9 (60 frames on other "
                             "ports)")]
    assert run(["-f", "jsonl", hep]).stderr == ""


def test_v2_over_tcp_in_a_capture_with_huge_content_length_is_a_warning(tmp_path):
    """In a capture, a HEPv2-over-TCP packet whose Content-Length has 5,000 digits was an
    'internal error'; once that was fixed its bytes were skipped silently (exit 0).  Now the
    packets around it are decoded and a warning names the frame, exit 3."""
    def v2(payload: bytes) -> bytes:
        return heptool.encode(heptool.HepMessage(
            version=2, src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060, dst_port=5060,
            ip_proto=6, ts_sec=1, ts_usec=2, capture_id=3, proto_type=1, payload=payload))

    good = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    bad = v2(b"OPTIONS sip:b SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
    p = tmp_path / "v2tcp.pcap"
    with open(p, "wb") as f:
        w = dpkt.pcap.Writer(f)
        seq = 1000
        for i, (flags, data) in enumerate([(dpkt.tcp.TH_SYN, b""),
                                           (dpkt.tcp.TH_ACK, v2(good)), (dpkt.tcp.TH_ACK, bad),
                                           (dpkt.tcp.TH_ACK, v2(good))]):
            tcp = dpkt.tcp.TCP(sport=40000, dport=9060, seq=seq, flags=flags, data=data)
            ip = dpkt.ip.IP(src=socket.inet_aton("127.0.0.1"), dst=socket.inet_aton("127.0.0.1"),
                            p=6, data=tcp)
            ip.len = len(ip)
            w.writepkt(bytes(dpkt.ethernet.Ethernet(data=ip)), ts=T0 + i)
            seq += len(data) or 1
    r = run(["-f", "jsonl", p])
    assert r.exit_code == ExitStatus.BAD_INPUT
    assert [x["payload"] for x in records(r)] == [good.decode(), good.decode()]
    assert err_lines(r) == [(f"Warning: {p}: frame 3: skipped {len(bad)} bytes that are not "
                             "HEP inside HEP-over-TCP streams")]
