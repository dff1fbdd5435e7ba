"""``heptool listen``: a HEP collector you can pipe: UDP, TCP and TLS in, records out.

The collector is :class:`heptool.pipeline.collector.Collector`; this module parses the
options, turns bad combinations into usage errors, builds what prints the records, installs
the signal handlers and prints what the collector tells.  Kept light at import time (every
shell TAB press imports it): click and the CLI helpers; the rest is imported when it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.kafka_options import check_kafka_key, kafka_key_option, kafka_key_order
from heptool.cli.options import (
    build_message_filter,
    message_filter_options,
    output_options,
    resolve_format,
)
from heptool.cli.params import EndpointParam, SizeParam, TargetParam
from heptool.cli.signals import stopping_on_signals

__all__ = ["listen_command"]

FORMATS = ("auto", "table", "jsonl", "json", "raw")
DEFAULT_BINDS = ("udp://127.0.0.1:9060", "tcp://127.0.0.1:9060")


class _WorkersParam(click.ParamType):
    """``N`` (>= 1) or ``auto`` (the cores this process may use)."""

    name = "N|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            from heptool.pipeline.workers import cpu_count

            return cpu_count()
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            self.fail(f"{value!r} is not a number of processes (1, 2, ... or auto)", param, ctx)
        return n


EPILOG = """\
\b
Examples:
  heptool listen                                   # UDP and TCP on 127.0.0.1:9060
  heptool listen --bind udp://0.0.0.0:9060 -f jsonl | jq .sip.call_id
  heptool listen --bind udp://127.0.0.1:0          # a free port, printed on stderr
  heptool listen --write-hep hep.pcap --rotate-size 100M --rotate-time 3600 -q
  heptool listen -q --write-parquet lake/ --rotate-time 300   # for DuckDB (heptool[parquet])
  heptool listen --bind tls://0.0.0.0:9061 --cert srv.pem --key srv.key
  heptool listen --proto sip --forward udp://10.0.0.9:9060 -q   # a filtering HEP proxy
  heptool listen --auth-key s3cret --allow 10.0.0.0/8 --stats 10
  heptool listen -q --forward tcp://10.0.0.9:9061 --metrics 127.0.0.1:9096 --dedup 0.5
  heptool listen --forward tls://hep.example:9061 --forward-cert me.pem --forward-key me.key
  heptool listen --bind udp://0.0.0.0:9060 --forward kafka://broker:9092/hep -q --stats 10
  heptool listen --workers auto --bind udp://0.0.0.0:9060 --write-hep hep.pcap -q --stats 10

\b
Signals: Ctrl-C (SIGINT) and SIGTERM end the run normally: every output is flushed and
complete, the summary is printed, exit status 0 (not 130). SIGHUP starts new output files
(after logrotate moved them away; rotated ones take the next number) and goes on.

