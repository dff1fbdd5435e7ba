"""The optional C extension (heptool/core/_speedups.c) against the Python reference.

Every C function returns None where it leaves the decision to Python, and otherwise exactly
what the Python code returns: checked on every packet of every capture in tests/vectors, on
the benchmark's realistic packets, and on generated and mutated input (hypothesis), which
also checks that the C code accepts any bytes without crashing.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_sip import _CRASHERS, sip_texts  # tests/core is on sys.path (rootdir conftest)

from heptool.capture import hep as hep_mod
from heptool.capture import pcap
from heptool.capture.inputs import InputStats, iter_input
from heptool.core.accel import PURE_REQUESTED, c_module
from heptool.core.codec import decode
from heptool.core.errors import HepDecodeError
from heptool.core.sip import (
    sip_ids_py,
    sip_ids_ref,
    sip_of_text,
    sip_text_info_py,
    sip_text_info_ref,
)
from heptool.output.records import decode_record, make_fast_record

_speedups = c_module()  # None in the pure-Python build (no compiler, or HEPTOOL_PURE=1)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CAPTURES = sorted(p for p in VECTORS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".bin"))
needs_c = pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def test_ci_builds_the_extension():
    """CI has a C compiler: a build that silently fell back to pure Python would hide a
    broken extension (and halve decode's speed), so there it must be importable."""
    if os.environ.get("CI") != "true":
        pytest.skip("only enforced under CI=true")
    if PURE_REQUESTED:
        pytest.skip("HEPTOOL_PURE=1: this run is the pure-Python build")
    assert _speedups is not None


def _packets():
    for path in CAPTURES:
        with open(path, "rb") as f:
            for p in iter_input(f, stats=InputStats()):
                if p.data is not None:
                    yield path.name, p


def _bench_packets(n=300):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        from bench_codec import build
    finally:
        sys.path.pop(0)
    return build(n)


def _reference(data, index, frame, transport, src, dst, sip):
    """decode_record(decode(data)) when the packet decodes without warnings, else None."""
    try:
        m = decode(data)
    except HepDecodeError:
        return None
    if m.warnings:
        return None
    return decode_record(m, index, frame, transport, src, dst, sip)


def _check_fast(fast, data, index=0, frame=None, transport=None, src=None, dst=None, sip=True):
    r = fast(data, index, frame, transport, src, dst, sip)
    if r is None:
        return False
    ref = _reference(data, index, frame, transport if frame is not None else None, src, dst, sip)
    assert ref is not None, "the fast record took a packet the decoder warns about or rejects"
    assert list(r.items()) == list(ref.items())
    return True


FAST_IMPLS = []  # the C record only: the generated Python builder was deleted (issue 12 F)
if _speedups is not None:
    FAST_IMPLS.append(pytest.param(make_fast_record, id="c"))


def _fast_of(factory):
    return factory()


@pytest.mark.parametrize("factory", FAST_IMPLS)
def test_fast_record_equals_decode_record_on_every_vector(factory):
    fast = _fast_of(factory)
    taken = total = 0
    for _name, p in _packets():
        total += 1
        for frame in (p.frame, None):
            for sip in (True, False):
                taken += _check_fast(fast, p.data, p.index, frame, p.hep_transport, p.hep_src,
                                     p.hep_dst, sip)
    assert total > 400 and taken > total  # most real packets take the fast path


@pytest.mark.parametrize("factory", FAST_IMPLS)
def test_fast_record_on_realistic_layouts(factory):
    fast = _fast_of(factory)
    assert all(_check_fast(fast, d, i, i + 1, "udp", "1.2.3.4:5", "5.6.7.8:9060")
               for i, d in enumerate(_bench_packets()))


# -- generated HEP3 packets: any order, duplicates, odd sizes, vendor chunks, bad UTF-8 ------
_FIXED = {1: 1, 2: 1, 3: 4, 4: 4, 5: 16, 6: 16, 7: 2, 8: 2, 9: 4, 10: 4, 11: 1, 12: 4}
_TEXT = (0x0E, 0x0F, 0x11, 0x13, 0x65)
SIP_PAYLOADS = [
    (b"INVITE sip:b@x SIP/2.0\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\n"
     b"CSeq: 1 INVITE\r\n\r\n"),
    b"SIP/2.0 200 OK\r\nFrom: a;tag=x\r\nTo: b;tag=y\r\ni: compact\r\nCSeq: 2 BYE\r\n\r\n",
    b'{"payload": "BYE sip:x SIP/2.0\\r\\nCall-ID: j\\r\\nCSeq: 3 BYE\\r\\n\\r\\n"}',
    b"\xc3\xa9t\xc3\xa9 log line",
    b"hello log line",
    b"\xff\xfe not utf-8",
    b"",
]


@st.composite
def hep3_packets(draw):
    chunks = []
    types = list(_FIXED)
    draw(st.randoms()).shuffle(types)
    for t in types:
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        size = _FIXED[t] if draw(st.integers(0, 19)) else draw(st.integers(0, 17))
        body = draw(st.binary(min_size=size, max_size=size))
        if t == 10 and size == 4 and draw(st.booleans()):
            body = struct.pack(">I", draw(st.integers(0, 999_999)))
        chunks.append((0, t, body))
    for t in _TEXT:
        for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else
                       draw(st.integers(0, 1))):
            if t == 0x0F:
                body = draw(st.sampled_from(SIP_PAYLOADS) | st.binary(max_size=40))
            elif t == 0x65:
                body = draw(st.sampled_from([b'{"sip": "c1", "net": "7"}', b"{}", b"[1]", b"x"]))
            else:
                body = draw(st.text(max_size=12).map(lambda s: s.encode("utf-8", "surrogatepass"))
                            | st.binary(max_size=8))
            chunks.insert(draw(st.integers(0, len(chunks))), (0, t, body))
    if draw(st.integers(0, 9)) == 0:
        chunks.insert(draw(st.integers(0, len(chunks))),
                      (draw(st.sampled_from([0, 3, 0x8000])), draw(st.integers(0, 0x70)),
                       draw(st.binary(max_size=6))))
    body = b"".join(struct.pack(">HHH", v, t, len(b) + 6) + b for v, t, b in chunks)
    packet = b"HEP3" + struct.pack(">H", 6 + len(body)) + body
    if draw(st.integers(0, 9)) == 0:
        packet = packet[:draw(st.integers(0, len(packet)))]
    if draw(st.integers(0, 19)) == 0:
        packet += b"\x00"
    return packet


