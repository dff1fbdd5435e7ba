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
from heptool.cli.progress import progress_bars

__all__ = [
    "BINARY_FORMATS",
    "FILTERS",
    "FORMAT_HELP",
    "V3_ONLY",
    "BadInputError",
    "BinaryToTerminalError",
    "ProblemPrinter",
    "build_filter",
    "build_message_filter",
    "build_rules",
    "complete_proto",
    "filter_options",
    "flag_name",
    "given",
    "group_filter_options",
    "message_filter_options",
    "message_from_options",
    "open_output",
    "output_options",
    "progress_bars",
    "read_payload",
    "reader_status",
    "resolve_format",
    "rule_options",
]

#: Formats whose product is bytes, never text.
BINARY_FORMATS = frozenset({"raw", "pcap", "pcapng", "hep"})

FORMAT_HELP = {
    "auto": "a table on a terminal, JSON Lines otherwise",
    "table": "aligned text, one line per message (times in UTC, or --localtime)",
    "jsonl": "JSON Lines, one record per message, flushed per line",
    "json": "one JSON array",
    "hex": "annotated hex dump, one field per line",
    "raw": "the HEP packets' bytes, back to back (refused on a terminal)",
    "pcap": "a pcap of Ethernet/IP/UDP frames carrying the HEP packets",
}


class BinaryToTerminalError(click.UsageError):
    """Binary output asked for while stdout is a terminal."""

    def __init__(self, what: str = "binary HEP", look: str = "or -f hex to look at it") -> None:
        super().__init__(f"refusing to write {what} to a terminal; use -o FILE or a pipe "
                         f"({look})")


