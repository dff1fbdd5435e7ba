"""``--chunk SPEC`` parsing and application (heptool.core.chunkspec)."""

from __future__ import annotations

import pytest

from heptool import HepMessage, decode, encode
from heptool.core.chunkspec import (
    ChunkSpecError,
    apply_chunks,
    chunk_names,
    parse_chunk_spec,
)


def _msg(**kw):
    base = {
        "src_ip": "10.0.0.1",
        "dst_ip": "10.0.0.2",
        "src_port": 5060,
        "dst_port": 5060,
        "ts_sec": 1700000000,
        "ts_usec": 0,
        "proto_type": 1,
        "capture_id": 1,
        "payload": b"x",
    }
    base.update(kw)
    return HepMessage(**base)


@pytest.mark.parametrize(
    "spec, vendor, ctype, value, body",
    [
        ("correlation_id=abc", 0, 0x11, "abc", None),
        ("0x0011=abc", 0, 0x11, "abc", None),
        ("17=abc", 0, 0x11, "abc", None),
        ("0x0000:0x0011=abc", 0, 0x11, "abc", None),
        ("cid=a=b", 0, 0x11, "a=b", None),  # alias; '=' inside the value is kept
        ("vlan=42", 0, 0x12, 42, None),
        ("mos=0x1c2", 0, 0x20, 450, None),
        ("capture_id=4294967295", 0, 0x0C, 0xFFFFFFFF, None),
        ("family=ipv6", 0, 0x01, 10, None),
        ("ip_proto=tcp", 0, 0x02, 6, None),
        ("proto_type=log", 0, 0x0B, 100, None),
        ("proto_type=0x58", 0, 0x0B, 88, None),
        ("src_ipv4=10.1.2.3", 0, 0x03, "10.1.2.3", None),
        ("dst_ipv6=2001:db8::0001", 0, 0x06, "2001:db8::1", None),
        ("src_ip=::1", 0, 0x03, "::1", None),  # the alias takes either version
        ("src_mac=00-11-22-33-44-55", 0, 0x14, "00:11:22:33:44:55", None),
        ("payload=hello", 0, 0x0F, b"hello", None),
        ("node_name=text:hex:00", 0, 0x13, "hex:00", None),
        ("0x0003:0x0020=42", 3, 0x20, None, b"42"),  # vendor chunk: text by default
        ("0x99=hello", 0, 0x99, None, b"hello"),  # unknown generic type: text
        ("0x0008:0x0080=hex:0a 0b:0c-0d", 8, 0x80, None, b"\n\x0b\x0c\x0d"),
        ("0x0008:0x0080=hex:0x0a0b", 8, 0x80, None, b"\n\x0b"),
        ("0x0008:0x0085=b64:Cgs=", 8, 0x85, None, b"\n\x0b"),
        ("vlan=hex:0005", 0, 0x12, None, b"\x00\x05"),
        ("0x0008:0x0086=text:@notafile", 8, 0x86, None, b"@notafile"),
        ("compressed_payload=abc", 0, 0x10, None, b"abc"),
    ],
)
def test_parse(spec, vendor, ctype, value, body):
    s = parse_chunk_spec(spec)
    assert (s.vendor, s.type, s.value, s.body, s.file) == (vendor, ctype, value, body, None)
    assert s.text == spec


def test_file_is_left_to_the_caller():
    s = parse_chunk_spec("payload=@/some/file")
    assert s.file == "/some/file" and s.body is None
    assert s.with_body(b"data") == s._replace(file=None, body=b"data")
    with pytest.raises(ChunkSpecError, match="was not read"):
        apply_chunks(_msg(), [s])


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("correlation_id", "expected CHUNK=VALUE"),
        ("=abc", "expected CHUNK=VALUE"),
        ("nope=1", "unknown chunk 'nope'"),
        ("0x10000=1", "out of range"),
        ("vlan=70000", "expected 0..65535"),
        ("vlan=-1", "expected 0..65535"),
        ("vlan=abc", "expects an integer"),
        ("family=ipv7", "or ipv4/ipv6"),
        ("proto_type=nosuch", "expects an integer"),
        ("src_ipv4=::1", "expects an IPv4 address, not '::1' (use src_ipv6 or src_ip)"),
        ("dst_ipv6=10.0.0.1", "expects an IPv6 address"),
        ("src_ipv4=host.example", "expects an IP address"),
        ("src_mac=00:11", "expects a MAC address"),
        ("mos=hex:zz", "expected hex digits"),
        ("mos=b64:!!", "expected base64"),
        ("payload=@", "expected a file name"),
        # int() took '²'-free other digits and '_'; a 5,000-digit hex value raised ValueError
        # when the range error printed it ("internal error")
        ("vlan=\u0663", "expects an integer"),
        ("vlan=1_0", "expects an integer"),
        ("capture_id=0x" + "f" * 5000, "expects an integer"),
        ("capture_id=" + "9" * 5000, "expects an integer"),
    ],
)
def test_errors_are_one_line_and_say_what_was_expected(spec, expected):
    with pytest.raises(ChunkSpecError) as info:
        parse_chunk_spec(spec)
    text = str(info.value)
    assert expected in text
    assert "\n" not in text and text.startswith(f"--chunk {spec!r}: ")


