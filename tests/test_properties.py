"""Property tests (hypothesis) for the codec, the JSON record and the stream framer.

Profiles: the default ("heptool-default") keeps this file around 20-30 s; set
``HYPOTHESIS_PROFILE=ci`` for about seven times the examples (~2-3 min), or ``=dev`` for a quick pass.

Properties:

(a) round trip of generated messages (v1, v2, v3 with any registry fields, vendor chunks);
(b) totality: any bytes decode to a HepMessage or raise HepDecodeError, nothing else;
(c) the same on mutations of every real captured packet in tests/vectors;
(d) the JSON record round trip (through json.dumps/loads) re-encodes to the same bytes;
(e) StreamDecoder: any split of concatenated packets gives the same messages, and
    arbitrary bytes never raise anything but HepDecodeError and always terminate.

Every failure hypothesis found is pinned below with ``@example`` (the core bugs it found are
fixed; their reproducers stay as regression examples).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import heptool
from heptool import (
    NEED_DATA,
    HepDecodeError,
    HepEncodeError,
    HepMessage,
    StreamDecoder,
    decode,
    encode,
    from_record,
    to_record,
)
from heptool.core.codec import V12_IPV6_FAMILIES
from heptool.core.message import NOVALUE
from heptool.core.registry import CHUNKS

VECTORS = Path(__file__).resolve().parent / "vectors"

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
           # in CI the same examples every run (see tests/conftest.py)
           "derandomize": os.environ.get("CI") == "true"}
settings.register_profile("heptool-default", max_examples=300, **_COMMON)
settings.register_profile("ci", max_examples=2000, **_COMMON)
settings.register_profile("dev", max_examples=30, **_COMMON)
# Applied per test (not loaded globally) so other test files keep their own settings.
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE") or "heptool-default")


def hep_settings(scale: float = 1.0):
    return settings(PROFILE, max_examples=max(10, int(PROFILE.max_examples * scale)))


# ---------------------------------------------------------------------------
# strategies: valid messages
# ---------------------------------------------------------------------------
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
IP4 = st.ip_addresses(v=4).map(str)
IP6 = st.ip_addresses(v=6).map(str)
U8, U16, U32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
MAC = st.one_of(st.binary(min_size=6, max_size=6), st.binary(min_size=8, max_size=8)).map(
    lambda b: ":".join(f"{x:02x}" for x in b))
PAYLOAD = st.binary(max_size=600)

_KIND = {"u8": U8, "u16": U16, "u32": U32, "u64": st.integers(0, 2**64 - 1), "ip4": IP4, "ip6": IP6,
         "text": TEXT, "bytes": PAYLOAD, "mac": MAC}


def _v3_field_strategies() -> dict:
    out = {}
    for spec in CHUNKS.values():
        if spec.field in out or spec.field in ("payload",):
            continue
        if spec.field in ("src_ip", "dst_ip"):
            out[spec.field] = st.one_of(IP4, IP6)
        else:
            out[spec.field] = _KIND[spec.kind]
    out["payload"] = PAYLOAD
    out["compression"] = st.sampled_from(["gzip", "zlib", "deflate"])
    return out


def _fix_compression(d: dict) -> dict:
    if "compression" in d and "payload" not in d:
        d = {**d, "payload": b"compressed"}
    return d


v3_fields = st.fixed_dictionaries({}, optional=_v3_field_strategies()).map(_fix_compression)


@st.composite
def v12_fields(draw):
    version = draw(st.sampled_from([1, 2]))
    v6 = draw(st.booleans())
    if v6:
        family = draw(st.one_of(st.sampled_from(sorted(V12_IPV6_FAMILIES)), U8.filter(lambda f: f != 2)))
        src, dst = draw(IP6), draw(IP6)
    else:
        family = draw(st.one_of(st.just(2), U8.filter(lambda f: f not in V12_IPV6_FAMILIES)))
        src, dst = draw(IP4), draw(IP4)
    fields = {"version": version, "family": family, "ip_proto": draw(U8), "src_ip": src, "dst_ip": dst,
                  "src_port": draw(U16), "dst_port": draw(U16), "proto_type": 1,
                  # trailing NULs are OpenSIPS padding by definition: never payload
                  "payload": draw(st.binary(max_size=600)).rstrip(b"\0")}
    if version == 2:
        fields.update(ts_sec=draw(U32), ts_usec=draw(U32), capture_id=draw(U16))
    return fields


messages = st.one_of(v3_fields, v12_fields()).map(lambda f: HepMessage(**f))


def _chunk(vendor: int, ctype: int, body: bytes, length: int | None = None) -> bytes:
    return struct.pack(">HHH", vendor, ctype, 6 + len(body) if length is None else length & 0xFFFF) + body


def _hep3(*chunks: bytes) -> bytes:
    body = b"".join(chunks)
    return b"HEP3" + struct.pack(">H", 6 + len(body)) + body


def _chunk_offsets(data: bytes) -> list[int]:
    """Offsets of the chunk headers of a well-formed HEP3 packet, plus the end."""
    out, off = [], 6
    while off + 6 <= len(data):
        out.append(off)
        ln = data[off + 4] << 8 | data[off + 5]
        if ln < 6:
            break
        off += ln
    return out + [len(data)]


# extra chunks decoders must keep raw: vendor chunks, and generic types the registry lacks
unknown_chunk = st.one_of(
    st.tuples(st.integers(1, 0xFFFF), U16, st.binary(max_size=30)),
    st.tuples(st.just(0), st.integers(1, 0xFFFF).filter(lambda t: t not in CHUNKS), st.binary(max_size=30)),
)


@st.composite
def v3_with_unknown_chunks(draw):
    m = HepMessage(**draw(v3_fields))
    data = encode(m)
    bounds = _chunk_offsets(data)
    body = bytearray(data[6:])
    for _ in range(draw(st.integers(1, 4))):
        vendor, ctype, cbody = draw(unknown_chunk)
        at = draw(st.sampled_from(bounds)) - 6
        body[at:at] = _chunk(vendor, ctype, cbody)
        bounds = _chunk_offsets(b"HEP3\0\0" + bytes(body))
    return m, b"HEP3" + struct.pack(">H", 6 + len(body)) + bytes(body)


# ---------------------------------------------------------------------------
# strategies: arbitrary and almost-valid bytes
# ---------------------------------------------------------------------------
@st.composite
def chunk_soup(draw):
    """HEP3-shaped bytes: registry and random chunks, odd sizes, bad lengths, bad magic."""
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        vendor = draw(st.one_of(st.just(0), st.just(0), st.just(0), U16))
        ctype = draw(st.one_of(st.sampled_from(sorted(CHUNKS)), st.sampled_from([0, 0x10, 0x0F]), U16))
        spec = CHUNKS.get(ctype)
        kind = draw(st.integers(0, 9))
        if kind < 5 and spec is not None and spec.size is not None:
            body = draw(st.binary(min_size=spec.size, max_size=spec.size))
        elif kind < 6 and ctype == 0x10:
            raw = draw(st.binary(max_size=40))
            body = draw(st.sampled_from([zlib.compress, gzip.compress, lambda b: b[::-1]]))(raw)
        elif kind < 7:
            body = draw(st.sampled_from([b"", b"\xff\xfe", "é".encode(), b"\x00" * 8, b"abc"]))
        else:
            body = draw(st.binary(max_size=24))
        exact = 6 + len(body)
        length = draw(st.one_of(st.none(), st.none(), st.none(), st.none(), U16,
                                st.integers(exact - 2, exact + 2)))
        parts.append(_chunk(vendor, ctype, body, length))
    body = b"".join(parts)
    magic = draw(st.sampled_from([b"HEP3"] * 6 + [b"EEP1", b"EEP3"]))
    total = draw(st.one_of(st.just(6 + len(body)), st.just(6 + len(body)), U16,
                           st.integers(-3, 3).map(lambda d: max(0, 6 + len(body) + d))))
    trailing = draw(st.one_of(st.just(b""), st.just(b""), st.binary(max_size=8)))
    return magic + struct.pack(">H", total & 0xFFFF) + body + trailing


v12_prefixed = st.builds(
    lambda head, rest: head + rest,
    st.tuples(st.sampled_from([1, 2]), st.sampled_from([16, 40, 0, 1, 255]), U8, U8).map(bytes),
    st.binary(max_size=80),
)
hep3_prefixed = st.one_of(
    st.binary(max_size=80).map(lambda b: b"HEP3" + struct.pack(">H", 6 + len(b)) + b),
    st.tuples(U16, st.binary(max_size=80)).map(lambda t: b"HEP3" + struct.pack(">H", t[0]) + t[1]),
)
any_bytes = st.one_of(st.binary(max_size=120), hep3_prefixed, v12_prefixed, chunk_soup())


def _effective_entries(m: HepMessage) -> set[str]:
    out = set()
    for e in m.layout or ():
        if type(e) is int:
            out.add(CHUNKS[e].field)
        elif e[3] is not NOVALUE:
            out.add(CHUNKS[e[1]].field)
    return out


def layout_inconsistency(m: HepMessage) -> str | None:
    """Why a decoded message's layout disagrees with its values, if it does (a regression
    check for two bugs hypothesis found: both must stay None for every decoded message)."""
    if m.version != 3 or m.layout is None:
        return None
    layout_ints = [e for e in m.layout if type(e) is int]
    if m.compression is not None and 0x0F in layout_ints:
        return "0x0010 then 0x000f leaves compression set"
    eff = _effective_entries(m)
    for name in ("payload", *(s.field for s in CHUNKS.values())):
        if m.get(name) is not None and name not in eff:
            return f"duplicate {name} with a bad later copy: value without a layout entry"
    return None


def record_roundtrip(m: HepMessage) -> HepMessage:
    return from_record(json.loads(json.dumps(to_record(m))))


# ---------------------------------------------------------------------------
# real captures
# ---------------------------------------------------------------------------
@functools.cache
def real_packets() -> tuple[bytes, ...]:
    """Every HEP packet in tests/vectors: UDP payloads, TCP streams re-framed, the .bin stream."""
    dpkt = pytest.importorskip("dpkt")
    out: list[bytes] = []
    for path in sorted(VECTORS.rglob("*.pcap")):
        if path.name.endswith(".sip.pcap"):
            continue
        flows: dict[tuple, dict[int, bytes]] = {}
        with path.open("rb") as fh:
            for _ts, frame in dpkt.pcap.Reader(fh):
                ip = dpkt.ethernet.Ethernet(frame).data
                if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                    continue
                l4 = ip.data
                if isinstance(l4, dpkt.udp.UDP) and heptool.sniff_version(bytes(l4.data)):
                    out.append(bytes(l4.data))
                elif isinstance(l4, dpkt.tcp.TCP) and l4.data:
                    flows.setdefault((ip.src, l4.sport, ip.dst, l4.dport), {})[l4.seq] = bytes(l4.data)
        for segs in flows.values():
            out.extend(_frame(b"".join(segs[s] for s in sorted(segs))))
    out.extend(_frame((VECTORS / "hepjs" / "hepjs-hep3.bin").read_bytes()))
    return tuple(out)


def _frame(stream: bytes) -> list[bytes]:
    dec = StreamDecoder()
    dec.feed(stream)
    return [encode(m) for m in dec]


def test_real_packets_load():
    pkts = real_packets()
    # kamailio 4 x 60, sngrep 2 x 60, hep-js 3 x 21, OpenSIPS 151
    assert len(pkts) >= 500
    assert {heptool.sniff_version(p) for p in pkts} == {1, 2, 3}


def _length_fields(p: bytes) -> list[int]:
    """Offsets of the 16-bit length fields of a HEP3 packet: the total and each chunk."""
    if p[:4] != b"HEP3":
        return []
    return [4] + [o + 4 for o in _chunk_offsets(p)[:-1]]


@st.composite
def mutated_real_packet(draw):
    pkts = real_packets()
    p = bytearray(draw(st.sampled_from(pkts)))
    op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "length", "length", "v12len"]))
    n = len(p)
    if op == "truncate":
        del p[draw(st.integers(0, n - 1)):]
    elif op == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, n - 1))
            p[i] ^= 1 << draw(st.integers(0, 7))
    elif op == "insert":
        p.insert(draw(st.integers(0, n)), draw(U8))
    elif op == "delete":
        del p[draw(st.integers(0, n - 1))]
    elif op == "length" and p[:4] == b"HEP3":
        at = draw(st.sampled_from(_length_fields(bytes(p))))
        v = (p[at] << 8 | p[at + 1]) + draw(st.sampled_from([-1, 1]))
        p[at:at + 2] = struct.pack(">H", v & 0xFFFF)
    elif p[0] in (1, 2):
        p[1] = (p[1] + draw(st.sampled_from([-1, 1]))) & 0xFF
    return bytes(p)


# ---------------------------------------------------------------------------
# (a) round trip
# ---------------------------------------------------------------------------
@hep_settings(2)
@given(messages)
@example(HepMessage(payload=b""))
@example(HepMessage())
@example(HepMessage(version=1, src_ip="::1", dst_ip="::", family=16, src_port=0, dst_port=0,
                   proto_type=1, payload=b"\0x"))
def test_roundtrip_generated(m):
    data = encode(m)
    d = decode(data, strict=True)
    assert d == m
    assert encode(d) == data
    assert d.warnings == []


@hep_settings()
@given(v3_with_unknown_chunks())
def test_roundtrip_with_vendor_and_unknown_chunks(case):
    m, data = case
    d = decode(data, strict=True)
    assert d == m  # unknown chunks carry no field values
    assert encode(d) == data
    assert len(d.chunk_ids()) == len(_chunk_offsets(data)) - 1


# ---------------------------------------------------------------------------
# (b) totality on arbitrary bytes
# ---------------------------------------------------------------------------
def _decode_total(data: bytes, strict: bool):
    try:
        m = decode(data, strict=strict)
    except HepDecodeError as e:
        assert "\n" not in str(e)
        return None
    assert isinstance(m, HepMessage)
    for w in m.warnings:
        assert isinstance(w, HepDecodeError)
    try:
        out = encode(m)
    except HepEncodeError:
        return m
    assert isinstance(out, bytes)
    return m


@hep_settings(3)
@given(any_bytes, st.booleans())
@example(b"HEP3\x00\x06", True)
@example(b"\x02\x00\x07\x00\x00\x00\x00\x00", False)
@example(b"EEP1\x00\x08\x00", False)
def test_decode_is_total(data, strict):
    _decode_total(data, strict)


@hep_settings(3)
@given(any_bytes)
@example(_hep3(_chunk(0, 0x14, bytes(1))))  # short MAC
@example(b"HEP3\x00\x09abc")
def test_lenient_decode_reencodes_exactly(data):
    """The core's central claim: whatever lenient decode accepts, encode gives back."""
    try:
        m = decode(data)
    except HepDecodeError:
        return
    assert layout_inconsistency(m) is None
    assert encode(m) == data


