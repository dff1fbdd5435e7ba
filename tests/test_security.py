"""Security defaults that need no network (issue 7, "Security defaults").

* Terminal output escapes control characters from packets: every table, tree, flow and hex
  renderer is run on packets whose payload, Call-ID, From tag, X-CID, correlation id, node
  name and OpenSIPS JSON carry an OSC title change, a clear-screen CSI, carriage return,
  backspace, DEL, the 8-bit CSI (0x9b), NUL and BiDi overrides; none of them may reach the
  output raw (rich's own colour codes aside).  JSON (decode, listen, convert, encode,
  correlate) on a real pseudo-terminal spells DEL, C1 and BiDi/format characters ``\\uXXXX``
  (the same JSON values); to a pipe it stays the encoder's bytes.
* Nothing in a packet is executed, evaluated or used as a path: the only exec/eval calls in
  heptool are the codec's and message module's generated source, from the registry.
* TLS: the listener's context requires TLS 1.2 or newer; the client's (send) too, and it
  verifies certificates unless --insecure.  --auth-key is compared with hmac.compare_digest.
"""

from __future__ import annotations

import inspect
import json
import re
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

import heptool

ROOT = Path(__file__).resolve().parents[1]
EVIL = "\x1b]0;pwned\x07\x1b[2J\r\b\u202e\u2066\x9b31m\x00\x7f"
_SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own colours (--color always)


