"""``heptool correlate``: one graph of every id in the input, and the groups it makes.

Top-level imports stay light (click and the CLI helpers): this module is imported for every
``heptool --help`` and shell TAB press.  The reader, the core graph and the renderers are
imported when the command runs.  The run itself (heptool.pipeline.reader and
heptool.pipeline.correlate) and the option bundles (heptool.cli.options) are shared with
``heptool flow``.
"""

from __future__ import annotations

from typing import IO, Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.exit import ExitStatus
from heptool.cli.kafka_options import KafkaInputParam, kafka_input_options, kafka_options
from heptool.cli.options import (
    ProblemPrinter,
    build_filter,
    build_rules,
    group_filter_options,
    open_output,
    output_options,
    progress_bars,
    reader_status,
    resolve_format,
    rule_options,
    view_options,
)

__all__ = ["correlate_command"]

FORMATS = ("auto", "table", "json", "dot", "mermaid", "calls", "calls-jsonl")

EPILOG = """\
\b
Examples:
  heptool correlate capture.pcap                   # a tree per group on a terminal
  heptool correlate -f table --localtime x.pcap -o groups.txt
  heptool correlate capture.pcap -f json | jq '.groups[] | {id, label, kinds}'
  heptool correlate --call-id abc@host capture.pcap   # only the group(s) of that call
  heptool correlate --b2b-pattern '*_b2b-1' --link-header P-Charging-Vector x.pcap
  heptool correlate --group 3 -f dot x.pcap | dot -Tsvg -o group3.svg
  heptool correlate -f mermaid --proto mi x.pcap
  heptool correlate -f calls x.pcap                 # one line per call, as sngrep lists them
  heptool correlate -f calls-jsonl x.pcap | jq 'select(.status >= 400)'
  heptool encode --scenario opensips --opensips-mode homer5 | heptool correlate -f json
  heptool correlate kafka://broker:9092/hep --kafka-group corr --from-beginning --until-idle 5

\b
Exit status: 0 all input read; 2 bad command line; 3 some input was not valid HEP (each
bad packet is reported on stderr; --strict stops at the first), or a capture held no HEP
at all ("Error: x.pcap: 90 frames, no HEP (plain SIP? ...)"); 1 an input could not be
read.
"""


@click.command("correlate", epilog=EPILOG,
               short_help="Group every message by the ids that link them (calls, connections...).")
@click.argument("inputs", nargs=-1, metavar="[INPUT]...", type=KafkaInputParam())
@output_options(*FORMATS, help="Output format: auto (table on a terminal, json otherwise); table: a tree "
                   "per group; json: one document {groups, edges, dangling}; dot: Graphviz; "
                   "mermaid: a Mermaid flowchart (dot and mermaid draw the id graph); calls: one line "
                   "per call (group with SIP): group, start (UTC unless --localtime), "
                   "duration, first request, final status, From, To, messages, kinds linked, "
                   "Call-IDs, as plain text never cut (on a terminal too narrow, whole "
                   "columns are left out); calls-jsonl: the same as JSON Lines.")
@click.option("--group", "group_ids", multiple=True, type=click.IntRange(min=0), metavar="N",
              help="Only group N (the ids correlate gives, from 0 in input order). Repeatable.")
@group_filter_options
@rule_options
@view_options
@kafka_input_options(group_option=False)
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

    The tree (-f table, the default on a terminal) gives each group's time span in UTC,
    marked so, or in the local zone with --localtime. Its width is --width N, else
    $COLUMNS, else the terminal's; to a pipe or a file (-o) lines are as long as their
    contents. Long lines wrap at spaces: no id, address or port is ever cut.
    kafka://HOST:PORT/TOPIC reads a topic (needs heptool[kafka]; --kafka-group,
    --from-beginning, --until-idle): correlation is per partition, and a topic written by
    heptool is keyed by call, so each consumer of a group sees whole calls; offsets are
    committed after the output is written (at least once).
    """
    sources = list(inputs) or ["-"]
    kafka = kafka_options(opts, sources)  # offsets committed after the output is written
    match = build_filter(opts)
    rules = build_rules(opts)
    fmt = resolve_format(fmt, env, output, tty="table", pipe="json")
    from heptool.pipeline.correlate import build_graph, select_groups
    from heptool.pipeline.reader import MessageReader

    reader = MessageReader(sources, stdin=env.stdin_binary, port=opts["port"],
                           strict=opts["strict"], on_problem=ProblemPrinter(env, opts["strict"]),
                           continuous_index=True, progress=progress_bars(env), kafka=kafka)
    facts = None
    if fmt in ("calls", "calls-jsonl"):
        from heptool.analysis.calls import SipFacts

        facts = SipFacts()
    try:
        graph, matched = build_graph(reader, rules, infer=not opts["no_infer"], match=match,
                                     keep=facts)
        groups = select_groups(graph, match, matched, group_ids)
        binary = fmt in ("json", "calls-jsonl")
        with open_output(env, output, binary=binary, is_json=binary) as out:
            if facts is not None:
                _write_calls(env, graph, groups, facts, fmt, out, output)
            else:
                _write(env, graph, groups, fmt, out, output)
        reader.close(commit=True)
    finally:
        reader.close()
    status = reader_status(reader)
    if status != ExitStatus.OK:
        click.get_current_context().exit(status)


def _write_calls(env: Environment, graph: Any, groups: list, facts: Any, fmt: str,
                 out: IO[Any], output: str | None) -> None:
    from heptool.analysis.calls import call_summaries

    calls = call_summaries(graph, groups, facts)
    if len(calls) < len(groups):
        n = len(groups) - len(calls)
        env.stderr.write(f"{n} group{'s' if n != 1 else ''} without SIP left out of the call "
                         "list ('heptool correlate' shows them)\n")
    if fmt == "calls-jsonl":
        from heptool.output.calls import write_calls_jsonl

        write_calls_jsonl(calls, out)
        return
    from heptool.output.calls import render_calls_table

    to_stdout = output is None or output == "-"
    render_calls_table(calls, out, width=env.text_width if to_stdout else None,
                       local=env.localtime)


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
    from heptool.output.text import paint

    if not groups:
        env.stderr.write("no groups" + ("" if len(graph) else " (no HEP messages)") + "\n")
        return
    to_stdout = out is env.stdout
    color = env.use_color(to_stdout and bool(env.stdout_isatty))
    render_tree(graph, groups, out, width=env.text_width if to_stdout else env.width,
                color=color, local=env.localtime)
    n = len(graph)
    out.write(paint(f"{len(groups)} of {len(graph.groups())} groups, {n} message"
                    f"{'s' if n != 1 else ''}", "dim", color) + "\n")
