"""Unit tests for every variant and rule heptool.core.codec (and its helpers) claims.

The packets here are built by hand with :func:`chunk` / :func:`hep3` so each test shows the
exact bytes it feeds in.  Real captures are covered by tests/test_vectors.py; the spec's
worked examples by tests/core/test_golden.py.
"""

from __future__ import annotations

import gc
import gzip
import pickle
import struct
import time
import tracemalloc
import zlib

import pytest

import heptool
from heptool import HepMessage, decode, encode
from heptool.core import errors as E
from heptool.core import registry
from heptool.core.codec import sniff_version
from heptool.core.compression import DEFAULT_MAX_INFLATE, deflate, inflate, sniff
from heptool.core.registry import CHUNKS


# ---------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------
def chunk(ctype: int, body: bytes, vendor: int = 0, length: int | None = None) -> bytes:
    """One HEP3 chunk; ``length`` overrides the length field (for broken packets)."""
    ln = 6 + len(body) if length is None else length
    return struct.pack(">HHH", vendor, ctype, ln) + body


def hep3(*chunks: bytes, magic: bytes = b"HEP3", total: int | None = None) -> bytes:
    body = b"".join(chunks)
    return magic + struct.pack(">H", 6 + len(body) if total is None else total) + body


def u8(t, v):
    return chunk(t, bytes([v]))


def u16(t, v):
    return chunk(t, v.to_bytes(2, "big"))


def u32(t, v):
    return chunk(t, v.to_bytes(4, "big"))


def ip4(t, text):
    return chunk(t, bytes(int(p) for p in text.split(".")))


SIP = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"

#: A plain IPv4 packet in Kamailio order with correlation id and payload.
BASE = hep3(
    u8(0x01, 2), u8(0x02, 17), ip4(0x03, "10.0.0.1"), ip4(0x04, "10.0.0.2"),
    u16(0x07, 5060), u16(0x08, 5080), u32(0x09, 1700000000), u32(0x0A, 123456),
    u8(0x0B, 1), u32(0x0C, 2001), chunk(0x11, b"call-1@host"), chunk(0x0F, SIP),
)
BASE_FIELDS = {
    "family": 2, "ip_proto": 17, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "src_port": 5060, "dst_port": 5080,
    "ts_sec": 1700000000, "ts_usec": 123456, "proto_type": 1, "capture_id": 2001,
    "correlation_id": "call-1@host", "payload": SIP,
}
#: offset of the payload chunk inside BASE
PAYLOAD_AT = BASE.index(b"\x00\x00\x00\x0f")


def v12(version=2, hlen=None, family=2, ip_proto=17, sport=5060, dport=5060,
        src=b"\x0a\x00\x00\x01", dst=b"\x0a\x00\x00\x02", ts=(1700000000, 123456), cid=2001,
        pad=b"\x00\x00", payload=SIP) -> bytes:
    """A HEPv1/v2 packet: time header little-endian (x86 host order), pad bytes after it."""
    if hlen is None:
        hlen = 8 + len(src) + len(dst)
    out = struct.pack(">BBBBHH", version, hlen, family, ip_proto, sport, dport) + src + dst
    if version == 2:
        out += struct.pack("<IIH", ts[0], ts[1], cid) + pad
    return out + payload


V6_SRC = bytes.fromhex("20010db8000000000000000000000001")
V6_DST = bytes.fromhex("fe800000000000000000000000000002")


def roundtrip(data: bytes, strict: bool = False) -> HepMessage:
    m = decode(data, strict=strict)
    assert encode(m) == data
    return m


# ---------------------------------------------------------------------------
# HEPv1 / HEPv2
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", [1, 2])
def test_v12_ipv4(version):
    data = v12(version)
    m = roundtrip(data, strict=True)
    assert (m.version, m.family, m.ip_proto) == (version, 2, 17)
    assert (m.src_ip, m.src_port, m.dst_ip, m.dst_port) == ("10.0.0.1", 5060, "10.0.0.2", 5060)
    assert m.payload == SIP
    assert m.proto_type == 1  # v1/v2 are SIP by definition
    if version == 2:
        assert (m.ts_sec, m.ts_usec, m.capture_id) == (1700000000, 123456, 2001)
    else:
        assert (m.ts_sec, m.ts_usec, m.capture_id) == (None, None, None)
    assert len(data) == (16 if version == 1 else 28) + len(SIP)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("family", [10, 16, 24, 28, 30])  # Linux, hep-wireshark, BSDs, macOS
def test_v12_ipv6(version, family):
    data = v12(version, family=family, src=V6_SRC, dst=V6_DST)
    assert data[1] == 40
    m = roundtrip(data, strict=True)
    assert (m.src_ip, m.dst_ip, m.family) == ("2001:db8::1", "fe80::2", family)
    assert m.payload == SIP


def test_v12_fields_encode_canonically():
    m = HepMessage(version=2, src_ip="2001:db8::1", dst_ip="fe80::2", src_port=1, dst_port=2,
                   ts_sec=5, ts_usec=6, capture_id=7, payload=SIP)
    assert encode(m) == v12(2, family=10, sport=1, dport=2, src=V6_SRC, dst=V6_DST, ts=(5, 6), cid=7)


