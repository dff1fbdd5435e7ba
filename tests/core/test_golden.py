"""HEP-SPEC section 12 worked examples A-F as golden vectors, tested in both directions.

One table (in the style of h11's SIMPLE_CASES): each row names an annotated hex file in
``vectors/`` (see ``vectors/README.md`` for where each came from), the field values it must
decode to, and whether its chunk order is heptool's canonical order (the order a message
built from fields is encoded in).  Directions checked:

* bytes -> decode (lenient and strict) -> the expected values, nothing else set;
* fields -> HepMessage(...) -> encode -> the same bytes (canonical-order rows only);
* bytes -> decode -> encode -> the same bytes (every row).
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import pytest

import heptool
from heptool import HepMessage
from heptool.core.message import FIELDS

VECTORS = Path(__file__).parent / "vectors"


def load_hex(name: str) -> bytes:
    """Bytes of an annotated hex file: ``#`` starts a comment, whitespace is ignored."""
    text = (VECTORS / name).read_text(encoding="ascii")
    digits = "".join(re.sub(r"#.*", "", line) for line in text.splitlines())
    return bytes.fromhex("".join(digits.split()))


A_PAYLOAD = b"SYSLOG: Processing OPTIONS request from nodejs using Call-Id: qgf3dm9rudi@127.0.0.1"
B_PAYLOAD = (
    b"REGISTER sip:rcs.st SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.168.137.1:54345;branch=z9hG4bK776asdhds\r\n"
    b"From: <sip:alice@rcs.st>;tag=1928301774\r\n"
    b"To: <sip:alice@rcs.st>\r\n"
    b"Call-ID: a84b4c76e66710@pc33\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:alice@192.168.137.1:54345;transport=tcp>\r\n"
    b"Content-Length: 0\r\n\r\n"
)

# (id, file, expected values (every other field must be None), canonical order?)
CASES = [
    (
        "A-hepjs-log",
        "A-hepjs-log.hex",
        {"version": 3, "family": 2, "ip_proto": 17, "src_ip": "192.168.1.1", "dst_ip": "192.168.1.2",
             "src_port": 0, "dst_port": 0, "ts_sec": 1481455199, "ts_usec": 126, "proto_type": 100,
             "capture_id": 2001, "auth_key": "myHep", "correlation_id": "qgf3dm9rudi@127.0.0.1",
             "payload": A_PAYLOAD},
        True,
    ),
    (
        "B-captagent-zlib",
        "B-captagent-zlib.hex",
        {"version": 3, "family": 2, "ip_proto": 6, "src_ip": "192.168.137.1", "dst_ip": "192.168.137.247",
             "src_port": 54345, "dst_port": 5060, "ts_sec": 1502941090, "ts_usec": 307169, "proto_type": 1,
             "capture_id": 228, "auth_key": "myHep", "payload": B_PAYLOAD, "compression": "zlib"},
        False,  # captagent order 1,2,7,8,9,a,b,c,3,4,e,10
    ),
    (
        "C-kamailio-hlog",
        "C-kamailio-hlog.hex",
        {"version": 3, "family": 2, "ip_proto": 17, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2",
             "src_port": 5060, "dst_port": 9060, "ts_sec": 1700000000, "ts_usec": 123456, "proto_type": 100,
             "capture_id": 1, "correlation_id": "a84b4c76e66710@pc33", "payload": b"hello from hlog"},
        False,  # hlog writes 0x0008 before 0x0007
    ),
    (
        "D-opensips-xlog",
        "D-opensips-xlog.hex",
        {"version": 3, "family": 2, "ip_proto": 6, "src_ip": "10.0.0.10", "dst_ip": "10.0.0.10",
             "src_port": 5060, "dst_port": 5060, "ts_sec": 1700000000, "ts_usec": 123456, "proto_type": 100,
             "capture_id": 1, "correlation_id": "a84b4c76e66710@pc33",
             "extra_correlation": '{\n\t"sip":\t"a84b4c76e66710@pc33"\n}',
             "payload": b'{\n\t"Event":\t"ERROR",\n\t"text":\t"no route"\n}'},
        False,  # OpenSIPS order 1,2,7,8,9,a,b,c,3,4,f,65,11
    ),
    (
        "E-hepv2",
        "E-hepv2.hex",
        {"version": 2, "family": 2, "ip_proto": 17, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2",
             "src_port": 5060, "dst_port": 5060, "ts_sec": 1700000000, "ts_usec": 123456, "capture_id": 2001,
             "proto_type": 1,  # v1/v2 carry SIP only: decode sets 1
             "payload": b"OPTIONS sip:x SIP/2.0\r\n"},
        True,
    ),
    (
        "F-hepv1",
        "F-hepv1.hex",
        {"version": 1, "family": 2, "ip_proto": 17, "src_ip": "10.0.1.100", "dst_ip": "192.168.0.254",
             "src_port": 5060, "dst_port": 5060, "proto_type": 1, "payload": b"SIP/2.0 200 OK\r\n"},
        True,
    ),
]
IDS = [c[0] for c in CASES]


