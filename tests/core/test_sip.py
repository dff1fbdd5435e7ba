"""heptool.core.sip: the SIP summary of a payload and the one-line summary of a message."""

from __future__ import annotations

import json

import pytest

import heptool
from heptool.core.sip import call_id, printable, sip_info, sip_payload, summary

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
    b"From: \"Alice\" <sip:alice@example.com;tag=not-this>;tag=a1b2\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: abc123@10.0.0.1\r\n"
    b"CSeq: 314 INVITE\r\n"
    b"X-CID: aleg@10.0.0.9\r\n"
    b"Content-Length: 23\r\n\r\n"
    b"Call-ID: in-the-body\r\n"
)


def test_request():
    assert sip_info(INVITE) == {
        "method": "INVITE", "ruri": "sip:bob@example.com", "call_id": "abc123@10.0.0.1",
        "cseq": 314, "cseq_method": "INVITE", "from_tag": "a1b2", "x_cid": "aleg@10.0.0.9",
    }


def test_reply_with_to_tag():
    p = (b"SIP/2.0 486 Busy Here\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2;foo\r\n"
         b"Call-ID: c\r\nCSeq: 2 INVITE\r\n\r\n")
    assert sip_info(p) == {"status": 486, "reason": "Busy Here", "call_id": "c", "cseq": 2,
                           "cseq_method": "INVITE", "from_tag": "1", "to_tag": "2"}


def test_compact_forms_any_case_bare_lf_space_before_colon():
    p = (b"BYE sip:b@x SIP/2.0\ni : compact-id\nf: <sip:a@x>;TAG=ft\nt:sip:b@x;tag=tt\n"
         b"cseq:   7   BYE\nx-cid: xc\n\nbody")
    assert sip_info(p) == {"method": "BYE", "ruri": "sip:b@x", "call_id": "compact-id",
                           "cseq": 7, "cseq_method": "BYE", "from_tag": "ft", "to_tag": "tt",
                           "x_cid": "xc"}


def test_mixed_case_long_names():
    p = b"OPTIONS sip:x SIP/2.0\r\nCALL-ID: up\r\nCseq: 1 OPTIONS\r\nfrom: a\r\nTO: b\r\n\r\n"
    info = sip_info(p)
    assert (info["call_id"], info["cseq"]) == ("up", 1)


def test_headers_in_the_body_are_ignored():
    p = b"MESSAGE sip:x SIP/2.0\r\nCSeq: 1 MESSAGE\r\n\r\nCall-ID: body\r\nX-CID: body\r\n"
    info = sip_info(p)
    assert "call_id" not in info and "x_cid" not in info


def test_opensips_json_wrapped_sip():
    wrapped = json.dumps({"payload": INVITE.decode()}, indent="\t").encode()
    assert sip_payload(wrapped) == INVITE
    assert sip_info(wrapped) == sip_info(INVITE)
    assert call_id(wrapped) == "abc123@10.0.0.1"


@pytest.mark.parametrize("payload", [
    None, b"", b"hello", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\x01\x02" * 10,
    b'{"payload": 3}', b'{"first_line": "GET / HTTP/1.1", "payload": "SIP/2.0 200 OK"}',
    b"INVITE sip:x SIP/2.0 extra\r\n", b"SIP/2.0 99 Low\r\n", b"{not json", b"SIP/2.0",
])
def test_not_sip(payload):
    assert sip_info(payload) is None
    assert call_id(payload) is None


def test_invalid_utf8_is_replaced_not_raised():
    info = sip_info(b"OPTIONS sip:\xff SIP/2.0\r\nCall-ID: \xfe\r\n\r\n")
    assert info["ruri"] == "sip:\ufffd" and info["call_id"] == "\ufffd"


def _msg(payload, proto=1, **kw):
    return heptool.HepMessage(proto_type=proto, payload=payload, **kw)


@pytest.mark.parametrize("payload,proto,expected", [
    (INVITE, 1, "INVITE sip:bob@example.com SIP/2.0"),
    (b"SIP/2.0 200 OK\r\n\r\n", 1, "SIP/2.0 200 OK"),
    (b'{\n\t"Event":\t"ERROR",\n\t"text":\t"no route"\n}', 100, "ERROR: no route"),
    (b'{"Protocol": "TCP", "Event": "ACCEPTED", "Status": "SUCCESS"}', 89,
     "TCP ACCEPTED SUCCESS"),
    (b'{"first_line": "GET /x HTTP/1.1\\r\\n", "payload": "{}"}', 88, "GET /x HTTP/1.1"),
    (b'{"command": "uptime", "backend": "fifo"}', 87, "MI uptime via fifo"),
    (b'{"reply": "{\\"Now\\": 1}"}', 87, 'MI reply {"Now": 1}'),
    (b"plain log line\nsecond", 100, "plain log line ..."),
    (b"", 1, ""),
])
def test_summary(payload, proto, expected):
    assert summary(_msg(payload, proto)) == expected


def test_summary_escapes_terminal_control():
    evil = b"INFO \x1b[2J\x1b]0;pwned\x07 \xe2\x80\xae text\r\n"
    text = summary(_msg(evil, 100))
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b[2J" in text and "\\u202e" in text


def test_printable():
    assert printable("a\tb\x00c\x9b") == "a\\tb\\x00c\\x9b"
    assert printable("x" * 10, 4) == "xxxx..."
    assert printable("caf\u00e9") == "caf\u00e9"