@pytest.mark.parametrize("factory", FAST_IMPLS)
@PROPS
@given(data=hep3_packets())
def test_fast_record_property(factory, data):
    _check_fast(_fast_of(factory), data, 3, 7, "tcp", "10.0.0.1:1", "10.0.0.2:2")
    _check_fast(_fast_of(factory), data)


@needs_c
@PROPS
@given(data=st.binary(max_size=120))
@example(data=b"HEP3\x00\x06")
@example(data=b"HEP3\x00\x0c\x00\x00\x00\x0f\x00\x06")
def test_c_record_takes_any_bytes(data):
    r = _speedups.hep3_record(data, 0, None, None, None, None, True)
    assert r is None or _reference(data, 0, None, None, None, None, True) == r


# -- the SIP summary -------------------------------------------------------------------------
def _sip_texts():
    texts = []
    for _name, p in _packets():
        try:
            t = decode(p.data).payload.decode()
        except (HepDecodeError, UnicodeDecodeError, AttributeError):
            continue
        if t[:1].isalpha():
            texts.append(t)
    texts += [decode(d).payload.decode() for d in _bench_packets(50)]
    return texts


@needs_c
def test_c_sip_summary_equals_python_on_real_sip():
    texts = _sip_texts()
    taken = 0
    for t in texts:
        c = _speedups.sip_summary(t)
        if c is not None:
            taken += 1
            ref = sip_text_info_ref(t)
            assert c == ref == sip_text_info_py(t) and list(c) == list(ref), t[:200]
    assert taken > 0.9 * len(texts) > 300


