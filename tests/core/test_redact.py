"""heptool.analysis.redact: TLS key material of OpenSIPS net events, JSON and homer5 text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heptool.analysis.redact import redact_secrets
from heptool.pipeline.reader import MessageReader

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.pcap"


def test_json_master_key_with_raw_bytes_escapes_and_colons():
    raw = (b'{\n\t"Protocol":\t"TLS",\n\t"master-key":\t"\xba\xdf\x00\\"\\u0017:\xf8",\n'
           b'\t"Event":\t"ACCEPTED",\n\t"Status":\t"SUCCESS"\n}')
    assert redact_secrets(raw) == (b'{\n\t"Protocol":\t"TLS",\n\t"master-key":\t"[redacted]",\n'
                                   b'\t"Event":\t"ACCEPTED",\n\t"Status":\t"SUCCESS"\n}')


@pytest.mark.parametrize("name", ["master-key", "tls_master_key", "key", "Secret",
                                  "private-key", "session_key", "password"])
def test_json_fields_named_like_a_key_or_secret(name):
    raw = json.dumps({"Protocol": "TLS", name: "s3cr3t", "Event": "ACCEPTED"}).encode()
    out = redact_secrets(raw)
    assert b"s3cr3t" not in out and json.loads(out)[name] == "[redacted]"


def test_other_fields_are_kept_byte_for_byte():
    ws = (b'{\n\t"Protocol":\t"WS",\n\t"Ws-Request":\t"GET / HTTP/1.1\\r\\n'
          b'Sec-WebSocket-Key: pD77Sda+1wENM5JYzBwneA==\\r\\n",\n\t"Event":\t"ACCEPTED",\n'
          b'\t"monkey":\t"x",\n\t"keys":\t"y"\n}')
    assert redact_secrets(ws) == ws
    for plain in (b"TCP:ACCEPTED:SUCCESS:Connection accepted...", b"TLS:CLOSED:SUCCESS:EOF",
                  b"INFO:key=value", b"", None):
        assert redact_secrets(plain) == plain


@pytest.mark.parametrize(("payload", "expected"), [
    (b"TLS:/CN=srv:/CN=ca:\x01\x02:\xff:ACCEPTED:SUCCESS:Connection accepted...",
     b"TLS:/CN=srv:/CN=ca:[redacted]:ACCEPTED:SUCCESS:Connection accepted..."),
    (b"WSS:/C=US/CN=c:/CN=ca:/CN=s:/CN=ca:0123456789ABCDEF:CONNECTED:FAILURE",
     b"WSS:/C=US/CN=c:/CN=ca:/CN=s:/CN=ca:[redacted]:CONNECTED:FAILURE"),
    (b"TLS:\x9a\x01:ACCEPTED:SUCCESS", b"TLS:[redacted]:ACCEPTED:SUCCESS"),
])
def test_homer5_text(payload, expected):
    assert redact_secrets(payload) == expected


def test_every_master_key_of_the_bundled_capture_is_redacted():
    """The OpenSIPS capture's TLS and WSS ACCEPTED events carry raw 48-byte master keys."""
    found = 0
    for item in MessageReader([str(CAPTURE)]):
        m = item.message
        if m.proto_type != 0x59 or b"master-key" not in (m.payload or b""):
            continue
        found += 1
        out = redact_secrets(m.payload)
        assert b'"master-key":\t"[redacted]"' in out
        key = m.payload.split(b'"master-key":\t"', 1)[1][:20]
        assert key not in out
        assert len(out) < len(m.payload)
    assert found == 3
