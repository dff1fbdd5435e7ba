"""Option bundles shared by commands (sqlite-utils style decorators) and output plumbing.

    @click.command("decode")
    @output_options("auto", "table", "jsonl", "json", "hex", "raw")
    @pass_env
    def decode_command(env, fmt, output, ...):
        fmt = resolve_format(fmt, env, output)          # auto -> table on a TTY, else jsonl
        with open_output(env, output, binary=fmt in BINARY_FORMATS) as out:
            ...

Rules (README "Conventions"): stdout carries data only; binary output (raw HEP, pcap) is
refused on a terminal; ``-o FILE`` counts as "not a terminal"; ``--color`` sets how rich
colours stderr/table output (NO_COLOR and FORCE_COLOR are honoured by rich).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import click

from heptool.cli.env import Environment

__all__ = [
    "BINARY_FORMATS",
    "FORMAT_HELP",
    "output_options",
    "resolve_format",
    "open_output",
    "BinaryToTerminalError",
]

#: Formats whose product is bytes, never text.
BINARY_FORMATS = frozenset({"raw", "pcap", "pcapng", "hep"})

FORMAT_HELP = {
    "auto": "a table on a terminal, JSON Lines otherwise",
    "table": "a rich table (one row per message)",
    "jsonl": "JSON Lines, one record per message, flushed per line",
    "json": "one JSON array",
    "hex": "annotated hex dump, one field per line",
    "raw": "the HEP packets' bytes, back to back (refused on a terminal)",
    "pcap": "a pcap of Ethernet/IP/UDP frames carrying the HEP packets",
}


class BinaryToTerminalError(click.UsageError):
    """Binary output asked for while stdout is a terminal."""

    def __init__(self, what: str = "binary HEP") -> None:
        super().__init__(f"refusing to write {what} to a terminal; use -o FILE or a pipe "
                         "(or -f hex to look at it)")


def _set_color(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not ctx.resilient_parsing:
        env = ctx.ensure_object(Environment)
        env.color = value  # type: ignore[assignment]
    return value


def output_options(*formats: str, default: str = "auto") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``-f/--format`` (one of ``formats``), ``-o/--output FILE`` and ``--color``."""
    help_text = "Output format: " + "; ".join(f"{f}: {FORMAT_HELP.get(f, f)}" for f in formats) + "."

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--color", type=click.Choice(["auto", "always", "never"]), default=None,
            callback=_set_color, expose_value=False, is_eager=True,
            help="Colour terminal output: auto (default; honours NO_COLOR), always, never.",
        )(f)
        f = click.option(
            "-o", "--output", "output", type=click.Path(dir_okay=False, allow_dash=True),
            default=None, metavar="FILE", help="Write to FILE instead of standard output ('-' = stdout).",
        )(f)
        f = click.option(
            "-f", "--format", "fmt", type=click.Choice(list(formats)), default=default,
            show_default=True, help=help_text,
        )(f)
        return f

    return decorator


def resolve_format(fmt: str, env: Environment, output: str | None, *, tty: str = "table",
                   pipe: str = "jsonl") -> str:
    """``auto`` -> ``tty`` when the output is a terminal, else ``pipe``; binary formats are
    refused on a terminal (:class:`BinaryToTerminalError`)."""
    to_terminal = (output is None or output == "-") and bool(env.stdout_isatty)
    if fmt == "auto":
        return tty if to_terminal else pipe
    if fmt in BINARY_FORMATS and to_terminal:
        raise BinaryToTerminalError("pcap" if fmt.startswith("pcap") else "binary HEP")
    return fmt


@contextlib.contextmanager
def open_output(env: Environment, output: str | None, *, binary: bool) -> Iterator[IO[Any]]:
    """The stream to write data to: ``env.stdout`` (or its bytes) or FILE.

    A file is opened only when the command is about to write, and closed (flushed) however
    the command ends, so a partial output is still valid up to its last complete record.
    """
    if output is None or output == "-":
        stream: IO[Any] = env.stdout_binary if binary else env.stdout
        if binary:
            env.stdout.flush()
        try:
            yield stream
        finally:
            with contextlib.suppress(Exception):
                stream.flush()
        return
    mode = "wb" if binary else "w"
    try:
        f = open(output, mode, encoding=None if binary else "utf-8")  # noqa: SIM115
    except OSError as e:
        raise click.FileError(output, hint=e.strerror or str(e)) from None
    try:
        yield f
    finally:
        f.close()


def stderr_echo(env: Environment, message: str) -> None:
    """One line to stderr (diagnostics, counts, warnings: never data)."""
    print(message, file=env.stderr if env.stderr is not None else sys.stderr, flush=True)
