"""The equivalence table: every fast path against its reference (tests/equivalence/rows_*.py).

Each row is checked on generated inputs (hypothesis; ``HYPOTHESIS_PROFILE=ci`` or
``HEPTOOL_FUZZ=long`` for more examples) and on the real ones (every vector in
tests/vectors, the benchmark's packets), where the fast path must also answer for more than
its share of them, so that one that always declines cannot pass.  The C rows skip in the
pure-Python build.  And the table is complete: every fast path heptool exports has a row.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import rows_capture
import rows_core
import rows_pipeline
import rows_sip
from exported import exported_names
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from row import Mismatch, Row, check, check_examples, rows_missing

from heptool.core import accel

ROWS: list[Row] = rows_core.ROWS + rows_sip.ROWS + rows_capture.ROWS + rows_pipeline.ROWS
BY_NAME = {r.name: r for r in ROWS}
LONG = os.environ.get("HEPTOOL_FUZZ") == "long" or os.environ.get("HYPOTHESIS_PROFILE") == "ci"
EXAMPLES = 300 if LONG else 40
C_BUILT = accel.c_module() is not None


def _skip_pure(row: Row) -> None:
    if row.needs_c and not C_BUILT:
        pytest.skip("the C extension is not built here (or HEPTOOL_PURE=1)")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fast_path_equals_reference(row: Row, data: st.DataObject) -> None:
    _skip_pure(row)
    check(row, data.draw(row.inputs, label="input"))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_fast_path_on_real_inputs(row: Row) -> None:
    _skip_pure(row)
    taken, total = check_examples(row)
    assert total > 0, f"{row.name} has no real inputs"
    assert taken > row.taken * total, f"{row.name} took {taken} of {total} real inputs"


def test_rows_have_unique_names() -> None:
    assert len(BY_NAME) == len(ROWS)


def missing_rows(rows: list[Row]) -> list[str]:
    return rows_missing(rows, exported_names())


def extension_surface() -> set[str]:
    """The built extension's public callables but its configuration function."""
    c = accel.c_module()
    assert c is not None
    return {n for n in vars(c) if not n.startswith("_") and callable(getattr(c, n))} - {"configure"}


def _targets():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz" / "cfuzz"))
    try:
        import targets
    finally:
        sys.path.pop(0)
    return targets


def test_every_fast_path_has_a_row() -> None:
    assert missing_rows(ROWS) == []
    if C_BUILT:  # the declared list is the extension's real surface
        assert extension_surface() == set(accel.C_FUNCTIONS)
        assert set(accel.exported()) == set(accel.C_FUNCTIONS)
    else:
        assert accel.exported() == {}
    # an atheris target for each C function (tests/fuzz/cfuzz/targets.py)
    assert set(_targets().TARGETS) == set(accel.C_FUNCTIONS)


# -- the table can fail ------------------------------------------------------------------------
def _flip(v):
    """``v`` with one byte (or character, or value) changed."""
    if isinstance(v, (bytes, bytearray)):
        return bytes([v[0] ^ 1]) + bytes(v[1:]) if v else b"\x00"
    if isinstance(v, str):
        return "x" + v[1:] if v[:1] != "x" else "y" + v[1:]
    if isinstance(v, (tuple, list)):
        return type(v)([_flip(v[0]), *v[1:]]) if v else type(v)([None])
    return ("flipped", v)


@pytest.mark.parametrize("name", ["py.decode_fast", "gen.encoder", "gen.record_builder",
                                  "py.sip_ids", "c.hep3_fields", "c.sip_ids"])
def test_a_wrong_fast_path_fails_its_row(name: str) -> None:
    row = BY_NAME[name]
    _skip_pure(row)
    wrong = row._replace(fast=lambda x: None if row.fast(x) is None else _flip(row.fast(x)))
    with pytest.raises(Mismatch):
        check_examples(wrong)
    never = row._replace(fast=lambda x: None, must_take=None)  # always declines
    taken, total = check_examples(never)
    assert not taken > row.taken * total


def test_a_missing_row_fails_the_completeness_check() -> None:
    for name in exported_names():
        assert missing_rows([r for r in ROWS if r.name != name]) == [name]
    if C_BUILT:
        assert extension_surface() - {"hep3_fields"} != set(accel.C_FUNCTIONS)
