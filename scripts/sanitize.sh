#!/usr/bin/env bash
# Sanitizer job: build heptool/core/_speedups.c with AddressSanitizer + UndefinedBehaviorSanitizer
# (gcc) and run the C extension's tests and the fuzz harness against that build.
#
#   bash scripts/sanitize.sh                 # tests/equivalence/ and tests/fuzz/
#   bash scripts/sanitize.sh -k sip_ids      # extra arguments go to pytest
#   PYTHON=/path/to/python bash scripts/sanitize.sh
#
# The normal in-place build is left alone: the working tree (tracked and untracked, not
# ignored files) is copied to a temporary directory, the sanitized .so is compiled there, and
# pytest runs from that copy, so `heptool` (and heptool.core.accel.c_module()) is the copy's.
# A pytest plugin checks at start that the module in use is the sanitized .so, and prints its
# path; the run fails otherwise.
#
# Any sanitizer report fails the job: ASan halts on the first error, UBSan is compiled with
# -fno-sanitize-recover=undefined (and halt_on_error=1).  ASan writes its reports to files
# (log_path), including reports from `python -m heptool` subprocesses; they are printed and
# counted at the end, with the UBSan reports ("runtime error:") in pytest's output.
# Needs gcc with libasan/libubsan (Debian: gcc).
# The build (scripts/build-sanitized.sh gcc-asan): gcc -fsanitize=address,undefined
# -fno-sanitize-recover=undefined -g -O1 -fno-omit-frame-pointer.
#
# Exit status: 0 when the tests pass with no sanitizer report; 1 otherwise.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
TESTS=(tests/equivalence/ tests/fuzz/)

log() { echo "sanitize.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
t0=$(date +%s)

libasan=$(gcc -print-file-name=libasan.so)
libubsan=$(gcc -print-file-name=libubsan.so)
[ -f "$libasan" ] || die "gcc has no libasan.so (Debian: apt-get install gcc)"
[ -f "$libubsan" ] || die "gcc has no libubsan.so (Debian: apt-get install gcc)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heptool-sanitize.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "copying the tree to $WORK and building the extension there"
SO=$(bash scripts/build-sanitized.sh "$WORK" gcc-asan) || die "the sanitized build failed"

# The plugin that makes sure the sanitized .so is the one the tests use.
cat >"$WORK/_sanitize_expect.py" <<'EOF'
import os

import pytest


def pytest_sessionstart(session):
    from heptool.core import accel

    m = accel.c_module()
    want = os.environ["HEPTOOL_SANITIZE_SO"]
    got = getattr(m, "__file__", None)
    if got is None or os.path.realpath(got) != os.path.realpath(want):
        pytest.exit(f"sanitize.sh: the extension in use is {got!r}, not the sanitized {want}",
                    returncode=3)
    print(f"sanitize.sh: extension in use: {got}")
EOF

LOGDIR="$WORK/sanitizer-logs"
mkdir -p "$LOGDIR"
export HEPTOOL_SANITIZE_SO="$SO"
export PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONMALLOC=malloc PYTHONDONTWRITEBYTECODE=1
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:log_path=$LOGDIR/asan"
# no log_path for UBSan: with gcc's two runtimes preloaded its log_path swallows the report
# (measured: nothing on stderr, no file); its reports go to stderr, which pytest leaves
# alone (--capture=sys: a process UBSan ends has no chance to print what pytest captured)
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
unset HEPTOOL_PURE
log "running: LD_PRELOAD=$libasan:$libubsan PYTHONMALLOC=malloc $PY -m pytest ${TESTS[*]} $*"
t1=$(date +%s)
(cd "$WORK" && LD_PRELOAD="$libasan:$libubsan" "$PY" -m pytest -q -p _sanitize_expect \
    -p no:cacheprovider --capture=sys "${TESTS[@]}" "$@") 2>&1 | tee "$WORK/pytest.log"
status=${PIPESTATUS[0]}
t2=$(date +%s)

ubsan=$(grep -c -E ': runtime error: ' "$WORK/pytest.log")
reports=$(($(find "$LOGDIR" -type f | wc -l) + ubsan))
if [ "$reports" -gt 0 ]; then
    for f in $(find "$LOGDIR" -type f | sort); do
        echo "---- sanitizer report: $(basename "$f")" >&2
        cat "$f" >&2
    done
fi
log "pytest exit status $status, $reports sanitizer report(s); tests took $((t2 - t1)) s," \
    "the whole job $((t2 - t0)) s"
[ "$reports" -eq 0 ] || die "$reports sanitizer report(s) (above)"
[ "$status" -eq 0 ] || die "pytest exited with status $status"
log "OK"
