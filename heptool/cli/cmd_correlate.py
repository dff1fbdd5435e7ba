"""``heptool correlate``: one graph of every id in the input, and the groups it makes.

Top-level imports stay light (click and the CLI helpers): this module is imported for every
``heptool --help`` and shell TAB press.  The reader, the core graph and the renderers are
imported when the command runs.  :class:`Reader` and :func:`filter_options` are shared with
``heptool flow``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import IO, Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.exit import ExitStatus
from heptool.cli.options import (
    BadInputError,
    build_filter,
    open_output,
    output_options,
    resolve_format,
)
from heptool.cli.options import filter_options as _filter_options

__all__ = ["Reader", "build_graph", "correlate_command", "filter_options", "rule_options"]

FORMATS = ("auto", "table", "json", "dot", "mermaid")

EPILOG = """\
\b
Examples:
  heptool correlate capture.pcap                   # a tree per group on a terminal
  heptool correlate capture.pcap -f json | jq '.groups[] | {id, label, kinds}'
  heptool correlate --call-id abc@host capture.pcap   # only the group(s) of that call
  heptool correlate --b2b-pattern '*_b2b-1' --link-header P-Charging-Vector x.pcap
  heptool correlate --group 3 -f dot x.pcap | dot -Tsvg -o group3.svg
  heptool correlate -f mermaid --proto mi x.pcap
  heptool encode --scenario opensips --opensips-mode homer5 | heptool correlate -f json

\b
Exit status: 0 all input read; 2 bad command line; 3 some input was not valid HEP (each
bad packet is reported on stderr; --strict stops at the first); 1 an input could not be
read.
"""


def filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--port`` and decode's filters, which here select the groups that have at least one
    matching message (shared with ``heptool flow``)."""
    f = _filter_options(groups=True)(f)
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
    from heptool.core.extract import Rules

    try:
        return Rules(headers=opts["link_header"], b2b=opts["b2b_pattern"])
    except ValueError as e:
        raise click.UsageError(str(e)) from None


class Reader:
    """The HEP messages of the inputs, in order, with decode's index; bad packets reported
    on stderr (``--strict``: the first one stops with exit status 3)."""

    def __init__(self, env: Environment, sources: list[str], *, port: int | None,
                 strict: bool) -> None:
        self.env = env
        self.sources = sources
        self.port = port
        self.strict = strict
        self.bad = False
        self.error = False

    def say(self, line: str) -> None:
        self.env.stderr.write(" ".join(line.split()) + "\n")
        self.env.stderr.flush()

    def _bad(self, text: str, *, warning: bool = False) -> None:
        if self.strict:
            raise BadInputError(text)
        self.say(("Warning: " if warning else "Error: ") + text)
        self.bad = True

    def messages(self) -> Iterator[tuple[int, Any]]:
        """(index, message) for every good HEP message of every input.

        With several inputs the index counts on from one input to the next (the position
        the message would have in the inputs concatenated)."""
        from heptool.capture.inputs import InputError, iter_input, to_message
        from heptool.capture.pcap import CaptureError
        from heptool.core.codec import decode
        from heptool.core.errors import HepError

        offset = 0
        strict = self.strict
        for source in self.sources:
            name = "<stdin>" if source == "-" else source
            prefix = f"{name}: " if len(self.sources) > 1 else ""
            f: Any = None
            if source != "-":
                try:
                    f = open(source, "rb", buffering=1 << 16)  # noqa: SIM115
                except OSError as e:
                    self.say(f"Error: {e.strerror or e}: {source}")
                    self.error = True
                    continue
            it = None
            p = None
            several = len(self.sources) > 1
            try:
                it = iter_input(f if f is not None else source, stdin=self.env.stdin_binary,
                                port=self.port, strict=strict)
                for p in it:
                    index, _fr, _ln, _off, _tr, _src, _dst, _ts, data, rec, _err = p
                    try:
                        m = decode(data, strict) if data is not None else to_message(p, strict)
                    except HepError as e:
                        self._bad(prefix + str(e if data is None else e.with_context(p.where)))
                        continue
                    if m._warnings:
                        for w in m._warnings:
                            self._bad(prefix + str(w.with_context(p.where)), warning=True)
                    if rec is not None and not several:
                        i = rec.get("index", index)
                        if isinstance(i, int) and not isinstance(i, bool):
                            index = i
                    yield offset + index, m
            except InputError as e:
                self._bad(str(e))
            except CaptureError as e:
                self._bad(f"{name}: {e}")
            except HepError as e:
                self._bad(f"{name}: {e}")
            finally:
                if it is not None:
                    it.close()
                if f is not None:
                    f.close()
            if p is not None:
                offset += p.index + 1

    @property
    def status(self) -> int:
        if self.bad:
            return ExitStatus.BAD_INPUT
        if self.error:
            return ExitStatus.ERROR
        return ExitStatus.OK