def _set_color(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not ctx.resilient_parsing:
        env = ctx.ensure_object(Environment)
        env.color = value  # type: ignore[assignment]
    return value


def _set_view(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if not ctx.resilient_parsing and value is not None:
        setattr(ctx.ensure_object(Environment), param.name or "", value)
    return value


def view_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--width N`` and ``--localtime`` for commands with text views (stored on the
    :class:`~heptool.cli.env.Environment`: ``env.text_width``, ``env.localtime``)."""
    f = click.option(
        "--localtime", "localtime", is_flag=True, default=None, callback=_set_view,
        expose_value=False,
        help="Show clock times in text views in the local zone (default: UTC, marked as such).",
    )(f)
    f = click.option(
        "--width", "width", type=click.IntRange(min=40), default=None, callback=_set_view,
        expose_value=False, metavar="N",
        help="Width of text views in columns (default: $COLUMNS, else the terminal's; "
             "to a pipe or a file, unlimited: lines as long as their contents). Addresses "
             "and ports are never cut: columns are left out, text wraps.",
    )(f)
    return f


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


#: decode's message filters, in option order (heptool.analysis.filters.build_filter's arguments).
FILTERS = ("proto", "call_id", "method", "status", "grep", "src", "dst", "capture_id", "node",
           "since", "until")
#: option names whose build_filter argument has another name
_FILTER_ARGS = {"method": "methods", "status": "statuses"}

_FILTER_HELP = {
    "proto": ("these protocol types: names or numbers, comma-separated (sip,log,rtcp,100,0x58). "
              "Repeatable."),
    "call_id": ("carrying this id: SIP Call-ID, correlation id (chunk 0x0011) or a value of "
                "OpenSIPS's chunk 0x0065. Repeatable."),
    "method": ("with this METHOD: requests, and replies by their CSeq method; any case; plain "
               "SIP or OpenSIPS's JSON wrapping. '!OPTIONS' leaves them out instead (what is "
               "not SIP then passes). Comma-separated, repeatable: --method INVITE,BYE, "
               "--method '!OPTIONS'."),
    "status": ("with this STATUS: a reply code or class, comma-separated, repeatable "
               "(--status 486, --status 4xx,5xx; '!1xx' leaves them out). With --method "
               "INVITE: the replies to INVITEs."),
    "grep": "whose payload matches REGEX (Python syntax; (?i) ignores case).",
    "src": ("from ADDR: an address, ADDR:PORT, [V6]:PORT, a CIDR network or :PORT. Repeatable "
            "(any of them)."),
    "dst": "to ADDR (as --src).",
    "capture_id": "with this capture id (chunk 0x000c). Repeatable.",
    "node": "with this capture node name (chunk 0x0013). Repeatable.",
    "since": ("at or after TIME (ISO 8601, e.g. 2026-11-26T09:00:00Z, or epoch seconds; a time "
              "without a zone is UTC). HEPv1 (no time of its own) is matched by its capture "
              "frame's time."),
    "until": "at or before TIME (as --since).",
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
        "method": {"multiple": True, "metavar": "METHOD"},
        "status": {"multiple": True, "metavar": "STATUS"},
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
            elif name in ("method", "status"):
                text = ("Groups with a SIP message " if groups else "Only SIP messages ") + text
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
    from heptool.analysis.filters import build_filter as core_filter

    get = opts.pop if pop else opts.get
    values = {}
    for name in FILTERS:
        v = get(capture_id_dest if name == "capture_id" else name, None)
        if v is not None:
            values[_FILTER_ARGS.get(name, name)] = v
    try:
        return core_filter(**values)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


# ---------------------------------------------------------------------------
# the message filters of listen and send
# ---------------------------------------------------------------------------
def message_filter_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """decode's filters (or the subset ``names``) for listen and send; their ``--capture-id``
    filter is stored as ``capture_id_is`` (send's own ``--capture-id`` rewrites packets)."""
    return filter_options(*names, capture_id_dest="capture_id_is")


def build_message_filter(opts: dict[str, Any]) -> Any:
    """The predicate for :func:`message_filter_options` values, popped from ``opts`` (None:
    none)."""
    return build_filter(opts, pop=True, capture_id_dest="capture_id_is")


# ---------------------------------------------------------------------------
# a MessageReader's problems on stderr
# ---------------------------------------------------------------------------
class ProblemPrinter:
    """``on_problem`` for :class:`heptool.pipeline.reader.MessageReader`: each problem as
    an ``Error:``/``Warning:`` line on stderr; with ``strict`` the first bad packet stops
    with exit status 3.  ``quiet``: print nothing (a second pass over the same inputs)."""

    def __init__(self, env: Environment, strict: bool, *, quiet: bool = False) -> None:
        self.env = env
        self.strict = strict
        self.quiet = quiet

    def __call__(self, problem: Any) -> None:
        if self.strict and problem.bad:
            raise BadInputError(problem.text)
        if self.quiet:
            return
        line = problem.text if problem.level == "note" else (
            ("Warning: " if problem.level == "warning" else "Error: ") + problem.text)
        err = self.env.stderr
        err.write(" ".join(line.split()) + "\n")
        err.flush()


def reader_status(reader: Any) -> int:
    """The exit status of a reader's run: 3 bad input, 1 an input could not be read."""
    if reader.bad:
        return ExitStatus.BAD_INPUT
    if reader.error:
        return ExitStatus.ERROR
    return ExitStatus.OK


# ---------------------------------------------------------------------------
# correlate and flow: group filters and linking rules
# ---------------------------------------------------------------------------
def group_filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--port`` and decode's filters, which here select the groups that have at least one
    matching message (correlate and flow)."""
    f = filter_options(groups=True)(f)
    return click.option("--port", type=click.IntRange(0, 65535), default=None,
                        help="Captures: only HEP to or from this UDP/TCP port (default: any).")(f)


def rule_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--link-header``, ``--b2b-pattern``, ``--no-infer`` and ``--strict``."""
    opts = [
        click.option("--link-header", "link_header", multiple=True, metavar="NAME[;PARAM]",
                     help="Also link SIP messages that carry the same value of this header "
                          "(Session-ID, X-Leg-ID; P-Charging-Vector means its icid-value). "
                          "Repeatable."),
        click.option("--b2b-pattern", "b2b_pattern", multiple=True, metavar="PATTERN",
                     help="Link B2BUA legs whose Call-ID is made from the A-leg's: PREFIX*, "
                          "*SUFFIX ('*' = the A-leg Call-ID: '*_b2b-1', 'b2b-*') or re:REGEX "
                          "(group 1 = the A-leg Call-ID). Repeatable."),
        click.option("--no-infer", "no_infer", is_flag=True,
                     help="Do not infer OpenSIPS connection links from addresses and ports "
                          "(homer5 mode); only what the packets say."),
        click.option("--strict", is_flag=True,
                     help="Stop at the first bad packet (exit status 3)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_rules(opts: dict[str, Any]) -> Any:
    """The linking rules of :func:`rule_options` values; a bad one is a usage error."""
    from heptool.analysis.extract import Rules

    try:
        return Rules(headers=opts["link_header"], b2b=opts["b2b_pattern"])
    except ValueError as e:
        raise click.UsageError(str(e)) from None


# ---------------------------------------------------------------------------
# one packet from options (encode and send)
# ---------------------------------------------------------------------------
#: Packet options only HEPv3 can carry.
V3_ONLY = ("node_name", "auth_key", "correlation_id", "compress", "chunks")


def flag_name(name: str) -> str:
    """The option of parameter ``name`` (``chunks`` -> ``--chunk``)."""
    return {"chunks": "--chunk", "version": "--hep-version", "compress": "--compress"}.get(
        name, "--" + name.replace("_", "-")
    )


def given(opts: dict[str, Any], name: str) -> bool:
    """Was option ``name`` given (chunks: any)?"""
    v = opts.get(name)
    return bool(v) if name == "chunks" else v is not None


def read_payload(env: Environment, spec: str | None) -> bytes:
    """``--payload``: TEXT as given, @FILE a file's bytes, - standard input (None: empty)."""
    if spec is None:
        return b""
    if spec == "-":
        return env.stdin_binary.read()
    if spec.startswith("@") and len(spec) > 1:
        try:
            with open(spec[1:], "rb") as f:
                return f.read()
        except OSError as e:
            raise click.BadParameter(
                f"cannot read {spec[1:]}: {e.strerror or e}", param_hint="'--payload'"
            ) from None
    return spec.encode("utf-8")


def message_from_options(env: Environment, opts: dict[str, Any]) -> Any:
    """One message from the packet options (encode's defaults); used by ``heptool send`` too."""
    from heptool.core.codec import encode
    from heptool.core.errors import HepError
    from heptool.core.message import HepMessage
    from heptool.pipeline.build import apply_chunks, loopback_like, now

    version = int(opts["version"] or 3)
    if version != 3:
        bad = [n for n in V3_ONLY if given(opts, n)]
        if bad:
            raise click.UsageError(
                f"HEPv{version} has no chunks: {flag_name(bad[0])} needs --hep-version 3"
            )
        if version == 1 and given(opts, "capture_id"):
            raise click.UsageError("HEPv1 has no capture id: --capture-id needs --hep-version 2 or 3")
        if opts["proto"] not in (None, 1):
            from heptool.core.registry import PROTO_TYPES

            name = PROTO_TYPES.get(opts["proto"], str(opts["proto"]))
            raise click.UsageError(f"--proto {name}: HEPv{version} carries SIP only (it has no "
                                   "protocol type); use --hep-version 3")
    src = opts["src"] or ("127.0.0.1", 5060)
    dst = opts["dst"] or (loopback_like(src[0]), 5060)
    if (":" in src[0]) != (":" in dst[0]):
        raise click.UsageError("--src and --dst must both be IPv4 or both IPv6")
    ts = opts["time"] or now()
    try:
        m = HepMessage(
            version=version,
            ip_proto=opts["ip_proto"] if opts["ip_proto"] is not None else 17,
            src_ip=src[0],
            src_port=src[1],
            dst_ip=dst[0],
            dst_port=dst[1],
            ts_sec=ts[0],
            ts_usec=ts[1],
            proto_type=opts["proto"] if opts["proto"] is not None else 1,
            capture_id=opts["capture_id"] if opts["capture_id"] is not None else 1,
            node_name=opts["node_name"],
            auth_key=opts["auth_key"],
            correlation_id=opts["correlation_id"],
            payload=read_payload(env, opts["payload"]),
            compression=opts["compress"],
        )
        apply_chunks(m, opts["chunks"])
        encode(m)  # a value no packet can carry is a usage error, before any output
    except HepError as e:
        raise click.UsageError(str(e)) from None
    return m
