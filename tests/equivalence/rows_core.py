"""Rows of the codec and record fast paths (heptool.core): C ``hep3_fields``,
``hep3_record``, ``hep3_jsonl``; the exec-generated decode templates, encoder, record
builder and ``_blank``; the Python decode fast path (tail walker)."""

from __future__ import annotations

import functools
import importlib
import struct
from typing import Any

import orjson
from hypothesis import strategies as st
from row import Row, bench_packets, outcome, vector_packets
from strategies import (
    SIP_CRASHERS,
    agent_hep_packets,
    hep3_damaged_tail,
    hep3_packets,
    hep3_with,
    hep_messages,
    known_layout,
    sip_texts,
)

# -- the names under test (today's; remap here when they move) -------------------------------
from heptool.core import codec, message, record, templates
from heptool.core.accel import c_function
from heptool.core.errors import HepDecodeError
from heptool.output import records as output_records
from heptool.output.records import decode_record

# heptool.core exports the functions decode/encode, which shadow the module names there
decode_mod = importlib.import_module("heptool.core.decode")
encode_mod = importlib.import_module("heptool.core.encode")

decode, decode_v3, encode, encode_v3 = codec.decode, codec.decode_v3, codec.encode, codec.encode_v3
decode_fast_c = decode_mod.decode_fast_c  # C hep3_fields as a HepMessage
decode_fast_py = decode_mod.decode_fast  # templates + Python tail walker
encode_fast = encode_mod._encode_fast  # the exec encoder, per layout
to_record, HEADS = record.to_record, templates.HEADS
# the exec record builder, per head; with the sip view (decode's pure fast record); built once
make_fast_record_py = functools.cache(templates.record_builder)
py_fast_record = functools.cache(output_records.py_fast_record)
blank, HepMessage = message.blank, message.HepMessage
C_FIELDS, C_RECORD, C_JSONL = (c_function(n) for n in ("hep3_fields", "hep3_record", "hep3_jsonl"))


# -- decode ------------------------------------------------------------------------------------
def message_view(m: HepMessage) -> tuple:
    """Everything a decoded message carries."""
    return (m, m.layout, m.wire, m.compression, [str(w) for w in m.warnings])


def _fast_message(fast: Any, data: bytes) -> Any:
    m = fast(data)
    return None if m is None else (message_view(m), encode(m))


def strict_view(data: bytes) -> Any:
    """The strict decoder's message and the packet (a fast message must re-encode to it)."""
    try:
        return (message_view(decode_v3(data, strict=True)), data)
    except HepDecodeError as e:
        return ("rejected", str(e))


def py_decode_fast(data: bytes) -> Any:
    """decode()'s pure fast path, which decode() calls for the HEP3 magic only (it does
    not check the magic itself)."""
    return _fast_message(decode_fast_py, data) if data[:4] == b"HEP3" else None


def c_fields_fast(data: bytes) -> Any:
    if C_FIELDS(bytearray(data)) is not None:
        return "hep3_fields took a bytearray (only bytes)"
    return _fast_message(decode_fast_c, data)


def _template_matches(data: bytes) -> bool:
    n = len(data)
    if n <= 23:
        return False
    total = min(n, data[4] << 8 | data[5])
    return any(end <= total and int.from_bytes(data[6:end], "big") & mask == sig
               for sig, mask, end, _f, _o in templates.BY_THIRD.get(data[23], ()))


def _decode_outcome(data: bytes) -> tuple:
    r = outcome(decode_v3, data)
    return (r[0], message_view(r[1])) if r[0] == "ok" else r


def templates_fast(data: bytes) -> Any:
    """decode_v3 (lenient), when a template reads the first chunks."""
    return _decode_outcome(data) if _template_matches(data) else None


def templates_reference(data: bytes) -> Any:
    """decode_v3 with no templates: the chunk walker reads every chunk."""
    r = outcome(lambda d: decode_v3(d, templates=False), data)
    return (r[0], message_view(r[1])) if r[0] == "ok" else r


_PACKETS = st.one_of(hep3_packets(), agent_hep_packets(), hep3_damaged_tail(),
                     st.binary(max_size=120))
