"""The equivalence table's row, its one check, and what the rows share (h11's SIMPLE_CASES
idea, for fast paths): a fast path and its reference must give the same answer on every
input, whenever the fast path answers.

A :class:`Row` names one fast path; ``fast(x)`` returning None means "declined" (the caller
then takes the reference path), anything else must equal ``reference(x)``.  Rows are
checked on generated inputs (``inputs``, a hypothesis strategy: tests/equivalence/
test_rows.py), on real inputs (``examples``: every vector in tests/vectors/, the benchmark's
packets), and on fuzzer bytes (tests/fuzz/cfuzz/targets.py takes the C rows' checks).
"""

from __future__ import annotations

import atexit
import functools
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from hypothesis import strategies as st

TESTS = Path(__file__).resolve().parents[1]
VECTORS = TESTS / "vectors"
CAPTURES = sorted(p for p in VECTORS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".bin"))


class Row(NamedTuple):
    """One fast path, its reference, and its inputs."""

    name: str  # "c.<C function>", "gen.<generated code>" or "py.<Python fast path>"
    fast: Callable[[Any], Any]  # None: declined
    reference: Callable[[Any], Any]
    inputs: st.SearchStrategy  # generated inputs
    needs_c: bool = False  # skipped in the pure-Python build
    examples: Callable[[], list] = tuple  # real inputs (vectors; called once, cached)
    taken: float = 0.5  # fast must answer for more than this share of the examples
    must_take: Callable[[Any], bool] | None = None  # inputs fast may never decline


class Mismatch(AssertionError):
    """The fast path answered, and its answer is not the reference's."""


def _short(v: Any) -> str:
    r = repr(v)
    return r[:600] + "..." if len(r) > 600 else r


def check(row: Row, x: Any) -> bool:
    """Check ``row`` on input ``x``: True when the fast path answered (and agreed), False
    when it declined; :class:`Mismatch` when it answered differently, or declined an input
    it must take."""
    got = row.fast(x)
    if got is None:
        if row.must_take is not None and row.must_take(x):
            raise Mismatch(f"{row.name} declined an input it must take\n  input: {_short(x)}")
        return False
    want = row.reference(x)
    if got != want:
        raise Mismatch(f"{row.name}: fast path != reference\n  input:     {_short(x)}\n"
                       f"  fast:      {_short(got)}\n  reference: {_short(want)}")
    return True


@functools.cache
def examples_of(row: Row) -> list:
    return list(row.examples())


def check_examples(row: Row) -> tuple[int, int]:
    """Check ``row`` on all its examples: (taken, total)."""
    xs = examples_of(row)
    return sum(check(row, x) for x in xs), len(xs)


def outcome(fn: Callable, *args: Any) -> tuple:
    """("ok", result) or ("raised", exception type, message): both paths must fail alike."""
    try:
        return ("ok", fn(*args))
    except Exception as e:  # noqa: BLE001
        return ("raised", type(e).__name__, str(e))


# -- real inputs -----------------------------------------------------------------------------
@functools.cache
def vector_packets() -> tuple:
    """Every HEP packet of every capture in tests/vectors (InputPacket: .data, .index,
    .frame, .hep_transport, .hep_src, .hep_dst)."""
    from heptool.capture.inputs import InputStats, iter_input

    out = []
    for path in CAPTURES:
        with open(path, "rb") as f:
            out += [p for p in iter_input(f, stats=InputStats()) if p.data is not None]
    return tuple(out)


@functools.cache
def bench_packets(n: int = 300) -> tuple:
    """The benchmark's realistic packets (bench/bench_codec.py build(n))."""
    sys.path.insert(0, str(TESTS.parent / "bench"))
    try:
        from bench_codec import build
    finally:
        sys.path.pop(0)
    return tuple(build(n))


@functools.cache
def vector_frames() -> tuple:
    """Every Ethernet frame of every pcap in tests/vectors."""
    out = []
    for path in CAPTURES:
        data = path.read_bytes()
        if data[:4] != b"\xd4\xc3\xb2\xa1" or struct.unpack_from("<I", data, 20)[0] != 1:
            continue
        off = 24
        while off + 16 <= len(data):
            caplen = struct.unpack_from("<I", data, off + 8)[0]
            out.append(data[off + 16:off + 16 + caplen])
            off += 16 + caplen
    return tuple(out)


# -- the other build, in a subprocess --------------------------------------------------------
_WORKER = r"""
import importlib, pickle, sys
sys.path[:0] = sys.argv[1:]
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = inp.read(8)
    if len(head) < 8:
        break
    module, name, args = pickle.loads(inp.read(int.from_bytes(head, "big")))
    try:
        r = ("ok", getattr(importlib.import_module(module), name)(*args))
    except Exception as e:
        r = ("raised", type(e).__name__, str(e))
    b = pickle.dumps(r)
    out.write(len(b).to_bytes(8, "big") + b)
    out.flush()
"""


class PureWorker:
    """A ``HEPTOOL_PURE=1`` Python process that calls ``module.function(*args)`` for us (the
    pure-Python build's answer, without patching this process's module state)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def call(self, module: str, name: str, *args: Any) -> tuple:
        if self.proc is None or self.proc.poll() is not None:
            env = {**os.environ, "HEPTOOL_PURE": "1"}
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(TESTS), str(TESTS / "equivalence")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            atexit.register(self.close)
        b = pickle.dumps((module, name, args))
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(len(b).to_bytes(8, "big") + b)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(8)
        if len(head) < 8:
            raise RuntimeError("the HEPTOOL_PURE=1 worker died")
        return pickle.loads(self.proc.stdout.read(int.from_bytes(head, "big")))  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by its Popen handle
                self.proc.wait()
        self.proc = None


PURE = PureWorker()


def rows_missing(rows: Iterable[Row], exported: Iterable[str]) -> list[str]:
    """The exported fast paths (names like "c.sip_ids", "gen.encoder") no row checks."""
    return sorted(set(exported) - {r.name for r in rows})
