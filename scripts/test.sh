#!/usr/bin/env bash
# The one test command (README "Quick start", .ci/run): install heptool with its test extras
# into the current python3, then run the whole suite in both builds (C extension and pure
# Python) and the import-layer contracts.
# Safe for CI: no prompts, runs from any directory, fails on failures AND on an empty run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-python3}
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

echo "test.sh: installing heptool[test] (editable) into $("$PY" -c 'import sys; print(sys.executable)')"
# Prefer the build tools already installed (works offline); fall back to pip's isolated build,
# which fetches setuptools from PyPI, when they are missing or too old.
pip_log=$(mktemp)
trap 'rm -f "$pip_log"' EXIT
# (A fresh venv has no setuptools >= 74.1, pyproject's build requirement: go isolated at once.)
if ! "$PY" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 74)' \
        2>/dev/null; then
    "$PY" -m pip install -q -e '.[test]'
elif ! "$PY" -m pip install -q --no-build-isolation -e '.[test]' 2>"$pip_log"; then
    grep -E '^ *error:' "$pip_log" | head -n 3 >&2 || true
    echo "test.sh: build without isolation failed (above: usually no 'wheel' or an old setuptools);" \
        "retrying with an isolated build" >&2
    "$PY" -m pip install -q -e '.[test]'
fi

# Real third-party peers for tests/interop (hep-js): in CI a failed install fails the run;
# locally it is a warning and the tests that need a missing peer skip, saying why.
bash scripts/setup-peers.sh || { [ "${CI:-}" = true ] && { echo "test.sh: FAIL: scripts/setup-peers.sh" >&2; exit 1; }; echo "test.sh: warning: peers not installed; interop tests will skip" >&2; }

if [ "${CI:-}" = true ]; then
    # CI also runs the long fuzz and property budgets (issue 7; a few minutes more), with the
    # same examples every run (derandomized: tests/conftest.py)
    export HEPTOOL_FUZZ=${HEPTOOL_FUZZ:-long} HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci}
fi

# The whole suite runs once per build: with the C extension (when it built) and as the
# pure-Python build (HEPTOOL_PURE=1, what a user without a compiler gets). Both must pass;
# HEPTOOL_BUILDS=c or =pure runs one of them.
run_pytest() {  # run_pytest LABEL [pytest args]: pytest, failing on failures AND on an empty run
    local label=$1 status=0
    shift
    echo "test.sh: pytest, $label build"
    "$PY" -m pytest -q -rfEs "$@" || status=$?
    case $status in
        0) ;;
        5) echo "test.sh: FAIL ($label build): pytest collected no tests (exit 5);" \
               "an empty run does not count as passing" >&2
           exit 1 ;;
        *) echo "test.sh: FAIL ($label build): pytest exited with status $status" >&2
           exit "$status" ;;
    esac
}

builds=${HEPTOOL_BUILDS:-c,pure}
if [[ ,$builds, == *,c,* ]]; then
    if HEPTOOL_PURE= "$PY" -c 'import sys; from heptool.core.accel import BUILD; sys.exit(BUILD != "c")'; then
        HEPTOOL_PURE= run_pytest "C extension" "$@"
    elif [ "${CI:-}" = true ]; then
        echo "test.sh: FAIL: the C extension did not build (CI has a compiler)" >&2
        exit 1
    else
        echo "test.sh: warning: the C extension did not build; only the pure-Python build is tested" >&2
    fi
fi
if [[ ,$builds, == *,pure,* ]]; then
    HEPTOOL_PURE=1 run_pytest "pure-Python (HEPTOOL_PURE=1)" "$@"
fi

echo "test.sh: checking import layers (lint-imports)"
"$PY" -c 'import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())'
echo "test.sh: checking the rules import-linter cannot see (ruff: private attributes, the C loader, heavy imports)"
"$PY" -m ruff check heptool tests bench scripts
echo "test.sh: OK"