def test_vector_files_are_all_in_the_table():
    assert sorted(p.name for p in VECTORS.glob("*.hex")) == sorted(c[1] for c in CASES)


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize(("name", "fname", "fields", "canonical"), CASES, ids=IDS)
def test_decode_gives_the_expected_fields(name, fname, fields, canonical, strict):
    data = load_hex(fname)
    m = heptool.decode(data, strict=strict)
    for f in FIELDS:
        assert getattr(m, f) == fields.get(f), f
    assert m.extra == {}
    assert m.warnings == []


@pytest.mark.parametrize(("name", "fname", "fields", "canonical"), CASES, ids=IDS)
def test_decode_encode_is_byte_exact(name, fname, fields, canonical):
    data = load_hex(fname)
    assert heptool.encode(heptool.decode(data)) == data
    assert heptool.encode(heptool.decode(data, strict=True)) == data


@pytest.mark.parametrize(("name", "fname", "fields", "canonical"), CASES, ids=IDS)
def test_fields_build_an_equal_message(name, fname, fields, canonical):
    built = HepMessage(**fields)
    assert built == heptool.decode(load_hex(fname))
    # whatever the order, an encoded built message decodes back to the same values
    assert heptool.decode(heptool.encode(built), strict=True) == built


@pytest.mark.parametrize(
    ("name", "fname", "fields", "canonical"), [c for c in CASES if c[3]], ids=[c[0] for c in CASES if c[3]]
)
def test_fields_encode_to_the_same_bytes(name, fname, fields, canonical):
    assert heptool.encode(HepMessage(**fields)) == load_hex(fname)


def test_non_canonical_examples_really_are_not_canonical():
    # Guards the table: if these ever encoded canonically, the rows should say True.
    for name, fname, fields, canonical in CASES:
        if not canonical:
            assert heptool.encode(HepMessage(**fields)) != load_hex(fname), name


def test_spec_prefixes_are_the_files_prefixes():
    """The bytes the spec prints verbatim match the files (guards against typos)."""
    a_printed = bytes.fromhex(
        "48455033 00dc 0000 0001 0007 02 0000 0002 0007 11 0000 0003 000a c0a80101"
        " 0000 0004 000a c0a80102 0000 0007 0008 0000 0000 0008 0008 0000"
        " 0000 0009 000a 584d365f 0000 000a 000a 0000007e 0000 000b 0007 64"
        " 0000 000c 000a 000007d1 0000 000e 000b 6d79486570 0000 0011 001b"
        " 71676633646d39727564694031 32372e302e302e31 0000 000f 0059 5359534c4f473a"
    )
    assert load_hex("A-hepjs-log.hex").startswith(a_printed)
    b_printed_after_length = bytes.fromhex(
        "0000 0001 0007 02 0000 0002 0007 06 0000 0007 0008 d449 0000 0008 0008 13c4"
        " 0000 0009 000a 59950fa2 0000 000a 000a 0004afe1 0000 000b 0007 01"
        " 0000 000c 000a 000000e4 0000 0003 000a c0a88901 0000 0004 000a c0a889f7"
        " 0000 000e 000b 6d79486570 0000 0010"
    )
    assert load_hex("B-captagent-zlib.hex")[6:].startswith(b_printed_after_length)
    assert load_hex("E-hepv2.hex").startswith(bytes.fromhex(
        "02 10 02 11 13 c4 13 c4 0a 00 00 01 0a 00 00 02 00 f1 53 65 40 e2 01 00 d1 07 00 00 4f 50 54 49"))
    assert load_hex("F-hepv1.hex").startswith(bytes.fromhex(
        "01 10 02 11 13 c4 13 c4 0a 00 01 64 c0 a8 00 fe") + b"SIP/2.0 200 OK")


# -- example B: the compressed payload, every algorithm auto-detected -----------------------
def _b_with_body(body: bytes) -> bytes:
    """Example B with its 0x0010 body replaced (lengths fixed up)."""
    data = load_hex("B-captagent-zlib.hex")
    head = data[6:104]  # chunks 1..e
    chunk = b"\x00\x00\x00\x10" + (6 + len(body)).to_bytes(2, "big") + body
    rest = head + chunk
    return b"HEP3" + (6 + len(rest)).to_bytes(2, "big") + rest


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("algo", "compress"),
    [
        ("zlib", lambda d: zlib.compress(d, 9)),
        ("gzip", lambda d: gzip.compress(d, mtime=12345)),
        ("deflate", _raw_deflate),
    ],
)
def test_example_b_compression_auto_detected(algo, compress):
    body = compress(B_PAYLOAD)
    data = _b_with_body(body)
    m = heptool.decode(data, strict=True)
    assert m.compression == algo
    assert m.payload == B_PAYLOAD
    assert heptool.encode(m) == data  # the compressed bytes are kept, not recompressed


def test_example_b_zlib_body_starts_like_captagents():
    data = load_hex("B-captagent-zlib.hex")
    assert data[104:110] == bytes.fromhex("0000 0010") + (len(data) - 104).to_bytes(2, "big")
    assert data[110:112] == b"\x78\x9c"
    assert zlib.decompress(data[110:]) == B_PAYLOAD
