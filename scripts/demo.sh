#!/usr/bin/env bash
# README "Quick start", first command: install heptool and run it on the bundled captures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
step() { printf '\n== %s\n' "$*" >&2; }
export COLUMNS=${COLUMNS:-140}  # tables are for people: give them room even in a pipe

step "installing heptool into $("$PY" -c 'import sys; print(sys.executable)')"
"$PY" -m pip install -q --no-build-isolation . 2>/dev/null || "$PY" -m pip install -q .
heptool --version

OPENSIPS=tests/vectors/opensips/opensips-3.4.15-hep3-udp.pcap
KAMAILIO=tests/vectors/kamailio/kamailio-hep3-tcp.hep.pcap

step "heptool decode: the first messages OpenSIPS traced (SIP, xlog, REST, net events, MI)"
heptool decode "$OPENSIPS" -f table --count 12

step "heptool decode: HEP over TCP from Kamailio, as JSON Lines (first record)"
heptool decode "$KAMAILIO" -f jsonl --count 1

step "heptool decode --summary: what a capture holds"
heptool decode "$OPENSIPS" -f jsonl --summary >/dev/null

CALL=hc-tcp-call-c7ba77@heptool.test
step "heptool correlate: the TCP call with everything that belongs to it, and how we know"
heptool correlate "$OPENSIPS" -f table --call-id "$CALL"

step "heptool flow: the same call as a ladder (SIP, xlog, REST, connection events)"
heptool flow "$OPENSIPS" --call-id "$CALL"

step "heptool encode --scenario call | heptool decode: crafting HEP in a pipeline"
heptool encode --scenario call --seed 1 | heptool decode -f table

step "byte-exact: every HEP packet in tests/vectors/ decodes and re-encodes to the same bytes"
"$PY" scripts/demo.py >/dev/null

step "codec speed on 20,000 generated packets (bench/bench_codec.py runs 200,000 by default)"
"$PY" bench/bench_codec.py --packets 20000 --rounds 2
