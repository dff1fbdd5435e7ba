"""``heptool convert``: plain SIP captures -> HEP, and HEP -> the packets Wireshark understands.

Top-level imports stay light (click and the CLI helpers): this module is imported for every
``heptool --help`` and shell TAB press.  The capture code, the codec and scapy (live capture
only) are imported when the command runs.
"""

from __future__ import annotations

import os
from typing import Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.exit import ExitStatus
from heptool.cli.kafka_options import KafkaInputParam, kafka_input_options, kafka_options
from heptool.cli.options import (
    BinaryToTerminalError,
    ProblemPrinter,
    filter_options,
    open_output,
    progress_bars,
)
from heptool.cli.params import SizeParam, parse_hep_endpoint, parse_ports, parse_proto_type

__all__ = ["convert_command", "parse_ports"]

FORMATS = ("auto", "pcap", "pcapng", "hep", "jsonl", "parquet")

EPILOG = """\
\b
Examples:
  heptool convert hep.pcap -o calls.pcap          # HEP back to the SIP packets (UDP/TCP)
  heptool convert hep.pcap -o calls.pcapng        # same, each packet commented with its HEP data
  heptool convert hep.pcap --call-id abc@host -o one-call.pcap
  heptool convert sip.pcap -o hep.pcap            # SIP -> HEPv3 over UDP to 127.0.0.1:9060
  heptool convert sip.pcap --to hep --hep-version 2 --capture-id 2001 -o sip.hep
  heptool convert sip.pcap --ports 5060-5090 --to jsonl | jq .sip.call_id
  heptool convert sip.pcap --filter 'tcp and not host 10.0.0.9' -o hep.pcap
  heptool convert -i lo --filter 'port 5060' --duration 10 -o hep.pcap   # live, as an agent
  heptool convert hep.pcap --to parquet -o lake/   # HOMER 11's tables, for DuckDB (heptool[parquet])

\b
Exit status: 0 converted; 2 bad command line; 3 the input was damaged or held bad HEP
packets (each reported on stderr, conversion goes on); 1 an input or output could not be
opened, live capture is not permitted (the message names the capability), or the kernel
dropped captured packets (its buffer was full: counted on stderr; raise --buffer-size).
A live capture ends with --count, --duration, Ctrl-C or SIGTERM (status 0). Nothing to
convert is not an error but never silent: exit 0 with one line on stderr, e.g. "convert: x.pcap: no SIP found (90 frames)" or
"convert: x.pcap: no HEP found".
"""


@click.command("convert", epilog=EPILOG,
               short_help="SIP captures to HEP, and HEP back to the captured packets.")
@click.argument("input_path", required=False, metavar="[INPUT]", type=KafkaInputParam())
@click.option("-o", "--output", type=click.Path(allow_dash=True), default=None,
              metavar="FILE", help="Write to FILE instead of standard output ('-' = stdout); "
                                   "with --to parquet a directory.")
@click.option("-f", "--to", "--format", "fmt", type=click.Choice(FORMATS), default="auto",
              show_default=True,
              help="Output: pcap / pcapng (HEP -> the original packets; SIP -> HEP over UDP "
                   "frames), hep (raw HEP stream), jsonl (records), parquet (HEP or SIP -> "
                   "HOMER 11's tables in the directory -o DIR, one per protocol type, by date; "
                   "needs heptool[parquet]). auto: pcapng when FILE ends in .pcapng, else pcap.")
@click.option("--from", "direction", type=click.Choice(["auto", "sip", "hep"]), default="auto",
              show_default=True,
              help="What INPUT holds: plain SIP packets or HEP; auto looks at its first MiB "
                   "(HEP found -> hep).")
@click.option("--ports", "ports_text", metavar="LIST", default=None,
              help="SIP -> HEP: only packets from or to these ports (5060,5080-5090). "
                   "Default any port: SIP is recognised by its content.")
