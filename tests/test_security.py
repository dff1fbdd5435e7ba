"""Security defaults that need no network (issue 7, "Security defaults").

* Terminal output escapes control characters from packets: every table, tree, flow and hex
  renderer is run on packets whose payload, Call-ID, From tag, X-CID, correlation id, node
  name and OpenSIPS JSON carry an OSC title change, a clear-screen CSI, carriage return,
  backspace, DEL, the 8-bit CSI (0x9b), NUL and BiDi overrides; none of them may reach the
  output raw (rich's own colour codes aside).
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
    allowed = {("heptool/core/codec.py", "exec"): 2, ("heptool/core/message.py", "exec"): 1,
               ("heptool/core/record.py", "exec"): 2}
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
    src = (ROOT / "heptool" / "cli" / "cmd_listen.py").read_text()
    assert "hmac.compare_digest" in src
    assert not re.search(r"auth_key\s*[!=]=|[!=]=\s*auth\b", src)
