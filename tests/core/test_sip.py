"""heptool.sip: the SIP summary of a payload and the one-line summary of a message."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import heptool
from heptool.sip.ids import call_id, sip_ids, sip_ids_py, sip_ids_ref
from heptool.sip.info import sip_info, sip_text_info, sip_text_info_py, sip_text_info_ref
from heptool.sip.payload import sip_payload, sip_text
from heptool.sip.summary import printable, summary

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


# ---------------------------------------------------------------------------------------
# The definition (module docstring of heptool.sip): regressions, and the fast pure path
# against the line-by-line reference.  These run in whichever build is selected
# (HEPTOOL_PURE=1 or not); tests/equivalence/ holds C against the reference.
# ---------------------------------------------------------------------------------------
PROPS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
_REQ = "INVITE sip:b@x SIP/2.0\r\n"


def _all_readings(text):
    """sip_text_info in the running build, the fast pure path and the reference: all equal,
    same key order; and sip_info / sip_ids / call_id of the bytes agree with them."""
    ref = sip_text_info_ref(text)
    for got in (sip_text_info(text), sip_text_info_py(text)):
        assert got == ref and (got is None or list(got) == list(ref)), (text[:200], got, ref)
    b = text.encode("utf-8", "surrogatepass")
    if text.isascii() or not any("\ud800" <= c <= "\udfff" for c in text):
        assert sip_info(b) == ref
        ids = sip_ids_ref(b)
        assert sip_ids(b) == sip_ids_py(b) == ids
        assert call_id(b) == ids[0]
    return ref


@pytest.mark.parametrize("text", [
    "SIP/2.0 1\u00b20 OK\r\nCall-ID: c\r\n\r\n",          # '²' is no digit
    "SIP/2.0 \u00b9\u00b2\u00b3 OK\r\n\r\n",
    "SIP/2.0 \u0661\u0662\u0663 OK\r\n\r\n",               # Arabic-Indic digits
])
def test_status_needs_ascii_digits(text):
    assert _all_readings(text) is None
    assert sip_ids(text.encode()) == (None, None, None)


@pytest.mark.parametrize("cseq,num,method", [
    ("\u00b2 INVITE", None, "INVITE"),
    ("\u00b9 INVITE", None, "INVITE"),
    ("1\u00b2 BYE", None, "BYE"),
    ("\u0661 ACK", None, "ACK"),
    ("1" * 4301 + " INVITE", None, "INVITE"),       # past int()'s 4,300-digit limit
    ("1" * 11 + " INVITE", None, "INVITE"),         # more than 10 digits
    ("9999999999 INVITE", 9999999999, "INVITE"),    # 10 digits
    ("0000000042 INVITE", 42, "INVITE"),
    ("7\tACK", 7, "ACK"),                           # split at the first SP/HTAB run
    ("7 \t  ACK  ", 7, "ACK"),
    ("7", 7, None),
    ("INVITE", None, None),
    ("", None, None),
    ("1_000 X", None, "X"),                          # int() would read "1_000"
])
def test_cseq(cseq, num, method):
    info = _all_readings(_REQ + f"CSeq: {cseq}\r\n\r\n")
    assert info.get("cseq") == num and info.get("cseq_method") == method


def test_header_names_are_ascii_tokens():
    # 'ı' (U+0131) and 'İ' (U+0130) case-fold to 'i' in Unicode; SIP names are ASCII tokens
    for name in ("X-C\u0131D", "X-C\u0130D", "\u0131", "\u0130", "Call-\u0130D", "\u212aX"):
        info = _all_readings(_REQ + f"{name}: v\r\nCall-ID: c\r\n\r\n")
        assert "x_cid" not in info and info["call_id"] == "c", name
    assert _all_readings(_REQ + "x-CiD: v\r\n\r\n")["x_cid"] == "v"


def test_lone_lf_ends_the_first_line():
    assert _all_readings("INVITE sip:a\nb SIP/2.0\r\nCall-ID: c\r\n\r\n") is None
    assert _all_readings("INVITE sip:a SIP/2.0\nCall-ID: c\n\n")["call_id"] == "c"
    # a lone CR is an ordinary character: in the request URI, in a value
    assert _all_readings("INVITE sip:a\rb SIP/2.0\r\n\r\n")["ruri"] == "sip:a\rb"
    assert _all_readings(_REQ + "Call-ID: a\rb\r\n\r\n")["call_id"] == "a\rb"
    assert _all_readings("SIP/2.0 200 OK\r")["reason"] == "OK"


@pytest.mark.parametrize("headers,expected", [
    ("i: compact\r\nCall-ID : full\r\n", "compact"),
    ("Call-ID : full\r\ni: compact\r\n", "full"),
    ("Call-ID: one\r\nCall-ID: two\r\n", "one"),
    ("CALL-ID\t:\tup\r\ncall-id: low\r\n", "up"),
    ("Call-ID:\r\nCall-ID: later\r\n", None),      # the first one is empty: absent
    (" Call-ID: folded\r\nCall-ID: real\r\n", "real"),  # a continuation is no header
    ("Call-IDx: no\r\nCall-ID: yes\r\n", "yes"),
])
def test_first_occurrence_wins(headers, expected):
    info = _all_readings(_REQ + headers + "\r\n")
    assert info.get("call_id") == expected
    assert sip_ids((_REQ + headers + "\r\n").encode())[0] == expected


def test_first_occurrence_of_every_header():
    text = (_REQ + "f: <sip:a@x>;tag=F1\r\nFrom: <sip:a@x>;tag=F2\r\nTo: b;tag=T1\r\n"
            "t: b;tag=T2\r\nCSeq: 1 A\r\nCSeq: 2 B\r\nX-CID: x1\r\nx-cid: x2\r\n\r\n")
    assert _all_readings(text) == {"method": "INVITE", "ruri": "sip:b@x", "cseq": 1,
                                   "cseq_method": "A", "from_tag": "F1", "to_tag": "T1",
                                   "x_cid": "x1"}


@pytest.mark.parametrize("value,tag", [
    ("<sip:a@x;tag=in>;tag=out", "out"),
    ("<sip:a@x;tag=in>", None),
    ("a;tag=1;x=2", "1"),
    ("a; TAG = sp ", "sp"),
    ("a;tag=", None),
    ("a;tag=x,y", "x"),
    ('"A>B" <sip:a>;tag=q', "q"),
    ("a;tagx=1;tag=2", "2"),
    ("a;x=1", None),
    ("a;tag=v\u00a0w", "v\u00a0w"),   # no-break space is no blank
])
def test_tags(value, tag):
    assert _all_readings(_REQ + f"From: {value}\r\n\r\n").get("from_tag") == tag


def test_values_strip_ascii_blanks_only():
    info = _all_readings(_REQ + "Call-ID: \u2003c\u00a0\r\nX-CID:\t x \x0b\r\n\r\n")
    assert info["call_id"] == "\u2003c\u00a0" and info["x_cid"] == "x \x0b"


def test_header_block_ends_at_the_first_empty_line():
    assert "call_id" not in _all_readings(_REQ + "CSeq: 1 A\r\n\r\nCall-ID: body\r\n")
    assert "call_id" not in _all_readings(_REQ + "CSeq: 1 A\n\nCall-ID: body\n")
    assert "call_id" not in _all_readings(_REQ + "CSeq: 1 A\n\r\nCall-ID: body\n")
    assert _all_readings(_REQ + "CSeq: 1 A\r\r\nCall-ID: c\r\n")["call_id"] == "c"


def test_opensips_wrapping_with_a_lone_surrogate():
    p = b'{"payload": "INVITE sip:x SIP/2.0\\r\\nCall-ID: \\ud800\\r\\n\\r\\n"}'
    assert sip_info(p)["call_id"] == "\ufffd"
    assert sip_ids(p) == sip_ids_py(p) == ("\ufffd", "INVITE", None)
    assert sip_payload(p) == b"INVITE sip:x SIP/2.0\r\nCall-ID: \xef\xbf\xbd\r\n\r\n"


def test_the_py_and_ref_functions_never_reach_c(monkeypatch):
    def boom(*_a):
        raise AssertionError("reached the C extension")

    from heptool.sip import ids, info

    monkeypatch.setattr(info, "_c_sip_summary", boom)
    monkeypatch.setattr(ids, "_c_sip_ids", boom)
    p = (_REQ + "X-CID: x\r\ni: c\r\n\r\n").encode()
    wrapped = json.dumps({"payload": p.decode()}).encode()
    for payload in (p, wrapped):
        assert sip_ids_py(payload) == sip_ids_ref(payload) == ("c", "INVITE", "x")
        assert sip_text_info_py(p.decode()) == sip_text_info_ref(p.decode())


_CRASHERS = [
    "SIP/2.0 1\u00b20 OK\r\nCall-ID: a\r\n\r\n",
    _REQ + "CSeq: \u00b2 INVITE\r\nCall-ID: b\r\n\r\n",
    _REQ + "CSeq: \u00b9 INVITE\r\nCall-ID: c\r\n\r\n",
    _REQ + "CSeq: " + "1" * 4301 + " INVITE\r\nCall-ID: d\r\n\r\n",
    _REQ + "X-C\u0131D: v\r\ni: e\r\nCall-ID : f\r\n\r\n",
    "INVITE sip:a\nb SIP/2.0\r\nCall-ID: g\r\n\r\n",
]


def test_decode_cli_reads_the_crashers():
    """``heptool decode`` (a subprocess: the build the environment selects) prints every one
    of these instead of failing with an internal error."""
    stream = b"".join(heptool.encode(heptool.HepMessage(
        version=3, family=2, ip_proto=17, src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060,
        dst_port=5060, ts_sec=1, ts_usec=0, proto_type=1, capture_id=1,
        payload=t.encode())) for t in _CRASHERS)
    for fmt in ("jsonl", "json"):
        proc = subprocess.run([sys.executable, "-m", "heptool", "decode", "-f", fmt, "-"],
                              input=stream, capture_output=True, env=dict(os.environ),
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr.decode()
    recs = [json.loads(line) for line in subprocess.run(
        [sys.executable, "-m", "heptool", "decode", "-f", "jsonl", "-"], input=stream,
        capture_output=True, timeout=120, check=True).stdout.splitlines()]
    assert [r.get("sip", {}).get("call_id") for r in recs] == [None, "b", "c", "d", "e", None]
    assert [r["sip"].get("cseq") for r in recs[1:5]] == [None, None, None, None]


# -- generated SIP texts with the hard shapes ------------------------------------------------
_NAMES = ["Call-ID", "call-id", "CALL-ID", "i", "I", "CSeq", "cseq", "From", "from", "f", "F",
          "To", "to", "t", "T", "X-CID", "x-cid", "X-Cid", "X-C\u0131D", "X-C\u0130D", "\u0131",
          "Via", "Tox", "Call-IDx", " Call-ID", "\tCSeq", "Call\u2011ID", "", "Content-Length"]
_SEPS = [":", ": ", " :", "\t:\t", "  :  ", "\u00a0:", ":\u3000", "\u2003:", "::"]
_VALUES = st.one_of(
    st.sampled_from([
        "abc@h", "", " ", "  x  ", "1 INVITE", "\u00b2 INVITE", "\u00b9 BYE", "1\u00b20 X",
        "\u0661\u0662 X", "12\tACK", "0000000001 X", "12345678901 X", "9999999999 X",
        "<sip:a@x;tag=in>;tag=out", "a;tag=", "a; TAG = sp", "<a>;tag=1;x", '"A>b" <sip:a>;tag=q',
        "a;tag=x,y", "<a;tag=x>", "v\u00a0", "\u2003v\u2003", "x\x0b", "caf\u00e9", "a\rb",
        "\ufffd", "a;tag=\u00b2", "1 \u00a0INVITE"]),
    st.text(alphabet=st.sampled_from(list("a1 \t;=<>,:\r\u00b2\u0131\u00a0\u2028\x85\x0btagTAG")),
            max_size=12),
    st.sampled_from([10, 11, 4300, 4301, 6000]).map(lambda k: "7" * k + " INVITE"),
)
_EOLS = ["\r\n", "\r\n", "\n", "\r\r\n", "\r", "\n\r", "\u2028", "\x85"]
_FIRSTS = ["INVITE sip:b@x SIP/2.0", "SIP/2.0 200 OK", "SIP/2.0 486 Busy Here", "SIP/2.0 180",
           "SIP/2.0 180 ", "SIP/2.0 999 No", "SIP/2.0 20 Short", "SIP/2.0 200\tOK",
           "BYE  sip:x SIP/2.0", "OPTIONS sip:x SIP/2.0 extra", "INV@TE sip:x SIP/2.0",
           "MESSAGE sip:\u00e9 SIP/2.0", "INVITE sip:x SIP/2.1", "hello world",
           "SIP/2.0 2x0 Bad", "SIP/2.0 1\u00b20 X", "INVITE sip:a\rb SIP/2.0", "INVITE sip:a\nb SIP/2.0",
           "\u0130NVITE sip:x SIP/2.0", "SIP/2.0 200 OK\r", "REGISTER sip:r SIP/2.0", "", "SIP/2.0 "]


@st.composite
def sip_texts(draw):
    """A first line, then header lines of every hard shape with mixed line ends, then maybe
    an empty line and a body with more header-like lines."""
    text = draw(st.sampled_from(_FIRSTS))
    for _ in range(draw(st.integers(0, 10))):
        text += draw(st.sampled_from(_EOLS))
        text += draw(st.sampled_from(_NAMES)) + draw(st.sampled_from(_SEPS)) + draw(_VALUES)
    text += draw(st.sampled_from(["", "\r\n", "\n", "\r\n\r\n", "\n\n", "\n\r\n", "\r\n\r"]))
    if draw(st.booleans()):
        text += draw(st.sampled_from(["Call-ID: body", "body\r\nX-CID: b", "i: b\r\n"]))
    return text


@PROPS
@given(text=sip_texts())
@example(text=_CRASHERS[4])
def test_fast_path_equals_the_reference(text):
    _all_readings(text)


@PROPS
@given(text=st.text(max_size=200))
@example(text="\ud800")
@example(text="SIP/2.0 200 \ud800\r\nCall-ID: \udcff\r\n")
def test_fast_path_equals_the_reference_on_any_text(text):
    _all_readings(text)


@PROPS
@given(text=sip_texts(), indent=st.sampled_from(["", "\t", " "]))
def test_wrapped_ids_equal_the_reference(text, indent):
    for p in (json.dumps({"payload": text}, indent=indent or None).encode(),
              json.dumps({"payload": text}, ensure_ascii=False).encode("utf-8", "surrogatepass")):
        ids = sip_ids_ref(p)
        assert sip_ids(p) == sip_ids_py(p) == ids
        assert sip_info(p) == (None if sip_text(p) is None else
                               sip_text_info_ref(sip_text(p)))