#: packets hypothesis once found (or that pin a fix): 1-5 bytes after the last chunk
_PINNED = [b"HEP3\x00\x06", b"HEP3\x00\x0c\x00\x00\x00\x0f\x00\x06",
           known_layout(b"\x00"), known_layout(b"\x00\x00\x00\x0f\x00"),
           *(known_layout(bytes(range(1, k + 1))) for k in range(1, 6))]


def _hep3_vectors() -> list:
    return ([p.data for p in vector_packets() if p.data[:4] == b"HEP3"] + list(bench_packets())
            + _PINNED)

# -- records -----------------------------------------------------------------------------------
_ODD_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


def reference_record(args: tuple) -> Any:
    """decode_record(decode(packet)) as (key, value) pairs when the packet decodes without
    warnings, else None (the transport only goes with a frame: the callers' contract)."""
    data, index, frame, transport, src, dst, sip = args
    try:
        m = decode(data)
    except HepDecodeError:
        return None
    if m.warnings:
        return None
    r = decode_record(m, index, frame, transport if frame is not None else None, src, dst, sip)
    return list(r.items())


def _items(r: Any) -> Any:
    return None if r is None else list(r.items())


def c_record_fast(args: tuple) -> Any:
    return _items(C_RECORD(*args))


def py_record_fast(args: tuple) -> Any:
    return _items(py_fast_record()(*args))


def c_jsonl_fast(args: tuple) -> Any:
    return C_JSONL(*args)


