#!/usr/bin/env python3
"""Regenerate man/ and completions/ from the click CLI. Deterministic; dev-only (not shipped).

    python scripts/gen_docs.py [--out DIR]      # DIR defaults to the repository root

Writes DIR/man/heptool.1 plus DIR/man/heptool-<command>.1 for every subcommand (click-man,
then EXIT STATUS, EXAMPLES and SEE ALSO appended), and DIR/completions/heptool.{bash,zsh,fish}.
Stale heptool*.1 pages in DIR/man are removed. The date is a constant, not the clock.

The completion files are our own three-line loaders, not a copy of click's script: each asks
the installed heptool for click's script when the shell loads it (``_HEPTOOL_COMPLETE=
bash_source heptool``). click's script and click's completion protocol change together between
releases (8.5 changed fish's), so a copy committed from one click breaks under another; the
loader always matches the click heptool runs with, and its own text depends on nothing installed.

The man pages do depend on the installed click and click-man (they format usage and options),
and say which versions made them in their first line. tests/test_docs.py regenerates into a
temporary directory: completions must match byte for byte; man pages must match byte for byte
when the installed click and click-man are the ones named there, and must always name every
command, option, choice and example (so a new click release cannot break the suite).
"""

from __future__ import annotations

import argparse
import calendar
import copy
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document this checkout, not whatever heptool is installed

import click
from click_man.core import generate_man_page

import heptool
from heptool.cli import cli
from heptool.cli.exit import ExitStatus

PROG = "heptool"
COMPLETE_VAR = "_HEPTOOL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
#: The man pages' date. A constant so that regenerating is byte-identical; bump it on release.
DOCS_DATE = "2026-11-26"
HEADER = "generated from heptool/cli by scripts/gen_docs.py; do not edit"


def _tool_versions() -> str:
    from importlib.metadata import version

    return f"click {version('click')}, click-man {version('click-man')}"


#: What formatted the man pages; their first line names it (tests/test_docs.py reads it back).
MAN_TOOLS = _tool_versions()