def test_v2_time_header_is_little_endian():
    data = v12(2, ts=(0x01020304, 0x0A0B0C0D), cid=0x1122)
    assert data[16:28] == bytes.fromhex("04030201 0d0c0b0a 2211 0000")
    m = decode(data, strict=True)
    assert (m.ts_sec, m.ts_usec, m.capture_id) == (0x01020304, 0x0A0B0C0D, 0x1122)


def test_v2_pad_bytes_kept():
    data = v12(2, pad=b"\xde\xad")
    m = roundtrip(data, strict=True)
    assert m.payload == SIP  # the pad is not payload
    assert m.wire == {"v2_pad": b"\xde\xad"}


def test_v2_capture_id_is_16_bits():
    m = HepMessage(version=2, src_ip="1.1.1.1", dst_ip="2.2.2.2", capture_id=70000)
    with pytest.raises(heptool.HepEncodeError):
        encode(m)


def test_v12_mixed_address_versions_cannot_encode():
    m = HepMessage(version=1, src_ip="1.1.1.1", dst_ip="::1")
    with pytest.raises(heptool.HepEncodeError):
        encode(m)


def test_v3_message_converted_to_v1_and_v2():
    m = decode(BASE)
    for version, header in ((1, 16), (2, 28)):
        out = encode(m, version=version)
        back = decode(out, strict=True)
        assert back.version == version
        assert out[header:] == SIP
        assert (back.src_ip, back.dst_port) == ("10.0.0.1", 5080)
    assert encode(m) == BASE  # the original is untouched


@pytest.mark.parametrize(("nuls", "src", "dst"), [(8, None, None), (32, V6_SRC, V6_DST)])
@pytest.mark.parametrize("version", [1, 2])
def test_opensips_trailing_nuls_kept_out_of_payload_and_restored(version, nuls, src, dst):
    kw = {"src": src, "dst": dst, "family": 10} if src else {}
    data = v12(version, **kw) + b"\x00" * nuls
    m = roundtrip(data, strict=True)
    assert m.payload == SIP
    assert m.wire["trailer_nuls"] == nuls


def test_v12_payload_that_is_only_nuls():
    data = v12(2, payload=b"\x00" * 8)
    m = roundtrip(data)
    assert m.payload == b""


def test_sngrep_garbage_length_byte_and_pad():
    # sngrep writes the high byte of the total length into the length byte, and leaves the
    # 2 pad bytes uninitialised (HEP-SPEC 1.2 and 14).
    data = v12(2, hlen=0x01, pad=b"\x7f\xc3")
    m = roundtrip(data)
    assert (m.src_ip, m.dst_ip, m.ts_sec, m.capture_id) == ("10.0.0.1", "10.0.0.2", 1700000000, 2001)
    assert m.payload == SIP
    assert m.wire == {"v12_length": 1, "v2_pad": b"\x7f\xc3"}
    with pytest.raises(E.LengthMismatchError) as ei:
        decode(data, strict=True)
    assert ei.value.offset == 1


def test_v12_family_and_length_byte_that_name_no_ip_version():
    data = v12(2, hlen=0x33, family=0x07)
    for strict in (False, True):
        with pytest.raises(heptool.HepDecodeError) as ei:
            decode(data, strict=strict)
        assert ei.value.offset is not None


@pytest.mark.parametrize("cut", [0, 1, 7, 8, 15, 27])
def test_v12_short_header(cut):
    data = v12(2)[:cut]
    with pytest.raises(heptool.HepDecodeError):
        decode(data)


def test_v12_unknown_family_falls_back_to_length_byte():
    m = roundtrip(v12(1, family=99))
    assert m.src_ip == "10.0.0.1"
    m = roundtrip(v12(1, family=99, hlen=40, src=V6_SRC, dst=V6_DST))
    assert m.src_ip == "2001:db8::1"


# ---------------------------------------------------------------------------
# HEP3 framing
# ---------------------------------------------------------------------------
def test_base_packet():
    m = roundtrip(BASE, strict=True)
    for k, v in BASE_FIELDS.items():
        assert getattr(m, k) == v, k
    assert encode(HepMessage(**BASE_FIELDS)) == BASE


def test_header_only_packet_is_legal():
    m = roundtrip(b"HEP3\x00\x06", strict=True)
    assert m.version == 3 and m.payload is None


@pytest.mark.parametrize("magic", [b"EEP1", b"EEP3"])
def test_eep_magic(magic):
    data = magic + BASE[4:]
    m = decode(data)
    assert m.wire["magic"] == magic.decode()
    assert m.payload == SIP
    assert encode(m) == data  # re-encoded with the same magic
    with pytest.raises(E.BadMagicError) as ei:
        decode(data, strict=True)
    assert ei.value.offset == 0


@pytest.mark.parametrize("data", [b"HEP4\x00\x06", b"XXXX\x00\x06", b"\x03" * 20, b"\x00" * 8])
def test_not_hep(data):
    for strict in (False, True):
        with pytest.raises(E.BadMagicError):
            decode(data, strict=strict)