@hep_settings(3)
@given(any_bytes)
def test_strict_decode_accepts_a_subset_of_lenient(data):
    try:
        strict = decode(data, strict=True)
    except HepDecodeError:
        return
    lenient = decode(data)
    assert strict == lenient
    assert strict.warnings == []


_DUP_BAD_LATER = [
    # a valid chunk followed by a copy with a bad value: the good one once got demoted and
    # encode appended its value again (found by hypothesis; fixed, kept as regressions)
    _hep3(_chunk(0, 0x07, b"\x00\x01"), _chunk(0, 0x07, b"\x00\x00\x02")),
    _hep3(_chunk(0, 0x14, bytes(6)), _chunk(0, 0x14, bytes(4))),
    _hep3(_chunk(0, 0x10, zlib.compress(b"a")), _chunk(0, 0x10, b"junk")),
    bytes.fromhex("48455033005700000014000e75828d4f2b859d8100000014000aac27ae01000000160008a783"
                  "0000000c000ad088715d0000000e0009edb3bf000000210008da9700000003000e7d634ae959"
                  "c6c12c0000001200088e0f"),
]
_COMPRESSED_THEN_PLAIN = [
    _hep3(_chunk(0, 0x10, zlib.compress(b"a")), _chunk(0, 0x0F, b"b")),
]


