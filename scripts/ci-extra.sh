#!/usr/bin/env bash
# The C extension's trust jobs, CI-sized: the sanitizer run and the coverage-guided fuzzing of
# every C function (issue "Trust": the C and pure-Python builds agree and never crash).
#
#   bash scripts/ci-extra.sh                   # after scripts/test.sh (same $PYTHON)
#   FUZZ_C_SECONDS=300 bash scripts/ci-extra.sh    # a longer fuzzing budget a target
#
# Steps, each timed, all run even when one fails:
#   1. scripts/setup-fuzz.sh  atheris (PyPI) and clang (Debian) for native fuzz coverage
#   2. scripts/sanitize.sh    tests/equivalence/ + tests/fuzz/ on an ASan+UBSan build
#   3. scripts/fuzz-c.sh N    atheris on each of the 6 C functions, N s each (default 30)
# About 4-5 minutes on a 2-core machine (measured: 1 s + 69 s + 178 s with clang already
# installed; on a fresh machine add the apt install of clang).
# Expects heptool's test dependencies in $PYTHON (scripts/test.sh installs them).
# A failed setup is fatal under CI=true; locally fuzz-c.sh falls back to Python-level
# coverage.  Exit status: 0 when every step passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
export PYTHON=$PY PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
FUZZ_C_SECONDS=${FUZZ_C_SECONDS:-30}
log() { echo "ci-extra.sh: $*" >&2; }

"$PY" -c 'import heptool, hypothesis, orjson' 2>/dev/null ||
    { log "FAIL: heptool[test] is not installed in $PY (run scripts/test.sh first)"; exit 1; }

failed=()
summary=()
step() {  # step NAME COMMAND...: run and time it; its status is step's
    local name=$1 s status
    shift
    log "== $name: $*"
    s=$(date +%s)
    "$@"
    status=$?
    summary+=("$(printf '%-12s %4d s  %s' "$name" $(($(date +%s) - s)) \
        "$([ $status -eq 0 ] && echo ok || echo "FAIL (status $status)")")")
    return $status
}

if ! step setup-fuzz bash scripts/setup-fuzz.sh; then
    if [ "${CI:-}" = true ]; then
        log "CI=true: native fuzzing cannot be set up (above)"
        failed+=(setup-fuzz)
    else
        log "warning: native fuzzing not set up; fuzz-c.sh uses Python-level coverage"
    fi
fi
step sanitize bash scripts/sanitize.sh || failed+=(sanitize)
step fuzz-c bash scripts/fuzz-c.sh "$FUZZ_C_SECONDS" || failed+=(fuzz-c)

echo "ci-extra.sh: summary"
printf '  %s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ] || { log "FAIL: ${failed[*]}"; exit 1; }
log "OK"