def jsonl_reference(args: tuple) -> Any:
    r = reference_record(args)
    if r is None:
        return "the decoder rejects or warns about this packet"
    try:
        return orjson.dumps(dict(r), option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError as e:
        return f"orjson refuses the record ({e})"


def heads_fast(args: tuple) -> Any:
    """Both exec builders (head "index", head "capture") on one packet."""
    data, index, frame, transport, src, dst, _sip = args
    frame = 7 if frame is None else frame
    a = make_fast_record_py("index")(data, index)
    b = make_fast_record_py("capture")(data, index, frame, transport, src, dst)
    return None if a is None and b is None else (_items(a), _items(b))


def heads_reference(args: tuple) -> Any:
    data, index, frame, transport, src, dst, _sip = args
    frame = 7 if frame is None else frame
    try:
        m = decode(data)
    except HepDecodeError:
        return None
    if m.warnings:
        return None
    rec = list(to_record(m).items())
    return ([("index", index), *rec],
            [*zip(HEADS["capture"], (index, frame, transport, src, dst)), *rec])


_ENDPOINTS = st.sampled_from([(None, None), ("10.0.0.1:1", "10.0.0.2:2"), ("[::1]:9", "\u00e9\"\\")])


@st.composite
def record_args(draw) -> tuple:
    """(packet, index, frame, transport, src, dst, sip) as ``heptool decode`` passes them."""
    data = draw(st.one_of(_PACKETS, sip_texts().map(
        lambda t: hep3_with(t.encode("utf-8", "surrogatepass")))))
    index = draw(st.sampled_from([0, 3, 2**62, 2**64]) | st.integers(0, 2**64))
    if draw(st.booleans()):
        src, dst = draw(_ENDPOINTS | st.tuples(_ODD_TEXT, _ODD_TEXT))
        frame, transport = draw(st.integers(0, 2**32)), draw(st.sampled_from(["udp", "tcp"]))
    else:
        frame = transport = src = dst = None
    return (data, index, frame, transport, src, dst, draw(st.booleans()))


def _chunk(t: int, b: bytes) -> bytes:
    return struct.pack(">HHH", 0, t, 6 + len(b)) + b


@st.composite
def jsonl_text_args(draw) -> tuple:
    """A plain packet with every character class in its text chunks and payload; with the
    sip view off, dst "x" and an index below 2**62, hep3_jsonl must write its line."""
    body = draw(_ODD_TEXT).encode()
    fixed = b"".join(_chunk(t, b) for t, b in (
        (1, b"\x02"), (2, b"\x11"), (3, bytes([10, 0, 0, 1])), (4, bytes([10, 0, 0, 2])),
        (7, struct.pack(">H", 5060)), (8, struct.pack(">H", 5061)),
        (9, struct.pack(">I", 1_795_683_906)), (10, struct.pack(">I", 999_999)), (11, b"\x01"),
        (12, struct.pack(">I", 2001))))
    tail = _chunk(0x13, body) + _chunk(0x0E, body) + _chunk(0x11, body) + _chunk(0x0F, body)
    packet = b"HEP3" + struct.pack(">H", 6 + len(fixed) + len(tail)) + fixed + tail
    return (packet, draw(st.integers(0, 2**64)), 1, "tcp", draw(_ODD_TEXT), "x",
            draw(st.booleans()))


def jsonl_must_take(args: tuple) -> bool:
    return args[2:4] == (1, "tcp") and args[5] == "x" and not args[6] and args[1] < 2**62


def _record_vectors() -> list:
    out = []
    for p in vector_packets():
        for frame in (p.frame, None):
            for sip in (True, False):
                out.append((p.data, p.index, frame, p.hep_transport if frame is not None else None,
                            p.hep_src, p.hep_dst, sip))
    out += [(d, i, i + 1, "udp", *BENCH_ENDS, True) for i, d in enumerate(bench_packets())]
    out += [(d, i, None, None, None, None, True) for i, d in enumerate(_PINNED)]
    out += [(hep3_with(t.encode()), 1, 2, "udp", "1.2.3.4:5", "6.7.8.9:10", True)
            for t in SIP_CRASHERS]
    return out


BENCH_ENDS = ("bench:1", "bench:2")


def record_must_take(args: tuple) -> bool:
    """The benchmark's realistic packets: every one takes the fast record."""
    return args[4:6] == BENCH_ENDS


# -- encode ------------------------------------------------------------------------------------
def encoder_reference(m: HepMessage) -> Any:
    r = outcome(encode_v3, m)
    return r[1] if r[0] == "ok" else r


def _message_vectors() -> list:
    out = [decode(d) for d in _hep3_vectors()]
    for m in out[:100]:
        m2 = m.copy()
        m2.layout = m2.wire = None  # as built from fields: the canonical layout
        out.append(m2)
    return out


# -- _blank ------------------------------------------------------------------------------------
_SLOTS = HepMessage.__slots__
_UNSET = "<unset>"


def _filled(seed: int) -> HepMessage:
    m = HepMessage.__new__(HepMessage)
    for i, n in enumerate(_SLOTS):
        if (seed >> (i % 30)) & 1:
            setattr(m, n, (seed, n))
    return m


def _slots(m: HepMessage) -> tuple:
    return tuple(getattr(m, n, _UNSET) for n in _SLOTS)


def blank_fast(seed: int) -> tuple:
    m = _filled(seed)
    blank(m)
    return _slots(m)


def blank_reference(seed: int) -> tuple:
    """Every slot but ``version`` set to None, one setattr at a time."""
    m = _filled(seed)
    for n in _SLOTS:
        if n != "version":
            setattr(m, n, None)
    return _slots(m)


_RECORD_INPUTS = st.one_of(record_args(), jsonl_text_args())

ROWS = [
    Row("c.hep3_fields", c_fields_fast, strict_view, _PACKETS, needs_c=True,
        examples=_hep3_vectors),
    Row("py.decode_fast", py_decode_fast, strict_view, _PACKETS,
        examples=_hep3_vectors),
    Row("gen.decode_templates", templates_fast, templates_reference, _PACKETS,
        examples=_hep3_vectors),
    Row("c.hep3_record", c_record_fast, reference_record, _RECORD_INPUTS, needs_c=True,
        examples=_record_vectors, must_take=record_must_take),
    Row("gen.record_builder", py_record_fast, reference_record, _RECORD_INPUTS,
        examples=_record_vectors, must_take=record_must_take),
    Row("gen.record_builder_heads", heads_fast, heads_reference, _RECORD_INPUTS,
        examples=_record_vectors),
    Row("c.hep3_jsonl", c_jsonl_fast, jsonl_reference, _RECORD_INPUTS, needs_c=True,
        examples=_record_vectors, taken=0.45, must_take=jsonl_must_take),
    Row("gen.encoder", encode_fast, encoder_reference, hep_messages(),
        examples=_message_vectors),
    Row("gen.blank", blank_fast, blank_reference, st.integers(0, 2**30),
        examples=lambda: [0, 1, 2**30 - 1, 0x15555555]),
]
