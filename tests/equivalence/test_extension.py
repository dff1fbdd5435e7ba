"""The C extension's build and the few fixed answers the equivalence rows do not state
(moved from tests/core/test_speedups.py)."""

from __future__ import annotations

import os

import pytest
from strategies import HEP_FRAME, SIP_PAYLOADS

from heptool.core.accel import PURE_REQUESTED, c_module
from heptool.sip.info import sip_of_text

_speedups = c_module()  # None in the pure-Python build (no compiler, or HEPTOOL_PURE=1)
needs_c = pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")


def test_ci_builds_the_extension():
    """CI has a C compiler: a build that silently fell back to pure Python would hide a
    broken extension (and halve decode's speed), so there it must be importable."""
    if os.environ.get("CI") != "true":
        pytest.skip("only enforced under CI=true")
    if PURE_REQUESTED:
        pytest.skip("HEPTOOL_PURE=1: this run is the pure-Python build")
    assert _speedups is not None


@needs_c
def test_c_frame_function_odd_port_leaves_it_to_python():
    assert _speedups.udp4_hep(HEP_FRAME, {}, None)[:2] == ("10.0.0.1:5060", "10.0.0.2:9060")
    assert _speedups.udp4_hep(HEP_FRAME, {}, 1) == 0
    assert _speedups.udp4_hep(HEP_FRAME, {}, 10**30) is None
    assert _speedups.udp4_hep(HEP_FRAME, {}, "9060") is None


def test_sip_of_text_matches_decode_record_rules():
    assert sip_of_text("hello") is None
    assert sip_of_text("") is None
    assert sip_of_text("  INVITE sip:x SIP/2.0\r\n") is None
    assert sip_of_text(SIP_PAYLOADS[2].decode())["call_id"] == "j"
