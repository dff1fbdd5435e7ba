"""``heptool decode``: read HEP from captures, HEP streams or JSON records; print, filter, pipe.

Top-level imports stay light (click and the CLI helpers): this module is imported for every
``heptool --help`` and shell TAB press.  The capture reader, the codec and the renderers are
imported when the command runs.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from typing import IO, Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.exit import ExitStatus
from heptool.cli.kafka_options import KafkaInputParam, kafka_input_options, kafka_options
from heptool.cli.options import (
    BadInputError,
    filter_options,
    open_output,
    output_options,
    progress_bars,
    resolve_format,
    view_options,
)

__all__ = ["decode_command"]

FORMATS = ("auto", "table", "jsonl", "json", "hex", "raw")
EPILOG = """\
\b
Examples:
  heptool decode capture.pcap                     # a table on a terminal
  heptool decode -f table --localtime x.pcap | less -S   # full lines, local times
  heptool decode -f table --width 100 -o table.txt x.pcap
  heptool decode capture.pcap.gz -f jsonl | jq .sip.call_id
  heptool decode --proto sip --call-id abc@host capture.pcap
  heptool decode --src 10.0.0.0/8 --dst [::1]:9060 --since 2026-11-26T09:00:00Z x.pcap
  heptool decode --grep '(?i)^INVITE' --count 10 -f json x.pcapng
  heptool encode --scenario call | heptool decode -f hex
  heptool decode -f jsonl x.pcap | heptool decode --summary -f json
  heptool decode -f raw x.pcap -o packets.hep   # the HEP bytes themselves
  heptool decode kafka://broker:9092/hep --group decoders --from-beginning -f jsonl