@settings(PROFILE, max_examples=1)
@given(st.just(b""))
@example(_DUP_BAD_LATER[0])
@example(_DUP_BAD_LATER[1])
@example(_DUP_BAD_LATER[2])
@example(_DUP_BAD_LATER[3])
def test_pinned_duplicate_with_bad_later_copy(data):
    if data:
        assert encode(decode(data)) == data


@settings(PROFILE, max_examples=1)
@given(st.just(b""))
@example(_COMPRESSED_THEN_PLAIN[0])
def test_pinned_compressed_then_plain(data):
    if data:
        assert encode(decode(data, strict=True)) == data


def test_pinned_cases_have_consistent_layouts():
    for data in [*_DUP_BAD_LATER, *_COMPRESSED_THEN_PLAIN, *real_packets()[:50]]:
        assert layout_inconsistency(decode(data)) is None


# ---------------------------------------------------------------------------
# (c) mutations of real captures
# ---------------------------------------------------------------------------
@hep_settings(3)
@given(mutated_real_packet(), st.booleans())
def test_mutated_real_packets_are_total(data, strict):
    _decode_total(data, strict)


@hep_settings(2)
@given(mutated_real_packet())
def test_mutated_real_packets_reencode_exactly(data):
    try:
        m = decode(data)
    except HepDecodeError:
        return
    assert layout_inconsistency(m) is None
    assert encode(m) == data


