"""Rows of the SIP reading's fast paths (heptool.sip): C ``sip_summary`` and ``sip_ids``, and
the pure-Python fast readers, each against the line-by-line reference
(``sip_text_info_ref``)."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import strategies as st
from row import Row, bench_packets, vector_packets
from strategies import SIP_CRASHERS, sip_lines, sip_texts

# -- the names under test (today's; remap here when they move) -------------------------------
from heptool.core.accel import c_function
from heptool.core.codec import decode
from heptool.core.errors import HepDecodeError
from heptool.sip.ids import sip_ids_py, sip_ids_ref
from heptool.sip.info import sip_text_info_py, sip_text_info_ref

C_SUMMARY, C_IDS = c_function("sip_summary"), c_function("sip_ids")

_REGRESSIONS = [
    "SIP/2.0 \u00b9\u00b2\u00b3 OK\r\n\r\n",
    "INVITE sip:b@x SIP/2.0\r\nX-C\u0130D: v\r\nX-CID: w\r\n\r\n",
    "INVITE sip:b@x SIP/2.0\r\nCSeq: 1\u00b2 BYE\r\nFrom: a;tag=\r\nTo: b; TAG = t\r\n\r\n",
    "INVITE sip:b@x SIP/2.0\r\nCall-ID:\r\nCall-ID: later\r\n\r\n",
    "SIP/2.0 200 OK\r",
    "INVITE sip:a\rb SIP/2.0\r\nCall-ID: a\rb\r\n\r\n",
    "\ud800",
    "SIP/2.0 200 \ud800\r\nCall-ID: \udcff\r\n",
]


def _surrogates(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _info(r: Any) -> Any:
    """A summary with its key order (equal dicts may differ in order)."""
    return ("none",) if r is None else (r, list(r))


def c_summary_fast(text: str) -> Any:
    if C_SUMMARY(text.encode("utf-8", "surrogatepass")) is not None:
        return "sip_summary took bytes (only text)"
    c = C_SUMMARY(text)
    return None if c is None else _info(c)


def summary_must_take(text: str) -> bool:
    """C reads every SIP text it can see as UTF-8 (no lone surrogates)."""
    return not _surrogates(text) and sip_text_info_ref(text) is not None


def ids_must_take(b: bytes) -> bool:
    """C answers for any SIP bytes up to 64 KiB that are valid UTF-8 and no JSON."""
    if len(b) >= 65536 or b[:1] == b"{":
        return False
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@st.composite
def opensips_wrapped(draw) -> bytes:
    """SIP wrapped in OpenSIPS's JSON ``{"payload": "<SIP>"}``, in many spellings."""
    sip = draw(sip_lines() | sip_texts())
    if draw(st.booleans()):
        indent = draw(st.sampled_from(["\t", " ", "", "\n" * 70]))
        extra = draw(st.sampled_from(["", ', "first_line": "GET / HTTP/1.1"', ', "x": 1']))
        escape = draw(st.sampled_from(["", "\\u0041", "\\/", "\x01", "\\b"]))
        body = json.dumps(sip, ensure_ascii=False)[1:-1]
        if escape:
            body = body.replace("X", escape, 1)
        wrapped = "{" + indent + '"payload":' + indent + '"' + body + '"' + extra + "}"
        return wrapped.encode("utf-8", "surrogatepass")
    return json.dumps({"payload": sip}, indent=draw(st.sampled_from([None, "\t"])),
                      ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@st.composite
def sip_bytes(draw) -> bytes:
    """SIP texts as bytes, with junk before, after or inside them."""
    b = draw(sip_texts() | sip_lines()).encode("utf-8", "surrogatepass")
    junk = draw(st.binary(max_size=4))
    where = draw(st.sampled_from(["none", "none", "before", "after", "inside"]))
    if where == "before":
        return junk + b
    if where == "after":
        return b + junk
    if where == "inside":
        i = draw(st.integers(0, len(b)))
        return b[:i] + junk + b[i:]
    return b


_TEXTS = st.one_of(sip_texts(), sip_lines(), st.text(max_size=200))
_BYTES = st.one_of(sip_bytes(), opensips_wrapped(), st.binary(max_size=200))
_PINNED_BYTES = [
    b"INVITE " + b"x" * 70 + b" SIP/2.0\r\nCall-ID: a\r\nCSeq: 1 A\r\nFrom: f\r\nTo: t\r\n\r\n",
    b"SIP/2.0 200 " + b"r" * 3000 + b"\r\nCall-ID: a\r\nCSeq: 1 A\r\nFrom: f\r\nTo: t\r\n",
]


def _payloads() -> list:
    out = []
    for p in vector_packets():
        try:
            out.append(decode(p.data).payload)
        except HepDecodeError:
            continue
    return [b for b in out if b] + [decode(d).payload for d in bench_packets(50)]


def _texts() -> list:
    """The SIP texts of the vectors and the benchmark's packets, and the pinned shapes."""
    texts = []
    for b in _payloads():
        try:
            t = b.decode()
        except (UnicodeDecodeError, AttributeError):
            continue
        if t[:1].isalpha():
            texts.append(t)
    return texts + SIP_CRASHERS + _REGRESSIONS


def _bytes() -> list:
    """The vectors' payloads (OpenSIPS wrapping included) and the pinned shapes."""
    rnd = random.Random(7)
    sips = [t.encode("utf-8", "surrogatepass") for t in _texts()]
    return (sips + [b for b in _payloads() if b[:1] == b"{" and b'"payload"' in b[:64]]
            + _PINNED_BYTES + [b[:rnd.randrange(len(b) + 1)] for b in sips[:50]])


ROWS = [
    Row("c.sip_summary", c_summary_fast, lambda t: _info(sip_text_info_ref(t)), _TEXTS,
        needs_c=True, examples=_texts, taken=0.9, must_take=summary_must_take),
    Row("c.sip_ids", C_IDS, sip_ids_ref, _BYTES, needs_c=True, examples=_bytes, taken=0.8,
        must_take=ids_must_take),
    Row("py.sip_text_info", lambda t: _info(sip_text_info_py(t)),
        lambda t: _info(sip_text_info_ref(t)), _TEXTS, examples=_texts),
    Row("py.sip_ids", sip_ids_py, sip_ids_ref, _BYTES, examples=_bytes),
]