_LINES = [
    "Call-ID: abc@h", "Call-ID:  sp  ", "Call-ID\t:\ttab", "call-id: lower", "i: compact",
    "CSeq: 12 INVITE", "CSeq: 7", "CSeq:  3   BYE  ", "CSeq: x INVITE", "CSeq: 99999999999999999999 X",
    "CSeq: 1\tINVITE", "From: <sip:a@x;tag=in>;tag=out", "From: a;tag=", "From: a;tag=1;x=2",
    "From: <sip:a@x>", "From: a;x=1", "From: a; tag = sp", "From: <sip:a>;TAG=up",
    "To: <sip:b@x>;tag=t", "To: b", "To: b;tag=z;y", "X-CID: xc", "x-cid: low", "X-Cid: mix",
    "X-CID:   pad  ", "Via: SIP/2.0/UDP h", "Content-Length: 0", "From: \u00e9 <sip:a>;tag=u",
    "Call-ID: caf\u00e9", "To: b;tag=\x0b", "Call-ID: a\rb", "CSeq: 1 INVITE\nX-CID: lf",
    " Call-ID: folded", "Call-IDx: no", "Tox: no", "", "From: <a;tag=x>",
]
_FIRST = ["INVITE sip:b@x SIP/2.0", "SIP/2.0 200 OK", "SIP/2.0 486 Busy Here", "SIP/2.0 180",
          "SIP/2.0 999 No", "SIP/2.0 20 Short", "SIP/2.0 200\tOK", "BYE  sip:x SIP/2.0",
          "OPTIONS sip:x SIP/2.0 extra", "INV@TE sip:x SIP/2.0", "MESSAGE sip:\u00e9 SIP/2.0",
          "INVITE sip:x SIP/2.1", "hello world", "SIP/2.0 2x0 Bad", "REGISTER sip:r SIP/2.0"]


@needs_c
@PROPS
@given(first=st.sampled_from(_FIRST), lines=st.lists(st.sampled_from(_LINES), max_size=9),
       end=st.sampled_from(["\r\n\r\nbody\r\nCall-ID: body", "\r\n", "", "\n\n", "\r\n\r\n"]),
       seed=st.integers(0, 3))
def test_c_sip_summary_property(first, lines, end, seed):
    mandatory = ["Call-ID: m", "CSeq: 1 X", "From: f;tag=ft", "To: t"]
    rng = random.Random(seed)
    if seed:
        lines = lines + mandatory[:4 - seed + 1]
        rng.shuffle(lines)
    text = first + "".join("\r\n" + ln for ln in lines) + end
    c = _speedups.sip_summary(text)
    ref = sip_text_info_ref(text)
    assert c == ref and (c is None or list(c) == list(ref))


@needs_c
@PROPS
@given(text=st.text(max_size=200))
@example(text="\ud800")
def test_c_sip_summary_takes_any_text(text):
    c = _speedups.sip_summary(text)
    ref = sip_text_info_ref(text)
    assert c is None or c == ref
    if ref is not None and not any("\ud800" <= ch <= "\udfff" for ch in text):
        assert c is not None  # C reads every SIP text it can see as UTF-8
    assert _speedups.sip_summary(b"INVITE") is None  # not text: the Python code decides


def test_sip_of_text_matches_decode_record_rules():
    assert sip_of_text("hello") is None
    assert sip_of_text("") is None
    assert sip_of_text("  INVITE sip:x SIP/2.0\r\n") is None
    assert sip_of_text(SIP_PAYLOADS[2].decode())["call_id"] == "j"


# -- the frame fast path -----------------------------------------------------------------------
def _payloads(path, with_c):
    # patched where iter_hep_payloads looks it up (the pcap facade only re-exports)
    saved = hep_mod._c_udp4_hep
    hep_mod._c_udp4_hep = saved if with_c else None
    try:
        st_ = pcap.CaptureStats()
        with open(path, "rb") as f:
            out = list(pcap.iter_hep_payloads(f, stats=st_))
        return out, st_.as_dict()
    finally:
        hep_mod._c_udp4_hep = saved