def test_every_real_packet_roundtrips():
    for p in real_packets():
        m = decode(p)
        assert encode(m) == p
        assert m.warnings == [] or p[0] in (1, 2) or any(
            isinstance(w, heptool.core.errors.TrailingDataError) for w in m.warnings)


# ---------------------------------------------------------------------------
# (d) the JSON record
# ---------------------------------------------------------------------------
@hep_settings(2)
@given(messages)
def test_record_roundtrip_generated(m):
    data = encode(m)
    assert encode(record_roundtrip(m)) == data
    assert encode(record_roundtrip(decode(data))) == data


@hep_settings()
@given(v3_with_unknown_chunks())
def test_record_roundtrip_with_unknown_chunks(case):
    _m, data = case
    assert encode(record_roundtrip(decode(data))) == data


def test_record_roundtrip_real_packets():
    for p in real_packets():
        assert encode(record_roundtrip(decode(p))) == p


@hep_settings(2)
@given(st.one_of(chunk_soup(), st.sampled_from(real_packets()), mutated_real_packet()))
def test_record_roundtrip_decoded_bytes(data):
    try:
        m = decode(data)
    except HepDecodeError:
        return
    out = encode(m)
    assert encode(record_roundtrip(m)) == out


@settings(PROFILE, max_examples=1)
@given(st.just(b""))
@example(_hep3(_chunk(0, 0x03, bytes([10, 0, 0, 1]))))
def test_pinned_record_adds_family(data):
    if data:
        assert encode(record_roundtrip(decode(data))) == data


