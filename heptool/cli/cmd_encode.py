"""``heptool encode``: build HEP packets from options, JSON Lines records or a scenario.

Kept light at import time (every shell TAB press imports it): click and the pure registry
only; the codec, inputs and writers are imported inside the command.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.options import (
    BadInputError,
    flag_name,
    given,
    message_from_options,
    output_options,
    resolve_format,
    stderr_echo,
)
from heptool.cli.params import ChunkParam, EndpointParam, IpProtoParam, ProtoParam, TimeParam
from heptool.pipeline.build import loopback_like, now

__all__ = ["ChunkParam", "EndpointParam", "IpProtoParam", "ProtoParam", "encode_command"]

EPILOG = """\
\b
Examples:
  heptool encode --src 10.0.0.1:5060 --dst 10.0.0.2:5060 --payload @invite.sip > invite.hep
  heptool encode --proto log --correlation-id abc@host --payload 'call started' -f hex
  heptool encode --src [2001:db8::1]:5060 --dst [2001:db8::2]:5060 --ip-proto tcp \\
      --time 2026-11-26T09:00:00Z --capture-id 2001 --payload - < msg.sip > msg.hep
  heptool encode --chunk vlan=42 --chunk 0x0011=abc --chunk 0x0003:0x0020=hex:0a0b -f hex
  heptool encode --hep-version 2 --payload @options.sip -f pcap -o options.pcap
  heptool encode --scenario call -f pcap -o call.pcap
  heptool encode --scenario opensips --opensips-mode homer5 --seed 7 | heptool decode
  heptool decode -f jsonl capture.pcap | jq 'select(.proto == "sip")' | heptool encode > sip.hep
  heptool encode --from records.jsonl --capture-id 9 -f jsonl
  jq -c '. + {note: "x"}' r.jsonl | heptool encode --ignore-unknown-keys > x.hep

