#!/usr/bin/env bash
# Install the real third-party HEP peers the interop tests talk to (tests/interop/), idempotently.
#
#   bash scripts/setup-peers.sh            # every peer
#   bash scripts/setup-peers.sh hepjs      # only the named ones
#
# One function per peer, `peer_<name>`; each is a no-op when its peer is already installed at
# the pinned version. Later peers (Debian packages: kamailio, sngrep, tshark) go through
# `apt_install`, which never prompts. Everything goes under the repository (.peers/ for npm) or
# the system package manager; nothing is sent anywhere but the package registries.
#
# Exit status: 0 when every requested peer is installed, 1 otherwise (each failure is one line
# on stderr). scripts/test.sh decides what a failure means: fatal in CI (CI=true), a warning
# locally, where the tests that need a missing peer skip with the reason.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PEERS_DIR="$ROOT/.peers"

# Pinned versions: the versions that produced tests/vectors/ (see tests/vectors/README.md).
HEPJS_VERSION=1.0.22

log() { echo "setup-peers: $*" >&2; }

# --- helpers for the peers to come -----------------------------------------------------------
apt_updated=0
apt_install() {  # apt_install PACKAGE...: install Debian packages without prompts
    command -v apt-get >/dev/null 2>&1 || { log "apt-get not found (not a Debian system)"; return 1; }
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq >/dev/null || return 1
        apt_updated=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- peers -----------------------------------------------------------------------------------
peer_hepjs() {  # hep-js (npm) into .peers/node_modules/hep-js
    local have
    have=$(node -p "require('$PEERS_DIR/node_modules/hep-js/package.json').version" 2>/dev/null)
    if [ "$have" = "$HEPJS_VERSION" ]; then
        log "hep-js $HEPJS_VERSION already installed in .peers/"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || { log "npm not found: cannot install hep-js"; return 1; }
    mkdir -p "$PEERS_DIR"
    [ -f "$PEERS_DIR/package.json" ] ||
        printf '{\n  "name": "heptool-peers",\n  "private": true\n}\n' >"$PEERS_DIR/package.json"
    log "installing hep-js $HEPJS_VERSION into .peers/ (npm)"
    npm install --prefix "$PEERS_DIR" --no-audit --no-fund --loglevel=error --save-exact \
        "hep-js@$HEPJS_VERSION" >/dev/null || return 1
    node -e "require('$PEERS_DIR/node_modules/hep-js')" || return 1
}

peer_tshark() {  # tshark (Debian): dissects `heptool convert` output in tests/interop/test_tshark.py
    if command -v tshark >/dev/null 2>&1; then
        log "tshark already installed ($(tshark --version 2>/dev/null | head -n 1))"
        return 0
    fi
    log "installing tshark (apt)"
    apt_install tshark || return 1  # DEBIAN_FRONTEND=noninteractive: no wireshark-common prompt
    command -v tshark >/dev/null 2>&1
}

peer_sngrep() {  # sngrep (Debian): reads `heptool convert` HEP output (-I x -E) in test_tshark.py
    if command -v sngrep >/dev/null 2>&1; then
        log "sngrep already installed ($(sngrep -V 2>/dev/null | head -n 1))"
        return 0
    fi
    log "installing sngrep (apt)"
    apt_install sngrep || return 1
    command -v sngrep >/dev/null 2>&1
}

peer_kamailio() {  # kamailio + sipsak + sipp (Debian): tests/interop/test_kamailio.py (send/listen)
    if [ -x /usr/sbin/kamailio ] && command -v sipsak >/dev/null 2>&1 &&
        command -v sipp >/dev/null 2>&1; then
        log "kamailio already installed ($(/usr/sbin/kamailio -v 2>/dev/null | head -n 1))"
        return 0
    fi
    log "installing kamailio, sipsak, sip-tester (apt)"
    apt_install kamailio sipsak sip-tester || return 1
    # the Debian package starts a system kamailio on 5060; the tests run their own on free ports
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now kamailio >/dev/null 2>&1; fi
    [ -x /usr/sbin/kamailio ]
}

peer_graphviz() {  # graphviz (Debian): checks that `heptool correlate -f dot` is valid Graphviz
    if command -v dot >/dev/null 2>&1; then
        log "graphviz already installed ($(dot -V 2>&1 | head -n 1))"
        return 0
    fi
    log "installing graphviz (apt)"
    apt_install graphviz || return 1
    command -v dot >/dev/null 2>&1
}

peer_shells() {  # zsh and fish (Debian): tests/test_docs.py loads completions/ in each real shell
    if command -v zsh >/dev/null 2>&1 && command -v fish >/dev/null 2>&1; then
        log "zsh and fish already installed"
        return 0
    fi
    log "installing zsh, fish (apt)"
    apt_install zsh fish || return 1
    command -v zsh >/dev/null 2>&1 && command -v fish >/dev/null 2>&1
}

peer_chromium() {  # chromium + chromedriver (Debian): tests/output/test_flow_browser.py renders
    # `heptool flow -f html` in headless Chromium (through selenium, a test extra)
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        log "chromium already installed ($(/usr/bin/chromium --version 2>/dev/null | head -n 1))"
        return 0
    fi
    log "installing chromium, chromium-driver (apt)"
    apt_install chromium chromium-driver || return 1
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
}

ALL_PEERS=(hepjs tshark sngrep kamailio graphviz shells chromium)

main() {
    local failed=() peer
    local wanted=("$@")
    [ ${#wanted[@]} -eq 0 ] && wanted=("${ALL_PEERS[@]}")
    for peer in "${wanted[@]}"; do
        if ! declare -F "peer_$peer" >/dev/null; then
            log "unknown peer '$peer' (known: ${ALL_PEERS[*]})"
            failed+=("$peer")
        elif ! "peer_$peer"; then
            log "FAILED to install $peer"
            failed+=("$peer")
        fi
    done
    [ ${#failed[@]} -eq 0 ] || { log "not installed: ${failed[*]}"; return 1; }
}

main "$@"
