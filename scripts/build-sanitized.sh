#!/usr/bin/env bash
# Copy the working tree to DEST and build heptool/core/_speedups.c there, instrumented:
#
#   bash scripts/build-sanitized.sh DEST gcc-asan     # gcc, ASan + UBSan (scripts/sanitize.sh)
#   bash scripts/build-sanitized.sh DEST plain        # gcc -O1 -g, no sanitizer
#   bash scripts/build-sanitized.sh DEST clang-fuzz   # clang, ASan + UBSan + fuzzer-no-link
#
# The copy (tracked and untracked, not ignored files) keeps the normal in-place build out of
# it: run Python from DEST with PYTHONPATH=DEST and `heptool` is the copy, with this .so.
# Prints the .so's path on stdout.  Used by scripts/sanitize.sh and scripts/fuzz-c.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEST=$1
KIND=$2
PY=${PYTHON:-python3}
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -g -O1 -fno-omit-frame-pointer)
case $KIND in
    gcc-asan) CC=gcc FLAGS=("${SAN[@]}") ;;
    plain) CC=gcc FLAGS=(-g -O1) ;;
    clang-fuzz) CC=clang FLAGS=("${SAN[@]/address,undefined/address,undefined,fuzzer-no-link}") ;;
    *) echo "build-sanitized.sh: unknown kind '$KIND'" >&2; exit 2 ;;
esac
mkdir -p "$DEST"
git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$DEST"
rm -f "$DEST"/heptool/core/_speedups*.so  # never an uninstrumented build by accident
read -r INCLUDE EXT_SUFFIX < <("$PY" -c 'import sysconfig as s; print(s.get_paths()["include"], s.get_config_var("EXT_SUFFIX"))')
SO="$DEST/heptool/core/_speedups$EXT_SUFFIX"
echo "build-sanitized.sh: $CC ${FLAGS[*]} -> $SO" >&2
"$CC" -shared -fPIC "${FLAGS[@]}" -Wall -I"$INCLUDE" heptool/core/_speedups.c -o "$SO"
echo "$SO"