@pytest.mark.parametrize("data", [b"", b"H", b"HEP3", b"HEP3\x00"])
def test_short_header(data):
    with pytest.raises(heptool.HepDecodeError) as ei:
        decode(data)
    assert ei.value.offset == 0


@pytest.mark.parametrize("total", [0, 5])
def test_total_length_below_6(total):
    with pytest.raises(E.LengthMismatchError) as ei:
        decode(hep3(chunk(0x0F, b"x"), total=total))
    assert ei.value.offset == 4


def test_total_length_beyond_data():
    with pytest.raises(E.LengthMismatchError) as ei:
        decode(BASE[:-1])
    assert ei.value.offset == 4


def test_trailing_bytes():
    data = BASE + b"\x00junk"
    m = decode(data)
    assert m.payload == SIP
    assert [type(w) for w in m.warnings] == [E.TrailingDataError]
    assert m.warnings[0].offset == len(BASE)
    assert encode(m) == data
    with pytest.raises(E.TrailingDataError) as ei:
        decode(data, strict=True)
    assert ei.value.offset == len(BASE)


# -- damage inside the packet ------------------------------------------------
def _with_payload_length(length: int) -> bytes:
    data = bytearray(BASE)
    data[PAYLOAD_AT + 4:PAYLOAD_AT + 6] = length.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "offset", "chunk_id"),
    [
        (_with_payload_length(6 + len(SIP) + 1), PAYLOAD_AT + 4, (0, 0x0F)),  # runs past the end
        (_with_payload_length(0xFFFF), PAYLOAD_AT + 4, (0, 0x0F)),
        (_with_payload_length(5), PAYLOAD_AT + 4, (0, 0x0F)),  # length < 6
        (_with_payload_length(0), PAYLOAD_AT + 4, (0, 0x0F)),
        (hep3(BASE[6:PAYLOAD_AT], b"\x00\x00\x00"), PAYLOAD_AT, None),  # header fragment at the end
        (hep3(BASE[6:PAYLOAD_AT], b"\x00\x00\x00\x0f\x00"), PAYLOAD_AT, None),
    ],
    ids=["past-end", "length-ffff", "length-5", "length-0", "fragment-3", "fragment-5"],
)
def test_truncated_chunk(data, offset, chunk_id):
    m = decode(data)
    # chunks read so far are kept
    assert (m.src_ip, m.capture_id, m.correlation_id) == ("10.0.0.1", 2001, "call-1@host")
    assert m.payload is None
    assert len(m.warnings) == 1
    w = m.warnings[0]
    assert isinstance(w, E.TruncatedChunkError)
    assert (w.offset, w.chunk) == (offset, chunk_id)
    assert m.wire["tail"] == data[PAYLOAD_AT:]  # the rest kept raw
    assert encode(m) == data
    with pytest.raises(E.TruncatedChunkError) as ei:
        decode(data, strict=True)
    assert (ei.value.offset, ei.value.chunk) == (offset, chunk_id)
    assert f"offset {offset}" in str(ei.value)


def test_truncated_chunk_with_trailing_bytes_too():
    data = hep3(chunk(0x0F, b"abc", length=20)) + b"tail"
    m = decode(data)
    assert {type(w) for w in m.warnings} == {E.TrailingDataError, E.TruncatedChunkError}
    assert encode(m) == data


def test_edit_of_a_damaged_message_keeps_the_raw_tail():
    data = _with_payload_length(5)
    m = decode(data)
    m.src_port = 1
    out = encode(m)
    assert out.endswith(data[PAYLOAD_AT:])
    assert decode(out).src_port == 1


# -- odd chunk sizes -----------------------------------------------------------
def test_one_byte_vlan():
    data = hep3(chunk(0x12, b"\x05"), chunk(0x0F, b"x"))
    m = roundtrip(data)
    assert m.extra["vlan"] == 5
    assert m.warnings == []
    with pytest.raises(E.BadChunkValueError) as ei:
        decode(data, strict=True)
    assert (ei.value.offset, ei.value.chunk) == (6, (0, 0x12))


def test_two_byte_vlan():
    m = roundtrip(hep3(u16(0x12, 300)), strict=True)
    assert m.extra["vlan"] == 300


def test_one_byte_event_type():
    data = hep3(chunk(0x28, b"\x02"))
    assert roundtrip(data).extra["event_type"] == 2
    with pytest.raises(E.BadChunkValueError):
        decode(data, strict=True)


@pytest.mark.parametrize(
    ("body", "text"),
    [(bytes.fromhex("001122334455"), "00:11:22:33:44:55"),
     (bytes.fromhex("0011223344556677"), "00:11:22:33:44:55:66:77")],
)
@pytest.mark.parametrize("ctype", [0x14, 0x15])
def test_mac_6_and_8_bytes(ctype, body, text):
    m = roundtrip(hep3(chunk(ctype, body)), strict=True)
    assert m.extra[registry.CHUNKS[ctype].name] == text
    # and from fields
    again = HepMessage(**{registry.CHUNKS[ctype].name: text})
    assert encode(again) == hep3(chunk(ctype, body))


