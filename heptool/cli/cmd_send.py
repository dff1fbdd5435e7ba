"""``heptool send``: send HEP to collectors over UDP, TCP or TLS: captures replayed as they
happened, records, or packets built on the spot.

Kept light at import time: click, the CLI helpers and option bundles, and heptool.cli.params; the
senders, inputs and codec are imported when the command runs.
"""

from __future__ import annotations

from typing import Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.exit import ExitStatus
from heptool.cli.kafka_options import (
    KafkaInputParam,
    check_kafka_key,
    kafka_input_options,
    kafka_key_option,
    kafka_key_order,
    kafka_options,
)
from heptool.cli.options import (
    BadInputError,
    build_message_filter,
    flag_name,
    given,
    message_filter_options,
    message_from_options,
)
from heptool.cli.params import (
    ChunkParam,
    EndpointParam,
    IpProtoParam,
    ProtoParam,
    SizeParam,
    TargetParam,
    TimeParam,
)
from heptool.cli.signals import stopping_on_signals

__all__ = ["send_command"]

EPILOG = """\
\b
Examples:
  heptool send capture.pcap --to udp://127.0.0.1:9060
  heptool send capture.pcap --to udp://10.0.0.9:9060 --to tcp://10.0.0.10:9061   # fan-out
  heptool send capture.pcap.gz --to tcp://[::1]:9060 --pace original --speed 4
  heptool send capture.pcap --to udp://127.0.0.1:9060 --rate 1000 --loop 0 --restamp shift
  heptool send --chunk correlation_id=abc --payload @invite.txt --to udp://127.0.0.1:9060
  heptool send --scenario call --count 1000 --rate 200 --to udp://127.0.0.1:9060   # 1000 calls
  heptool send x.pcap --capture-id 2002 --hep-version 2 --to udp://127.0.0.1:9060
  heptool send x.pcap --to tls://collector:9061 --ca ca.pem
  heptool send x.pcap --to tcp://hep1:9061 --failover tcp://hep2:9061 --spool /var/spool/hep
  heptool send x.pcap --to kafka://broker:9092/hep             # keyed by call
  heptool send kafka://broker:9092/hep --group relay --to udp://10.0.0.9:9060
  heptool decode -f jsonl x.pcap | jq -c 'select(.proto=="sip")' | heptool send --to udp://127.0.0.1:9060
  heptool send -i eth0 --filter 'port 5060' --to tcp://collector:9061   # capture agent

\b
What is counted: UDP "sent" is what the kernel accepted; whether a datagram arrived, UDP
cannot tell. An ICMP port unreachable (nothing listening) is counted as a note in the
summary, not as a packet lost: how many come back depends on timing. TCP/TLS "sent" is
what the collector's host acknowledged; the rest is "NOT delivered".

\b
Exit status: 0 every packet was sent (over TCP/TLS: acknowledged by the collector's host);
1 some packet could not be sent or delivered (counted in the summary; also after Ctrl-C or
SIGTERM), or live capture (-i) lost packets or is not permitted; 2 bad command line (with
-i: also no such interface, a filter libpcap refuses); 3 the input is not valid HEP; 130
stopped by Ctrl-C or SIGTERM, everything sent delivered (with -i, Ctrl-C and SIGTERM are
the agent's normal end: 0). A first Ctrl-C/SIGTERM stops after the packet being
sent and delivers what waits (bounded by --write-timeout and --retry); a second gives up
at once. A TCP/TLS destination that is down is connected in the background with backoff
(the others are served meanwhile); what it did not get is NOT delivered, unless
--failover took it or --spool keeps it on disk for the next run (not a failure).
"""

#: Options that build one packet (as ``heptool encode``); with an INPUT they are refused.
# options that build a packet (--time is not one: it also starts a --scenario)
_BUILD = ("proto", "src", "dst", "ip_proto", "correlation_id", "payload", "compress", "chunks")


