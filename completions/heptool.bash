# generated from heptool/cli by scripts/gen_docs.py; do not edit
# heptool tab completion for bash. Install: `source` it from ~/.bashrc, or copy it to
# ~/.local/share/bash-completion/completions/heptool (loaded at the first <Tab>).
# It asks the installed heptool for click's completion script when the shell loads it, so the
# script always matches the click that heptool runs with (~0.06 s, once per shell).
if command -v heptool >/dev/null 2>&1; then
    eval "$(_HEPTOOL_COMPLETE=bash_source heptool)"
fi