@pytest.mark.parametrize("size", [0, 5, 7, 9])
def test_mac_other_sizes(size):
    data = hep3(chunk(0x14, bytes(size)))
    m = roundtrip(data)
    assert "src_mac" not in m.extra
    assert isinstance(m.warnings[0], E.BadChunkValueError)
    with pytest.raises(E.BadChunkValueError):
        decode(data, strict=True)


@pytest.mark.parametrize(
    ("ctype", "size"),
    [(0x01, 2), (0x02, 0), (0x03, 16), (0x05, 4), (0x07, 4), (0x09, 2), (0x0C, 8), (0x0B, 2)],
)
def test_fixed_size_mismatch(ctype, size):
    data = hep3(chunk(ctype, bytes(range(size))), chunk(0x0F, b"p"))
    m = roundtrip(data)
    assert m.get(registry.CHUNKS[ctype].field) is None
    assert m.payload == b"p"
    (w,) = m.warnings
    assert isinstance(w, E.BadChunkValueError)
    assert (w.offset, w.chunk) == (6, (0, ctype))
    with pytest.raises(E.BadChunkValueError) as ei:
        decode(data, strict=True)
    assert ei.value.offset == 6


def test_zero_length_chunks():
    # heplify-server's test vector has an empty auth key: 00 00 00 0e 00 06
    data = hep3(bytes.fromhex("00 00 00 0e 00 06"), chunk(0x11, b""), chunk(0x0F, b""))
    m = roundtrip(data, strict=True)
    assert (m.auth_key, m.correlation_id, m.payload) == ("", "", b"")
    assert encode(HepMessage(auth_key="", correlation_id="", payload=b"")) == data


def test_text_chunk_with_bad_utf8_is_kept():
    data = hep3(chunk(0x11, b"\xff\xfeid"), chunk(0x13, "nöde".encode()))
    m = roundtrip(data)
    assert m.node_name == "nöde"
    assert "id" in m.correlation_id


# -- duplicates, unknown and vendor chunks ------------------------------------------
def test_duplicate_chunks_last_wins_all_kept():
    data = hep3(
        chunk(0x11, b"first"), u16(0x07, 1), chunk(0x0F, b"p1"), chunk(0x11, b"second"),
        u16(0x07, 2), chunk(0x0F, b"p2"), chunk(0x11, b"third"),
    )
    for strict in (False, True):
        m = roundtrip(data, strict=strict)
        assert (m.correlation_id, m.src_port, m.payload) == ("third", 2, b"p2")
        assert m.chunk_ids() == [(0, 0x11), (0, 7), (0, 0xF), (0, 0x11), (0, 7), (0, 0xF), (0, 0x11)]


def test_duplicate_then_edit_changes_the_effective_chunk_only():
    data = hep3(chunk(0x11, b"first"), chunk(0x11, b"second"), chunk(0x0F, b"p"))
    m = decode(data)
    m.correlation_id = "edited"
    out = encode(m)
    assert out.count(b"first") == 1 and b"second" not in out
    assert decode(out).correlation_id == "edited"


def test_duplicate_src_ip_as_v4_then_v6():
    data = hep3(ip4(0x03, "10.0.0.1"), chunk(0x05, V6_SRC), chunk(0x0F, b"p"))
    m = roundtrip(data, strict=True)
    assert m.src_ip == "2001:db8::1"


@pytest.mark.parametrize(
    "data",
    [
        hep3(u16(0x07, 1), chunk(0x07, b"\x00\x00\x02")),
        hep3(chunk(0x14, bytes(6)), chunk(0x14, bytes(4))),
        hep3(chunk(0x10, zlib.compress(b"a")), chunk(0x10, b"junk")),
    ],
    ids=["src_port", "src_mac", "compressed_payload"],
)
def test_duplicate_with_bad_later_copy_reencodes_exactly(data):
    assert encode(decode(data)) == data


def test_compressed_then_plain_payload():
    data = hep3(chunk(0x10, zlib.compress(b"a")), chunk(0x0F, b"b"))
    m = decode(data, strict=True)
    assert m.payload == b"b"
    assert m.compression is None
    assert encode(m) == data


def test_plain_then_compressed_payload():
    data = hep3(chunk(0x0F, b"b"), chunk(0x10, zlib.compress(b"a")))
    m = roundtrip(data, strict=True)
    assert (m.payload, m.compression) == (b"a", "zlib")


def test_unknown_vendor_and_generic_chunks_kept_raw():
    data = hep3(
        chunk(0x80, b"vendor text", vendor=8), u8(0x0B, 1), chunk(0x1F, b"\x01\x02"),
        chunk(0x0F, b"p", vendor=3),  # a vendor chunk never sets a generic field
        chunk(0x0F, b"payload"), chunk(0x3000, b""), chunk(0x85, b"\x07", vendor=0xFFFF),
    )
    m = roundtrip(data, strict=True)
    assert m.payload == b"payload"
    assert m.extra == {}
    assert m.chunk_ids() == [(8, 0x80), (0, 0xB), (0, 0x1F), (3, 0xF), (0, 0xF), (0, 0x3000), (0xFFFF, 0x85)]


def test_vendor0_type0_is_lenient_only():
    data = hep3(chunk(0, b"??"), chunk(0x0F, b"p"))
    assert roundtrip(data).payload == b"p"
    with pytest.raises(E.BadChunkValueError) as ei:
        decode(data, strict=True)
    assert (ei.value.offset, ei.value.chunk) == (6, (0, 0))