@needs_c
@pytest.mark.parametrize("path", [p for p in CAPTURES if p.suffix != ".bin"], ids=lambda p: p.name)
def test_c_frame_path_equals_python(path):
    assert _payloads(path, True) == _payloads(path, False)


@needs_c
def test_c_frame_function_odd_port_leaves_it_to_python():
    frame = (bytes(12) + b"\x08\x00\x45\x00" + struct.pack(">H", 20 + 8 + 30) + bytes(4) +
             b"\x40\x11" + bytes(2) + bytes([10, 0, 0, 1, 10, 0, 0, 2]) +
             struct.pack(">HHH", 5060, 9060, 38) + bytes(2) + b"HEP3" + bytes(26))
    assert _speedups.udp4_hep(frame, {}, None)[:2] == ("10.0.0.1:5060", "10.0.0.2:9060")
    assert _speedups.udp4_hep(frame, {}, 1) == 0
    assert _speedups.udp4_hep(frame, {}, 10**30) is None
    assert _speedups.udp4_hep(frame, {}, "9060") is None


@needs_c
@PROPS
@given(frame=st.binary(min_size=0, max_size=90), port=st.sampled_from([None, 9060, 5060]),
       patch=st.lists(st.tuples(st.integers(0, 89), st.integers(0, 255)), max_size=4))
def test_c_frame_function_property(frame, port, patch):
    base = bytearray(bytes(12) + b"\x08\x00\x45\x00" + struct.pack(">H", 20 + 8 + 30) +
                     bytes(4) + b"\x40\x11" + bytes(2) + bytes([10, 0, 0, 1, 10, 0, 0, 2]) +
                     struct.pack(">HHH", 5060, 9060, 38) + bytes(2) + b"HEP3" + bytes(26))
    for i, v in patch:
        if i < len(base):
            base[i] = v
    for data in (bytes(base), frame):
        eps: dict = {}
        r = _speedups.udp4_hep(data, eps, port)
        if r is None:
            continue
        # the Python fused path's answer for the same frame
        t = pcap.extract_transport(1, data, pcap.IPReassembler())
        assert t is not None and t.proto == 17
        if r == 0:
            assert port not in (t.sport, t.dport)
            continue
        src, dst, payload = r
        assert payload == t.payload and payload[:4] in (b"HEP3", b"EEP1", b"EEP3")
        assert (src, dst) == (f"{t.src}:{t.sport}", f"{t.dst}:{t.dport}")


# -- decode()'s fast path ------------------------------------------------------------------------
def _same_message(a, b):
    assert a == b
    assert a.layout == b.layout and a.wire == b.wire and a.compression == b.compression
    assert list(a.warnings) == list(b.warnings) == []


def _check_fields(data, fast_name="_decode_fast_c"):
    from heptool.core import codec

    m = getattr(codec, fast_name)(data)
    if m is None:
        return False
    try:
        ref = codec.decode_v3(data, strict=True)
    except HepDecodeError:
        raise AssertionError("the C fast path took a packet strict decoding rejects") from None
    _same_message(m, ref)
    assert codec.encode(m) == data
    return True


@needs_c
def test_c_decode_fast_path_equals_the_decoder_on_every_vector():
    taken = sum(_check_fields(p.data) for _name, p in _packets() if p.data[:4] == b"HEP3")
    taken += sum(_check_fields(d) for d in _bench_packets())
    assert taken > 600


@needs_c
@PROPS
@given(data=hep3_packets())
@example(data=b"HEP3\x00\x06")
def test_c_decode_fast_path_property(data):
    _check_fields(data)
    assert _speedups.hep3_fields(bytearray(data)) is None  # only bytes


# -- sip_ids (correlation) ----------------------------------------------------------------------
def _check_ids(payload):
    c = _speedups.sip_ids(payload)
    if c is None:
        return False
    assert c == sip_ids_py(payload) == sip_ids_ref(payload)
    return True


@needs_c
def test_c_sip_ids_equals_python_on_real_sip():
    texts = _sip_texts()
    taken = sum(_check_ids(t.encode()) for t in texts)
    assert taken > 0.9 * len(texts)