@click.option("--proto-type", "proto_type_text", metavar="TYPE", default="sip", show_default=True,
              help="SIP -> HEP: HEP protocol type; other than sip, every UDP payload on --ports "
                   "is wrapped as this type (e.g. rtcp, 5).")
@click.option("--hep-version", type=click.Choice(["1", "2", "3"]), default="3",
              show_default=True, help="SIP -> HEP: HEP version to write.")
@click.option("--capture-id", type=click.IntRange(0, 0xFFFFFFFF), default=0, show_default=True,
              metavar="N", help="SIP -> HEP: capture agent id (chunk 0x000c; 16 bits in HEPv2).")
@click.option("--node-name", default=None, metavar="NAME",
              help="SIP -> HEP: capture node name (chunk 0x0013; HEPv3).")
@click.option("--auth-key", default=None, metavar="KEY",
              help="SIP -> HEP: authentication key (chunk 0x000e; HEPv3).")
@click.option("--correlation-id-from", type=click.Choice(["none", "call-id"]), default="none",
              show_default=True,
              help="SIP -> HEP: fill chunk 0x0011 from the SIP Call-ID, or leave it out as "
                   "heplify and captagent do for SIP.")
@click.option("--hep-dst", default="127.0.0.1:9060", show_default=True, metavar="ADDR:PORT",
              help="SIP -> HEP, pcap output: destination of the HEP-over-UDP frames.")
@click.option("--hep-src", default=None, metavar="ADDR:PORT",
              help="SIP -> HEP, pcap output: source of the HEP frames (default: the --hep-dst "
                   "address, port 9061).")
@click.option("--mtu", type=click.IntRange(576, 65535), default=1500, show_default=True,
              help="HEP -> packets: TCP payloads are cut into segments that fit this MTU.")
@click.option("-i", "--interface", "iface", default=None, metavar="IFACE",
              help="Capture SIP live from IFACE (needs root or CAP_NET_RAW) instead of INPUT.")
@click.option("--buffer-size", "buffer_size", type=SizeParam(), default=None, metavar="SIZE",
              help="With -i: the kernel's receive buffer, where bursts wait (default 32M; "
                   "beyond net.core.rmem_max it needs root or CAP_NET_ADMIN). Packets the "
                   "kernel still drops are counted and make the exit status 1.")
@click.option("--filter", "bpf", default=None, metavar="EXPR",
              help="SIP -> HEP: only packets matching this capture filter ('udp port 5060'). "
                   "With -i it is BPF, compiled for the kernel; for files a subset: [src|dst] "
                   "host/net/port/portrange, udp, tcp, ip, ip6, not, and, or, ( ).")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N converted messages.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="With -i: stop after SECONDS.")
@filter_options("proto", "call_id", "method", "status", "grep", "src", "dst", "since", "until")
@kafka_input_options()
@click.option("-v", "--verbose", count=True,
              help="Report counts on stderr at the end (and, for a kafka:// input read "
                   "with --group, the partitions the group assigns and revokes).")