# -- the registry: every generic type through HepMessage(**fields) -----------------
_SAMPLES = {
    "u8": 0xAB, "u16": 0xABCD, "u32": 0xABCDEF01, "u64": 0x0123456789ABCDEF,
    "ip4": "192.0.2.7", "ip6": "2001:db8::7", "text": "tëxt value", "bytes": b"\x00\xffbytes",
    "mac": "02:00:5e:10:00:01",
}


@pytest.mark.parametrize("ctype", sorted(CHUNKS), ids=[CHUNKS[t].name for t in sorted(CHUNKS)])
def test_every_registry_chunk_roundtrips_from_fields(ctype):
    spec = CHUNKS[ctype]
    assert 0x01 <= ctype <= 0x29 or ctype == 0x65
    if ctype == 0x10:
        fields = {"payload": b"compress me " * 10, "compression": "zlib"}
    else:
        fields = {spec.field: _SAMPLES[spec.kind]}
    m = HepMessage(**fields)
    data = encode(m)
    assert (0, ctype) in m.chunk_ids()
    d = decode(data, strict=True)
    assert d == m
    assert (0, ctype) in d.chunk_ids()
    assert encode(d) == data
    assert d.get(spec.field) == m.get(spec.field)


def test_registry_covers_the_spec_types():
    spec_types = set(range(0x01, 0x19)) | set(range(0x20, 0x2A)) | {0x65}
    assert set(CHUNKS) == spec_types


def test_all_registry_fields_together():
    fields = {}
    for spec in CHUNKS.values():
        if spec.type in (0x05, 0x06, 0x10):
            continue
        fields[spec.field] = _SAMPLES[spec.kind]
    m = HepMessage(**fields)
    d = decode(encode(m), strict=True)
    assert d == m
    assert encode(d) == encode(m)


# -- editing a decoded message --------------------------------------------------------
VENDOR_PKT = hep3(
    u8(0x01, 2), ip4(0x03, "10.0.0.1"), ip4(0x04, "10.0.0.2"), chunk(9, b"vv", vendor=9),
    chunk(0x11, b"cid"), chunk(0x0F, b"P"), chunk(0x80, b"after", vendor=8),
)


def test_edit_src_ip_v4_to_v6():
    m = decode(VENDOR_PKT)
    m.src_ip = "2001:db8::1"
    d = decode(encode(m), strict=True)
    assert d.src_ip == "2001:db8::1" and d.dst_ip == "10.0.0.2"
    assert d.chunk_ids() == [(0, 1), (0, 5), (0, 4), (9, 9), (0, 0x11), (0, 0xF), (8, 0x80)]
    m.src_ip = "10.0.0.1"
    assert encode(m) == VENDOR_PKT


def test_edit_payload():
    m = decode(VENDOR_PKT)
    m.payload = b"NEW PAYLOAD"
    out = encode(m)
    assert out == VENDOR_PKT.replace(chunk(0x0F, b"P"), chunk(0x0F, b"NEW PAYLOAD")).replace(
        VENDOR_PKT[4:6], len(out).to_bytes(2, "big"), 1)


def test_edit_remove_correlation_id():
    m = decode(VENDOR_PKT)
    m.correlation_id = None
    assert encode(m) == hep3(*[c for c in (
        u8(0x01, 2), ip4(0x03, "10.0.0.1"), ip4(0x04, "10.0.0.2"), chunk(9, b"vv", vendor=9),
        chunk(0x0F, b"P"), chunk(0x80, b"after", vendor=8))])


def test_edit_add_correlation_id_goes_before_the_payload():
    data = VENDOR_PKT.replace(chunk(0x11, b"cid"), b"")
    data = hep3(data[6:])
    m = decode(data)
    m.correlation_id = "added"
    d = decode(encode(m), strict=True)
    assert d.correlation_id == "added"
    assert d.chunk_ids() == [(0, 1), (0, 3), (0, 4), (9, 9), (0, 0x11), (0, 0xF), (8, 0x80)]


def test_edit_add_extra_field():
    m = decode(VENDOR_PKT)
    m.extra["vlan"] = 42
    d = decode(encode(m), strict=True)
    assert d.extra == {"vlan": 42}
    assert d.payload == b"P"


def test_copy_is_independent():
    m = decode(VENDOR_PKT)
    c = m.copy()
    c.extra["vlan"] = 1
    c.payload = b"changed"
    assert encode(m) == VENDOR_PKT


# ---------------------------------------------------------------------------
# compression
# ---------------------------------------------------------------------------
def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("algo", "body"),
    [
        ("gzip", gzip.compress(SIP, mtime=99)),
        ("zlib", zlib.compress(SIP, 1)),
        ("zlib", zlib.compress(SIP, 9)),
        ("deflate", _raw_deflate(SIP)),
    ],
)
def test_compression_auto_detected_and_kept(algo, body):
    data = hep3(u8(0x0B, 1), chunk(0x10, body))
    m = roundtrip(data, strict=True)
    assert (m.payload, m.compression) == (SIP, algo)
    assert sniff(body) == algo


