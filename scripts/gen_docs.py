#!/usr/bin/env python3
"""Regenerate man/ and completions/ from the click CLI. Deterministic; dev-only (not shipped).

    python scripts/gen_docs.py [--out DIR]      # DIR defaults to the repository root

Writes DIR/man/heptool.1 plus DIR/man/heptool-<command>.1 for every subcommand (click-man,
then EXIT STATUS, EXAMPLES and SEE ALSO appended), and DIR/completions/heptool.{bash,zsh,fish}
(click's own completion shims). Stale heptool*.1 pages in DIR/man are removed. Output depends
only on the source tree and the installed click/click-man: the date is a constant, not the clock.
tests/test_docs.py regenerates into a temporary directory and fails on any difference.
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
from click.shell_completion import get_completion_class
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
    out = [f'.\\" {HEADER}', body.rstrip("\n")]

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
        source = get_completion_class(shell)(cli, {}, PROG, COMPLETE_VAR).source()
        lines = source.rstrip("\n").split("\n")
        # zsh needs "#compdef" on the very first line, so the notice goes after it there.
        at = 1 if lines and lines[0].startswith("#compdef") else 0
        lines.insert(at, f"# {HEADER}")
        path = comp_dir / f"{PROG}.{shell}"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
        written.append(path)
    return written


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