@needs_c
@PROPS
@given(first=st.sampled_from(_FIRST), lines=st.lists(st.sampled_from(_LINES), max_size=9),
       end=st.sampled_from(["\r\n\r\nbody\r\nX-CID: body", "\r\n", "", "\n\n", "\r\n\r\n"]),
       seed=st.integers(0, 3), junk=st.binary(max_size=3))
def test_c_sip_ids_property(first, lines, end, seed, junk):
    mandatory = ["Call-ID: m", "CSeq: 1 X", "From: f;tag=ft", "To: t"]
    rng = random.Random(seed)
    if seed:
        lines = lines + mandatory[:4 - seed + 1]
        rng.shuffle(lines)
    text = first + "".join("\r\n" + ln for ln in lines) + end
    _check_ids(text.encode("utf-8", "surrogatepass"))
    _check_ids(text.encode("utf-8", "surrogatepass") + junk)
    _check_ids(junk + text.encode("utf-8", "surrogatepass"))


@needs_c
@PROPS
@given(data=st.binary(max_size=200))
@example(data=b"INVITE " + b"x" * 70 + b" SIP/2.0\r\nCall-ID: a\r\nCSeq: 1 A\r\nFrom: f\r\nTo: t\r\n\r\n")
@example(data=b"SIP/2.0 200 " + b"r" * 3000 + b"\r\nCall-ID: a\r\nCSeq: 1 A\r\nFrom: f\r\nTo: t\r\n")
def test_c_sip_ids_takes_any_bytes(data):
    _check_ids(data)


# -- JSON lines written in C --------------------------------------------------------------------
def _check_jsonl(data, index=0, frame=None, transport=None, src=None, dst=None, sip=True):
    import orjson

    line = _speedups.hep3_jsonl(data, index, frame, transport, src, dst, sip)
    if line is None:
        return False
    r = make_fast_record()(data, index, frame, transport, src, dst, sip)
    assert r is not None, "hep3_jsonl took a packet whose record takes the full path"
    assert line == orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE)
    return True


@needs_c
def test_c_jsonl_is_orjsons_bytes_on_every_vector():
    taken = 0
    for _name, p in _packets():
        for frame in (p.frame, None):
            for sip in (True, False):
                taken += _check_jsonl(p.data, p.index, frame, p.hep_transport, p.hep_src,
                                      p.hep_dst, sip)
    taken += sum(_check_jsonl(d, i, i + 1, "udp", "1.2.3.4:5", "[::1]:9") for i, d in
                 enumerate(_bench_packets()))
    assert taken > 1200


_ODD_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


@needs_c
@PROPS
@given(data=hep3_packets(), text=_ODD_TEXT, index=st.integers(0, 2**64),
       src=_ODD_TEXT, sip=st.booleans())
@example(data=b"HEP3\x00\x06", text="", index=0, src="", sip=True)
def test_c_jsonl_property(data, text, index, src, sip):
    _check_jsonl(data, index, 5, "udp", src, "1.2.3.4:5", sip)
    _check_jsonl(data, index, None, None, None, None, sip)
    # every character class in the text chunks and the payload
    body = text.encode()

    def chunk(t, b):
        return struct.pack(">HHH", 0, t, 6 + len(b)) + b

    fixed = b"".join(chunk(t, b) for t, b in (
        (1, b"\x02"), (2, b"\x11"), (3, bytes([10, 0, 0, 1])), (4, bytes([10, 0, 0, 2])),
        (7, struct.pack(">H", 5060)), (8, struct.pack(">H", 5061)),
        (9, struct.pack(">I", 1_795_683_906)), (10, struct.pack(">I", 999_999)), (11, b"\x01"),
        (12, struct.pack(">I", 2001))))
    tail = chunk(0x13, body) + chunk(0x0E, body) + chunk(0x11, body) + chunk(0x0F, body)
    packet = b"HEP3" + struct.pack(">H", 6 + len(fixed) + len(tail)) + fixed + tail
    assert _check_jsonl(packet, index % 2**62, 1, "tcp", src, "x", False)
    _check_jsonl(packet, index, 1, "tcp", src, "x", False)  # past 2**63: None, or equal
    _check_jsonl(packet, index, 1, "tcp", src, "x", True)