@pytest.mark.parametrize("algo", ["gzip", "zlib", "deflate"])
def test_encode_with_chosen_algorithm(algo):
    m = HepMessage(proto_type=1, payload=SIP * 3, compression=algo)
    data = encode(m)
    assert m.chunk_ids() == [(0, 0x0B), (0, 0x10)]
    body = data[6 + 7 + 6:]
    assert inflate(body) == (SIP * 3, algo)
    d = roundtrip(data, strict=True)
    assert d == m


def test_turning_compression_on_for_a_decoded_message():
    m = decode(BASE)
    m.compression = "gzip"
    d = decode(encode(m), strict=True)
    assert (d.payload, d.compression) == (SIP, "gzip")
    assert (0, 0x10) in d.chunk_ids() and (0, 0x0F) not in d.chunk_ids()


def test_editing_a_compressed_payload_recompresses():
    data = hep3(chunk(0x10, zlib.compress(SIP)))
    m = decode(data)
    m.payload = b"other"
    d = decode(encode(m), strict=True)
    assert (d.payload, d.compression) == (b"other", "zlib")


def test_unknown_compression_name():
    with pytest.raises(heptool.HepValueError):
        HepMessage(payload=b"x", compression="lz4")
    with pytest.raises(heptool.HepValueError):
        deflate(b"x", "lz4")


@pytest.mark.parametrize(
    "body",
    [b"junk that is no deflate", zlib.compress(SIP)[:-6], gzip.compress(SIP)[:12], b"", b"\x1f\x8b"],
    ids=["junk", "truncated-zlib", "truncated-gzip", "empty", "gzip-magic-only"],
)
def test_bad_compressed_payload(body):
    data = hep3(u8(0x0B, 1), chunk(0x10, body))
    m = roundtrip(data)
    assert m.payload is None and m.compression is None
    (w,) = m.warnings
    assert isinstance(w, E.DecompressionError)
    assert (w.offset, w.chunk) == (6 + 7 + 6, (0, 0x10))
    with pytest.raises(E.DecompressionError) as ei:
        decode(data, strict=True)
    assert ei.value.offset == 19


