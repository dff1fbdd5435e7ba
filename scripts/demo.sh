#!/usr/bin/env bash
# README "Quick start", first command: install heptool and run it on the bundled captures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
echo "demo: installing heptool into $("$PY" -c 'import sys; print(sys.executable)')" >&2
"$PY" -m pip install -q --no-build-isolation . 2>/dev/null || "$PY" -m pip install -q .
heptool --version >&2
echo "demo: decoding every HEP packet in tests/vectors/ (records on stdout, summary on stderr)" >&2
"$PY" scripts/demo.py "$@"
echo "demo: codec speed on 20,000 generated packets (bench/bench_codec.py; 200,000 by default)" >&2
"$PY" bench/bench_codec.py --packets 20000 --rounds 2
