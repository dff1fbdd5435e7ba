#!/usr/bin/env bash
# Install what scripts/fuzz-c.sh needs for native (C) coverage, idempotently:
#
#   bash scripts/setup-fuzz.sh          # into $PYTHON (default python3)
#
# * clang and its compiler-rt (Debian: clang, libclang-rt-dev of the same version), to build
#   heptool/core/_speedups.c with -fsanitize=address,undefined,fuzzer-no-link;
# * atheris with its asan_with_fuzzer.so (ASan with libFuzzer linked in, in atheris.path()):
#   the LD_PRELOAD that sends the C code's coverage to libFuzzer.  The manylinux wheel of
#   atheris 3.0.0 ships it; where pip had to build atheris without it, it is rebuilt from
#   source against this clang.  (With gcc's libasan preloaded instead, libFuzzer gets no
#   coverage at all, not even Python's: atheris warns so.)
#
# Without these, fuzz-c.sh still runs: the pure-Python reference code gives atheris its
# coverage, and the C code is checked under gcc's ASan+UBSan by replaying what was found.
# Only the package registries are contacted (Debian, PyPI).
# Exit status: 0 when clang, the runtime and atheris with asan_with_fuzzer.so are there.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
ATHERIS_VERSION=3.0.0
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

log() { echo "setup-fuzz: $*" >&2; }

have_merged() {
    "$PY" -c 'import atheris, os, sys; sys.exit(not os.path.exists(os.path.join(atheris.path(), "asan_with_fuzzer.so")))' 2>/dev/null
}

if ! command -v clang >/dev/null 2>&1 ||
    [ ! -f "$(clang -print-file-name=libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null)" ]; then
    command -v apt-get >/dev/null 2>&1 || { log "no clang, and apt-get not found"; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    # the runtime package is versioned: libclang-rt-<clang's major>-dev
    major=$(apt-cache show clang 2>/dev/null | sed -n 's/^Depends:.*clang-\([0-9][0-9]*\).*/\1/p' | head -n 1)
    [ -n "$major" ] || { apt-get update -qq >/dev/null; major=$(apt-cache show clang 2>/dev/null | sed -n 's/^Depends:.*clang-\([0-9][0-9]*\).*/\1/p' | head -n 1); }
    [ -n "$major" ] || { log "cannot tell the Debian clang version"; exit 1; }
    log "installing clang $major and libclang-rt-$major-dev (apt)"
    apt-get install -y -qq --no-install-recommends clang "libclang-rt-$major-dev" >/dev/null ||
        { apt-get update -qq >/dev/null &&
          apt-get install -y -qq --no-install-recommends clang "libclang-rt-$major-dev" >/dev/null; } ||
        { log "FAILED: apt-get install clang libclang-rt-$major-dev"; exit 1; }
fi
log "clang: $(clang --version | head -n 1)"

"$PY" -c 'import atheris' 2>/dev/null ||
    "$PY" -m pip install -q "atheris==$ATHERIS_VERSION" || log "pip install atheris failed"
if have_merged; then
    log "atheris with asan_with_fuzzer.so already installed ($("$PY" -c 'import atheris; print(atheris.path())'))"
    exit 0
fi
log "building atheris $ATHERIS_VERSION from source against clang (a few minutes)"
CLANG_BIN=$(command -v clang) CC=clang CXX=clang++ "$PY" -m pip install -q --force-reinstall \
    --no-deps --no-binary atheris "atheris==$ATHERIS_VERSION" || { log "FAILED: building atheris"; exit 1; }
have_merged || { log "FAILED: atheris built without asan_with_fuzzer.so"; exit 1; }
log "atheris with asan_with_fuzzer.so installed"