@click.command("send", epilog=EPILOG, short_help="Send HEP over UDP, TCP or TLS to collectors.")
@click.argument("inputs", nargs=-1, metavar="[INPUT]...", type=KafkaInputParam())
@click.option("--to", "targets", type=TargetParam(kafka=True), multiple=True, required=True,
              metavar="URL",
              help="Destination: udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT (IPv6 as "
                   "[::1]:9060) or kafka://HOST:PORT/TOPIC (needs heptool[kafka]). Repeatable: "
                   "every packet goes to each, on its own connection.")
@kafka_key_option
@kafka_input_options()
# -- building packets, as encode ------------------------------------------------------------
@click.option("--proto", type=ProtoParam(), default=None, metavar="NAME|N",
              help="Build a packet: protocol type, chunk 0x000b (sip (default), log, ...).")
@click.option("--src", type=EndpointParam(), default=None, metavar="ADDR:PORT",
              help="Build a packet: source of the captured packet (default 127.0.0.1:5060).")
@click.option("--dst", type=EndpointParam(), default=None, metavar="ADDR:PORT",
              help="Build a packet: destination of the captured packet (default loopback:5060).")
@click.option("--ip-proto", "ip_proto", type=IpProtoParam(), default=None, metavar="udp|tcp|N",
              help="Build a packet: IP protocol of the captured packet (default udp).")
@click.option("--time", "time", type=TimeParam(), default=None, metavar="TIME",
              help="Build a packet: capture time, ISO 8601 or epoch seconds (default: now).")
@click.option("--correlation-id", "correlation_id", default=None, metavar="TEXT",
              help="Build a packet: correlation id, chunk 0x0011.")
@click.option("--payload", default=None, metavar="TEXT|@FILE|-",
              help="Build a packet with this payload: TEXT, @FILE (its bytes) or - (stdin).")
@click.option("--compress", type=click.Choice(["gzip", "zlib"]), default=None,
              help="Build a packet with its payload compressed in chunk 0x0010.")
@click.option("--chunk", "chunks", type=ChunkParam(), multiple=True, metavar="SPEC",
              help="Set any chunk, as in 'heptool encode' (NAME=VALUE, 0x0011=abc, "
                   "VENDOR:TYPE=VALUE). Builds a packet, or rewrites every packet of INPUT.")
@click.option("--scenario", type=click.Choice(["call", "opensips"]), default=None,
              help="Send a realistic correlated set of packets (see 'heptool encode'); "
                   "each run (--count, --loop) with fresh Call-IDs, tags and branches, its "
                   "times after the previous run's.")
@click.option("--opensips-mode", "opensips_mode", type=click.Choice(["json", "homer5"]),
              default=None, help="For --scenario opensips: json (default) or homer5.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="For --scenario: the seed of its random parts.")
# -- rewrites -------------------------------------------------------------------------------
@click.option("--capture-id", "capture_id", type=click.IntRange(0, 0xFFFFFFFF), default=None,
              metavar="N", help="Set the capture id (chunk 0x000c) of every packet.")
@click.option("--node-name", "node_name", default=None, metavar="TEXT",
              help="Set the capture node name (chunk 0x0013) of every packet.")
@click.option("--auth-key", "auth_key", default=None, metavar="TEXT",
              help="Set the auth key (chunk 0x000e) of every packet.")
@click.option("--hep-version", "hep_version", type=click.Choice(["1", "2", "3"]), default=None,
              help="Re-encode every packet as this HEP version. TCP/TLS carry HEPv3 only: "
                   "v1/v2 packets are converted to v3 for them (and said so).")
@click.option("--restamp", type=click.Choice(["keep", "now", "shift"]), default="keep",
              show_default=True,
              help="Packet times: keep them; now: the send time; shift: move the capture so it "
                   "starts now, keeping the gaps (divided by --speed); each --loop pass goes "
                   "on after the previous one.")
# -- pacing ---------------------------------------------------------------------------------
@click.option("--pace", type=click.Choice(["max", "original"]), default=None,
              help="max: as fast as possible (default); original: the capture's own timing "
                   "(frame times of a pcap, else the packets' own times).")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=None, metavar="X",
              help="With the original timing, X times faster (implies --pace original).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None, metavar="N",
              help="N packets per second.")