@needs_c
@PROPS
@given(first=st.sampled_from(_FIRST), lines=st.lists(st.sampled_from(_LINES), max_size=9),
       seed=st.integers(0, 3), indent=st.sampled_from(["\t", " ", "", "\n" * 70]),
       extra=st.sampled_from(["", ', "first_line": "GET / HTTP/1.1"', ', "x": 1']),
       escape=st.sampled_from(["", "\\u0041", "\\/", "\x01", "\\b"]))
def test_c_sip_ids_of_opensips_json_wrapping(first, lines, seed, indent, extra, escape):
    import json

    mandatory = ["Call-ID: m", "CSeq: 1 X", "From: f;tag=ft", "To: t"]
    if seed:
        lines = lines + mandatory[:4 - seed + 1]
        random.Random(seed).shuffle(lines)
    sip = first + "".join("\r\n" + ln for ln in lines) + "\r\n\r\n"
    body = json.dumps(sip, ensure_ascii=False)[1:-1]
    if escape:
        body = body.replace("X", escape, 1)
    wrapped = "{" + indent + '"payload":' + indent + '"' + body + '"' + extra + "}"
    _check_ids(wrapped.encode("utf-8", "surrogatepass"))
    _check_ids(json.dumps({"payload": sip}, indent="\t").encode())


@needs_c
def test_c_sip_ids_takes_the_opensips_wrapping_in_the_vectors():
    wrapped = [p for _name, p in _packets() if p.data[:4] == b"HEP3"]
    payloads = [decode(p.data).payload for p in wrapped]
    payloads = [b for b in payloads if b and b[:1] == b"{" and b'"payload"' in b[:64]]
    assert payloads and sum(_check_ids(b) for b in payloads) > 0.8 * len(payloads)


# the Python fast path decode() uses where the C extension is not built
def test_python_decode_fast_path_equals_the_decoder_on_every_vector():
    taken = sum(_check_fields(p.data, "_decode_fast") for _name, p in _packets()
                if p.data[:4] == b"HEP3")
    taken += sum(_check_fields(d, "_decode_fast") for d in _bench_packets())
    assert taken > 600


@PROPS
@given(data=hep3_packets())
def test_python_decode_fast_path_property(data):
    _check_fields(data, "_decode_fast")


# -- a declared length that leaves 1-5 bytes after the last chunk (issue 11) -------------------
@st.composite
def hep3_damaged_tail(draw):
    """A packet of :func:`hep3_packets` whose length field still covers every byte, but whose
    last chunk is cut short or followed by 1-5 bytes that cannot hold a chunk header."""
    packet = draw(hep3_packets())
    body = bytearray(packet[6:])
    if draw(st.booleans()):
        body += draw(st.binary(min_size=1, max_size=5))  # trailing bytes after the last chunk
    elif body:
        del body[len(body) - draw(st.integers(1, min(len(body), 12))):]  # truncated chunk
    return b"HEP3" + struct.pack(">H", (6 + len(body)) & 0xFFFF) + bytes(body)