def roff_escape(text: str) -> str:
    """Escape text for a roff line: backslashes, hyphens, and control characters at line start."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def epilog_examples(command: click.Command) -> list[str]:
    """The example lines of a command's epilog, without click's \\b marker or 'Examples:'."""
    lines = [line for line in (command.epilog or "").splitlines() if line.strip() != "\b"]
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].strip().lower().rstrip(":") == "examples":
        lines.pop(0)
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return [line[cut:].rstrip() for line in lines]


def walk(command: click.Command, ctx: click.Context):
    """Yield (ctx, command) for the command and every subcommand, depth first, sorted."""
    yield ctx, command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from walk(
                sub, click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
            )


def materialized(group: click.Group, ctx: click.Context) -> click.Group:
    """A copy of a lazy group with every subcommand loaded into ``.commands``.

    click-man builds the COMMANDS section from ``group.commands``, which a LazyGroup leaves
    empty. Copying keeps the real ``cli`` object untouched.
    """
    clone = copy.copy(group)
    clone.commands = {}
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            clone.commands[name] = sub
    return clone


def man_page(ctx: click.Context, siblings: list[str], children: list[str]) -> str:
    command = ctx.command
    page_ctx = ctx
    if isinstance(command, click.Group):
        page_ctx = click.Context(
            materialized(command, ctx), info_name=ctx.info_name, parent=ctx.parent
        )
    body = generate_man_page(page_ctx, version=heptool.__version__, date=DOCS_DATE)
    # click's "\b" (keep this paragraph unwrapped) marker is meaningless in roff.
    body = "\n".join(line for line in body.split("\n") if line.strip() != "\b")
    out = [f'.\\" {HEADER} ({MAN_TOOLS})', body.rstrip("\n")]

    out.append('.SH "EXIT STATUS"')
    for status in ExitStatus:
        out += [".TP", f"\\fB{int(status)}\\fP", roff_escape(status.description)]

    examples = epilog_examples(command)
    if any(line.strip() for line in examples):
        out += [".SH EXAMPLES", ".nf", ".RS"]
        out += [roff_escape(line) if line else "" for line in examples]
        out += [".RE", ".fi"]

    see_also = [page for page in (siblings + children) if page != page_name(ctx)]
    if see_also:
        out += ['.SH "SEE ALSO"', ", ".join(f"\\fB{roff_escape(p)}\\fP(1)" for p in see_also)]
    return "\n".join(out) + "\n"


def page_name(ctx: click.Context) -> str:
    return ctx.command_path.replace(" ", "-")


def generate(out_dir: Path) -> list[Path]:
    """Write man pages and completion scripts under ``out_dir``; return the paths written."""
    # click-man reads SOURCE_DATE_EPOCH for its default date; pin it to DOCS_DATE too.
    epoch = calendar.timegm(time.strptime(DOCS_DATE, "%Y-%m-%d"))
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)

    written: list[Path] = []
    man_dir = out_dir / "man"
    man_dir.mkdir(parents=True, exist_ok=True)
    # With the group's context_settings, as click.main would; without them click caches a
    # help option lacking "-h" on the command object.
    root_ctx = click.Context(cli, info_name=PROG, **cli.context_settings)
    contexts = list(walk(cli, root_ctx))
    all_pages = [page_name(ctx) for ctx, _ in contexts]
    for ctx, _command in contexts:
        parent_page = [page_name(ctx.parent)] if ctx.parent is not None else []
        siblings = parent_page + [
            page_name(other)
            for other, _ in contexts
            if ctx.parent is not None and other.parent is ctx.parent
        ]
        children = [page_name(c) for c, _ in contexts if c.parent is ctx]
        path = man_dir / f"{page_name(ctx)}.1"
        path.write_text(man_page(ctx, siblings, children), encoding="utf-8", newline="\n")
        written.append(path)
    for stale in sorted(man_dir.glob(f"{PROG}*.1")):
        if stale.stem not in all_pages:
            stale.unlink()

    comp_dir = out_dir / "completions"
    comp_dir.mkdir(parents=True, exist_ok=True)
    for shell in SHELLS:
        path = comp_dir / f"{PROG}.{shell}"
        path.write_text(COMPLETION_LOADERS[shell], encoding="utf-8", newline="\n")
        written.append(path)
    return written


_LOADER_NOTE = f"""\
# {HEADER}
# heptool tab completion for {{shell}}. {{install}}
# It asks the installed heptool for click's completion script when the shell loads it, so the
# script always matches the click that heptool runs with (~0.06 s, once per shell).
"""

#: The completion files: loaders of click's script (see the module docstring for why).
COMPLETION_LOADERS = {
    "bash": _LOADER_NOTE.format(
        shell="bash",
        install="Install: `source` it from ~/.bashrc, or copy it to\n"
        "# ~/.local/share/bash-completion/completions/heptool (loaded at the first <Tab>).",
    )
    + f"""\
if command -v {PROG} >/dev/null 2>&1; then
    eval "$({COMPLETE_VAR}=bash_source {PROG})"
fi
""",
    "zsh": "#compdef heptool\n"
    + _LOADER_NOTE.format(
        shell="zsh",
        install="Install: `source` it from ~/.zshrc after compinit, or copy it\n"
        "# as _heptool into a directory on $fpath (loaded at the first <Tab>).",
    )
    + f"""\
if (( $+commands[{PROG}] )); then
    if [[ ${{zsh_eval_context[-1]}} == loadautofunc ]]; then
        eval "$({COMPLETE_VAR}=zsh_source {PROG})"
        _{PROG}_completion "$@"
    else
        eval "$({COMPLETE_VAR}=zsh_source {PROG})"
    fi
fi
""",
    "fish": _LOADER_NOTE.format(
        shell="fish",
        install="Install: copy it to ~/.config/fish/completions/heptool.fish\n"
        "# (loaded at the first <Tab>).",
    )
    + f"""\
if type -q {PROG}
    env {COMPLETE_VAR}=fish_source {PROG} | source
end
""",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT, help="directory to write man/ and completions/ into"
    )
    args = parser.parse_args(argv)
    for path in generate(args.out):
        try:
            print(path.relative_to(args.out))
        except ValueError:
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