@click.option("--loop", "loops", type=click.IntRange(min=0), default=1, show_default=True,
              metavar="N", help="Send the input N times (0: until --count or Ctrl-C).")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N packets. A packet built from options is sent N times; "
                   "--scenario is run N times (N calls), each with fresh ids.")
@message_filter_options("call_id", "method", "status", "grep")
# -- streams --------------------------------------------------------------------------------
@click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE",
              help="tls://: verify the server with these CA certificates (default: the system's).")
@click.option("--insecure", is_flag=True, help="tls://: do not verify the server's certificate.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE", help="tls://: client certificate (PEM).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE", help="tls://: the client certificate's private key (PEM).")
@click.option("--queue", "queue_max", type=click.IntRange(min=1), default=100_000,
              show_default=True, metavar="N",
              help="TCP/TLS: packets kept while reconnecting (the oldest are dropped beyond); "
                   "kafka://: the producer's queue (full: wait up to --retry for room).")
@click.option("--retry", type=click.FloatRange(min=0), default=5.0, show_default=True,
              metavar="SECONDS",
              help="TCP/TLS: at the end, how long to keep reconnecting to deliver what waits; "
                   "kafka://: how long to wait for the brokers to acknowledge what is queued.")
@click.option("--failover", "failover", type=TargetParam(), multiple=True, metavar="URL",
              help="TCP/TLS: while the --to destination (one only) is down, send to this "
                   "one instead (repeatable: tried in order); back to --to when it returns.")
@click.option("--spool", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="TCP/TLS: while the destination (and its failovers) are down, keep the "
                   "packets on disk in DIR (one subdirectory per destination) and send them, "
                   "in order, when one returns; what is left is sent by the next run.")
@click.option("--spool-max", "spool_max", type=SizeParam(), default="100M", show_default=True,
              metavar="SIZE",
              help="The most --spool keeps per destination; beyond it new packets are dropped "
                   "and counted NOT delivered.")
@click.option("--write-timeout", "write_timeout", type=click.FloatRange(min=0, min_open=True),
              default=5.0, show_default=True, metavar="SECONDS",
              help="TCP/TLS: a write that makes no progress for this long (the collector "
                   "does not read) gives the connection up; it is reconnected with backoff.")
# -- capture agent --------------------------------------------------------------------------
@click.option("-i", "--interface", "iface", default=None, metavar="IFACE",
              help="Capture agent: sniff SIP on IFACE (any: every interface; needs root or "
                   "CAP_NET_RAW) and send it as HEP until Ctrl-C/SIGTERM, instead of INPUT.")
@click.option("--filter", "bpf", default=None, metavar="EXPR",
              help="With -i: capture filter, BPF as tcpdump takes it ('port 5060').")
