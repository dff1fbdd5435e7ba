"""--method/--status (heptool.analysis.filters): the SIP view, plain or OpenSIPS-wrapped."""

from __future__ import annotations

import json

import pytest

import heptool
from heptool.analysis.filters import build_filter, parse_methods, parse_statuses
from heptool.sip.select import method_status

INVITE = (b"INVITE sip:b@x SIP/2.0\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nFrom: a\r\nTo: b\r\n\r\n")
BUSY = (b"SIP/2.0 486 Busy Here\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nFrom: a\r\nTo: b\r\n\r\n")
OPTIONS = b"OPTIONS sip:x SIP/2.0\r\nCall-ID: k\r\nCSeq: 7 OPTIONS\r\n\r\n"
OK_OPTIONS = b"SIP/2.0 200 OK\r\nCall-ID: k\r\nCSeq: 7 OPTIONS\r\n\r\n"
OK_NO_CSEQ = b"SIP/2.0 200 OK\r\nCall-ID: k\r\n\r\n"
LOG = b"some log line: INVITE sip:x SIP/2.0"


def wrapped(sip: bytes) -> bytes:
    """OpenSIPS JSON mode: the SIP inside {"payload": ...}."""
    return json.dumps({"payload": sip.decode(), "proto": "udp"}).encode()


def msg(payload: bytes, proto_type: int = 1) -> heptool.HepMessage:
    return heptool.HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2",
                              dst_port=5060, ts_sec=1_700_000_000, ts_usec=0,
                              proto_type=proto_type, payload=payload)


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "opensips-json"])
def test_method_status_reads_the_sip_view(wrap):
    w = wrapped if wrap else (lambda b: b)
    assert method_status(w(INVITE)) == ("INVITE", None)
    assert method_status(w(BUSY)) == (None, 486)
    assert method_status(w(BUSY), reply_method=True) == ("INVITE", 486)
    assert method_status(w(OK_NO_CSEQ), reply_method=True) == (None, 200)
    assert method_status(w(b"INVITE sip:b@x SIP/3.0\r\n\r\n")) is None


def test_method_status_not_sip():
    for p in (None, b"", LOG, b"{\"x\": 1}", b"\x00\x01", b"1NVITE sip:x SIP/2.0\r\n"):
        assert method_status(p) is None


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "opensips-json"])
def test_method_selects_requests_and_their_replies(wrap):
    w = wrapped if wrap else (lambda b: b)
    match = build_filter(methods=["invite"])
    assert match(msg(w(INVITE))) and match(msg(w(BUSY)))
    assert not match(msg(w(OPTIONS))) and not match(msg(w(OK_OPTIONS)))
    assert not match(msg(w(OK_NO_CSEQ))) and not match(msg(LOG, 100))
    both = build_filter(methods=["BYE,INVITE"])
    assert both(msg(w(INVITE))) and not both(msg(w(OPTIONS)))


def test_excluded_method_drops_it_and_its_replies_and_keeps_non_sip():
    match = build_filter(methods=["!OPTIONS"])
    assert not match(msg(OPTIONS)) and not match(msg(wrapped(OK_OPTIONS)))
    assert match(msg(INVITE)) and match(msg(BUSY)) and match(msg(LOG, 100))
    assert match(msg(OK_NO_CSEQ))
    mixed = build_filter(methods=["INVITE", "!OPTIONS"])
    assert mixed(msg(INVITE)) and not mixed(msg(LOG, 100)) and not mixed(msg(OPTIONS))


@pytest.mark.parametrize("spec,status,expected", [
    (["486"], 486, True), (["486"], 480, False), (["4xx"], 480, True), (["4XX,5xx"], 503, True),
    (["2xx"], 486, False), (["4xx", "!486"], 486, False), (["4xx", "!486"], 404, True),
    (["!1xx"], 180, False), (["!1xx"], 200, True),
])
def test_status(spec, status, expected):
    payload = b"SIP/2.0 %d X\r\nCSeq: 1 INVITE\r\n\r\n" % status
    assert build_filter(statuses=spec)(msg(payload)) is expected
    assert build_filter(statuses=spec)(msg(wrapped(payload))) is expected


def test_status_never_matches_requests_or_non_sip():
    match = build_filter(statuses=["2xx"])
    assert not match(msg(INVITE)) and not match(msg(LOG, 100))
    assert build_filter(statuses=["!4xx"])(msg(LOG, 100))  # exclusions only: non-SIP passes
    assert build_filter(statuses=["!4xx"])(msg(INVITE))


def test_method_and_status_combine():
    match = build_filter(methods=["INVITE"], statuses=["4xx"])
    assert match(msg(BUSY)) and not match(msg(INVITE))
    assert not match(msg(b"SIP/2.0 404 No\r\nCSeq: 2 BYE\r\n\r\n"))


def test_parse_errors_name_the_option_and_value():
    assert parse_methods(["invite, !options"]) == (frozenset({"INVITE"}), frozenset({"OPTIONS"}))
    assert parse_statuses(["486,5xx", "!503"]) == (frozenset({486, 5}), frozenset({503}))
    for bad in (["IN VITE"], ["!"], [","], ["INVITÉ"]):
        with pytest.raises(ValueError, match="--method"):
            parse_methods(bad)
    for bad in (["48"], ["700"], ["4x"], ["abc"], ["099"], [""], ["４86"]):
        with pytest.raises(ValueError, match="--status"):
            parse_statuses(bad)