def _gzip_zeros(n: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    out = [c.compress(block) for _ in range(n >> 20)]
    return b"".join(out) + c.flush()


def _bomb_packet() -> bytes:
    bomb = _gzip_zeros(50 << 20)  # 50 MB of zeros
    assert len(bomb) < 65000
    return hep3(chunk(0x10, bomb))


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_zip_bomb_refused_quickly_without_allocating_it(strict):
    data = _bomb_packet()
    gc.collect()
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        try:
            m = decode(data, strict=strict)
        except E.DecompressionError as e:
            err = (type(e), e.offset, e.chunk, str(e))
            m = None
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20, peak
    assert elapsed < 2.0
    if strict:
        assert m is None
        assert err[1:3] == (12, (0, 0x10))
        assert "inflates past" in err[3]
    else:
        assert m.payload is None
        assert isinstance(m.warnings[0], E.DecompressionError)
        assert encode(m) == data


def test_decoded_zip_bombs_do_not_keep_the_inflated_bytes_alive():
    data = _bomb_packet()
    gc.collect()
    tracemalloc.start()
    try:
        kept = [decode(data) for _ in range(10)]
        gc.collect()
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert all(m.warnings for m in kept)
    assert current < 10 << 20, current


def test_max_inflate_bound():
    data = hep3(chunk(0x10, zlib.compress(bytes(1000))))
    assert decode(data, max_inflate=1000).payload == bytes(1000)
    with pytest.raises(E.DecompressionError):
        decode(data, strict=True, max_inflate=999)
    assert DEFAULT_MAX_INFLATE >= 65535 * 10


# ---------------------------------------------------------------------------
# encoding limits and value errors
# ---------------------------------------------------------------------------
def test_oversize_chunk():
    with pytest.raises(heptool.HepEncodeError):
        encode(HepMessage(payload=b"x" * 65530))  # chunk 65536
    with pytest.raises(heptool.HepEncodeError):
        encode(HepMessage(payload=b"x" * 65524))  # packet 65536
    assert len(encode(HepMessage(payload=b"x" * 65523))) == 65535


def test_oversize_packet_from_several_chunks():
    with pytest.raises(heptool.HepEncodeError):
        encode(HepMessage(auth_key="k" * 30000, node_name="n" * 30000, payload=b"x" * 6000))


def test_oversize_after_editing_a_decoded_message():
    m = decode(BASE)
    m.payload = b"x" * 65500
    with pytest.raises(heptool.HepEncodeError):
        encode(m)


@pytest.mark.parametrize(
    "fields",
    [
        {"src_port": 70000}, {"dst_port": -1}, {"src_port": "5060"}, {"src_port": True},
        {"capture_id": 1 << 32}, {"proto_type": 256}, {"family": 300},
        {"src_ip": "10.0.0.256"}, {"dst_ip": "not an ip"}, {"src_ip": 167772161},
        {"src_mac": "zz:zz"}, {"src_mac": "00:11:22"}, {"vlan": 1 << 16}, {"mos": -5},
        {"compression": "brotli", "payload": b"x"}, {"bogus_field": 1}, {"version": 4},
        {"payload": 5}, {"auth_key": 12}, {"family": -1},
    ],
    ids=lambda f: ",".join(f),
)
def test_bad_field_values(fields):
    with pytest.raises(heptool.HepValueError) as ei:
        HepMessage(**fields)
    assert isinstance(ei.value, ValueError)  # HepValueError is also a ValueError
    assert "\n" not in str(ei.value)


@pytest.mark.parametrize("fields", [{"proto_type": "nonsense"}, {"proto_type": "0x100"},
                                    {"family": "bogus"}], ids=lambda f: f"{f}")
def test_bad_text_field_values_raise_hep_value_error(fields):
    with pytest.raises(heptool.HepValueError):
        HepMessage(**fields)


@pytest.mark.parametrize("field", ["auth_key", "correlation_id", "node_name", "payload"])
def test_unencodable_text_is_a_hep_error(field):
    with pytest.raises((heptool.HepValueError, heptool.HepEncodeError)):
        encode(HepMessage(**{field: "bad \ud800 text"}))


def test_unknown_field_name_message():
    with pytest.raises(heptool.HepValueError, match="unknown HEP field 'colour'"):
        HepMessage(colour="red")


def test_field_normalisation():
    m = HepMessage(src_ip="2001:0DB8:0::0001", dst_ip="::1", payload="text", proto_type="log",
                   family="ipv6")
    assert (m.src_ip, m.payload, m.proto_type, m.family, m.ip_proto) == (
        "2001:db8::1", b"text", 100, 10, 17)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
BAD_INPUTS = [
    b"", b"HEP", b"HEP3\x00\x05", b"HEP3\x00\x10", b"XXXX\x00\x06", b"EEP1\x00\x06",
    BASE + b"x", _with_payload_length(3), _with_payload_length(999), hep3(b"\x00\x00"),
    hep3(chunk(0x01, b"")), hep3(chunk(0x14, bytes(3))), hep3(chunk(0x10, b"junk")),
    hep3(chunk(0, b"")), v12(2, hlen=3), v12(1, family=77, hlen=77), v12(2)[:20],
    bytes([2, 16, 2, 17]),
]


@pytest.mark.parametrize("data", BAD_INPUTS, ids=range(len(BAD_INPUTS)))
def test_error_str_is_one_line_with_the_offset(data):
    with pytest.raises(heptool.HepDecodeError) as ei:
        decode(data, strict=True)
    e = ei.value
    assert isinstance(e, heptool.HepError)
    assert e.offset is not None
    text = str(e)
    assert "\n" not in text and text.strip() == text
    assert f"offset {e.offset}" in text
    if e.chunk is not None and e.chunk != (0, 0):
        assert f"0x{e.chunk[0]:04x}:0x{e.chunk[1]:04x}" in text


def test_reserved_type0_error_names_the_chunk():
    with pytest.raises(E.BadChunkValueError) as ei:
        decode(hep3(chunk(0, b"")), strict=True)
    assert "0x0000:0x0000" in str(ei.value)


def test_lenient_warnings_are_errors_with_offsets():
    for data in BAD_INPUTS:
        try:
            m = decode(data)
        except heptool.HepDecodeError:
            continue
        for w in m.warnings:
            assert isinstance(w, heptool.HepDecodeError)
            assert w.offset is not None and "\n" not in str(w)


def test_error_hierarchy():
    for cls in (E.ShortHeaderError, E.BadMagicError, E.LengthMismatchError, E.TruncatedChunkError,
                E.BadChunkValueError, E.TrailingDataError, E.DecompressionError, E.StreamError):
        assert issubclass(cls, heptool.HepDecodeError)
    for cls in (heptool.HepDecodeError, heptool.HepEncodeError, heptool.HepValueError):
        assert issubclass(cls, heptool.HepError)
    assert issubclass(heptool.HepError, Exception)
    assert not issubclass(heptool.HepDecodeError, ValueError)


def test_error_multiline_message_becomes_one_line_and_context():
    e = E.TruncatedChunkError("line one\nline two", offset=7, chunk=(0, 0x11))
    assert str(e) == "offset 7: chunk 0x0000:0x0011: line one line two"
    assert str(e.with_context("frame 3")) == "frame 3, offset 7: chunk 0x0000:0x0011: line one line two"


def test_error_pickles_with_its_state():
    e = E.BadMagicError("bad", offset=3, chunk=(1, 2), context="frame 9")
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is E.BadMagicError
    assert (e2.offset, e2.chunk, str(e2)) == (3, (1, 2), str(e))


def test_error_default_message_is_the_docstring():
    assert str(E.TrailingDataError()) == "bytes left after the HEP packet"


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_decode_accepts_bytes_like(kind):
    assert decode(kind(BASE)) == decode(BASE)


@pytest.mark.parametrize("bad", ["HEP3\x00\x06", None, 1.5, object(), {"a": 1}],
                         ids=["str", "None", "float", "object", "dict"])
def test_decode_of_non_bytes_like_raises_type_error(bad):
    with pytest.raises(TypeError):
        decode(bad)


@pytest.mark.parametrize("bad", [8, list(b"HEP3\x00\x06")], ids=["int", "list"])
def test_decode_of_int_or_list_raises_type_error(bad):
    with pytest.raises(TypeError):
        decode(bad)


def test_sniff_version():
    assert sniff_version(BASE) == 3
    assert sniff_version(b"EEP1\x00\x06") == 3
    assert sniff_version(v12(1)) == 1
    assert sniff_version(v12(2)) == 2
    assert sniff_version(b"garbage!") is None
    assert sniff_version(b"\x02\x10") is None


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------
def test_proto_names_and_numbers():
    assert registry.proto_name(1) == "sip"
    assert registry.proto_name(100) == "log"
    assert registry.proto_name(None) is None
    assert registry.proto_from_text("SIP") == 1
    assert registry.proto_from_text(" log ") == 100
    assert registry.proto_from_text("xlog") == 100
    assert registry.proto_from_text("100") == 100
    assert registry.proto_from_text("0x64") == 100
    for num, name in registry.PROTO_TYPES.items():
        assert registry.proto_from_text(name) == num
    assert len(set(registry.PROTO_TYPES.values())) == len(registry.PROTO_TYPES)


@pytest.mark.parametrize(("written", "meanings"), sorted(registry.PROTO_CLASHES.items()))
def test_proto_hex_decimal_clashes(written, meanings):
    dec, hx = meanings
    assert registry.proto_from_text(str(written)) == dec
    assert registry.proto_from_text(f"0x{written}") == hx


def test_proto_clash_example_from_the_docstring():
    assert registry.proto_from_text("58") == 58
    assert registry.proto_from_text("0x58") == 88
    assert registry.proto_name(58) == "rtcp_pion"
    assert registry.proto_name(88) == "rest"


@pytest.mark.parametrize("value", [7_7, 200, 255, 0x19])
def test_unknown_proto_prints_as_number(value):
    if value in registry.PROTO_TYPES:
        pytest.skip("known")
    assert registry.proto_name(value) == str(value)


@pytest.mark.parametrize("text", ["nonsense", "256", "0x100", "-1", ""])
def test_bad_proto_text(text):
    with pytest.raises(ValueError):
        registry.proto_from_text(text)


@pytest.mark.parametrize(
    ("text", "cid"),
    [
        ("correlation_id", (0, 0x11)), ("0x0011", (0, 0x11)), ("17", (0, 0x11)),
        ("0x11", (0, 0x11)), ("0x0003:0x0020", (3, 0x20)), ("3:32", (3, 0x20)),
        (" Correlation_ID ", (0, 0x11)), ("payload", (0, 0x0F)), ("src_ip", (0, 0x03)),
        ("extra_correlation", (0, 0x65)), ("0xffff:0xffff", (0xFFFF, 0xFFFF)),
    ],
)
def test_parse_chunk_id(text, cid):
    assert registry.parse_chunk_id(text) == cid


def test_parse_chunk_id_unknown_name_message():
    with pytest.raises(ValueError) as ei:
        registry.parse_chunk_id("corelation_id")
    msg = str(ei.value)
    assert "unknown chunk 'corelation_id'" in msg
    assert "correlation_id" in msg and "0x0011" in msg and "vendor:type" in msg


@pytest.mark.parametrize("text", ["0x10000", "-1", "0x1:0x10000", "1:2:3", "", "x:y"])
def test_parse_chunk_id_bad(text):
    with pytest.raises(ValueError):
        registry.parse_chunk_id(text)


def test_chunk_names():
    assert registry.chunk_name(0, 0x11) == "correlation_id"
    assert registry.chunk_name(3, 0x11) == "0x0003:0x0011"  # vendor chunks are never generic
    assert registry.chunk_name(0, 0x30) == "0x0000:0x0030"
    assert registry.chunk_spec(8, 0x0F) is None


def test_family_names():
    assert registry.family_name(2) == "ipv4"
    assert registry.family_name(10) == "ipv6"
    assert registry.family_name(30) == 30
    assert registry.family_from_text("IPv6") == 10
    assert registry.family_from_text("0x0a") == 10
    assert registry.family_from_text(2) == 2


def test_every_chunk_name_parses_back():
    for t, spec in CHUNKS.items():
        assert registry.parse_chunk_id(spec.name) == (0, t)
        assert registry.parse_chunk_id(f"0x{t:04x}") == (0, t)
        assert registry.parse_chunk_id(str(t)) == (0, t)


def test_record_time_matches_a_plain_strftime_for_any_usec():
    """to_record caches the ISO date-and-seconds part per second: it must equal the uncached
    formatting for every second and microsecond, including garbage usec >= 1,000,000."""
    import datetime as dt

    from heptool.core.record import format_time

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    for sec in (0, 59, 86399, 1_700_000_000, 1_795_683_906, 4_294_967_295):
        for usec in (0, 1, 999_999, 1_000_000, 2_500_000, 4_294_967_295):
            want = (epoch + dt.timedelta(seconds=sec, microseconds=usec)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ")
            assert format_time(sec, usec) == want
            assert format_time(sec, usec) == want  # second call: from the cache
    assert format_time(None, 5) is None
