"""``heptool flow``: the call flow of one correlation group, as a ladder.

Top-level imports stay light (click and the CLI helpers); the reader, the graph and the
renderers are imported when the command runs.  The group is found with the same graph
(and the same options) as ``heptool correlate``, so ``--group N`` is correlate's group N.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.exit import ExitStatus
from heptool.cli.options import (
    ProblemPrinter,
    build_filter,
    build_rules,
    filter_options,
    open_output,
    output_options,
    progress_bars,
    reader_status,
    rule_options,
    view_options,
)
from heptool.cli.params import parse_alias

__all__ = ["flow_command"]

FORMATS = ("auto", "text", "svg", "html")

EPILOG = """\
\b
Examples:
  heptool flow capture.pcap --call-id a84b4c76e66710@pc33
  heptool flow capture.pcap --group 4 --hide log,mi
  heptool flow capture.pcap --group 4 --full          # every message under its arrow
  heptool flow capture.pcap --group 4 --message 33   # only message 33 (the # column), in full
  heptool flow capture.pcap --group 4 --method '!OPTIONS'   # no keepalives drawn
  heptool flow capture.pcap --group 4 --alias 127.0.0.1:5060=OpenSIPS --alias 10.0.0.1=Edge
  heptool flow capture.pcap --group 4 --alias Proxy=127.0.0.1:5060,127.0.0.1:37115
  heptool flow capture.pcap --call-id abc@host -f svg -o call.svg
  heptool flow capture.pcap --call-id abc@host -f html -o call.html
  heptool correlate capture.pcap               # to find the group numbers

\b
Exit status: 0 the flow was drawn; 1 no group has that id or number; 2 bad command line;
3 some input was not valid HEP, or a capture held no HEP at all (reported on stderr).

\b
Times are UTC (the header says so) unless --localtime. Text goes as wide as it needs outside
a terminal (a pipe, a file, -o), so no address or port is ever cut; on a terminal column
labels wrap instead. TLS key material that OpenSIPS puts in its net events (master-key) is
shown as [redacted] in every format, unless --show-secrets.
"""


class NotFoundError(click.ClickException):
    """No group matches --call-id / --group: exit status 1."""

    exit_code = ExitStatus.ERROR


def _regular(path: str) -> bool:
    try:
        return path != "-" and stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _check_hide(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse --hide entries that name no kind (exit 2), listing the known ones."""
    from heptool.output.flow import HIDE_KINDS, unknown_kinds

    bad = unknown_kinds(value.split(","))
    if bad:
        what = "unknown kind" + ("s " if len(bad) > 1 else " ") + ", ".join(map(repr, bad))
        raise click.BadParameter(f"{what}; known: {', '.join(sorted(HIDE_KINDS))}.",
                                 ctx=ctx, param=param)
    return value


@click.command("flow", epilog=EPILOG,
               short_help="Draw the call flow of one group: SIP ladder plus logs, REST, net, MI.")
@click.argument("inputs", nargs=-1, metavar="[INPUT]...",
                type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--call-id", "call_id", metavar="ID", default=None,
              help="The group of the message(s) carrying this id: SIP Call-ID, chunk 0x0011 "
                   "or a chunk 0x0065 value.")
@click.option("--group", "group_id", type=click.IntRange(min=0), default=None, metavar="N",
              help="Group N, as 'heptool correlate' numbers them (same options, same numbers).")
@click.option("--alias", "aliases", multiple=True, metavar="NAME=ENDPOINT[,ENDPOINT...]",
              callback=parse_alias,
              help="Name endpoints: Proxy=10.0.0.1:5060,10.0.0.1:5080 gives both one name and "
                   "one column (as sngrep's alias); Edge=10.0.0.1 names an address (any port: "
                   "Edge:5060, Edge:5061 when it has several). ENDPOINT=NAME works too. "
                   "Repeatable. Without it, a capture agent's node name (chunk 0x0013) names "
                   "its own address, else the column is address:port.")
@click.option("--hide", "hide", default="", metavar="KINDS", callback=_check_hide,
              help="Kinds to leave out, comma-separated: log (xlog and log lines), rest, net, "
                   "mi, control, rtcp, qos, sip, or a precise kind (rest_reply).")
@click.option("--full", "full", is_flag=True,
              help="Text: show each message in full (headers and SDP) under its row. The HTML "
                   "page always has them (click a row).")
@click.option("--message", "message", type=click.IntRange(min=0), default=None, metavar="N",
              help="Text: show only message N (the # column) in full under its row.")
@click.option("--show-secrets", "show_secrets", is_flag=True,
              help="Show the TLS key material of OpenSIPS net events (master-key) instead of "
                   "[redacted].")