def _raw_controls(text: str) -> list[str]:
    text = _SGR.sub("", text)
    return sorted({hex(ord(c)) for c in text
                   if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F
                   or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"})


@pytest.fixture(scope="module")
def evil(tmp_path_factory) -> Path:
    sip = (f"INVITE sip:{EVIL}@b SIP/2.0\r\nCall-ID: evil{EVIL}@x\r\nFrom: <sip:a{EVIL}>;tag=1{EVIL}"
           f"\r\nTo: <sip:b>\r\nCSeq: 1 INVITE{EVIL}\r\nX-CID: {EVIL}\r\nContent-Length: 0\r\n\r\n")
    msgs = []
    for i, (ptype, payload) in enumerate([
            (1, sip.encode()), (100, EVIL.encode()),
            (0x64, f'{{"message": "{EVIL}", "event": "{EVIL}"}}'.encode()),
            (0x59, f'{{"event": "{EVIL}", "proto": "{EVIL}"}}'.encode()),
            (1, sip.replace("INVITE sip", "BYE sip").encode())]):
        msgs.append(heptool.HepMessage(
            src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060,
            ts_sec=1700000000 + i, ts_usec=0, proto_type=ptype, capture_id=1,
            correlation_id=f"evil{EVIL}@x", node_name=f"node{EVIL}", payload=payload))
    p = tmp_path_factory.mktemp("evil") / "evil.hep"
    p.write_bytes(b"".join(heptool.encode(m) for m in msgs))
    return p


RENDERERS = [
    ["decode", "-f", "table"],
    ["decode", "-f", "table", "-v"],
    ["decode", "-f", "table", "-v", "--color", "always"],
    ["decode", "-f", "hex"],
    ["decode", "-f", "table", "--summary"],
    ["correlate", "-f", "table", "--color", "always"],
    ["flow", "--group", "0", "-f", "text", "--color", "always"],
    ["flow", "--group", "0", "-f", "svg"],
    ["flow", "--group", "0", "-f", "html"],
]


@pytest.mark.parametrize("args", RENDERERS, ids=lambda a: " ".join(a))
def test_terminal_output_escapes_packet_controls(evil, args):
    r = subprocess.run([sys.executable, "-m", "heptool", *args, str(evil)], check=False,
                       capture_output=True, timeout=60, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode("utf-8")
    assert "pwned" in out or "evil" in out or "node" in out  # the hostile text is shown ...
    assert _raw_controls(out) == []  # ... escaped
    assert _raw_controls(r.stderr.decode("utf-8")) == []


@pytest.mark.parametrize("fmt", [["-f", "table", "-v"], ["-f", "hex"]], ids=" ".join)
def test_record_fields_are_escaped(tmp_path, fmt):
    """JSON records carry hep_transport/hep_src/hep_dst of their own: input data too."""
    rec = heptool.to_record(heptool.HepMessage(src_ip="10.0.0.1", dst_ip="10.0.0.2", payload=b"x"))
    rec.update(frame=1, hep_transport=f"udp{EVIL}", hep_src=f"{EVIL}1.2.3.4:5", hep_dst=EVIL)
    src = tmp_path / "evil.jsonl"
    src.write_text(json.dumps(rec) + "\n")
    r = subprocess.run([sys.executable, "-m", "heptool", "decode", *fmt, str(src)], check=False,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert _raw_controls(r.stdout.decode("utf-8") + r.stderr.decode("utf-8")) == []


def test_hexdump_escapes_values():
    from heptool.output.hexdump import render

    m = heptool.HepMessage(src_ip="10.0.0.1", dst_ip="10.0.0.2", node_name=EVIL, payload=EVIL.encode())
    assert _raw_controls(render(heptool.encode(m))) == []


def test_nothing_from_a_packet_is_executed():
    """The only exec/eval in heptool: generated source from slot names and the registry."""
    allowed = {("heptool/core/templates.py", "exec"): 4, ("heptool/core/message.py", "exec"): 1}
    found: dict[tuple[str, str], int] = {}
    for path in sorted((ROOT / "heptool").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0]
            for word in ("exec", "eval"):
                if re.search(rf"(?<![.\w]){word}\(", code):
                    found[(rel, word)] = found.get((rel, word), 0) + 1
            assert not re.search(r"os\.system|os\.popen|shell=True|pickle\.loads|marshal\.loads",
                                 code), f"{rel}: {line.strip()}"
    assert found == allowed


def test_tls_contexts_require_tls12_and_verify():
    from heptool.net.client import client_tls_context
    from heptool.net.server import server_tls_context

    for ctx in (client_tls_context(), client_tls_context(insecure=True)):
        assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    strict = client_tls_context()
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    assert "minimum_version = ssl.TLSVersion.TLSv1_2" in inspect.getsource(server_tls_context)


def test_auth_key_compared_in_constant_time():
    src = (ROOT / "heptool" / "pipeline" / "handlers.py").read_text()  # listen's per-packet check
    assert "hmac.compare_digest" in src
    assert not re.search(r"auth_key\s*[!=]=|[!=]=\s*auth\b", src)


# -- JSON on a terminal ---------------------------------------------------------------------
def _on_a_terminal(args: list[str], *, feed=None, timeout: float = 60.0) -> tuple[str, bytes, int]:
    """``heptool ARGS`` with its standard output on a pseudo-terminal (a real isatty()):
    (what the terminal got, stderr, exit status). ``feed(proc)`` runs once it started."""
    import os
    import pty
    import select
    import time

    master, slave = pty.openpty()
    try:
        import termios

        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST  # no \n -> \r\n: the bytes as heptool wrote them
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        proc = subprocess.Popen([sys.executable, "-m", "heptool", *args], stdout=slave,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT,
                                env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    finally:
        os.close(slave)
    out = bytearray()
    try:
        if feed is not None:
            feed(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        err = proc.stderr.read() if proc.poll() is not None else b""
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        os.close(master)
    return out.decode("utf-8"), err, rc


JSON_OUTPUTS = [
    ["decode", "-f", "jsonl"],
    ["decode", "-f", "json"],
    ["decode", "-f", "json", "--summary"],
    ["correlate", "-f", "json"],
]


@pytest.mark.parametrize("args", JSON_OUTPUTS, ids=" ".join)
def test_json_on_a_terminal_escapes_del_c1_and_bidi(evil, args):
    """On a terminal, JSON spells DEL, C1 and BiDi/format characters \\uXXXX (C0 ones JSON
    escapes anyway): the same JSON values, nothing raw for the terminal to act on. To a pipe
    the same command writes the encoder's bytes unchanged (the raw characters, valid JSON)."""
    out, err, rc = _on_a_terminal([*args, str(evil)])
    assert rc == 0, err
    assert "evil" in out or "node" in out
    assert _raw_controls(out) == [], out[:500]
    piped = subprocess.run([sys.executable, "-m", "heptool", *args, str(evil)], check=True,
                           capture_output=True, timeout=60, cwd=ROOT).stdout.decode("utf-8")
    assert _raw_controls(piped) != []  # byte-faithful JSON: the characters as they are
    if args[2] == "jsonl":
        assert [json.loads(x) for x in out.splitlines()] == [json.loads(x)
                                                              for x in piped.splitlines()]
    else:
        assert json.loads(out) == json.loads(piped)  # the same JSON values


def test_encode_jsonl_on_a_terminal_escapes_too():
    evil = EVIL.replace("\x00", "")  # (a command line cannot carry NUL)
    out, err, rc = _on_a_terminal(["encode", "-f", "jsonl", "--payload", evil,
                                   "--chunk", f"node_name=n{evil}"])
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["payload"] == evil and rec["node_name"] == f"n{evil}"
    assert _raw_controls(out) == []


def test_listen_jsonl_on_a_terminal_escapes_too():
    import socket
    import time

    m = heptool.HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060,
                           ts_sec=1700000000, ts_usec=0, proto_type=100, capture_id=1,
                           node_name=f"node{EVIL}", payload=EVIL.encode())

    def feed(proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        line = b""
        while not line.startswith(b"listening on udp://"):
            assert time.monotonic() < deadline and proc.poll() is None, line
            line = proc.stderr.readline()
        port = int(line.strip().rsplit(b":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(heptool.encode(m), ("127.0.0.1", port))

    out, err, rc = _on_a_terminal(["listen", "--bind", "udp://127.0.0.1:0", "-f", "jsonl",
                                   "--count", "1"], feed=feed, timeout=30)
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["payload"] == EVIL and rec["node_name"] == f"node{EVIL}"
    assert _raw_controls(out) == []


def test_convert_jsonl_on_a_terminal_escapes_too(tmp_path):
    bad = "\u202e\x7f\x9b\u2066"
    sip = (f"INVITE sip:b@b SIP/2.0\r\nCall-ID: evil{bad}@x\r\nFrom: <sip:a>;tag=1\r\n"
           "To: <sip:b>\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    m = heptool.HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060,
                           ts_sec=1700000000, ts_usec=0, proto_type=1, capture_id=1,
                           payload=sip.encode())
    (tmp_path / "e.hep").write_bytes(heptool.encode(m))
    subprocess.run([sys.executable, "-m", "heptool", "convert", str(tmp_path / "e.hep"), "-o",
                    str(tmp_path / "sip.pcap")], check=True, capture_output=True, timeout=60,
                   cwd=ROOT)
    out, err, rc = _on_a_terminal(["convert", str(tmp_path / "sip.pcap"), "-f", "jsonl"])
    assert rc == 0, err
    assert json.loads(out)["payload"] == sip
    assert _raw_controls(out) == []
