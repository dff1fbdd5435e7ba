"""The C fuzz targets (tests/fuzz/cfuzz/targets.py) on their seed corpus.

scripts/fuzz-c.sh fuzzes each C function with atheris; this replays the committed corpus,
tests/fuzz/corpus/<function>/, in the normal suite (and under ASan/UBSan in
scripts/sanitize.sh), so a seed that once found a bug stays a regression test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "cfuzz"))
try:
    import targets
finally:
    sys.path.pop(0)

CORPUS = HERE / "corpus"


@pytest.mark.skipif(targets.C is None,
                    reason="the C extension is not built here (or HEPTOOL_PURE=1)")
@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_c_target_on_its_seed_corpus(name):
    files = sorted((CORPUS / name).iterdir())
    assert len(files) > 20, f"no seed corpus for {name} (tests/fuzz/cfuzz/make_corpus.py)"
    check = targets.TARGETS[name]
    for f in files:
        check(f.read_bytes())
