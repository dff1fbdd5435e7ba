# generated from heptool/cli by scripts/gen_docs.py; do not edit
# heptool tab completion for fish. Install: copy it to ~/.config/fish/completions/heptool.fish
# (loaded at the first <Tab>).
# It asks the installed heptool for click's completion script when the shell loads it, so the
# script always matches the click that heptool runs with (~0.06 s, once per shell).
if type -q heptool
    env _HEPTOOL_COMPLETE=fish_source heptool | source
end