@view_options
@output_options(*FORMATS, help="auto: text (rich, coloured on a terminal); svg or html: a file a browser "
                   "opens, self-contained (hand-written SVG; the HTML page adds a table of every "
                   "message: a click on a row shows the whole message).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Captures: only HEP to or from this UDP/TCP port (default: any).")
@filter_options("method", "status")
@rule_options
@pass_env
def flow_command(env: Environment, inputs: tuple[str, ...], call_id: str | None,
                 group_id: int | None, aliases: dict, hide: str, full: bool, message: int | None,
                 show_secrets: bool, fmt: str, output: str | None, port: int | None,
                 **opts: Any) -> None:
    """Draw the call flow of one group: everything that happened, in time order.

    Like sngrep and HOMER draw a call, but with everything correlate links to it: one
    column per endpoint, SIP messages as arrows with their method or status, and OpenSIPS
    xlog lines, REST queries and replies, connection events, MI commands, correlate()
    packets, logs and RTCP reports as marked rows with their endpoints. Each row shows the
    message's index (decode's), its time and the delta from the row before; SIP messages
    with a body are marked (SDP). --full shows the messages themselves. Choose the group
    with --call-id or --group.
    """
    if (call_id is None) == (group_id is None):
        raise click.UsageError("give exactly one of --call-id ID or --group N")
    rules = build_rules(opts)
    shown = build_filter(opts)  # --method/--status: the SIP rows drawn
    sources = list(inputs) or ["-"]
    two_pass = all(_regular(s) for s in sources)
    kept: list[Any] = []
    from heptool.pipeline.correlate import build_graph
    from heptool.pipeline.reader import MessageReader

    reader = MessageReader(sources, stdin=env.stdin_binary, port=port, strict=opts["strict"],
                           on_problem=ProblemPrinter(env, opts["strict"]), continuous_index=True,
                           progress=progress_bars(env))
    keep = None if two_pass else (lambda pos, m: kept.append(m))
    graph, _ = build_graph(reader, rules, infer=not opts["no_infer"], keep=keep)
    status = reader_status(reader)
    if status == ExitStatus.BAD_INPUT and (opts["strict"] or not len(graph)):
        # the input's own error (already on stderr) is the answer, not "no such group"
        click.get_current_context().exit(status)
    if call_id is not None:
        groups = graph.groups_with_id(call_id)
        if not groups:
            raise NotFoundError(f"no message carries the id {call_id!r}")
        what = f"id {call_id}"
    else:
        every = graph.groups()
        if group_id >= len(every):
            raise NotFoundError(f"there is no group {group_id} (the input has {len(every)})")
        groups = [every[group_id]]
        what = f"group {group_id}"
    positions = sorted(p for g in groups for p in g.members)
    wanted = set(positions)
    messages: list[tuple[int, Any, str]] = []
    if two_pass:
        again = MessageReader(sources, stdin=env.stdin_binary, port=port,
                              strict=opts["strict"], continuous_index=True,
                              on_problem=ProblemPrinter(env, opts["strict"], quiet=True))
        for pos, item in enumerate(again):  # its problems were reported in pass 1
            if pos in wanted:
                messages.append((graph.index(pos), item.message, graph.kind(pos)))
    else:
        messages = [(graph.index(p), kept[p], graph.kind(p)) for p in positions]
    if shown is not None:
        messages = [x for x in messages if shown(x[1])]
    from heptool.output.flow import build_flow

    title = " + ".join(f"group {g.id}: {g.label}" for g in groups)
    if call_id is not None and call_id not in title:
        title = f"{what} - {title}"
    flow = build_flow(title, messages, aliases=aliases, hide=hide.split(","),
                      show_secrets=show_secrets)
    if fmt == "auto":
        fmt = "text"
    with open_output(env, output, binary=False) as out:
        if fmt == "svg":
            from heptool.output.flow_html import render_svg

            out.write(render_svg(flow, local=env.localtime))
        elif fmt == "html":
            from heptool.output.flow_html import render_html

            out.write(render_html(flow, local=env.localtime))
        else:
            from heptool.output.flow import render_text

            to_stdout = out is env.stdout
            console = env.console if to_stdout else env.make_console(out, False)
            render_text(flow, console, width=env.text_width if to_stdout else None,
                        local=env.localtime, full=message if message is not None else full)
    if status != ExitStatus.OK:
        click.get_current_context().exit(status)


def _set_color(ctx: click.Context, value: str | None) -> str | None:
    if value is not None and not ctx.resilient_parsing:
        ctx.ensure_object(Environment).color = value  # type: ignore[assignment]
    return value
