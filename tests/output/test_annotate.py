"""heptool.output.annotate and its renderer heptool.output.hexdump."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heptool import HepMessage, encode
from heptool.output.annotate import DAMAGE, annotate
from heptool.output.hexdump import render

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "core" / "vectors"


def _hex(name: str) -> bytes:
    text = (VECTORS / name).read_text()
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def _covers(data: bytes, notes) -> None:
    """Annotations tile the packet: contiguous, in order, no gaps."""
    off = 0
    for a in notes:
        assert a.offset == off, (a, off)
        off += a.length
    assert off == len(data)


def test_v3_every_chunk_annotated():
    data = _hex("A-hepjs-log.hex")
    notes = list(annotate(data))
    _covers(data, notes)
    labels = [a.label for a in notes]
    assert labels[:2] == ["magic", "length"]
    assert "0x0000:0x000e auth_key" in labels and "0x0000:0x0011 correlation_id" in labels
    values = {a.label: a.value for a in notes}
    assert values["length"] == "220"
    assert values["0x0000:0x0001 family"] == "2 (IPv4)"
    assert values["0x0000:0x0003 src_ipv4"] == "192.168.1.1"
    assert values["0x0000:0x0009 ts_sec"] == "1481455199 (2016-12-11T11:19:59Z)"
    assert values["0x0000:0x000b proto_type"] == "100 (log)"
    assert values["0x0000:0x0011 correlation_id"] == '"qgf3dm9rudi@127.0.0.1"'
    assert values["0x0000:0x000f payload"].startswith('83 bytes: "SYSLOG: Processing')
    assert DAMAGE not in labels


def test_opensips_extra_correlation_and_order():
    data = _hex("D-opensips-xlog.hex")
    notes = list(annotate(data))
    _covers(data, notes)
    assert [a.label.split()[0] for a in notes[2:]] == [
        f"0x0000:0x{t:04x}" for t in (1, 2, 7, 8, 9, 10, 11, 12, 3, 4, 0x0F, 0x65, 0x11)
    ]
    assert notes[-2].value == '"{\\n\\t\\"sip\\":\\t\\"a84b4c76e66710@pc33\\"\\n}"'


@pytest.mark.parametrize("name", ["E-hepv2.hex", "F-hepv1.hex"])
def test_v12_header_fields(name):
    data = _hex(name)
    notes = list(annotate(data))
    _covers(data, notes)
    labels = [a.label for a in notes]
    assert labels[:8] == [
        "version",
        "length",
        "family",
        "ip_proto",
        "src_port",
        "dst_port",
        "src_ip",
        "dst_ip",
    ]
    if name.startswith("E"):
        assert labels[8:12] == ["ts_sec", "ts_usec", "capture_id", "pad"]
        assert notes[10].value == "2001, little-endian u16"
    assert labels[-1] == "payload"


def test_v2_opensips_nul_trailer_and_ipv6():
    m = HepMessage(
        version=2,
        src_ip="2001:db8::1",
        dst_ip="2001:db8::2",
        src_port=5060,
        dst_port=5060,
        ts_sec=1,
        ts_usec=2,
        capture_id=3,
        payload=b"OPTIONS",
    )
    data = encode(m) + b"\0" * 32
    notes = list(annotate(data))
    _covers(data, notes)
    assert notes[1].value.startswith("40 (header + IPv6")
    assert notes[6].value == "2001:db8::1"
    assert notes[-1].label == "trailer" and "32 NUL bytes" in notes[-1].value


def test_unusual_chunks():
    m = HepMessage(
        src_ip="10.0.0.1",
        dst_ip="10.0.0.2",
        src_port=1,
        dst_port=2,
        ts_sec=1,
        ts_usec=0,
        proto_type=1,
        capture_id=0x07D20000,
        payload=b"p",
        compression="gzip",
        vlan=5,
        src_mac="00:11:22:33:44:55",
        mos=431,
    )
    m.layout = tuple(
        [t for _, t in m.chunk_ids()]
        + [
            (3, 0x20, b"42", None),
            (8, 1, b"\x00\xff", None),
            (0, 0x12, b"\x05", None),
            (0, 0x07, b"\x01", None),
            (0, 0, b"", None),
        ]
    )
    from heptool.core.message import NOVALUE

    m.layout = tuple(e if type(e) is int else (*e[:3], NOVALUE) for e in m.layout)
    data = encode(m)
    notes = list(annotate(data))
    _covers(data, notes)
    v = {a.label: a.value for a in notes}
    assert v["0x0000:0x000c capture_id"] == "131203072 (as sngrep writes htons(2002))"
    assert v["0x0000:0x0010 compressed_payload"] == '21 bytes of gzip, inflates to 1 bytes: "p"'
    assert v["0x0000:0x0014 src_mac"] == "00:11:22:33:44:55"
    assert v["0x0000:0x0020 mos"] == "431 (MOS 4.31)"
    assert v["0x0003:0x0020 vendor chunk (opensips)"] == '"42"'
    assert v["0x0008:0x0001 vendor chunk (genesys)"] == "2 bytes (as an integer: 255)"
    assert v["0x0000:0x0007 src_port"] == "1-byte body, expected 2: not decoded (kept raw)"
    assert "accepted leniently" in [a.value for a in notes if a.label == "0x0000:0x0012 vlan"][-1]
    assert v["0x0000:0x0000 unknown chunk"] == "reserved type 0, 0 bytes"


@pytest.mark.parametrize(
    "data, where, why",
    [
        (b"", 0, "empty packet"),
        (b"GET / HTTP/1.1", 0, "not HEP"),
        (b"HEP3\x00", 4, "needs 6 bytes"),
        (b"HEP3\x00\x03", 6, "less than 6"),
        (b"HEP3\x00\x0a\x00\x00", 6, "a chunk header needs 6"),
        (b"HEP3\x00\x0e\x00\x00\x00\x11\x00\x09ab", 6, "length 9 exceeds remaining 8 bytes"),
        (b"HEP3\x00\x0c\x00\x00\x00\x11\x00\x02", 6, "length 2 is less than 6"),
        (b"\x02\x10\x02\x11\x13\xc4", 1, "needs 8 bytes"),
        (b"\x02\x10\x02\x11\x13\xc4\x13\xc4\x0a\x00\x00\x01", 8, "needs 28 bytes"),
        (b"\x01\x99\x07\x11\x13\xc4\x13\xc4\x0a\x00\x00\x01", 8, "name no IP version"),
    ],
)
def test_damage_is_the_last_annotation(data, where, why):
    notes = list(annotate(data))
    _covers(data, notes)
    assert notes[-1].label == DAMAGE and notes[-1].offset == where and why in notes[-1].value
    assert "!! damage" in render(data).splitlines()[-1]


def test_truncated_packet_length_and_trailing_bytes():
    data = _hex("A-hepjs-log.hex")
    cut = list(annotate(data[:100]))
    assert cut[1].value == "220 (but only 100 bytes are present)"
    assert cut[-1].label == DAMAGE
    extra = list(annotate(data + b"zz"))
    assert extra[1].value == "220 (2 more bytes follow the packet)"
    assert extra[-1].label == "trailing" and extra[-1].length == 2


def test_render_layout():
    data = _hex("A-hepjs-log.hex")
    lines = render(data).splitlines()
    assert lines[0] == "0000  48 45 50 33" + " " * 38 + 'magic = "HEP3"'
    assert lines[2].startswith("0006  00 00 00 01 00 07 02 ") and lines[2].endswith(
        "0x0000:0x0001 family = 2 (IPv4)"
    )
    payload = next(i for i, line in enumerate(lines) if "0x000f payload" in line)
    assert lines[payload + 1].startswith("0147  ") and "| " in lines[payload + 1]
    # every byte appears exactly once in the hex column
    hexed = "".join(line[6:53].replace(" ", "") for line in lines)
    assert bytes.fromhex(hexed) == data
    assert not render(data).endswith("\n")


@given(st.binary(max_size=300))
def test_annotate_never_raises_and_tiles(data):
    notes = list(annotate(data))
    _covers(data, notes)
    render(data)


@given(st.binary(min_size=1, max_size=200))
def test_annotate_damaged_real_packets(tail):
    data = _hex("A-hepjs-log.hex")
    for cut in (len(data) // 3, len(data) - 5):
        mangled = data[:cut] + tail
        _covers(mangled, list(annotate(mangled)))
