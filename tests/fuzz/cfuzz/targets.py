"""One fuzz target per function of the C extension (heptool/core/_speedups.c).

A target takes the fuzzer's bytes, calls its C function on them (building the other
arguments from a leading option byte where the function has any) and checks that

* the call returns or raises nothing but what the function may (no crash: the sanitizer
  build, scripts/fuzz-c.sh and scripts/sanitize.sh, turns memory errors into failures), and
* where the C function answers (not None), the answer equals the pure-Python reference,
  the same equalities tests/core/test_speedups.py checks on the vectors.

A disagreement raises :class:`Mismatch` (an AssertionError) saying what differs.  The same
bytes always mean the same call, so a saved reproducer replays exactly:

    python tests/fuzz/cfuzz/fuzz.py sip_ids tests/fuzz/corpus/crashes/sip_ids/crash-...

Used by tests/fuzz/cfuzz/fuzz.py (atheris) and tests/fuzz/test_c_corpus.py (replays the seed
corpus, tests/fuzz/corpus/<function>/, in the normal suite).  No atheris import here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from heptool.capture import pcap
from heptool.core import codec
from heptool.core import record as _record  # noqa: F401  (configures the C tables)
from heptool.core.accel import c_module
from heptool.core.errors import HepDecodeError
from heptool.core.sip import sip_ids_ref, sip_text_info_ref
from heptool.output.records import decode_record

C = c_module()


class Mismatch(AssertionError):
    """The C function answered, and its answer is not the Python reference's."""


def _fail(what: str, data: bytes, c: Any, ref: Any) -> None:
    raise Mismatch(f"{what}\n  input: {data[:300]!r}{'...' if len(data) > 300 else ''}\n"
                   f"  C:      {c!r}\n  Python: {ref!r}")


# -- the record functions: data[0] picks the other arguments ---------------------------------
_INDEX = (0, 3, 2**62, 2**64)
_TRANSPORT = (None, "udp", "tcp", "\u00e9\"")
_ENDPOINTS = ((None, None), ("10.0.0.1:1", "10.0.0.2:2"),
              ("[::1]:9", "x\"\\\n\u00e9\U0001f600\x7f"), ("", "\x00"))


def record_args(data: bytes) -> tuple[bytes, int, int | None, str | None, str | None,
                                       str | None, bool]:
    """(packet, index, frame, transport, src, dst, sip) of a record target's input."""
    if not data:
        return b"", 0, None, None, None, None, True
    o = data[0]
    src, dst = _ENDPOINTS[(o >> 5) & 3]
    frame = None if o & 4 else 7
    transport = _TRANSPORT[(o >> 3) & 3]
    if frame is not None and transport is None:
        transport = "udp"  # a capture's packet always has its transport (the callers' contract)
    return data[1:], _INDEX[o & 3], frame, transport, src, dst, not o & 0x80


def _reference_record(pkt, index, frame, transport, src, dst, sip):
    """decode_record(decode(pkt)) when the packet decodes without warnings, else None
    (as tests/core/test_speedups.py: the transport only goes with a frame)."""
    try:
        m = codec.decode(pkt)
    except HepDecodeError:
        return None
    if m.warnings:
        return None
    return decode_record(m, index, frame, transport if frame is not None else None, src, dst,
                         sip)


def check_hep3_record(data: bytes) -> None:
    args = record_args(data)
    r = C.hep3_record(*args)
    if r is None:
        return
    ref = _reference_record(*args)
    if ref is None or list(r.items()) != list(ref.items()):
        _fail("hep3_record != decode_record(decode(...))", data, r, ref)


