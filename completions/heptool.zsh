#compdef heptool
# generated from heptool/cli by scripts/gen_docs.py; do not edit
# heptool tab completion for zsh. Install: `source` it from ~/.zshrc after compinit, or copy it
# as _heptool into a directory on $fpath (loaded at the first <Tab>).
# It asks the installed heptool for click's completion script when the shell loads it, so the
# script always matches the click that heptool runs with (~0.06 s, once per shell).
if (( $+commands[heptool] )); then
    if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
        eval "$(_HEPTOOL_COMPLETE=zsh_source heptool)"
        _heptool_completion "$@"
    else
        eval "$(_HEPTOOL_COMPLETE=zsh_source heptool)"
    fi
fi