\b
Exit status: 0 written; 2 bad command line; 3 a record or packet that is not valid: an
unknown key ("line 3: unknown key 'srcip' (did you mean 'src_ip'?)", unless
--ignore-unknown-keys) or a bad value (named by its key); 1 a file error.
"""

# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------
#: Options that describe one packet; with --scenario only the ones in _SCENARIO_OK apply.
_PACKET_OPTIONS = (
    "version",
    "proto",
    "src",
    "dst",
    "ip_proto",
    "time",
    "capture_id",
    "node_name",
    "auth_key",
    "correlation_id",
    "payload",
    "compress",
    "chunks",
)
_SCENARIO_OK = frozenset({"time", "capture_id", "node_name", "auth_key", "chunks", "compress"})
@click.command(
    "encode", epilog=EPILOG, short_help="Build HEP packets from options, records or a scenario."
)
@click.option(
    "--hep-version",
    "--version",
    "version",
    type=click.Choice(["1", "2", "3"]),
    default=None,
    help="HEP version to write (default 3). v1/v2 carry SIP only, with no chunks. "
    "(--version is the same option: the name convert and send use is --hep-version.)",
)
@click.option(
    "--proto",
    type=ProtoParam(),
    default=None,
    metavar="NAME|N",
    help="Protocol type of the payload, chunk 0x000b: sip (default), log, rtcp, rest, "
    "... or a number (decimal, or 0x.. hex).",
)
@click.option(
    "--src",
    type=EndpointParam(),
    default=None,
    metavar="ADDR:PORT",
    help="Source of the captured packet (default 127.0.0.1:5060; IPv6 as [addr]:port).",
)
@click.option(
    "--dst",
    type=EndpointParam(),
    default=None,
    metavar="ADDR:PORT",
    help="Destination of the captured packet (default the loopback address of --src's "
    "IP version, port 5060).",
)
@click.option(
    "--ip-proto",
    "ip_proto",
    type=IpProtoParam(),
    default=None,
    metavar="udp|tcp|N",
    help="IP protocol the captured packet used, chunk 0x0002 (default udp).",
)
@click.option(
    "--time",
    "time",
    type=TimeParam(),
    default=None,
    metavar="TIME",
    help="Capture time: ISO 8601 (2026-11-26T09:00:00.123456Z; no zone = UTC) or "
    "epoch seconds (default now). With --scenario, the start time.",
)
@click.option(
    "--capture-id",
    "capture_id",
    type=click.IntRange(0, 0xFFFFFFFF),
    default=None,
    metavar="N",
    help="Capture agent id, chunk 0x000c (default 1).",
)
@click.option(
    "--node-name",
    "node_name",
    default=None,
    metavar="TEXT",
    help="Capture agent name, chunk 0x0013.",
)
@click.option(
    "--auth-key", "auth_key", default=None, metavar="TEXT", help="Authentication key, chunk 0x000e."
)
@click.option(
    "--correlation-id",
    "correlation_id",
    default=None,
    metavar="TEXT",
    help="Correlation id, chunk 0x0011 (e.g. the SIP Call-ID of a log line).",
)
@click.option(
    "--payload",
    default=None,
    metavar="TEXT|@FILE|-",
    help="The captured payload: TEXT as given, @FILE a file's bytes, - standard "
    "input's bytes (default empty).",
)
@click.option(
    "--compress",
    type=click.Choice(["gzip", "zlib"]),
    default=None,
    help="Send the payload compressed in chunk 0x0010.",
)
@click.option(
    "--chunk",
    "chunks",
    type=ChunkParam(),
    multiple=True,
    metavar="SPEC",
    help="Set any chunk (repeatable): NAME=VALUE (correlation_id=abc, vlan=42), "
    "TYPE=VALUE (0x0011=abc, 17=abc) or VENDOR:TYPE=VALUE (0x0003:0x0020=42). "
    "VALUE is typed by the chunk (integer, IP address, MAC, text) or explicit: "
    "hex:0a0b, b64:..., @FILE, text:... Vendor and unknown chunks take text "
    "and go after the payload.",
)
@click.option(
    "--from",
    "from_",
    default=None,
    metavar="FILE",
    help="Read JSON Lines records (what 'heptool decode -f jsonl' writes), a HEP "
    "stream or a pcap from FILE ('-' = standard input) and encode each one; the "
    "packet options above then override those fields in every packet. Without "
    "--from, records are read from standard input when it is a pipe or file that "
    "is not empty and neither --payload nor --scenario is given.",
)
@click.option(
    "--ignore-unknown-keys",
    "ignore_unknown_keys",
    is_flag=True,
    help="Records: leave keys a record does not have alone (default: an unknown key, "
    "e.g. a misspelt 'srcip', is an error naming it and its line, exit status 3).",
)
@click.option(
    "--scenario",
    type=click.Choice(["call", "opensips"]),
    default=None,
    help="Write a realistic, correlated set of packets: 'call' (a SIP call with SDP, "
    "RTCP reports and log lines sharing the Call-ID) or 'opensips' (what "
    "OpenSIPS 3.4 extended tracing sends for one call over TCP).",
)
@click.option(
    "--opensips-mode",
    "opensips_mode",
    type=click.Choice(["json", "homer5"]),
    default=None,
    help="For --scenario opensips: json (homer5_on=0: JSON payloads, "
    "chunk 0x0065; the default) or homer5 (homer5_on=1: text "
    "payloads, no 0x0065).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="For --scenario: the seed of its random parts (Call-IDs, ports, timing).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Write the packet N times, or the scenario N times (seeds SEED..SEED+N-1, "
    "each run starting after the previous one).",
)
@click.option(
    "--hep-src",
    "hep_src",
    type=EndpointParam(),
    default=None,
    metavar="ADDR:PORT",
    help="For -f pcap: where the HEP datagrams come from (default 127.0.0.1:9061, "
    "or [::1]:9061 when --hep-dst is IPv6).",
)
@click.option(
    "--hep-dst",
    "hep_dst",
    type=EndpointParam(),
    default="127.0.0.1:9060",
    show_default=True,
    metavar="ADDR:PORT",
    help="For -f pcap: the collector the HEP datagrams go to.",
)
@output_options("raw", "hex", "pcap", "jsonl", default="raw")
@pass_env
@click.pass_context
def encode_command(
    ctx: click.Context, env: Environment, fmt: str, output: str | None, **opts: Any
) -> None:
    """Build HEP packets and write them (raw HEP by default).

    Packets come from the options (one packet, repeated with --count), from JSON Lines
    records (standard input or --from FILE: 'heptool decode -f jsonl X | heptool encode'
    reproduces the original HEP bytes exactly; a hand-written record with only some fields
    gets the same defaults as the options), or from --scenario.

    Output: raw HEP packets back to back (what 'heptool decode' reads; refused on a
    terminal), -f hex (annotated dump), -f pcap (each packet in an Ethernet/IP/UDP frame
    from --hep-src to --hep-dst, timed by the packet's own timestamp) or -f jsonl (the
    record of each packet).
    """
    fmt = resolve_format(fmt, env, output)
    source = _pick_source(ctx, env, opts)
    messages = _messages(ctx, env, source, opts, fmt)
    _write(env, fmt, output, messages, opts)


# ---------------------------------------------------------------------------
def _pick_source(ctx: click.Context, env: Environment, opts: dict[str, Any]) -> str:
    """'scenario', 'records' or 'options' (and check the option combinations)."""
    if opts["scenario"] is not None:
        if opts["from_"] is not None:
            raise click.UsageError("--from and --scenario cannot be used together")
        bad = [n for n in _PACKET_OPTIONS if given(opts, n) and n not in _SCENARIO_OK]
        if bad:
            raise click.UsageError(
                f"{flag_name(bad[0])} cannot be used with --scenario (scenarios "
                "take --time, --capture-id, --node-name, --auth-key, --chunk, "
                "--compress, --seed)"
            )
        if opts["opensips_mode"] is not None and opts["scenario"] != "opensips":
            raise click.UsageError("--opensips-mode needs --scenario opensips")
        return "scenario"
    if opts["opensips_mode"] is not None:
        raise click.UsageError("--opensips-mode needs --scenario opensips")
    if opts["from_"] is not None:
        if given(opts, "payload"):
            raise click.UsageError("--payload cannot be used with --from (records carry payloads)")
        return "records"
    if given(opts, "payload") or env.stdin_isatty:
        return "options"
    # a pipe or file on standard input: records, unless it is empty (e.g. </dev/null in CI)
    peek = getattr(env.stdin_binary, "peek", None)
    try:
        head = peek(1)[:1] if peek is not None else None
    except (OSError, ValueError):
        head = b""
    if head == b"":
        return "options"
    if head is None:  # cannot look ahead: read it all (small inputs: tests, CliRunner)
        data = env.stdin_binary.read()
        if not data:
            return "options"
        import io

        opts["_stdin_data"] = io.BytesIO(data)
    return "records"


def _from_records(env: Environment, opts: dict[str, Any]) -> Iterator[Any]:
    """The messages of the records (or HEP) of --from or standard input, each with the
    packet options given on the command line set."""
    from heptool.core.errors import HepError
    from heptool.pipeline.build import apply_overrides, check_record_keys, record_defaults
    from heptool.pipeline.reader import MessageReader

    def fail(problem: Any) -> None:
        raise BadInputError(problem.text)

    start = opts["time"] or now()
    reader = MessageReader(
        [opts["from_"] if opts["from_"] is not None else "-"],
        stdin=opts.get("_stdin_data") or env.stdin_binary, on_problem=fail, warnings=False,
        name_errors=False, prepare_record=(
            (lambda rec: record_defaults(rec, start)) if opts["ignore_unknown_keys"]
            else (lambda rec: record_defaults(check_record_keys(rec), start))))
    overrides = {"src": opts["src"], "dst": opts["dst"], "ip_proto": opts["ip_proto"],
                 "proto_type": opts["proto"], "capture_id": opts["capture_id"],
                 "node_name": opts["node_name"], "auth_key": opts["auth_key"],
                 "correlation_id": opts["correlation_id"], "time": opts["time"],
                 "compression": opts["compress"], "chunks": opts["chunks"],
                 "version": int(opts["version"]) if opts["version"] is not None else None}
    for item in reader:
        p = item.packet
        try:
            m = apply_overrides(item.message, **overrides)
        except HepError as e:
            raise BadInputError(str(e)) from None
        yield m, f"line {p.line}" if p.line is not None else p.where


def _from_scenario(opts: dict[str, Any]) -> Iterator[Any]:
    from heptool.pipeline.build import Rewrites, scenario_messages

    kwargs: dict[str, Any] = {}
    if opts["scenario"] == "opensips":
        kwargs["mode"] = opts["opensips_mode"] or "json"
    rewrites = Rewrites(capture_id=opts["capture_id"], node_name=opts["node_name"],
                        auth_key=opts["auth_key"], chunks=opts["chunks"],
                        compression=opts["compress"])
    for n, m in enumerate(scenario_messages(opts["scenario"], seed=opts["seed"],
                                            start=opts["time"], count=opts["count"],
                                            **kwargs)):
        rewrites.apply(m)
        yield m, f"{opts['scenario']} packet {n}"


def _messages(
    ctx: click.Context, env: Environment, source: str, opts: dict[str, Any], fmt: str
) -> Iterator[Any]:
    if source == "scenario":
        return _from_scenario(opts)
    if source == "records":
        if opts["count"] != 1:
            raise click.UsageError("--count applies to packets built from options or --scenario")
        return _from_records(env, opts)
    m = message_from_options(env, opts)
    if fmt == "raw" and m.version in (1, 2):
        _check_v12_stream(m)
    return iter([(m, "the packet")] * opts["count"])


def _check_v12_stream(m: Any) -> None:
    """HEPv1/v2 have no length: written back to back, a packet ends where its SIP message
    ends (headers, blank line, Content-Length body), as 'heptool decode' frames it.  A
    payload that is not such a message could never be read back: a usage error."""
    from heptool.core.codec import encode
    from heptool.core.errors import HepError
    from heptool.core.stream import NEED_DATA, StreamDecoder

    try:
        data = encode(m)
    except HepError:
        return  # reported with the packet, as before
    dec = StreamDecoder(strict=True)
    try:
        dec.feed(data)
        ok = dec.next_message() is not NEED_DATA and dec.close() == 0
    except HepError:
        ok = False
    if not ok:
        raise click.UsageError(
            f"--payload: HEPv{m.version} written raw (no length field) ends where its SIP "
            "message ends (headers, blank line, Content-Length body); this payload is not one, "
            "so 'heptool decode' could not read it back: use -f pcap or --hep-version 3")


def _encoded(messages: Iterator[Any]) -> Iterator[tuple[Any, bytes]]:
    from heptool.core.codec import encode
    from heptool.core.errors import HepError

    for m, where in messages:
        try:
            yield m, encode(m)
        except HepError as e:
            raise BadInputError(f"{where}: {e}") from None


def _write(
    env: Environment, fmt: str, output: str | None, messages: Iterator[Any], opts: dict[str, Any]
) -> None:
    from heptool.cli.options import open_output

    count = 0
    binary = fmt in ("raw", "pcap")
    # Build the first packet before opening -o FILE, so that a bad option leaves no file.
    stream = _encoded(messages)
    first = next(stream, None)
    with open_output(env, output, binary=binary, is_json=fmt == "jsonl") as out:
        writer = _writer(fmt, out, opts)
        if first is not None:
            writer(0, *first)
            count = 1
            for m, data in stream:
                writer(count, m, data)
                count += 1
    if env.verbosity:
        stderr_echo(env, f"encode: {count} packet{'s' if count != 1 else ''} written")


def _writer(fmt: str, out: IO[Any], opts: dict[str, Any]) -> Any:
    if fmt == "raw":
        return lambda i, m, data: out.write(data)
    if fmt == "hex":
        from heptool.output.hexdump import render

        def hexdump(i: int, m: Any, data: bytes) -> None:
            out.write(("\n" if i else "") + f"# packet {i}: HEPv{m.version}, {len(data)} bytes\n")
            out.write(render(data) + "\n")

        return hexdump
    if fmt == "jsonl":
        from heptool.core.codec import decode
        from heptool.core.record import to_record

        try:
            import orjson

            def dumps(r: dict[str, Any]) -> str:
                return orjson.dumps(r).decode()
        except ImportError:  # pragma: no cover
            import json

            def dumps(r: dict[str, Any]) -> str:
                return json.dumps(r, ensure_ascii=False, separators=(",", ":"))

        def jsonl(i: int, m: Any, data: bytes) -> None:
            rec = {"index": i, **to_record(decode(data))}
            out.write(dumps(rec) + "\n")
            out.flush()

        return jsonl
    # pcap
    from heptool.capture.writer import PcapWriter

    dst = opts["hep_dst"]
    src = opts["hep_src"] or (loopback_like(dst[0]), 9061)
    if (":" in src[0]) != (":" in dst[0]):
        raise click.UsageError("--hep-src and --hep-dst must both be IPv4 or both IPv6")
    w = PcapWriter(out)
    v1_time = opts["time"] or now()

    def pcap(i: int, m: Any, data: bytes) -> None:
        ts = (m.ts_sec, m.ts_usec or 0) if m.version != 1 and m.ts_sec is not None else v1_time
        try:
            w.write(data, ts=ts, src=src, dst=dst)
        except ValueError as e:
            raise BadInputError(f"packet {i}: {e}") from None

    return pcap