\b
Exit status: 0 all input decoded; 2 bad command line (or a missing INPUT);
3 some input was not valid HEP: an unknown input format, a damaged capture, or at least
one corrupt or damaged HEP packet (each reported on stderr; --strict stops at the first);
1 an input could not be read (permission, I/O error). A capture with no HEP in it is
not HEP input either (exit 3), said in one line: "Error: x.pcap: 90 frames, no HEP (plain
SIP? try: heptool convert x.pcap)".
"""


def _is_live(path: str, env: Environment) -> bool:
    """Input that arrives over time (a pipe, a terminal, a socket, a Kafka topic) rather
    than a file."""
    if path[:8].lower() == "kafka://":
        return True
    try:
        if path == "-":
            fd = env.stdin_binary.fileno()
            return not stat.S_ISREG(os.fstat(fd).st_mode)
        return not stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError, AttributeError):
        return path == "-"


@click.command("decode", epilog=EPILOG, short_help="Decode HEP from captures, streams or records.")
@click.argument("inputs", nargs=-1, metavar="[INPUT]...", type=KafkaInputParam())
@output_options(*FORMATS)
@view_options
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Captures: only HEP to or from this UDP/TCP port (default: any port; HEP is "
                   "recognised by its bytes).")
@filter_options()
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N messages (after filtering).")
@click.option("--summary", is_flag=True,
              help="At the end, counts per version, protocol type, capture agent, SIP method and "
                   "status, and errors, on stderr; with -f json the summary is the output.")
@click.option("--strict", is_flag=True,
              help="Stop at the first bad packet (exit status 3); also refuse the quirks only "
                   "some receivers accept.")
@click.option("-v", "--verbose", count=True,
              help="Table: show every chunk of each message, a text payload line by line. "
                   "Also report what the inputs held besides HEP on stderr, and, for a "
                   "kafka:// input read with --group, the partitions the group assigns "
                   "and revokes.")
@kafka_input_options()
@pass_env
def decode_command(env: Environment, inputs: tuple[str, ...], fmt: str, output: str | None,
                   port: int | None, proto: tuple[str, ...], call_id: tuple[str, ...],
                   method: tuple[str, ...], status: tuple[str, ...],
                   grep: str | None, src: tuple[str, ...], dst: tuple[str, ...],
                   capture_id: tuple[int, ...], node: tuple[str, ...], since: str | None,
                   until: str | None, count: int | None, summary: bool, strict: bool,
                   verbose: int, **kafka: Any) -> None:
    """Decode HEP (v1, v2, v3) and print one record per message.

    INPUT is a pcap or pcapng capture (either may be gzip-compressed), a raw stream of HEP
    packets (what 'heptool encode' writes) or JSON Lines records (what 'heptool decode -f
    jsonl' writes): the kind is told from the bytes, not the name. '-' or no INPUT reads
    standard input. In captures HEP is found over UDP on any port and over TCP (each
    connection reassembled). kafka://HOST:PORT/TOPIC reads a Kafka topic whose messages
    are HEP packets (needs heptool[kafka]; see --group, --from-beginning, --until-idle):
    the records are written as they arrive, and a group's offsets are committed only for
    records already written (at least once).

    Records are the JSON record of 'heptool' (see README) plus index, frame (captures), the
    transport the HEP travelled on (hep_transport, hep_src, hep_dst) and, for SIP
    payloads, a 'sip' object (method/ruri or status/reason, call_id, cseq, cseq_method,
    from_tag, to_tag, x_cid).

    The table (-f table, the default on a terminal) has one line per message: index,
    time, protocol, src -> dst, capture agent, correlation id and a summary. Times are
    UTC, as its header says ("time (UTC)"), or the local zone with --localtime; a time
    ending in "~" is the capture frame's (HEPv1 carries no time of its own). Its width is
    --width N, else $COLUMNS, else the terminal's; to a pipe or a file (-o) lines are as
    long as their contents. No address or port is ever cut: a narrow table leaves out the
    capture, then the correlation column, and wraps the summary. -v adds every chunk of
    each message under its line, a SIP payload line by line.

    Filters combine with AND. A corrupt packet is reported on stderr (frame and offset)
    and decoding goes on; the exit status is then 3.
    """
    from heptool.analysis.filters import build_filter

    env.verbosity = max(env.verbosity, verbose)
    try:
        match = build_filter(proto=proto, call_id=call_id, grep=grep, src=src, dst=dst,
                             capture_id=capture_id, node=node, since=since, until=until,
                             methods=method, statuses=status)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    fmt = resolve_format(fmt, env, output)
    sources = list(inputs) or ["-"]
    run = _Run(env, fmt, sources, port=port, match=match, count=count, summary=summary,
               strict=strict, verbose=verbose)
    # kafka:// inputs: offsets committed every second (after a flush of the output) and at
    # the end, only for records already written
    run.kafka = kafka_options(kafka, sources, commit_every=1.0, before_commit=run.flush)
    with open_output(env, output, binary=fmt != "table", is_json=fmt in ("jsonl", "json")) as out:
        run.execute(out, to_terminal=(output is None or output == "-") and bool(env.stdout_isatty))
    if run.status != ExitStatus.OK:
        click.get_current_context().exit(run.status)


class _Summary:
    def __init__(self) -> None:
        self.messages = 0
        self.errors = 0
        self.warnings = 0
        self.inputs = 0
        self.versions: Counter[str] = Counter()
        self.protos: Counter[str] = Counter()
        self.agents: Counter[str] = Counter()
        self.methods: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()

    def add(self, rec: dict[str, Any]) -> None:
        self.messages += 1
        self.versions[f"v{rec['version']}"] += 1
        self.protos[str(rec.get("proto"))] += 1
        cap, node = rec.get("capture_id"), rec.get("node_name")
        self.agents["/".join(str(x) for x in (cap, node) if x is not None) or "none"] += 1
        sip = rec.get("sip")
        if sip:
            if "method" in sip:
                self.methods[sip["method"]] += 1
            else:
                self.statuses[str(sip["status"])] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages, "errors": self.errors, "warnings": self.warnings,
            "inputs": self.inputs, "versions": dict(self.versions.most_common()),
            "protos": dict(self.protos.most_common()),
            "capture_agents": dict(self.agents.most_common()),
            "sip_methods": dict(self.methods.most_common()),
            "sip_statuses": dict(sorted(self.statuses.items())),
        }

    def lines(self) -> list[str]:
        from heptool.sip.summary import printable

        def fmt(c: dict[str, int]) -> str:
            return ", ".join(f"{printable(k)} {v}" for k, v in c.items()) or "-"

        d = self.as_dict()
        return [
            (f"summary: {d['messages']} messages from {d['inputs']} input"
            f"{'s' if d['inputs'] != 1 else ''}; {d['errors']} errors, {d['warnings']} damaged"),
            f"  versions: {fmt(d['versions'])}",
            f"  protocol types: {fmt(d['protos'])}",
            f"  capture agents (id/node): {fmt(d['capture_agents'])}",
            f"  SIP methods: {fmt(d['sip_methods'])}",
            f"  SIP statuses: {fmt(d['sip_statuses'])}",
        ]


class _Run:
    """One ``decode`` invocation: inputs -> messages -> filter -> output."""

    def __init__(self, env: Environment, fmt: str, sources: list[str], *, port: int | None,
                 match: Any, count: int | None, summary: bool, strict: bool,
                 verbose: int) -> None:
        self.env = env
        self.fmt = fmt
        self.sources = sources
        self.port = port
        self.match = match
        self.count = count
        self.summary = _Summary() if summary else None
        self.strict = strict
        self.verbose = verbose
        self.status = ExitStatus.OK
        self.written = 0
        self.bad = False
        self._drain: Any = None  # the JSON Lines writer's drain(), while it batches
        self._write_record: Any = None  # JSON writers' write(record)
        self._write_line: Any = None  # JSON Lines writer's write_line(bytes)
        self.kafka: Any = None  # kafka:// inputs: KafkaOptions
        self._out: Any = None

    def flush(self) -> None:
        """The output written so far, out of our buffers (before offsets are committed)."""
        if self._drain is not None:
            self._drain()
        if self._out is not None:
            self._out.flush()

    # -- diagnostics ----------------------------------------------------------------
    def say(self, line: str) -> None:
        if self._drain is not None:
            self._drain()  # the records before it first, as without batching
        err = self.env.stderr
        err.write(" ".join(line.split()) + "\n")
        err.flush()

    def problem(self, problem: Any) -> None:
        """The reader's problems: Error:/Warning: lines (``--strict``: the first bad one
        stops with exit status 3), counted for the summary; notes as they are."""
        level = problem.level
        if level == "note":
            self.say(problem.text)
            return
        if level == "unreadable":
            self.say("Error: " + problem.text)
            if self.status == ExitStatus.OK:
                self.status = ExitStatus.ERROR
            return
        warning = level == "warning"
        if self.strict:
            raise BadInputError(problem.text)
        self.say(("Warning: " if warning else "Error: ") + problem.text)
        self.bad = True
        if self.summary is not None:
            if warning:
                self.summary.warnings += 1
            else:
                self.summary.errors += 1

    # -- the run ------------------------------------------------------------------------
    def execute(self, out: IO[Any], *, to_terminal: bool) -> None:
        live = any(_is_live(s, self.env) for s in self.sources)
        self._out = out
        writer, emit = self._writer(out, live)
        from heptool.pipeline.reader import MessageReader

        env = self.env
        reader = MessageReader(self.sources, stdin=env.stdin_binary, port=self.port,
                               strict=self.strict, on_problem=self.problem,
                               verbose=bool(self.verbose),
                               progress=progress_bars(env, to_terminal=to_terminal),
                               kafka=self.kafka)
        need_sip = self.fmt in ("jsonl", "json", "table") and (
            self.fmt != "table" or bool(self.verbose)) or self.summary is not None
        try:
            reader.each_record(emit, need_sip=need_sip, match=self.match,
                               write=self._write_record, write_line=self._write_line,
                               tally=self.summary.add if self.summary is not None else None,
                               count=self.count)
            if writer is not None:
                writer.close()
                writer = None
            self.flush()
            reader.close(commit=True)  # kafka:// inputs: what was written is committed
        finally:
            self.written = reader.written
            if writer is not None:
                writer.close()
            reader.close()
        if self.summary is not None:
            self.summary.inputs = len(self.sources)
            if self.fmt == "json":
                from heptool.output.jsonl import dumps

                out.write(dumps(self.summary.as_dict()))
                out.flush()
            else:
                for line in self.summary.lines():
                    self.say(line)
        if self.fmt == "table" and self.written == 0 and not self.bad:
            self.say("no HEP messages" + (" matched" if self.match is not None else ""))
        if self.bad:
            self.status = ExitStatus.BAD_INPUT

    def _writer(self, out: IO[Any], live: bool) -> tuple[Any, Any]:
        """(writer to close at the end, emit(record, message, packet) function)."""
        fmt = self.fmt
        if fmt in ("jsonl", "json"):
            from heptool.output.jsonl import JsonArrayWriter, JsonlWriter

            if fmt == "json" and self.summary is not None:
                return None, lambda rec, m, p: None  # the summary is the output
            if fmt == "jsonl":
                w = JsonlWriter(out, line_buffered=live, batch=not live)
                self._drain = w.drain
            else:
                w = JsonArrayWriter(out, line_buffered=live)
            write = self._write_record = w.write  # the fast path's emit: record only
            if fmt == "jsonl":
                self._write_line = w.write_line
            return w, lambda rec, m, p: write(rec)
        if fmt == "table":
            from heptool.output.table import TableWriter

            env = self.env
            to_stdout = out is env.stdout
            tw = TableWriter(out, width=env.text_width if to_stdout else env.width,
                             color=env.use_color(to_stdout and bool(env.stdout_isatty)),
                             localtime=env.localtime, verbose=self.verbose,
                             batch=1 if live else 100)
            twrite = tw.write
            if not self.verbose:
                self._write_record = twrite  # the fast path's emit: record only
            return tw, lambda rec, m, p: twrite(rec, m)
        if fmt == "raw":
            from heptool.output.raw import RawWriter

            rw = RawWriter(out, line_buffered=live)
            return rw, lambda rec, m, p: rw.write(_packet_bytes(m, p))
        # hex
        try:
            from heptool.output.hexdump import render
            from heptool.sip.summary import printable
        except ImportError:
            raise click.ClickException("-f hex is not available in this build "
                                       "(heptool.output.hexdump is missing)") from None

        def emit_hex(rec: dict[str, Any], m: Any, p: Any) -> None:
            where = [f"message {rec['index']}"]
            if rec.get("frame") is not None:
                where.append(f"frame {rec['frame']}")
            if rec.get("hep_transport"):
                where.append(f"{rec['hep_transport']} {rec['hep_src']} -> {rec['hep_dst']}")
            # a JSON record's hep_* fields are input data: escaped like everything shown
            text = f"# {printable(', '.join(where))}\n{render(_packet_bytes(m, p)).rstrip()}\n\n"
            out.write(text.encode("utf-8", "backslashreplace"))
            if live:
                out.flush()

        return None, emit_hex


def _packet_bytes(m: Any, p: Any) -> bytes:
    if p.data is not None:
        return p.data  # type: ignore[no-any-return]
    from heptool.core.codec import encode

    return encode(m)