@pass_env
def convert_command(env: Environment, input_path: str | None, output: str | None, fmt: str,
                    direction: str, ports_text: str | None, proto_type_text: str,
                    hep_version: str, capture_id: int | None, node_name: str | None,
                    auth_key: str | None, correlation_id_from: str, hep_dst: str,
                    buffer_size: int | None,
                    hep_src: str | None, mtu: int, iface: str | None, bpf: str | None,
                    count: int | None, duration: float | None, call_id: tuple[str, ...],
                    method: tuple[str, ...], status: tuple[str, ...],
                    proto: tuple[str, ...], src: tuple[str, ...], dst: tuple[str, ...],
                    grep: str | None, since: str | None, until: str | None,
                    verbose: int, **kafka_opts: Any) -> None:
    """Convert plain SIP captures to HEP, and HEP back to the packets it was captured from.

    SIP -> HEP (INPUT is a pcap/pcapng of SIP, or -i IFACE): every SIP message, over UDP or
    over TCP (each connection reassembled and split by Content-Length), becomes one HEP
    packet with the original addresses, ports, ip proto and capture time, as a capture
    agent would send it. Output: a pcap of HEP-over-UDP frames to --hep-dst, a raw HEP
    stream (--to hep) or JSON Lines.

    HEP -> packets (INPUT is anything 'heptool decode' reads: HEP in pcaps over UDP or
    TCP, raw HEP streams, JSON Lines; v1/v2/v3 mixed): each message becomes the frame it
    was captured from: Ethernet + IPv4/IPv6 + UDP, or a TCP flow (handshake, continuing
    sequence numbers, MTU-sized segments) when the ip proto is TCP or the fake TLS (22)
    / WS (50) values, at the HEP timestamp (HEPv1: the outer capture time). Non-SIP types
    stay as UDP datagrams; with pcapng output every packet carries its HEP metadata as a
    comment.

    The direction is told from the input (--from). Filters (--call-id, --src, ...) work
    as in 'heptool decode' and combine with AND.

    kafka://HOST:PORT/TOPIC as INPUT reads HEP from a Kafka topic (needs heptool[kafka];
    --group, --from-beginning, --until-idle); a group's offsets are committed once the
    output is complete (at least once).
    """
    from heptool.analysis.filters import build_filter
    from heptool.pipeline.convert import Conversion, open_input, sniff_direction

    env.verbosity = max(env.verbosity, verbose)
    try:
        match = build_filter(proto=proto, call_id=call_id, grep=grep, src=src, dst=dst,
                             since=since, until=until, methods=method, statuses=status)
        ports = parse_ports(ports_text) if ports_text is not None else None
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if iface is not None and input_path is not None:
        raise click.UsageError("give either INPUT or -i IFACE, not both")
    packet_filter = None
    if bpf is not None and iface is None:
        from heptool.capture.convert import compile_filter

        try:
            packet_filter = compile_filter(bpf)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
    if (duration is not None or buffer_size is not None) and iface is None:
        raise click.UsageError(f"{'--duration' if duration is not None else '--buffer-size'} "
                               "needs -i IFACE")
    if iface is not None and direction == "hep":
        raise click.UsageError("-i captures plain SIP: --from hep cannot be used with it")
    ptype = parse_proto_type(proto_type_text)
    dst_ep = parse_hep_endpoint(hep_dst, "--hep-dst", 9060)
    src_ep = parse_hep_endpoint(hep_src, "--hep-src", 9061) if hep_src else (dst_ep[0], 9061)
    if (":" in src_ep[0]) != (":" in dst_ep[0]):
        raise click.UsageError("--hep-src and --hep-dst must be of the same IP version")

    if fmt == "parquet":
        _check_parquet(output)
    elif output is not None and output != "-" and os.path.isdir(output):
        raise click.BadParameter(f"{output!r} is a directory", param_hint="'-o' / '--output'")
    to_terminal = (output is None or output == "-") and bool(env.stdout_isatty)
    if fmt == "auto":
        fmt = "pcapng" if output is not None and output.lower().endswith(".pcapng") else "pcap"
    if fmt != "jsonl" and to_terminal:
        raise BinaryToTerminalError("pcap" if fmt.startswith("pcap") else "binary HEP",
                                    "to look at it: --to jsonl for a SIP capture, "
                                    "'heptool decode' for HEP")

    kafka = kafka_options(kafka_opts, [input_path] if input_path else [])
    conv = Conversion(on_problem=ProblemPrinter(env, False), verbose=bool(verbose),
                      count=count, match=match, kafka=kafka,
                      live=iface is not None or kafka is not None or _is_pipe(env, input_path),
                      name=iface if iface is not None else input_path
                      if input_path not in (None, "-") else "<stdin>",
                      progress=progress_bars(env, to_terminal=to_terminal))
    if iface is not None:
        from heptool.cli.live import LiveSession

        session: Any = LiveSession(env, "convert")  # -i: the kernel's counts at the end
        source: Any = session.open(iface, bpf, buffer_size).frames(timeout=duration)
        kind = "sip"
    elif kafka is not None:
        if direction == "sip":
            raise click.UsageError("a kafka:// input holds HEP: --from sip cannot be used")
        session = None
        source, kind = input_path, "hep"
    else:
        session = None
        try:
            source = open_input(input_path, env.stdin_binary)
        except OSError as e:
            raise click.FileError(str(input_path), hint=e.strerror or str(e)) from None
        kind = direction if direction != "auto" else sniff_direction(source)
    if kind == "hep" and bpf is not None:
        raise click.UsageError("the input is HEP: --filter selects packets of a plain SIP "
                               "capture (for HEP use --src, --dst, --call-id, --proto)")
    if fmt == "parquet":
        assert output is not None
        try:
            with _live(session):
                conv.to_parquet(source, output, kind, ports=ports, packet_filter=packet_filter,
                                proto_type=ptype, capture_id=capture_id, node_name=node_name,
                                auth_key=auth_key, correlation_id_from=correlation_id_from,
                                hep_version=int(hep_version))
            conv.close(commit=True)  # kafka://: the files are complete
        except OSError as e:
            raise click.FileError(getattr(e, "filename", None) or output,
                                  hint=e.strerror or str(e)) from None
        finally:
            conv.close()
        if session is not None:
            session.finish()  # the kernel's counts; status 1 if packets were lost
        if conv.status != ExitStatus.OK:
            click.get_current_context().exit(conv.status)
        return
    if kind == "hep" and fmt in ("hep", "jsonl"):
        raise click.UsageError(f"the input is HEP already; --to {fmt} converts SIP "
                               f"captures (use 'heptool decode -f "
                               f"{'raw' if fmt == 'hep' else 'jsonl'}' for HEP input)")
    try:
        with _live(session), open_output(env, output, binary=True,
                                         is_json=fmt == "jsonl") as out:
            if kind == "hep":
                conv.hep_to_packets(source, out, fmt, mtu)
            else:
                conv.sip_to_hep(source, out, fmt, ports=ports, packet_filter=packet_filter,
                                proto_type=ptype, capture_id=capture_id, node_name=node_name,
                                auth_key=auth_key, correlation_id_from=correlation_id_from,
                                hep_version=int(hep_version), hep_src=src_ep, hep_dst=dst_ep)
        conv.close(commit=True)  # kafka://: the output is complete
    finally:
        conv.close()
    if session is not None:
        session.finish()  # the kernel's counts; status 1 if packets were lost
    if conv.status != ExitStatus.OK:
        click.get_current_context().exit(conv.status)


class _NeedsExtra(click.ClickException):
    """An optional extra is not installed: one line naming it, exit status 2."""

    exit_code = 2


def _check_parquet(output: str | None) -> None:
    """--to parquet: a directory to write, and pyarrow (exit status 2 without them)."""
    from heptool.output.parquet import ParquetUnavailableError, require_pyarrow

    if output is None or output == "-":
        raise click.UsageError("--to parquet writes a directory of files: give -o DIR")
    if os.path.exists(output) and not os.path.isdir(output):
        raise click.BadParameter(f"{output!r} is not a directory",
                                 param_hint="'-o' / '--output'")
    try:
        require_pyarrow("--to parquet")
    except ParquetUnavailableError as e:
        raise _NeedsExtra(str(e)) from None


def _is_pipe(env: Environment, path: str | None) -> bool:
    """Standard input that is not a regular file (a pipe, a socket, a terminal)."""
    import os
    import stat

    if path is not None and path != "-":
        return False
    try:
        return not stat.S_ISREG(os.fstat(env.stdin_binary.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def _live(session: Any) -> Any:
    """The live capture's session (signals stop it, closed at the end), else nothing."""
    import contextlib

    return session if session is not None else contextlib.nullcontext()
