"""One fuzz target per function of the C extension (heptool/core/_speedups.c).

A target turns the fuzzer's bytes into its C function's arguments (a leading option byte
picks the other arguments where the function has any) and runs that function's row of the
equivalence table (tests/equivalence/rows_*.py: one definition of each check), so that

* the call returns or raises nothing but what the function may (no crash: the sanitizer
  build, scripts/fuzz-c.sh and scripts/sanitize.sh, turns memory errors into failures), and
* where the C function answers (not None), the answer equals the pure-Python reference.

A disagreement raises :class:`Mismatch` (an AssertionError) saying what differs.  The same
bytes always mean the same call, so a saved reproducer replays exactly:

    python tests/fuzz/cfuzz/fuzz.py sip_ids tests/fuzz/corpus/crashes/sip_ids/crash-...

Used by tests/fuzz/cfuzz/fuzz.py (atheris) and tests/fuzz/test_c_corpus.py (replays the seed
corpus, tests/fuzz/corpus/<function>/, in the normal suite).  No atheris import here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heptool.core.accel import C_FUNCTIONS, c_module
from heptool.output import records as _records  # noqa: F401  (configures the C tables)

_TESTS = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_TESTS), str(_TESTS / "equivalence")]  # the rows and their strategies
try:
    import rows_capture
    import rows_core
    import rows_sip
    from row import Mismatch, check
finally:
    del sys.path[:2]

__all__ = ["TARGETS", "C", "Mismatch", "frame_args", "record_args", "sip_text"]

C = c_module()
_ROWS = {r.name: r for r in rows_core.ROWS + rows_sip.ROWS + rows_capture.ROWS}


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


# -- SIP --------------------------------------------------------------------------------------
def sip_text(data: bytes) -> str:
    """The text of a sip_summary input: data[0] odd: latin-1 of the rest, else UTF-8 with
    invalid bytes as lone surrogates (which the C code must leave to Python)."""
    if not data:
        return ""
    if data[0] & 1:
        return data[1:].decode("latin-1")
    return data[1:].decode("utf-8", "surrogateescape")


# -- the frame fast path ------------------------------------------------------------------------
_PORTS: tuple[Any, ...] = rows_capture.PORTS


def frame_args(data: bytes) -> tuple[bytes, Any]:
    """(frame, port) of a udp4_hep input: data[0] picks the port."""
    if not data:
        return b"", None
    return data[1:], _PORTS[data[0] & 7]


#: how each C function's row takes the fuzzer's bytes
_ARGS: dict[str, Callable[[bytes], Any]] = {
    "hep3_fields": bytes,
    "hep3_record": record_args,
    "hep3_jsonl": record_args,
    "sip_summary": sip_text,
    "sip_ids": bytes,
    "udp4_hep": frame_args,
}


def _target(name: str) -> Callable[[bytes], None]:
    row, args = _ROWS[f"c.{name}"], _ARGS[name]

    def target(data: bytes) -> None:
        check(row, args(data))

    target.__name__ = target.__qualname__ = f"check_{name}"
    return target


TARGETS: dict[str, Callable[[bytes], None]] = {name: _target(name) for name in C_FUNCTIONS}
