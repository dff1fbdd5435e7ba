"""heptool.analysis.filters: every selection, alone and combined, and its errors."""

from __future__ import annotations

import json

import pytest

import heptool
from heptool.analysis.filters import build_filter, parse_address, parse_protos

SIP = (b"INVITE sip:b@x SIP/2.0\r\nCall-ID: call-1@host\r\nCSeq: 1 INVITE\r\nFrom: a\r\n"
       b"To: b\r\n\r\n")


def msg(**kw):
    base = {"src_ip": "10.0.0.1", "src_port": 5060, "dst_ip": "10.1.2.3", "dst_port": 5080,
                "ts_sec": 1_700_000_000, "ts_usec": 500_000, "proto_type": 1, "capture_id": 2001,
                "payload": SIP}
    base.update(kw)
    return heptool.HepMessage(**base)


def test_no_filter_is_none():
    assert build_filter() is None


@pytest.mark.parametrize("spec,proto,expected", [
    (["sip"], 1, True), (["sip"], 100, False), (["sip,log"], 100, True), (["100"], 100, True),
    (["0x64"], 100, True), (["xlog"], 100, True), (["rtcp", "log"], 5, True), (["88"], 88, True),
])
def test_proto(spec, proto, expected):
    assert build_filter(proto=spec)(msg(proto_type=proto)) is expected


def test_proto_errors():
    with pytest.raises(ValueError, match="unknown protocol type 'nope'"):
        parse_protos(["sip,nope"])
    with pytest.raises(ValueError):
        parse_protos([","])


def test_call_id_matches_sip_header_0x11_and_0x65():
    f = build_filter(call_id=["call-1@host"])
    assert f(msg())
    assert f(msg(payload=b"log line", proto_type=100, correlation_id="call-1@host"))
    ec = '{\n\t"sip":\t"call-1@host"\n}'
    assert f(msg(payload=b"{}", proto_type=100, extra_correlation=ec))
    assert f(msg(payload=json.dumps({"payload": SIP.decode()}).encode()))  # OpenSIPS JSON
    assert not f(msg(payload=SIP.replace(b"call-1@host", b"call-2@host")))
    # the id only in the body or another header is not a match
    assert not f(msg(payload=b"OPTIONS sip:x SIP/2.0\r\nCall-ID: other\r\n\r\ncall-1@host"))
    assert not f(msg(payload=b"log mentions call-1@host", proto_type=100))
    # numbers in 0x65 compare as text
    assert build_filter(call_id=["42"])(msg(payload=b"", extra_correlation='{"net": 42}'))


def test_grep():
    assert build_filter(grep="^INVITE")(msg())
    assert not build_filter(grep="^BYE")(msg())
    assert build_filter(grep="(?i)call-id: CALL-1")(msg())
    assert not build_filter(grep="x")(msg(payload=None))
    with pytest.raises(ValueError, match="bad regular expression"):
        build_filter(grep="(")


@pytest.mark.parametrize("spec,expected", [
    ("10.0.0.1", True), ("10.0.0.2", False), ("10.0.0.1:5060", True), ("10.0.0.1:5061", False),
    ("10.0.0.0/8", True), ("10.0.0.0/8:5060", True), ("11.0.0.0/8", False), (":5060", True),
    ("*:5060", True), (":1", False), ("[10.0.0.0/24]:5060", True),
])
def test_src_ipv4(spec, expected):
    assert build_filter(src=[spec])(msg()) is expected


@pytest.mark.parametrize("spec,expected", [
    ("2001:db8::1", True), ("[2001:db8::1]:5060", True), ("[2001:db8::1]:9", False),
    ("2001:db8::/32", True), ("[2001:db8::/32]:5060", True), ("2001:db9::/32", False),
    ("2001:0db8:0:0::1", True), ("10.0.0.1", False),
])
def test_src_ipv6(spec, expected):
    m = msg(src_ip="2001:db8::1", dst_ip="2001:db8::2")
    assert build_filter(src=[spec])(m) is expected


def test_dst_and_repeats_are_or():
    f = build_filter(dst=["10.9.9.9", "10.1.2.3:5080"])
    assert f(msg())
    assert not build_filter(dst=["10.0.0.1"])(msg())


@pytest.mark.parametrize("bad", ["10.0.0.1:x", "[::1", "[::1]x", "nonsense", "10.0.0.1:70000", ""])
def test_address_errors(bad):
    with pytest.raises(ValueError):
        parse_address(bad)


def test_capture_id_node():
    assert build_filter(capture_id=[2001])(msg())
    assert not build_filter(capture_id=[1])(msg())
    assert build_filter(node=["n1"])(msg(node_name="n1"))
    assert not build_filter(node=["n1"])(msg())


def test_since_until():
    m = msg()
    assert build_filter(since="2023-11-14T22:13:20.5Z")(m)
    assert not build_filter(since="2023-11-14T22:13:20.500001Z")(m)
    assert build_filter(until="1700000000.5")(m)
    assert not build_filter(until="1700000000.499999")(m)
    assert build_filter(since="1699999999", until="2023-11-15")(m)
    assert not build_filter(since="1")(msg(version=1, ts_sec=None, ts_usec=None))
    with pytest.raises(ValueError, match="--since"):
        build_filter(since="yesterday")


def test_combined_is_and():
    f = build_filter(proto=["sip"], src=["10.0.0.0/8"], call_id=["call-1@host"], grep="INVITE")
    assert f(msg())
    assert not f(msg(proto_type=100))
    assert not f(msg(src_ip="192.168.0.1"))


@pytest.mark.parametrize("text", ["²", "\u0663", "1_0", "65536", "0" * 6, "9" * 5000, ""])
def test_numbers_in_text_are_ascii_digits_only(text):
    """str.isdigit() accepts '²' (then int() raised its own ValueError) and int() takes other
    scripts' digits and '_' and refuses 4,301+ digits: ports and numbers are ASCII only."""
    from heptool.capture.convert import FilterSyntaxError, compile_filter
    from heptool.capture.writer import parse_endpoint
    from heptool.cli.cmd_convert import parse_ports
    from heptool.core.addr import port_number
    from heptool.core.registry import proto_from_text

    assert port_number(text) is None
    with pytest.raises(ValueError, match="port"):
        parse_endpoint(f"127.0.0.1:{text}")
    if text.strip():
        with pytest.raises(ValueError, match="--ports"):
            parse_ports(text)
        with pytest.raises(FilterSyntaxError):
            compile_filter(f"port {text}")
    if not text.isascii() or "_" in text or len(text) > 24:
        with pytest.raises(ValueError, match="unknown protocol type"):
            proto_from_text(text)
    assert port_number("5060") == 5060 and port_number("0") == 0 and port_number("65535") == 65535