\b
Exit status: 0 when stopped by Ctrl-C, SIGTERM, --count or --duration; 1 a socket could not
be opened, an output failed, or a --workers worker died (killed, crashed: it is named on
stderr, the others are stopped, the summary printed); 2 bad command line, or an output file
that already holds data (see --overwrite).
"""


@click.command("listen", epilog=EPILOG,
               short_help="Receive HEP over UDP, TCP and TLS; print, save, filter, forward.")
@click.option("--bind", "binds", type=TargetParam(), multiple=True, metavar="URL",
              help="Listen on URL: udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT (IPv6 as "
                   "[::1]:9060; port 0 picks a free port). Repeatable. Default: UDP and TCP on "
                   "127.0.0.1:9060 (use udp://0.0.0.0:9060 to open it to the network).")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE", help="tls://: the server certificate (PEM; may hold the key too).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE", help="tls://: the server's private key (PEM).")
@click.option("--client-ca", "client_ca", type=click.Path(exists=True, dir_okay=False),
              default=None, metavar="FILE",
              help="tls://: require client certificates signed by these CAs (PEM).")
@output_options(*FORMATS)
@click.option("-q", "--quiet", is_flag=True,
              help="Print no records on standard output (with --write-hep, --write-jsonl, "
                   "--write-parquet or --forward).")
@message_filter_options()
@click.option("--write-hep", "write_hep", type=click.Path(dir_okay=False), default=None,
              metavar="FILE.pcap",
              help="Save the HEP packets as received, each in a UDP frame from the sender's "
                   "address to the listening address, timed by its arrival (classic pcap).")
@click.option("--write-sip", "write_sip", type=click.Path(dir_okay=False), default=None,
              metavar="FILE.pcap",
              help="Save the packets the HEP carried, decapsulated to their original addresses "
                   "and ports as 'heptool convert' writes them (SIP over TCP as real TCP flows); "
                   "FILE.pcapng adds each packet's HEP metadata as a comment.")
@click.option("--write-jsonl", "write_jsonl", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="Save the records as JSON Lines in FILE.")
@click.option("--write-parquet", "write_parquet", type=click.Path(file_okay=False), default=None,
              metavar="DIR",
              help="Save the messages as Parquet files in DIR for DuckDB and friends: HOMER 11's "
                   "tables and columns, one table per protocol type (DIR/hep_proto_1_call/"
                   "date=YYYY-MM-DD/data-00000.parquet...). A file becomes *.parquet when it is "
                   "complete (rotated, SIGHUP, or the end); until then it is *.parquet.part. "
                   "Needs heptool[parquet] (pyarrow).")
@click.option("--overwrite", is_flag=True,
              help="Replace a --write-hep/--write-sip/--write-jsonl file that already holds "
                   "data (without it listen refuses to start, exit status 2). Rotated files "
                   "are never replaced: their numbering goes on after the highest there.")
@click.option("--rotate-size", "rotate_size", type=SizeParam(), default=None, metavar="SIZE",
              help="Start a new --write-hep/--write-sip/--write-jsonl file when it reaches SIZE "
                   "(100M, 2G...). Files are then named NAME-00000.EXT, NAME-00001.EXT, ..., "
                   "numbered on after the highest already there (a restart never overwrites). "
                   "--write-parquet: each table's file, checked after each row group.")
@click.option("--rotate-time", "rotate_time", type=click.FloatRange(min=1), default=None,
              metavar="SECONDS",
              help="Start a new --write-hep/--write-sip/--write-jsonl file every SECONDS; "
                   "--write-parquet: close each file SECONDS after its first row (it is then "
                   "complete and readable).")
@click.option("--forward", "forwards", type=TargetParam(kafka=True), multiple=True,
              metavar="URL",
              help="Relay every accepted packet (filters applied), bytes unchanged, to URL: "
                   "udp://, tcp://, tls:// or kafka://HOST:PORT/TOPIC (one Kafka message per "
                   "packet, keyed by call: see --kafka-key; needs heptool[kafka]). "
                   "Repeatable. A TCP/TLS target that is down (at the start too) is "
                   "reconnected in the background with backoff, its packets queued; the "
                   "others are served meanwhile (--stats shows each one's state).")
@kafka_key_option
@click.option("--forward-ca", "forward_ca", type=click.Path(exists=True, dir_okay=False),
              default=None, metavar="FILE", help="tls:// --forward: CA to verify the server with.")
@click.option("--forward-insecure", "forward_insecure", is_flag=True,
              help="tls:// --forward: do not verify the server's certificate.")
@click.option("--forward-cert", "forward_cert", type=click.Path(exists=True, dir_okay=False),
              default=None, metavar="FILE",
              help="tls:// --forward: a client certificate (PEM; may hold the key too), for "
                   "collectors that require one (mTLS).")
@click.option("--forward-key", "forward_key", type=click.Path(exists=True, dir_okay=False),
              default=None, metavar="FILE",
              help="tls:// --forward: the client certificate's private key (PEM).")
@click.option("--auth-key", "auth_key", default=None, metavar="KEY",
              help="Drop (and count) packets whose auth key (chunk 0x000e) is not KEY.")
@click.option("--allow", "allow", multiple=True, metavar="CIDR",
              help="Accept packets and connections only from these networks (10.0.0.0/8, "
                   "::1/128, 127.0.0.1). Repeatable.")
@click.option("--reuse-port", "reuse_port", is_flag=True,
              help="Share the ports with other 'heptool listen --reuse-port' processes "
                   "(SO_REUSEPORT: the kernel spreads packets and connections over them), to "
                   "use more than one core.")
@click.option("--workers", "workers", type=_WorkersParam(), default="1", show_default=True,
              metavar="N|auto",
              help="Receive with N processes on the same ports (SO_REUSEPORT: the kernel "
                   "spreads datagrams and connections over them; auto: one per core; Linux). "
                   "One supervisor merges their counts into one --stats line, one --metrics "
                   "endpoint and one summary. The workers write their records to stdout/-o "
                   "themselves, in whole-record chunks under one lock, so lines never "
                   "interleave (-f jsonl or raw); worker k numbers its records k, k+N, "
                   "k+2N..., so an index is unique. --write-* files are one per worker: "
                   "F.pcap -> F-w0.pcap, F-w1.pcap... (rotated F-w0-00000.pcap...). --count "
                   "stops all once their sum reaches N (a few more may be accepted). A worker "
                   "that dies stops the others: summary, exit status 1.")
@click.option("--max-connections", "max_connections", type=click.IntRange(min=1), default=1000,
              show_default=True, help="Most TCP/TLS connections open at once.")
@click.option("--stall-timeout", "stall_timeout", type=click.FloatRange(min=0.1), default=10.0,
              show_default=True, metavar="SECONDS",
              help="Close a TCP/TLS connection that stays inside a partial packet this long.")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N accepted packets.")
@click.option("--duration", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Stop after SECONDS.")
@click.option("--stats", "stats_every", type=click.FloatRange(min=0.1), default=None,
              metavar="SECONDS",
              help="Every SECONDS print a line on stderr: the time (UTC), packets/s per "
                   "transport, per protocol type, drops by reason, kernel receive-buffer drops, "
                   "and each --forward's state (up or DOWN, queued, sent, undelivered, "
                   "reconnects; kafka://: retried).")
@click.option("--metrics", "metrics", type=EndpointParam(), default=None, metavar="ADDR:PORT",
              help="Serve Prometheus metrics at http://ADDR:PORT/metrics (text format 0.0.4): "
                   "packets and bytes received per transport, per capture id and protocol "
                   "type, drops by reason, each --forward's state. Port 0 picks a free port, "
                   "printed on stderr. Keep it on 127.0.0.1 or a management network.")
@click.option("--dedup", "dedup", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS",
              help="Drop (and count as 'duplicate') a packet identical to one accepted less "
                   "than SECONDS before: same payload, addresses, ports and protocol type, "
                   "whatever its HEP timestamp or capture id (heplify -dd). A byte-identical "
                   "SIP retransmission within SECONDS is dropped too.")
@click.option("-v", "--verbose", count=True,
              help="Report connections, each --forward's (connected, lost, reconnected) and "
                   "every dropped packet on stderr (auth key, --allow, not HEP...; the filters' "
                   "choices are not drops): up to 10 lines a second per reason, the rest "
                   "counted in one line.")
@pass_env
def listen_command(env: Environment, **opts: Any) -> None:
    """Receive HEP and print one record per packet as it arrives.

    Accepts HEPv1, v2 and v3 over UDP, HEPv3 (and Kamailio's v1/v2) over TCP and TLS, many
    connections at once: packets may be split anywhere in a stream; garbage is skipped and
    counted; a connection that sends only garbage or stalls inside a packet is closed.

    Records go to standard output as 'heptool decode' prints them (-f jsonl when piped, a
    table on a terminal), one per packet, flushed as packets arrive, with hep_transport,
    hep_src and hep_dst saying how the packet came in. The same filters as decode select
    what is printed, written and forwarded. What it listens on, connection events, the
    periodic --stats lines and the final summary go to standard error.

    Ctrl-C or SIGTERM stops it: outputs are flushed (every --write-hep pcap is complete and
    valid; one being written stays readable up to its last record even after SIGKILL), the
    summary (every file written included) is printed and the exit status is 0. SIGHUP
    reopens the output files (logrotate) and goes on. An output file that already holds data
    is never overwritten without --overwrite.
    """
    _run(env, opts)


def _run(env: Environment, o: dict[str, Any]) -> None:
    from heptool.net.client import SendError
    from heptool.net.target import parse_target
    from heptool.pipeline.collector import CloseError, Collector, OutputError
    from heptool.pipeline.workers import WorkerError

    match = build_message_filter(o)
    if o["write_parquet"] is not None:
        from heptool.output.parquet import ParquetUnavailableError, require_pyarrow

        try:
            require_pyarrow("--write-parquet")
        except ParquetUnavailableError as e:
            raise _Refused(str(e)) from None
    fmt = resolve_format(o["fmt"], env, o["output"])
    binds = list(o["binds"]) or [parse_target(b) for b in DEFAULT_BINDS]
    tls_ctx = _server_tls(binds, o)
    for cidr in o["allow"]:
        import ipaddress

        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise click.BadParameter(f"{cidr!r} is not an address or CIDR network",
                                     param_hint="'--allow'") from None

    def say(line: str) -> None:
        env.stderr.write(line + "\n")
        env.stderr.flush()

    if (o["forward_cert"] or o["forward_key"]) and not any(
            t.scheme == "tls" for t in o["forwards"]):
        raise click.UsageError("--forward-cert/--forward-key need a tls:// --forward")
    key_order = kafka_key_order(o["kafka_key"])  # a bad ORDER is said first
    check_kafka_key(o["forwards"], "--forward")
    workers = o["workers"]
    if workers > 1:
        if fmt in ("table", "json") and not o["quiet"]:
            if o["fmt"] != "auto":
                raise click.UsageError(f"--workers {workers} prints -f jsonl or -f raw (records "
                                       "of several processes cannot share one table or JSON "
                                       "array); give -f jsonl, -f raw or -q")
            fmt = "jsonl"
        from heptool.pipeline.workers import Supervisor

        c: Any = Supervisor(workers, binds, tls_context=tls_ctx,
                            options={"allow": o["allow"], "match": match,
                                     "kafka_key": key_order,
                                     **{k: o[k] for k in _COLLECTOR_OPTIONS}},
                            on_event=say if o["verbose"] else None, on_line=say, on_notice=say)
    else:
        c = Collector(binds, tls_context=tls_ctx, allow=o["allow"], match=match,
                      kafka_key=key_order,
                      on_event=say if o["verbose"] else None, on_line=say, on_notice=say,
                      **{k: o[k] for k in _COLLECTOR_OPTIONS})
    c.open()
    printer = None
    served = False
    try:
        if workers > 1:
            # the workers format and write the records (pipeline.workers, SharedOutput)
            shown = "none" if o["quiet"] else fmt
            printer = _Printer(env, "none", None)
            sink = None
            if shown != "none":
                if o["output"] is None or o["output"] == "-":
                    env.stdout.flush()
                    sink = env.stdout_binary
                else:
                    sink = printer.file = open(o["output"], "wb")  # noqa: SIM115
            tty = env.stdout_isatty and sink is env.stdout_binary

            def make_output(stream: Any) -> Any:
                return None if shown == "none" else _Printer(env, shown, None, stream, tty)
        else:
            printer = _Printer(env, "none" if o["quiet"] else fmt, o["output"])
        try:
            if workers > 1:
                c.open_outputs(make_output if shown != "none" else None, sink=sink)
            else:
                c.open_outputs(printer.emit, need_record=printer.need_record,
                               flush=printer.flush, on_close=printer.close)
        except OutputError as e:
            if e.exists:
                from heptool.pipeline.workers import worker_path

                flag = next((f"--{k.replace('_', '-')} " for k in ("write_hep", "write_sip",
                             "write_jsonl") if o[k] and e.path in (
                                 o[k], *(worker_path(o[k], i) for i in range(workers)))), "")
                raise _Refused(f"{flag}{e.path} {e.hint}: refusing to overwrite it; give another name, "
                               "--rotate-size/--rotate-time (numbering goes on after the "
                               "files there) or --overwrite") from None
            raise click.FileError(e.path, hint=e.hint) from None
        except SendError as e:
            raise click.ClickException(f"--forward {e}") from None
        served = True
        with _signals_stop_and_reopen(c):  # before "listening on": a script that waits for
            if workers > 1:  # that line and then signals gets the clean stop it asked for
                say(f"{workers} workers: pids " + ", ".join(str(p) for p in c.pids))
            for t in c.bound:
                say(f"listening on {t}")
            if c.metrics_url is not None:
                say(f"metrics on {c.metrics_url}")
            c.run()
    finally:
        error = None
        try:
            c.close()
        except (CloseError, WorkerError) as e:
            error = str(e)
        if printer is not None and printer.file is not None:
            with contextlib.suppress(OSError):
                printer.file.close()
        if served:  # (a refused start has nothing to sum up)
            for line in c.summary_lines():
                say(line)
        if error is not None:
            raise click.ClickException(error)


#: options given to the Collector as they are
_COLLECTOR_OPTIONS = ("max_connections", "stall_timeout", "reuse_port", "auth_key", "count",
                      "duration", "stats_every", "write_hep", "write_sip", "write_jsonl",
                      "write_parquet",
                      "rotate_size", "rotate_time", "forwards", "forward_ca", "forward_insecure",
                      "forward_cert", "forward_key", "overwrite", "metrics", "dedup")


class _Refused(click.ClickException):
    """A one-line refusal of the command line as given (exit status 2, no usage text)."""

    exit_code = 2


def _server_tls(binds: list[Any], o: dict[str, Any]) -> Any:
    """The tls:// context, or the usage error of --cert/--key/--client-ca."""
    if not any(t.scheme == "tls" for t in binds):
        if o["cert"] or o["key"] or o["client_ca"]:
            raise click.UsageError("--cert/--key/--client-ca need a tls:// --bind")
        return None
    if o["cert"] is None:
        raise click.UsageError("tls:// needs --cert (and --key unless the certificate "
                               "file holds the key)")
    from heptool.net.tls import server_tls_context

    try:
        return server_tls_context(o["cert"], o["key"], o["client_ca"])
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot load the TLS certificate: {e}") from None


@contextlib.contextmanager
def _signals_stop_and_reopen(c: Any) -> Iterator[None]:
    """While the block runs, Ctrl-C and SIGTERM stop the collector ``c`` (its run returns
    with the outputs complete) and SIGHUP reopens its output files; the previous handlers
    after.  (Set after the workers are forked: a child never runs the supervisor's.)"""
    import signal

    hup = getattr(signal, "SIGHUP", None)
    previous = None
    if hup is not None:
        try:
            previous = signal.signal(hup, lambda _sig, _frame: c.reopen())
        except (ValueError, OSError):  # not in the main thread (tests)
            hup = None
    try:
        with stopping_on_signals(lambda _sig, _frame: c.stop()):
            yield
    finally:
        if hup is not None:
            signal.signal(hup, previous)


class _Printer:
    """The records on standard output (or -o FILE) in ``fmt``: ``emit`` for the collector
    (None with -q), ``flush`` when the sockets are drained, ``close`` at the end."""

    def __init__(self, env: Environment, fmt: str, output: str | None, to: Any = None,
                 tty: bool = False) -> None:
        self.need_record = fmt in ("jsonl", "json", "table")
        self.emit: Any = None
        self.writer: Any = None
        self.stream: Any = None
        self.file: Any = None
        if fmt == "none":
            return
        if to is not None:  # a --workers worker's chunk stream (jsonl or raw)
            stream = to
            if fmt == "jsonl" and tty:
                from heptool.output.jsonl import TerminalJson

                stream = TerminalJson(stream)
        elif output is None or output == "-":
            if fmt == "table":
                stream = None
            else:
                stream = env.stdout_binary
                env.stdout.flush()
                if fmt in ("jsonl", "json") and env.stdout_isatty:
                    from heptool.output.jsonl import TerminalJson

                    stream = TerminalJson(stream)  # as open_output does
        else:
            stream = self.file = open(output, "wb" if fmt != "table" else "w")  # noqa: SIM115
        self.stream = stream
        if fmt in ("jsonl", "json"):
            from heptool.output.jsonl import JsonArrayWriter, JsonlWriter

            w = self.writer = (JsonlWriter if fmt == "jsonl" else JsonArrayWriter)(stream)
            self.emit = lambda rec, m, data: w.write(rec)
        elif fmt == "table":
            from heptool.output.table import TableWriter

            console = env.console if stream is None else env.make_console(stream, False)
            tw = self.writer = TableWriter(console, batch=1)
            self.emit = lambda rec, m, data: tw.write(rec, m)
        else:  # raw
            from heptool.output.raw import RawWriter

            rw = self.writer = RawWriter(stream)
            self.emit = lambda rec, m, data: rw.write(data)

    def flush(self) -> None:
        if self.stream is not None:
            self.stream.flush()
        elif self.writer is not None and hasattr(self.writer, "flush"):
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