def _known_layout(tail: bytes) -> bytes:
    """A HEP3 packet of a known fixed-chunk layout, then ``tail`` inside its declared length."""
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    m = HepMessage(src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=5060, dst_port=5060,
                   ip_proto=17, ts_sec=1, ts_usec=2, proto_type=1, capture_id=7,
                   payload=b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    body = encode(m)[6:] + tail
    return b"HEP3" + struct.pack(">H", 6 + len(body)) + body


# -- the SIP reading: C against the line-by-line reference, on the hard shapes -------------------


@needs_c
@pytest.mark.parametrize("text", _CRASHERS + [
    "SIP/2.0 \u00b9\u00b2\u00b3 OK\r\n\r\n",
    "INVITE sip:b@x SIP/2.0\r\nX-C\u0130D: v\r\nX-CID: w\r\n\r\n",
    "INVITE sip:b@x SIP/2.0\r\nCSeq: 1\u00b2 BYE\r\nFrom: a;tag=\r\nTo: b; TAG = t\r\n\r\n",
    "INVITE sip:b@x SIP/2.0\r\nCall-ID:\r\nCall-ID: later\r\n\r\n",
    "SIP/2.0 200 OK\r",
    "INVITE sip:a\rb SIP/2.0\r\nCall-ID: a\rb\r\n\r\n",
])
def test_c_sip_regressions(text):
    ref = sip_text_info_ref(text)
    c = _speedups.sip_summary(text)
    assert c == ref and (c is None or list(c) == list(ref))
    b = text.encode()
    assert _speedups.sip_ids(b) == sip_ids_ref(b)


@needs_c
@PROPS
@given(text=sip_texts(), junk=st.binary(max_size=4), where=st.integers(0, 400))
def test_c_sip_reading_equals_the_reference(text, junk, where):
    c = _speedups.sip_summary(text)
    ref = sip_text_info_ref(text)
    assert c == ref and (c is None or list(c) == list(ref))
    b = text.encode()
    assert _speedups.sip_ids(b) == sip_ids_ref(b)  # bytes up to 64 KiB: C always answers
    # invalid UTF-8 anywhere: replaced, in C as in Python
    bad = b[:where] + junk + b[where:]
    c = _speedups.sip_ids(bad)
    assert c is None or c == sip_ids_ref(bad) == sip_ids_py(bad)


def _hep3_with(payload: bytes) -> bytes:
    def chunk(t, b):
        return struct.pack(">HHH", 0, t, 6 + len(b)) + b

    body = b"".join(chunk(t, b) for t, b in (
        (1, b"\x02"), (2, b"\x11"), (3, bytes([10, 0, 0, 1])), (4, bytes([10, 0, 0, 2])),
        (7, struct.pack(">H", 5060)), (8, struct.pack(">H", 5061)),
        (9, struct.pack(">I", 1_795_683_906)), (10, struct.pack(">I", 5)), (11, b"\x01"),
        (12, struct.pack(">I", 2001)))) + chunk(0x0F, payload)
    return b"HEP3" + struct.pack(">H", 6 + len(body)) + body


@pytest.mark.parametrize("factory", FAST_IMPLS)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_fast_record_leaves_short_tail_to_the_full_path(factory, k):
    """1-5 bytes after the last chunk (inside the length) raised struct.error in the generated
    pure-Python builder; now it says "take the full path", which warns and keeps the bytes."""
    data = _known_layout(bytes(range(1, k + 1)))
    assert decode(data).warnings  # the full path's answer: a warning, the bytes kept as "tail"
    assert _fast_of(factory)(data, 0, None, None, None, None, True) is None


@pytest.mark.parametrize("factory", FAST_IMPLS)
@PROPS
@given(data=hep3_damaged_tail())
@example(data=_known_layout(b"\x00"))
@example(data=_known_layout(b"\x00\x00\x00\x0f\x00"))
def test_fast_record_property_damaged_tail(factory, data):
    """On trailing bytes and truncated chunks the fast record builders equal the reference
    (decode + to_record) or return None; they never raise."""
    _check_fast(_fast_of(factory), data, 3, 7, "tcp", "10.0.0.1:1", "10.0.0.2:2")
    _check_fast(_fast_of(factory), data)


@pytest.mark.parametrize("factory", FAST_IMPLS)
@PROPS
@given(text=sip_texts())
@example(text=_CRASHERS[3])
def test_record_sip_view_equals_the_reference(factory, text):
    """The decode record's ``sip`` (C record, C JSON line, Python record) is the reference's
    reading of the payload text."""
    payload = text.encode("utf-8", "surrogatepass")
    data = _hep3_with(payload)
    r = _fast_of(factory)(data, 1, 2, "udp", "1.2.3.4:5", "6.7.8.9:10", True)
    if r is None:
        return
    ref = sip_text_info_ref(r["payload"]) if r["payload"][:1].isalpha() else None
    assert r.get("sip") == ref and list(r.get("sip") or ()) == list(ref or ())
    if factory is make_fast_record:
        _check_jsonl(data, 1, 2, "udp", "1.2.3.4:5", "6.7.8.9:10", True)