@click.option("--buffer-size", "buffer_size", type=SizeParam(), default=None, metavar="SIZE",
              help="With -i: the kernel's receive buffer (default 32M; beyond "
                   "net.core.rmem_max it needs CAP_NET_ADMIN). Lost packets are counted and "
                   "make the exit status 1.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="With -i: stop after SECONDS.")
@click.option("-v", "--verbose", count=True,
              help="Report connections, reconnections, drops and what could not be delivered "
                   "as it happens, each line with its time (UTC).")
@pass_env
def send_command(env: Environment, **opts: Any) -> None:
    """Send HEP packets to one or more collectors.

    INPUT is what 'heptool decode' reads (pcap/pcapng, gzip'd or not, a raw HEP stream, JSON
    Lines records; '-' = standard input); each HEP packet is sent as it is, byte for byte,
    unless a rewrite option changes it. Without INPUT, a packet is built from the same
    options as 'heptool encode' (--payload, --chunk, --src ...), or --scenario is sent, or
    records are read from standard input.

    UDP: one datagram per packet; a packet over 65,507 bytes is reported, never truncated.
    TCP/TLS: HEPv3 back to back on one connection per destination; a dropped connection is
    re-established with backoff while packets wait in a bounded queue, and what the
    collector's host did not acknowledge is sent again. TLS verifies the server's
    certificate unless --insecure.

    The summary on standard error gives, per destination, the packets and bytes sent, the
    rate, errors and what could not be delivered (exit status 1 if anything was not).

    Kafka: kafka://HOST:PORT/TOPIC as --to produces one message per packet (value: the HEP
    bytes unchanged; key: the call, see --kafka-key; headers hep_proto, hep_capture_id,
    hep_node, hep_time); delivered means acknowledged by the brokers. As INPUT it reads the
    topic (--group, --from-beginning, --until-idle); offsets are committed only after
    everything read was delivered (at least once).
    """
    from heptool.net.client import client_tls_context
    from heptool.pipeline.build import Rewrites
    from heptool.pipeline.replay import DeliveryError, Replay, open_senders, pacer_for

    o = opts
    match = build_message_filter({k: o.pop(k) for k in ("call_id", "method", "status", "grep")})
    _check(o)
    pacer = pacer_for(o["pace"], speed=o["speed"], rate=o["rate"])
    ctx = None
    if any(t.scheme == "tls" for t in o["targets"] + o["failover"]):
        try:
            ctx = client_tls_context(ca=o["ca"], insecure=o["insecure"], cert=o["cert"],
                                     key=o["key"])
        except (OSError, ValueError) as e:
            raise click.ClickException(f"TLS setup: {e}") from None
    # DeliveryError (exit status 1) and bad input (HepError, 3) go to main(), the one boundary
    verbose = o["verbose"]

    def event(sender: Any, kind: str, text: str) -> None:
        if verbose:
            _say(env, f"{_stamp()} send {sender.target}: {text}")

    interrupted: list[int] = []
    running: list[Any] = []

    def interrupt(sig: int, _frame: Any) -> None:
        interrupted.append(sig)
        for r in running:
            r.stop()

    key_order = kafka_key_order(o.pop("kafka_key"))
    check_kafka_key(o["targets"], "--to")
    kafka = kafka_options(o, list(o["inputs"]))
    if kafka is not None:  # a signal ends the reading of the topic too (else it waits on)
        running.append(kafka.on_open)

    def open_all() -> list[Any]:
        return open_senders(o["targets"], ssl_context=ctx, queue_max=o["queue_max"],
                            retry=o["retry"], write_timeout=o["write_timeout"],
                            on_event=event, failover=o["failover"], spool=o["spool"],
                            spool_max=o["spool_max"], kafka_key=key_order)

    if o["iface"] is not None or o["bpf"] or o["buffer_size"] or o["duration"]:
        from heptool.cli.live import run_agent  # the capture agent: -i IFACE

        return run_agent(env, o, open_all(), pacer, match, lambda *lines: _say(env, *lines))
    source = None
    delivered = False
    try:
        # the handlers are set before the destinations are opened: a signal while a first
        # connection is tried (up to its timeout) also ends the run with its summary
        with stopping_on_signals(interrupt):
            senders = open_all()
            built = not o["inputs"] and not o["scenario"]
            loops = o["loops"]
            count = o["count"]
            if built and count is not None and loops == 1:
                loops = 0  # a packet built from options: sent --count times
            if o["scenario"]:
                count = None  # --count is the number of scenario runs (calls), as for encode
            source = _source(env, o, kafka)
            replay = Replay(
                source, senders, pacer=pacer, count=count, loops=loops,
                rewrites=Rewrites(capture_id=o["capture_id"], node_name=o["node_name"],
                                  auth_key=o["auth_key"], chunks=o["chunks"],
                                  restamp=o["restamp"], speed=o["speed"] or 1.0),
                version=int(o["hep_version"]) if o["hep_version"] else None, match=match,
                cache=built or "-" in o["inputs"])  # standard input is read once
            running.append(replay)
            for _ in interrupted:
                replay.stop()  # what came while setting up
            try:
                summary = replay.run()
            except DeliveryError as e:
                _say(env, *e.summary.lines())  # type: ignore[union-attr]
                raise
            delivered = True
    finally:
        if kafka is not None and source is not None:  # kafka:// input: offsets committed
            source.close(commit=delivered)              # once all was delivered
    _say(env, *summary.lines())
    if interrupted:
        click.get_current_context().exit(ExitStatus.INTERRUPTED)


def _stamp() -> str:
    """The time of a -v line: ISO 8601 UTC, to the millisecond."""
    import time

    from heptool.core.record import format_time

    ns = time.time_ns()
    text = format_time(ns // 1_000_000_000, (ns // 1000) % 1_000_000) or "-"
    return text[:23] + "Z" if len(text) > 23 else text


def _say(env: Environment, *lines: str) -> None:
    for line in lines:
        env.stderr.write(line + "\n")
        env.stderr.flush()


def _check(o: dict[str, Any]) -> None:
    built = [n for n in _BUILD if given(o, n) and n != "chunks"]
    if o["inputs"] and (built or o["scenario"]):
        what = flag_name(built[0]) if built else "--scenario"
        raise click.UsageError(f"{what} builds packets: it cannot be used with INPUT")
    if o["scenario"] and built:
        raise click.UsageError(f"{flag_name(built[0])} cannot be used with --scenario")
    if o["opensips_mode"] is not None and o["scenario"] != "opensips":
        raise click.UsageError("--opensips-mode needs --scenario opensips")
    if o["rate"] is not None and (o["pace"] == "original" or o["speed"] is not None):
        raise click.UsageError("--rate and --pace original/--speed are different pacings: "
                               "give one")
    if o["rate"] is not None and o["pace"] == "max":
        raise click.UsageError("--rate and --pace max contradict each other")
    if o["speed"] is not None and o["pace"] == "max":
        raise click.UsageError("--speed needs --pace original (or no --pace)")
    version = o["hep_version"]
    if version in ("1", "2"):
        streams = [t for t in o["targets"] if t.is_stream]
        if streams:
            raise click.UsageError(
                f"--hep-version {version}: {streams[0]} carries HEPv3 only (HEP over TCP/TLS "
                "is framed by the v3 length); use udp:// or --hep-version 3")
        if version == "1" and o["capture_id"] is not None:
            raise click.UsageError("HEPv1 has no capture id: --capture-id needs --hep-version "
                                   "2 or 3")
    if o["failover"] and (len(o["targets"]) != 1 or not o["targets"][0].is_stream):
        raise click.UsageError("--failover needs exactly one --to, a tcp:// or tls:// one")
    if o["spool"] and not any(t.is_stream for t in o["targets"]):
        raise click.UsageError("--spool keeps packets for tcp:// and tls:// destinations: "
                               "give one with --to")
    if (o["ca"] or o["insecure"] or o["cert"] or o["key"]) and not any(
            t.scheme == "tls" for t in o["targets"] + o["failover"]):
        raise click.UsageError("--ca/--insecure/--cert/--key need a tls:// --to")


def _source(env: Environment, o: dict[str, Any], kafka: Any = None) -> Any:
    """What to send: the inputs (a MessageReader), a --scenario, or one packet built from
    the options as 'heptool encode' builds it (the rewrites come later, to every source
    alike); without any, records on standard input."""
    from heptool.pipeline.reader import MessageReader
    from heptool.pipeline.replay import ScenarioRuns

    if o["scenario"]:
        mode = {"mode": o["opensips_mode"] or "json"} if o["scenario"] == "opensips" else {}
        return ScenarioRuns(o["scenario"], runs=o["count"] or 1, seed=o["seed"],
                            start=o["time"], **mode)
    if not o["inputs"] and (given(o, "payload") or env.stdin_isatty
                            or any(given(o, n) for n in _BUILD if n != "chunks")):
        return lambda: [message_from_options(env, {**o, "version": None, "chunks": (),
                                                   "capture_id": None, "node_name": None,
                                                   "auth_key": None})]

    def problem(p: Any) -> None:
        if p.level != "note":
            raise BadInputError(p.text)
        _say(env, f"send: {p.text}")

    return MessageReader(list(o["inputs"]) or ["-"], stdin=env.stdin_binary,
                         on_problem=problem, warnings=False, name_errors=False,
                         sip_fallback=True, kafka=kafka)