def test_known_chunks_set_fields_in_canonical_order():
    m = _msg()
    apply_chunks(
        m,
        [
            parse_chunk_spec(s)
            for s in ("correlation_id=abc", "vlan=7", "mos=300", "node_name=n1", "vlan=8")
        ],
    )
    assert m.layout is None  # still canonical
    assert (m.correlation_id, m.node_name, m.extra) == ("abc", "n1", {"vlan": 8, "mos": 300})
    d = decode(encode(m))
    assert [t for _, t in d.chunk_ids()] == [
        1,
        2,
        3,
        4,
        7,
        8,
        9,
        10,
        11,
        12,
        0x12,
        0x13,
        0x20,
        0x11,
        0x0F,
    ]
    assert d == m


def test_vendor_and_odd_chunks_are_appended_raw_in_order():
    m = _msg(correlation_id="c")
    apply_chunks(
        m,
        [
            parse_chunk_spec(s)
            for s in (
                "0x0003:0x0020=42",
                "vlan=hex:05",
                "correlation_id=hex:ff00",
                "0x0008:0x0080=b64:AAE=",
                "mos=hex:012c",
            )
        ],
    )
    data = encode(m)
    d = decode(data)
    # built from fields: the raw chunks go before the payload, which stays last
    assert d.chunk_ids()[-5:] == [(3, 0x20), (0, 0x12), (0, 0x11), (8, 0x80), (0, 0x0F)]
    assert d.chunk_ids()[:-5] == [
        (0, t) for t in (1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 0x20, 0x11)
    ]
    raw = {(e[0], e[1]): e[2] for e in d.layout if type(e) is tuple}
    assert raw[(3, 0x20)] == b"42"
    assert raw[(8, 0x80)] == b"\x00\x01"
    # a 1-byte VLAN is accepted leniently; the last 0x0011 (invalid UTF-8) wins
    assert d.extra["vlan"] == 5 and d.extra["mos"] == 300
    assert encode(d) == data


def test_explicit_bytes_for_a_known_chunk_set_the_field_when_canonical():
    m = _msg()
    apply_chunks(m, [parse_chunk_spec("mos=hex:012c"), parse_chunk_spec("payload=b64:aGk=")])
    assert m.extra["mos"] == 300 and m.payload == b"hi" and m.layout is None


def test_raw_chunks_after_a_decoded_layout():
    m = decode(encode(_msg()))
    apply_chunks(m, [parse_chunk_spec("0x0002:0x0001=kam")])
    assert decode(encode(m)).chunk_ids()[-2:] == [(0, 0x0F), (2, 1)]


def test_v12_refuse_raw_chunks():
    m = _msg(version=2)
    with pytest.raises(ChunkSpecError, match="HEPv2 has no chunks"):
        apply_chunks(m, [parse_chunk_spec("0x0003:0x0020=42")])


def test_chunk_names_cover_the_registry():
    names = chunk_names()
    assert "correlation_id" in names and "extra_correlation" in names and "src_ip" in names
    sample = {"ip4": "10.0.0.1", "ip6": "::1", "mac": "00:11:22:33:44:55"}
    from heptool.core.registry import CHUNKS_BY_NAME

    for n in names:
        kind = CHUNKS_BY_NAME[n].kind if n in CHUNKS_BY_NAME else "ip4"
        s = parse_chunk_spec(f"{n}={sample.get(kind, '1')}")
        assert s.value is not None or s.body is not None