# ---------------------------------------------------------------------------
# (e) StreamDecoder
# ---------------------------------------------------------------------------
stream_messages = st.lists(v3_fields.map(lambda f: HepMessage(**f)), min_size=1, max_size=6)


@hep_settings()
@given(stream_messages, st.lists(st.integers(0, 5000), max_size=20), st.booleans())
def test_stream_any_split(msgs, cuts, strict):
    packets = [encode(m) for m in msgs]
    data = b"".join(packets)
    dec = StreamDecoder(strict=strict)
    got = []
    prev = 0
    for c in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        dec.feed(data[prev:c])
        prev = c
        got.extend(dec)
    assert got == msgs
    assert [encode(m) for m in got] == packets
    assert dec.close() == 0 and dec.skipped_bytes == 0


@hep_settings(2)
@given(st.lists(st.one_of(any_bytes, st.sampled_from(real_packets()), mutated_real_packet()),
                max_size=6),
       st.lists(st.integers(1, 300), max_size=12), st.booleans())
@example([b"HEP3\x00\x03", b"HEP"], [], False)
@example([b"\x01\x10\x02\x11" + bytes(12) + b"INVITE x\r\nl: 9999999999999999\r\n\r\n"], [3], False)
def test_stream_arbitrary_bytes_terminates(parts, sizes, strict):
    data = b"".join(parts)
    dec = StreamDecoder(strict=strict)
    pos = 0
    steps = 0
    failed = False
    sizes = sizes or [len(data) or 1]
    i = 0
    while pos < len(data) and not failed:
        n = sizes[i % len(sizes)]
        i += 1
        dec.feed(data[pos:pos + n])
        pos += n
        while True:
            steps += 1
            assert steps <= 4 * len(data) + 2 * i + 10, "StreamDecoder does not terminate"
            try:
                r = dec.next_message()
            except heptool.StreamError:
                assert strict
                failed = True
                break
            except HepDecodeError:
                continue
            if r is NEED_DATA:
                break
            assert isinstance(r, HepMessage)
    if failed:
        with pytest.raises(heptool.StreamError):
            dec.next_message()
        return
    try:
        left = dec.close()
    except heptool.StreamError:
        assert strict
    else:
        assert 0 <= left <= len(data)
        if not strict:
            assert dec.skipped_bytes + left <= len(data)
