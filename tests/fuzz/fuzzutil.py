"""Shared machinery of the fuzzing harness (tests/fuzz/).

Engine: hypothesis, not atheris.  It is already a test dependency and runs inside pytest
(no libFuzzer build, no separate runner in CI); every crash shrinks to a small input that is
pinned with ``@example`` next to its target; and structured generation (valid pcap records,
pcapng blocks, SIP messages, OpenSIPS JSON) reaches deeper than byte mutation alone.

Budgets: a short run in the normal suite (``FUZZ_SHORT`` examples a target); the long run
(``HEPTOOL_FUZZ=long`` or ``HYPOTHESIS_PROFILE=ci``) is the ``slow``-marked ``*_long`` tests
with ``FUZZ_LONG`` examples each, sized to stay under ~5 minutes in total.

Every execution runs under a wall-clock deadline (``TIMEOUT`` s, SIGALRM) and an
address-space limit (current size + ``MEMORY`` bytes, RLIMIT_AS): a hang or an unbounded
allocation is a failure, as is any exception not in the target's allowed set.
"""

from __future__ import annotations

import collections
import contextlib
import os
import resource
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
LONG = os.environ.get("HEPTOOL_FUZZ") == "long" or os.environ.get("HYPOTHESIS_PROFILE") == "ci"
FUZZ_SHORT = int(os.environ.get("HEPTOOL_FUZZ_SHORT", "60"))
FUZZ_LONG = int(os.environ.get("HEPTOOL_FUZZ_LONG", "4000"))
TIMEOUT = 10.0
MEMORY = 768 * 1024 * 1024

#: executions per target, and crashes (failures) per target, over this pytest session
EXECUTIONS: collections.Counter[str] = collections.Counter()
FAILURES: collections.Counter[str] = collections.Counter()


class Hang(Exception):
    """An execution ran past its deadline."""


def _alarm(_sig, _frame):
    raise Hang(f"execution exceeded {TIMEOUT} s")


@contextlib.contextmanager
def bounded():
    """Run the body under a deadline and an address-space limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        vsize = int(fh.read().split()[0]) * resource.getpagesize()
    limit = vsize + MEMORY
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    old = signal.signal(signal.SIGALRM, _alarm)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old)


def run(name: str, strategy, body, *, budget: int, examples=()):
    """Fuzz ``body`` on ``strategy`` for ``budget`` examples (plus the pinned ``examples``)."""

    def one(data):
        EXECUTIONS[name] += 1
        try:
            with bounded():
                body(data)
        except BaseException:
            FAILURES[name] += 1
            raise

    test = given(strategy)(one)
    for ex in examples:
        from hypothesis import example

        test = example(ex)(test)
    test = settings(max_examples=budget, deadline=None, database=None,
                    derandomize=os.environ.get("CI") == "true",  # see tests/conftest.py
                    suppress_health_check=list(HealthCheck))(test)
    test()


def targets_params(targets: dict):
    """pytest params: each target short (always) and long (``slow``, only when asked)."""
    params = []
    for name in targets:
        params.append(pytest.param(name, FUZZ_SHORT, id=f"{name}-short"))
        params.append(pytest.param(name, FUZZ_LONG, id=f"{name}-long", marks=[
            pytest.mark.slow,
            pytest.mark.skipif(not LONG, reason="long fuzz run: HEPTOOL_FUZZ=long or HYPOTHESIS_PROFILE=ci")]))
    return params
