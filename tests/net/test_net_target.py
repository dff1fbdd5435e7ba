"""heptool.net.target: udp://, tcp://, tls:// endpoints."""

from __future__ import annotations

import pytest

from heptool.net.target import Target, format_addr, parse_target


@pytest.mark.parametrize(("text", "expected"), [
    ("udp://127.0.0.1:9060", Target("udp", "127.0.0.1", 9060)),
    ("tcp://[::1]:9061", Target("tcp", "::1", 9061)),
    ("TLS://collector.example:443", Target("tls", "collector.example", 443)),
    ("udp://[2001:db8:0::1]:0", Target("udp", "2001:db8::1", 0)),
    ("udp://localhost:9060/", Target("udp", "localhost", 9060)),
    (" tcp://10.0.0.1:65535 ", Target("tcp", "10.0.0.1", 65535)),
])
def test_parse(text, expected):
    assert parse_target(text) == expected


def test_default_port_and_str():
    t = parse_target("udp://[::1]", default_port=9060)
    assert t == Target("udp", "::1", 9060)
    assert str(t) == "udp://[::1]:9060"
    assert str(parse_target("tls://127.0.0.1:1")) == "tls://127.0.0.1:1"
    assert t.is_ipv6 and not t.is_stream and parse_target("tls://a:1").is_stream
    assert t.with_port(5) == Target("udp", "::1", 5)
    assert format_addr("10.0.0.1", 5) == "10.0.0.1:5"


@pytest.mark.parametrize(("text", "why"), [
    ("127.0.0.1:9060", "expected udp://"),
    ("http://127.0.0.1:80", "unknown transport"),
    ("udp://127.0.0.1", "missing :PORT"),
    ("udp://127.0.0.1:65536", "0..65535"),
    ("udp://127.0.0.1:x", "0..65535"),
    ("udp://::1:9060", "brackets"),
    ("udp://[::1:9060", "missing ']'"),
    ("udp://[::1]9060", "expected ':PORT'"),
    ("udp://[zz::1]:9060", "not an IPv6"),
    ("udp://:9060", "missing host"),
    ("udp://bad host:1", "not an address"),
])
def test_errors_are_one_line(text, why):
    with pytest.raises(ValueError, match=None) as e:
        parse_target(text)
    assert why in str(e.value)
    assert "\n" not in str(e.value)