def build_graph(reader: Reader, rules: Any, *, infer: bool, match: Any = None,
                keep: Callable[[int, Any], None] | None = None) -> tuple[Any, list[int]]:
    """(the graph of every message the reader yields, positions of the messages ``match``
    selects).  ``keep(position, message)`` is called for each message when given."""
    from heptool.core.correlate import CorrelationGraph
    from heptool.core.extract import extract

    graph = CorrelationGraph(rules, infer=infer)
    add = graph.add_extract
    matched: list[int] = []
    # The graph is made of many small acyclic objects that live to the end: the cyclic
    # garbage collector would scan them again and again for nothing (~20 % of the run).
    enabled = gc.isenabled()
    gc.disable()
    try:
        for index, m in reader.messages():
            pos = add(extract(m, rules), m, index)
            if match is not None and match(m):
                matched.append(pos)
            if keep is not None:
                keep(pos, m)
        graph.groups()
    finally:
        if enabled:
            gc.enable()
    return graph, matched


def select_groups(graph: Any, match: Any, matched: list[int], group_ids: tuple[int, ...]) -> list:
    groups = graph.groups()
    if match is not None:
        wanted = sorted({graph.group_of(p).id for p in matched})
        groups = [groups[i] for i in wanted]
    if group_ids:
        ids = set(group_ids)
        groups = [g for g in groups if g.id in ids]
    return groups


@click.command("correlate", epilog=EPILOG,
               short_help="Group every message by the ids that link them (calls, connections...).")
@click.argument("inputs", nargs=-1, metavar="[INPUT]...",
                type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@output_options(*FORMATS, help="Output format: auto (table on a terminal, json otherwise); table: a tree "
                   "per group; json: one document {groups, edges, dangling}; dot: Graphviz; "
                   "mermaid: a Mermaid flowchart (dot and mermaid draw the id graph).")
@click.option("--group", "group_ids", multiple=True, type=click.IntRange(min=0), metavar="N",
              help="Only group N (the ids correlate gives, from 0 in input order). Repeatable.")
@filter_options
@rule_options
@pass_env
def correlate_command(env: Environment, inputs: tuple[str, ...], fmt: str, output: str | None,
                      group_ids: tuple[int, ...], **opts: Any) -> None:
    """Correlate every HEP message by the ids it carries, and print the groups.

    Every message (SIP, OpenSIPS xlog, REST, connection events, MI and correlate()
    packets, logs, RTCP and QoS reports) is joined to the others through its ids: the SIP
    Call-ID of the payload, chunk 0x0011 (internal correlation id), each key/value of
    OpenSIPS's chunk 0x0065, the X-CID header, --link-header values and --b2b-pattern
    legs. In OpenSIPS's homer5 mode the connection id is not on the wire: SIP over
    TCP/TLS/WS is linked to the connection events with the same addresses, ports and ip
    proto during the connection's lifetime, and such edges are marked inferred. A value
    that matches nothing is reported as dangling, never guessed.

    Each group has every message of one call (or connection, or MI exchange) and how they
    are linked. INPUT is what 'heptool decode' reads (pcap, pcapng, HEP stream, JSON
    Lines; gzip'd too; '-' or nothing = stdin). Indices are decode's. The filters select
    the groups that have a matching message.
    """
    match = build_filter(opts)
    rules = build_rules(opts)
    fmt = resolve_format(fmt, env, output, tty="table", pipe="json")
    reader = Reader(env, list(inputs) or ["-"], port=opts["port"], strict=opts["strict"])
    graph, matched = build_graph(reader, rules, infer=not opts["no_infer"], match=match)
    groups = select_groups(graph, match, matched, group_ids)
    with open_output(env, output, binary=fmt == "json", is_json=fmt == "json") as out:
        _write(env, graph, groups, fmt, out, output)
    if reader.status != ExitStatus.OK:
        click.get_current_context().exit(reader.status)


def _write(env: Environment, graph: Any, groups: list, fmt: str, out: IO[Any],
           output: str | None) -> None:
    if fmt == "json":
        from heptool.output.graph import write_json

        every = len(groups) == len(graph.groups())
        write_json(graph, None if every else groups, out)
        return
    if fmt == "dot":
        from heptool.output.graph import render_dot

        out.write(render_dot(graph, groups))
        return
    if fmt == "mermaid":
        from heptool.output.graph import render_mermaid

        out.write(render_mermaid(graph, groups))
        return
    from heptool.output.graph import render_tree

    console = env.console if out is env.stdout else env._make_console(out, False)
    if not groups:
        env.stderr.write("no groups" + ("" if len(graph) else " (no HEP messages)") + "\n")
        return
    render_tree(graph, groups, console)
    n = len(graph)
    console.print(f"[dim]{len(groups)} of {len(graph.groups())} groups, {n} message"
                  f"{'s' if n != 1 else ''}[/dim]")