def check_hep3_jsonl(data: bytes) -> None:
    args = record_args(data)
    line = C.hep3_jsonl(*args)
    if line is None:
        return
    ref = _reference_record(*args)
    if ref is None:
        _fail("hep3_jsonl wrote a line for a packet the decoder rejects or warns about", data,
              line, ref)
    try:
        want = orjson.dumps(ref, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError as e:
        _fail(f"hep3_jsonl wrote a line orjson refuses ({e})", data, line, ref)
    if line != want:
        _fail("hep3_jsonl != orjson.dumps(decode_record(decode(...)))", data, line, want)


# -- decode()'s fast path ----------------------------------------------------------------------
def check_hep3_fields(data: bytes) -> None:
    if C.hep3_fields(bytearray(data)) is not None:
        _fail("hep3_fields took a bytearray (only bytes)", data, "not None", None)
    m = codec._decode_fast_c(data)  # hep3_fields' tuple as a HepMessage
    if m is None:
        return
    try:
        ref = codec.decode_v3(data, strict=True)
    except HepDecodeError as e:
        _fail(f"hep3_fields took a packet strict decoding rejects ({e})", data, m, None)
    same = (m == ref and m.layout == ref.layout and m.wire == ref.wire
            and m.compression == ref.compression and list(ref.warnings) == [])
    if not same:
        _fail("hep3_fields != decode_v3(strict=True)", data, (m, m.layout), (ref, ref.layout))
    if codec.encode(m) != data:
        _fail("encode(hep3_fields message) != the packet", data, codec.encode(m), data)


# -- SIP --------------------------------------------------------------------------------------
def sip_text(data: bytes) -> str:
    """The text of a sip_summary input: data[0] odd: latin-1 of the rest, else UTF-8 with
    invalid bytes as lone surrogates (which the C code must leave to Python)."""
    if not data:
        return ""
    if data[0] & 1:
        return data[1:].decode("latin-1")
    return data[1:].decode("utf-8", "surrogateescape")


def check_sip_summary(data: bytes) -> None:
    text = sip_text(data)
    c = C.sip_summary(text)
    if c is None:
        return
    ref = sip_text_info_ref(text)
    if c != ref or list(c) != list(ref or ()):
        _fail("sip_summary != sip_text_info_ref", data, c, ref)


def check_sip_ids(data: bytes) -> None:
    c = C.sip_ids(data)
    if c is None:
        return
    ref = sip_ids_ref(data)
    if c != ref:
        _fail("sip_ids != sip_ids_ref", data, c, ref)


# -- the frame fast path ------------------------------------------------------------------------
_PORTS: tuple[Any, ...] = (None, 9060, 5060, 0, 65535, 2**70, "9060", -1)


def frame_args(data: bytes) -> tuple[bytes, Any]:
    """(frame, port) of a udp4_hep input: data[0] picks the port."""
    if not data:
        return b"", None
    return data[1:], _PORTS[data[0] & 7]


def check_udp4_hep(data: bytes) -> None:
    frame, port = frame_args(data)
    eps: dict = {}
    r = C.udp4_hep(frame, eps, port)
    again = C.udp4_hep(frame, eps, port)  # the second time from the endpoint cache
    if again != r:
        _fail("udp4_hep answered differently with its endpoint cache", data, again, r)
    if r is None:
        return
    if port is not None and not isinstance(port, int):
        _fail("udp4_hep took a port that is not an int", data, r, None)
    t = pcap.extract_transport(1, frame, pcap.IPReassembler())
    if t is None or t.proto != 17:
        _fail("udp4_hep took a frame the Python code does not read as UDP", data, r, t)
    if r == 0:
        if port in (t.sport, t.dport):
            _fail("udp4_hep said 'not on the port' for a frame on it", data, r, t)
        return
    src, dst, payload = r
    want = (f"{t.src}:{t.sport}", f"{t.dst}:{t.dport}", t.payload)
    if (src, dst, payload) != want or payload[:4] not in (b"HEP3", b"EEP1", b"EEP3"):
        _fail("udp4_hep != extract_transport", data, r, want)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "hep3_fields": check_hep3_fields,
    "hep3_record": check_hep3_record,
    "hep3_jsonl": check_hep3_jsonl,
    "sip_summary": check_sip_summary,
    "sip_ids": check_sip_ids,
    "udp4_hep": check_udp4_hep,
}
