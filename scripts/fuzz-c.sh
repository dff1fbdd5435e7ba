#!/usr/bin/env bash
# Coverage-guided fuzzing of every function of the C extension (heptool/core/_speedups.c)
# with atheris, against an ASan+UBSan build, checking each answer against the pure-Python
# reference (tests/fuzz/cfuzz/targets.py: one target per function).
#
#   bash scripts/fuzz-c.sh              # 30 s a target (the CI budget), 6 targets: ~4 min
#   bash scripts/fuzz-c.sh 600          # 10 minutes a target, on demand
#   FUZZ_C_TARGETS="sip_ids udp4_hep" bash scripts/fuzz-c.sh 60    # only those
#   FUZZ_C_CORPUS=DIR bash scripts/fuzz-c.sh   # keep the grown corpus in DIR/<target>/
#   FUZZ_C_MODE=python bash scripts/fuzz-c.sh  # force a mode (below) instead of the best one
#
# Needs atheris in $PYTHON (default python3; `pip install atheris`).  Two modes, chosen here:
#
# native  (clang and atheris's asan_with_fuzzer.so present: bash scripts/setup-fuzz.sh)
#         the extension is built with clang -fsanitize=address,undefined,fuzzer-no-link and
#         libFuzzer sees the C code's coverage as well as the Python reference's.
# python  (no clang) the extension is fuzzed as a plain gcc build, guided by the coverage of
#         the Python reference code only; everything the run found (its corpus) is then run
#         again against gcc's ASan+UBSan build (tests/fuzz/cfuzz/replay.py).
#
# A crash, a sanitizer report, a timeout or a C/Python disagreement fails the target; its
# input is saved as tests/fuzz/corpus/crashes/<target>/crash-<sha1> (not committed, see
# .gitignore), replay it with
#   python tests/fuzz/cfuzz/fuzz.py TARGET tests/fuzz/corpus/crashes/TARGET/crash-...
# (under the same LD_PRELOAD) or, without atheris, tests/fuzz/cfuzz/replay.py TARGET FILE.
# Prints executions per target.  Exit status: 0 when every target ran clean, 1 otherwise.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
BUDGET=${1:-30}
read -r -a TARGETS <<<"${FUZZ_C_TARGETS:-hep3_fields hep3_record hep3_jsonl sip_summary sip_ids udp4_hep}"
log() { echo "fuzz-c.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
t0=$(date +%s)

"$PY" -c 'import atheris' 2>/dev/null || die "atheris is not installed in $PY (pip install atheris)"
merged=$("$PY" -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))')
if [ -n "${FUZZ_C_MODE:-}" ]; then
    MODE=$FUZZ_C_MODE  # native or python: to force one
elif command -v clang >/dev/null 2>&1 && [ -f "$merged" ]; then
    MODE=native
else
    MODE=python
    log "no clang (or no asan_with_fuzzer.so): fuzzing with Python-level coverage only;" \
        "bash scripts/setup-fuzz.sh installs what native coverage needs"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heptool-fuzz-c.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export PYTHONMALLOC=malloc PYTHONDONTWRITEBYTECODE=1
unset HEPTOOL_PURE
ASAN_BASE="detect_leaks=0:halt_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if [ "$MODE" = native ]; then
    SO=$(bash scripts/build-sanitized.sh "$WORK/tree" clang-fuzz) || die "the clang build failed"
    FUZZ_PRELOAD=$merged
else
    SO=$(bash scripts/build-sanitized.sh "$WORK/tree" plain) || die "the plain build failed"
    ASAN_SO=$(bash scripts/build-sanitized.sh "$WORK/asan" gcc-asan) || die "the ASan build failed"
    FUZZ_PRELOAD=
    REPLAY_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
fi
log "mode $MODE, ${BUDGET} s a target, targets: ${TARGETS[*]}; extension $SO"

CRASHES="$ROOT/tests/fuzz/corpus/crashes"
declare -A RUNS RESULT
failed=()
for t in "${TARGETS[@]}"; do
    seeds="$ROOT/tests/fuzz/corpus/$t"
    [ -d "$seeds" ] || die "no seed corpus $seeds (python tests/fuzz/cfuzz/make_corpus.py)"
    grown="${FUZZ_C_CORPUS:-$WORK/corpus}/$t"
    mkdir -p "$grown" "$CRASHES/$t"
    out="$WORK/$t.log"
    before="$WORK/$t.before"
    ls -1 "$CRASHES/$t" >"$before"
    dict="$ROOT/tests/fuzz/cfuzz/$t.dict"
    dict_opt=()
    [ -f "$dict" ] && dict_opt=(-dict="$dict")
    log "fuzzing $t for $BUDGET s"
    s=$(date +%s)
    (cd "$WORK/tree" && PYTHONPATH="$WORK/tree" ASAN_OPTIONS="$ASAN_BASE" \
        LD_PRELOAD="$FUZZ_PRELOAD" timeout -k 10 $((BUDGET + 120)) \
        "$PY" tests/fuzz/cfuzz/fuzz.py "$t" -max_total_time="$BUDGET" -timeout=10 \
        -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$CRASHES/$t/" \
        ${dict_opt[@]+"${dict_opt[@]}"} "$grown" "$seeds") >"$out" 2>&1
    status=$?
    grep -q "^fuzz.py: target $t, extension $SO\$" "$out" ||
        { grep -m1 "^fuzz.py: target" "$out" >&2; log "$t: not the instrumented extension"; status=99; }
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
    [ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$out" | tail -n 1 | tr -d '#')
    RUNS[$t]=${runs:-0}
    if [ "$status" -eq 0 ] && [ "$MODE" = python ]; then
        # what the run found, once more under ASan+UBSan
        (cd "$WORK/asan" && PYTHONPATH="$WORK/asan" ASAN_OPTIONS="$ASAN_BASE" \
            REPLAY_CURRENT="$WORK/$t.current" LD_PRELOAD="$REPLAY_PRELOAD" \
            "$PY" tests/fuzz/cfuzz/replay.py "$t" "$grown" "$seeds") >>"$out" 2>&1
        status=$?
        if [ "$status" -ne 0 ] && [ -f "$WORK/$t.current" ]; then  # keep the input it stopped on
            f=$(cat "$WORK/$t.current")
            cp "$f" "$CRASHES/$t/crash-$(sha1sum <"$f" | cut -c1-40)"
        fi
    fi
    if [ "$status" -eq 0 ]; then
        RESULT[$t]=ok
    else
        RESULT[$t]="FAIL (status $status)"
        failed+=("$t")
        log "$t failed; what its log says:"
        grep -E -A1 'ERROR: |runtime error: |^Mismatch|^[A-Za-z]*Error|^ +(input|C|Python):|^ +#[0-4] ' \
            "$out" | head -n 40 >&2
        grep -E '^(SUMMARY|artifact_prefix|replay.py)' "$out" >&2
        ls -1 "$CRASHES/$t" | grep -vxF -f "$before" |
            sed "s|^|fuzz-c.sh: reproducer: tests/fuzz/corpus/crashes/$t/|" >&2
    fi
    log "$t: ${RUNS[$t]} executions in $(($(date +%s) - s)) s, ${RESULT[$t]}"
done

echo "fuzz-c.sh: summary (mode $MODE, ${BUDGET} s a target, $(($(date +%s) - t0)) s in all)"
for t in "${TARGETS[@]}"; do
    printf '  %-12s %10s executions  %s\n' "$t" "${RUNS[$t]}" "${RESULT[$t]}"
done
[ ${#failed[@]} -eq 0 ] || die "${failed[*]}"
log "OK"
