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
from heptool.cli.exit import ExitStatus

__all__ = [
    "BINARY_FORMATS",
    "FILTERS",
    "FORMAT_HELP",
    "BadInputError",
    "BinaryToTerminalError",
    "build_filter",
    "complete_proto",
    "filter_options",
    "open_output",
    "output_options",
    "resolve_format",
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


def output_options(*formats: str, default: str = "auto",
                   help: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``-f/--format`` (one of ``formats``; ``help`` replaces the generated help text),
    ``-o/--output FILE`` and ``--color``."""
    help_text = help or (
        "Output format: " + "; ".join(f"{f}: {FORMAT_HELP.get(f, f)}" for f in formats) + ".")

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
def open_output(env: Environment, output: str | None, *, binary: bool,
                is_json: bool = False) -> Iterator[IO[Any]]:
    """The stream to write data to: ``env.stdout`` (or its bytes) or FILE.

    A file is opened only when the command is about to write, and closed (flushed) however
    the command ends, so a partial output is still valid up to its last complete record.
    ``is_json``: the output is JSON; on a terminal it goes through
    :class:`heptool.output.jsonl.TerminalJson` (DEL, C1, BiDi controls from packets spelled
    ``\\uXXXX``); to a pipe or a file it is written as encoded, byte for byte.
    """
    if output is None or output == "-":
        stream: IO[Any] = env.stdout_binary if binary else env.stdout
        if binary:
            env.stdout.flush()
        yielded: Any = stream
        if is_json and env.stdout_isatty:
            from heptool.output.jsonl import TerminalJson

            yielded = TerminalJson(stream)
        try:
            yield yielded
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


class BadInputError(click.ClickException):
    """Input that is not valid HEP (or pcap, or a record): exit status 3, one line."""

    exit_code = ExitStatus.BAD_INPUT


def complete_proto(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion for ``--proto LIST``: protocol type names after the last comma."""
    from click.shell_completion import CompletionItem

    from heptool.core.registry import PROTO_ALIASES, PROTO_TYPES

    head, sep, last = incomplete.rpartition(",")
    names = sorted({*PROTO_TYPES.values(), *PROTO_ALIASES})
    return [CompletionItem(head + sep + n) for n in names if n.startswith(last.lower())]


#: decode's message filters, in option order (heptool.core.filters.build_filter's arguments).
FILTERS = ("proto", "call_id", "grep", "src", "dst", "capture_id", "node", "since", "until")

_FILTER_HELP = {
    "proto": ("these protocol types: names or numbers, comma-separated (sip,log,rtcp,100,0x58). "
              "Repeatable."),
    "call_id": ("carrying this id: SIP Call-ID, correlation id (chunk 0x0011) or a value of "
                "OpenSIPS's chunk 0x0065. Repeatable."),
    "grep": "whose payload matches REGEX (Python syntax; (?i) ignores case).",
    "src": ("from ADDR: an address, ADDR:PORT, [V6]:PORT, a CIDR network or :PORT. Repeatable "
            "(any of them)."),
    "dst": "to ADDR (as --src).",
    "capture_id": "with this capture id (chunk 0x000c). Repeatable.",
    "node": "with this capture node name (chunk 0x0013). Repeatable.",
    "since": "at or after TIME (ISO 8601, e.g. 2026-11-26T09:00:00Z, or epoch seconds).",
    "until": "at or before TIME.",
}


def filter_options(*names: str, groups: bool = False,
                   capture_id_dest: str = "capture_id") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """decode's filters (``--proto --call-id --grep --src --dst --capture-id --node --since
    --until``, or the subset ``names``): one definition for every command.  ``groups=True``
    words the help for commands where they select whole groups (correlate); a command whose own
    ``--capture-id`` sets a value names the filter's parameter with ``capture_id_dest``.
    Build the predicate with :func:`build_filter`."""
    lead = "Groups with a message " if groups else "Only messages "
    defs: dict[str, dict[str, Any]] = {
        "proto": {"multiple": True, "metavar": "LIST", "shell_complete": complete_proto},
        "call_id": {"multiple": True, "metavar": "ID"},
        "grep": {"metavar": "REGEX", "default": None},
        "src": {"multiple": True, "metavar": "ADDR"},
        "dst": {"multiple": True, "metavar": "ADDR"},
        "capture_id": {"multiple": True, "type": click.IntRange(0, 0xFFFFFFFF), "metavar": "N"},
        "node": {"multiple": True, "metavar": "NAME"},
        "since": {"metavar": "TIME", "default": None},
        "until": {"metavar": "TIME", "default": None},
    }
    chosen = [n for n in FILTERS if not names or n in names]

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(chosen):
            text = _FILTER_HELP[name]
            if name == "proto":
                text = ("Groups with messages of " if groups else "Only ") + text
            else:
                text = lead + text
            dest = capture_id_dest if name == "capture_id" else name
            f = click.option("--" + name.replace("_", "-"), dest, help=text, **defs[name])(f)
        return f

    return decorator


def build_filter(opts: dict[str, Any], *, pop: bool = False,
                 capture_id_dest: str = "capture_id") -> Any:
    """The predicate for :func:`filter_options` values in ``opts`` (None: no selection); a
    bad value is a usage error.  ``pop`` removes them from ``opts``."""
    from heptool.core.filters import build_filter as core_filter

    get = opts.pop if pop else opts.get
    values = {}
    for name in FILTERS:
        v = get(capture_id_dest if name == "capture_id" else name, None)
        if v is not None:
            values[name] = v
    try:
        return core_filter(**values)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
