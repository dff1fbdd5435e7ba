"""``heptool convert``: plain SIP captures -> HEP, and HEP -> the packets Wireshark understands.

Top-level imports stay light (click and the CLI helpers): this module is imported for every
``heptool --help`` and shell TAB press.  The capture code, the codec and scapy (live capture
only) are imported when the command runs.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.exit import ExitStatus
from heptool.cli.options import BinaryToTerminalError, filter_options, open_output
from heptool.cli.params import parse_hep_endpoint, parse_ports, parse_proto_type

__all__ = ["convert_command", "parse_ports"]

FORMATS = ("auto", "pcap", "pcapng", "hep", "jsonl")
#: Bytes of the input looked at to tell a SIP capture from a HEP capture.
SNIFF_BYTES = 1 << 20

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

\b
Exit status: 0 converted; 2 bad command line; 3 the input was damaged or held bad HEP
packets (each reported on stderr, conversion goes on); 1 an input or output could not be
opened, or live capture is not permitted. Nothing to convert is not an error but never
silent: exit 0 with one line on stderr, e.g. "convert: x.pcap: no SIP found (90 frames)" or
"convert: x.pcap: no HEP found".
"""


@click.command("convert", epilog=EPILOG,
               short_help="SIP captures to HEP, and HEP back to the captured packets.")
@click.argument("input_path", required=False, metavar="[INPUT]",
                type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              metavar="FILE", help="Write to FILE instead of standard output ('-' = stdout).")
@click.option("-f", "--to", "--format", "fmt", type=click.Choice(FORMATS), default="auto",
              show_default=True,
              help="Output: pcap / pcapng (HEP -> the original packets; SIP -> HEP over UDP "
                   "frames), hep (raw HEP stream), jsonl (records). auto: pcapng when FILE "
                   "ends in .pcapng, else pcap.")
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
@click.option("--filter", "bpf", default=None, metavar="EXPR",
              help="SIP -> HEP: only packets matching this capture filter ('udp port 5060'). "
                   "With -i it is BPF, compiled for the kernel; for files a subset: [src|dst] "
                   "host/net/port/portrange, udp, tcp, ip, ip6, not, and, or, ( ).")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N converted messages.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="With -i: stop after SECONDS.")
@filter_options("proto", "call_id", "grep", "src", "dst", "since", "until")
@click.option("-v", "--verbose", count=True, help="Report counts on stderr at the end.")
@pass_env
def convert_command(env: Environment, input_path: str | None, output: str | None, fmt: str,
                    direction: str, ports_text: str | None, proto_type_text: str,
                    hep_version: str, capture_id: int | None, node_name: str | None,
                    auth_key: str | None, correlation_id_from: str, hep_dst: str,
                    hep_src: str | None, mtu: int, iface: str | None, bpf: str | None,
                    count: int | None, duration: float | None, call_id: tuple[str, ...],
                    proto: tuple[str, ...], src: tuple[str, ...], dst: tuple[str, ...],
                    grep: str | None, since: str | None, until: str | None,
                    verbose: int) -> None:
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
    """
    from heptool.core.filters import build_filter

    env.verbosity = max(env.verbosity, verbose)
    try:
        match = build_filter(proto=proto, call_id=call_id, grep=grep, src=src, dst=dst,
                             since=since, until=until)
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
    if duration is not None and iface is None:
        raise click.UsageError("--duration needs -i IFACE")
    if iface is not None and direction == "hep":
        raise click.UsageError("-i captures plain SIP: --from hep cannot be used with it")
    ptype = parse_proto_type(proto_type_text)
    dst_ep = parse_hep_endpoint(hep_dst, "--hep-dst", 9060)
    src_ep = parse_hep_endpoint(hep_src, "--hep-src", 9061) if hep_src else (dst_ep[0], 9061)
    if (":" in src_ep[0]) != (":" in dst_ep[0]):
        raise click.UsageError("--hep-src and --hep-dst must be of the same IP version")

    to_terminal = (output is None or output == "-") and bool(env.stdout_isatty)
    if fmt == "auto":
        fmt = "pcapng" if output is not None and output.lower().endswith(".pcapng") else "pcap"
    if fmt != "jsonl" and to_terminal:
        raise BinaryToTerminalError("pcap" if fmt.startswith("pcap") else "binary HEP")

    run = _Run(env, verbose=verbose, count=count, match=match,
               live=iface is not None or _is_pipe(env, input_path),
               name=iface if iface is not None else input_path
               if input_path not in (None, "-") else "<stdin>")
    with _open_input(env, input_path, iface) as source:
        if iface is not None:
            from heptool.capture.convert import live_frames

            source_frames: Any = live_frames(iface, bpf, timeout=duration)
            kind = "sip"
        else:
            assert source is not None
            source_frames = source
            kind = direction if direction != "auto" else _sniff_direction(source)
        if kind == "hep" and bpf is not None:
            raise click.UsageError("the input is HEP: --filter selects packets of a plain SIP "
                                   "capture (for HEP use --src, --dst, --call-id, --proto)")
        if kind == "hep" and fmt in ("hep", "jsonl"):
            raise click.UsageError(f"the input is HEP already; --to {fmt} converts SIP "
                                   f"captures (use 'heptool decode -f "
                                   f"{'raw' if fmt == 'hep' else 'jsonl'}' for HEP input)")
        with open_output(env, output, binary=True, is_json=fmt == "jsonl") as out:
            if kind == "hep":
                run.hep_to_packets(source_frames, out, fmt, mtu)
            else:
                run.sip_to_hep(source_frames, out, fmt, ports=ports,
                               packet_filter=packet_filter, proto_type=ptype,
                               capture_id=capture_id, node_name=node_name, auth_key=auth_key,
                               correlation_id_from=correlation_id_from,
                               hep_version=int(hep_version), hep_src=src_ep, hep_dst=dst_ep)
    if run.status != ExitStatus.OK:
        click.get_current_context().exit(run.status)


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


class _open_input:
    """The input, and a way to look at its first bytes.

    A file is given to the readers by its path (they open it themselves, with no wrapper
    in the hot loop) after its head was read through a separate handle; standard input is
    wrapped in :class:`_Replay`, which gives the peeked bytes back once.
    """

    def __init__(self, env: Environment, path: str | None, iface: str | None) -> None:
        self.env = env
        self.path = path
        self.iface = iface

    def __enter__(self) -> Any:
        if self.iface is not None:
            return None
        if self.path is None or self.path == "-":
            return _Replay(self.env.stdin_binary)
        try:
            with open(self.path, "rb") as f:
                head = f.read(SNIFF_BYTES)
        except OSError as e:
            raise click.FileError(self.path, hint=e.strerror or str(e)) from None
        return _Path(self.path, head)

    def __exit__(self, *exc: object) -> None:
        pass


class _Path(str):
    """A path (what the readers are given) that remembers the head read from it."""

    head: bytes

    def __new__(cls, path: str, head: bytes) -> _Path:  # noqa: PYI034
        self = super().__new__(cls, path)
        self.head = head
        return self

    def peek_head(self, n: int) -> bytes:
        return self.head[:n]


class _Replay:
    """A read-only stream whose first bytes can be looked at, then read again once.

    Only as much is looked at as the decision needs: 64 bytes tell a HEP stream or JSON
    records (so ``heptool listen -f raw | heptool convert -`` streams at once); a capture
    needs its first frames (up to 1 MiB; ``--from`` skips the look)."""

    name = "<stdin>"  # what error messages call it

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.head = b""
        self.pos = 0
        self.eof = False

    def peek_head(self, n: int) -> bytes:
        if self.pos == 0 and not self.eof and len(self.head) < n:
            chunks = [self.head]
            got = len(self.head)
            while got < n:
                c = self.raw.read(n - got)
                if not c:
                    self.eof = True
                    break
                chunks.append(c)
                got += len(c)
            self.head = b"".join(chunks)
        return self.head[:n]

    def read(self, n: int = -1) -> bytes:
        if self.pos < len(self.head):
            if n is None or n < 0:
                out = self.head[self.pos:] + self.raw.read()
                self.pos = len(self.head)
                return out
            out = self.head[self.pos:self.pos + n]
            self.pos += len(out)
            if len(out) < n:
                out += self.raw.read(n - len(out))
            return out
        self.pos = len(self.head) or 1  # nothing more to peek once reading has begun
        return self.raw.read(n)


def _sniff_direction(source: _Replay | _Path) -> str:
    """``hep`` when the input is a HEP stream, JSON records, or a capture holding HEP;
    ``sip`` otherwise."""
    import zlib

    from heptool.capture.inputs import sniff_kind
    from heptool.capture.pcap import (
        CaptureError,
        IPReassembler,
        extract_transport,
        is_hep_candidate,
        is_hep_stream_start,
        iter_frames,
    )

    kind = sniff_kind(source.peek_head(64))
    if kind not in ("pcap", "pcapng", "gzip"):
        return "hep"  # HEP stream, JSON, or unknown (the HEP reader names what it is)
    head = source.peek_head(SNIFF_BYTES)
    data = head
    if sniff_kind(head) == "gzip":
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 8 * SNIFF_BYTES)
        except zlib.error:
            return "hep"  # let the reader report the damage
    kind = sniff_kind(data)
    if kind not in ("pcap", "pcapng"):
        return "hep"  # HEP stream, JSON, or unknown (the HEP reader names what it is)
    frag = IPReassembler()
    try:
        for fr in iter_frames(io.BytesIO(data)):
            t = extract_transport(fr.linktype, fr.data, frag)
            if t is None or not t.payload:
                continue
            p = t.payload
            # TCP: HEP3 by its magic, HEPv1/v2 (Kamailio) by its header and SIP start line
            if is_hep_candidate(p) if t.proto == 17 else is_hep_stream_start(p):
                return "hep"
    except CaptureError:
        pass  # the sniffed head ends inside a record
    return "sip"


def _layout_cached_encoder(encode: Any) -> Any:
    """``encode`` for HEPv3 messages built from fields, faster: the codec generates one
    packing function per chunk layout, and the messages of one conversion have a handful
    of shapes (IPv6 or not, which optional fields are set), so the function is looked up
    by shape instead of the layout being worked out per message.  Anything the generated
    function does not handle goes through ``encode`` itself (same bytes, or its error)."""
    import struct

    from heptool.core.codec import _build_encoder, _canonical_layout
    from heptool.core.errors import HepValueError

    fns: dict[tuple, Any] = {}
    errors = (struct.error, HepValueError, AttributeError, TypeError, ValueError)

    def enc(m: Any) -> bytes:
        key = (":" in (m.src_ip or ""), m.correlation_id is None, m.auth_key is None,
               m.node_name is None, m.capture_id is None, m.payload is None)
        f = fns.get(key)
        if f is None:
            f = fns[key] = _build_encoder(tuple(_canonical_layout(m))) or encode
        try:
            return f(m)  # type: ignore[no-any-return]
        except errors:
            return encode(m)  # type: ignore[no-any-return]

    return enc


class _Run:
    def __init__(self, env: Environment, *, verbose: int, count: int | None, match: Any,
                 live: bool = False, name: str = "<stdin>") -> None:
        #: input that arrives over time (a pipe, live capture): flush every record
        self.live = live
        self.name = name  # the input, as the "nothing written" note names it
        self.decoded = 0  # HEP messages decoded by _message (before the filters)
        self.env = env
        self.verbose = verbose
        self.count = count
        self.match = match
        self.status = ExitStatus.OK
        self.written = 0

    def say(self, line: str) -> None:
        self.env.stderr.write(" ".join(line.split()) + "\n")
        self.env.stderr.flush()

    def bad(self, text: str) -> None:
        self.say("Error: " + text)
        self.status = ExitStatus.BAD_INPUT

    # -- HEP -> packets ------------------------------------------------------------------
    def _messages(self, source: Any, stats: Any = None) -> Iterator[Any]:
        from heptool.capture.inputs import iter_input

        count = self.count
        one = self._message
        for p in iter_input(source, stdin=self.env.stdin_binary, stats=stats):
            m = one(p)
            if m is None:
                continue
            yield m
            self.written += 1
            if count is not None and self.written >= count:
                return

    def _message(self, p: Any) -> Any:
        """One input packet decoded, reported and filtered: the message (or ``(message,
        outer time)`` for HEPv1), or None when it is left out."""
        from heptool.capture.inputs import to_message
        from heptool.core.codec import decode
        from heptool.core.errors import HepError

        data = p.data
        try:
            m = decode(data) if data is not None else to_message(p)
        except HepError as e:
            if p.data is not None:
                e = e.with_context(p.where)
            self.bad(str(e))
            return None
        self.decoded += 1
        if m._warnings:  # damage inside the packet: converted as far as it goes
            for w in m._warnings:
                self.say(f"Warning: {w.with_context(p.where)}")
            self.status = ExitStatus.BAD_INPUT
        if self.match is not None and not self.match(m):
            return None
        return m if m.ts_sec is not None else (m, p.outer_ts)

    def hep_to_packets(self, source: Any, out: IO[bytes], fmt: str, mtu: int) -> None:
        from heptool.capture.convert import (
            PCAP_LE_USEC,
            ConvertStats,
            HepFramer,
            hep3_to_pcap_records,
            hep_pcap_to_records,
            hep_to_frames,
        )
        from heptool.capture.inputs import InputError, InputStats, iter_input
        from heptool.capture.pcap import CaptureError
        from heptool.capture.pcapng_writer import PcapFrameWriter, PcapngWriter

        st = ConvertStats()
        ist = InputStats()  # what the input held besides HEP (damage is reported below)
        live = self.live
        comments = fmt == "pcapng"
        w = PcapngWriter(out) if comments else PcapFrameWriter(out)
        write = w.write
        # the fused path: every message written as pcap, nothing per message to decide
        fused = not comments and not live and self.match is None and self.count is None
        try:
            if fused:
                framer = HepFramer(mtu=mtu, stats=st)
                frames = framer.frames
                one = self._message
                raw = out.write
                if isinstance(source, _Path) and source.head[:4] == PCAP_LE_USEC:
                    records = hep_pcap_to_records(source, framer,  # a classic pcap file
                                                  stats=ist.capture)
                else:
                    records = hep3_to_pcap_records(
                        iter_input(source, stdin=self.env.stdin_binary, stats=ist), framer)
                try:
                    for p in records:
                        if type(p) is bytes:  # records, ready to write
                            raw(p)
                            continue
                        m = one(p)
                        if m is not None:
                            for sec, usec, frame, comment in frames(m):
                                write(sec, usec, frame, comment)
                finally:
                    framer.close()
            else:
                for sec, usec, frame, comment in hep_to_frames(self._messages(source, ist),
                                                               comments=comments, mtu=mtu,
                                                               stats=st):
                    write(sec, usec, frame, comment)
                    if live:
                        out.flush()
        except (InputError, CaptureError) as e:
            self.bad(str(e))
        finally:
            w.close()
        self._report_input(ist)
        if st.too_big:
            self.bad(f"{st.too_big} messages too big for one UDP datagram were left out")
        if st.untimed:
            self.say(f"Warning: {st.untimed} HEPv1 messages have no time and their input "
                     "gave none (a HEP stream or JSON records, not a capture): their frames "
                     "carry the previous message's time, or 0")
        if self.verbose:
            self.say(f"convert: {st.messages} HEP messages -> {st.frames_out} frames "
                     f"({st.tcp_flows} TCP flows)")
        # nothing written is never silent (README "heptool convert"); after errors they said it
        if not st.frames_out and self.status == ExitStatus.OK:
            if self.decoded:
                self.say(f"convert: {self.name}: nothing written: no HEP message matched the "
                         f"filters ({self.decoded} HEP messages)")
            else:
                self.say(f"convert: {self.name}: no HEP found")

    def _report_input(self, ist: Any) -> None:
        """Bytes of the input that were not HEP and were skipped: damage (exit 3), as in
        ``decode``, never silence."""
        name = self.name
        if ist.skipped_bytes:
            self.warn(f"{name}: skipped {ist.skipped_bytes} bytes that are not HEP")
        if ist.leftover_bytes:
            self.warn(f"{name}: the last {ist.leftover_bytes} bytes are an incomplete HEP "
                      "packet")
        c = ist.capture
        if c.stream_garbage_bytes:
            self.warn(f"{name}: frame {c.stream_garbage_frame}: skipped "
                      f"{c.stream_garbage_bytes} bytes that are not HEP inside HEP-over-TCP "
                      "streams")

    def warn(self, text: str) -> None:
        self.say("Warning: " + text)
        self.status = ExitStatus.BAD_INPUT

    # -- SIP -> HEP ----------------------------------------------------------------------
    def _fusable(self, source: Any, packet_filter: Any, proto_type: int,
                 capture_id: int | None, node_name: str | None, auth_key: str | None,
                 correlation_id_from: str, hep_version: int, hep_src: tuple[str, int],
                 hep_dst: tuple[str, int]) -> bool:
        """Can :func:`~heptool.capture.convert.sip_to_hep3_pcap` write this conversion?
        (The same bytes as the general path, for the common case: a classic pcap file,
        SIP as HEPv3 over IPv4, every message written, no per-message filters.)"""
        from heptool.capture.convert import PCAP_LE_USEC

        if not (isinstance(source, _Path) and source.head[:4] == PCAP_LE_USEC
                and len(source.head) >= 24):
            return False
        if (self.match is not None or self.count is not None or self.live
                or packet_filter is not None or proto_type != 1 or hep_version != 3
                or capture_id is None or correlation_id_from != "none"
                or ":" in hep_src[0] or ":" in hep_dst[0]):
            return False
        try:
            extra = len((node_name or "").encode()) + len((auth_key or "").encode())
        except UnicodeEncodeError:
            return False  # the general path reports it, message by message
        # a name or key near the 64 KiB chunk limit: the general path says what cannot fit
        return extra < 1024

    def sip_to_hep(self, source: Any, out: IO[bytes], fmt: str, *, ports: Any,
                   packet_filter: Any, proto_type: int, capture_id: int | None,
                   node_name: str | None, auth_key: str | None, correlation_id_from: str,
                   hep_version: int,
                   hep_src: tuple[str, int], hep_dst: tuple[str, int]) -> None:
        from heptool.capture.convert import ConvertStats, hep_comment, sip_to_hep
        from heptool.capture.pcap import CaptureError
        from heptool.core.codec import encode
        from heptool.core.errors import HepError

        st = ConvertStats()
        match = self.match
        count = self.count
        enc = _layout_cached_encoder(encode) if hep_version == 3 else encode
        writer: Any
        if fmt in ("pcap", "pcapng"):
            from heptool.capture.frames import FrameSynth
            from heptool.capture.pcapng_writer import PcapFrameWriter, PcapngWriter

            writer = PcapngWriter(out) if fmt == "pcapng" else PcapFrameWriter(out)
            synth = FrameSynth()
            build = synth.udp_builder(hep_src[0], hep_src[1], hep_dst[0], hep_dst[1])
            wr = writer.write
            comments = fmt == "pcapng"

            def emit(m: Any) -> None:
                wr(m.ts_sec, m.ts_usec, build(enc(m)), hep_comment(m) if comments else None)
        elif fmt == "hep":
            from heptool.output.raw import RawWriter

            writer = RawWriter(out)
            rw = writer.write

            def emit(m: Any) -> None:
                rw(enc(m))
        else:
            from heptool.output.jsonl import JsonlWriter
            from heptool.output.records import decode_record

            writer = JsonlWriter(out, line_buffered=False)
            jw = writer.write
            index = [0]

            def emit(m: Any) -> None:
                jw(decode_record(m, index[0], None, None, None, None, True))
                index[0] += 1

        opts = {"capture_id": capture_id, "node_name": node_name, "auth_key": auth_key,
                "correlation_id_from": correlation_id_from, "hep_version": hep_version}
        fused = fmt == "pcap" and self._fusable(source, packet_filter, proto_type, capture_id,
                                                node_name, auth_key, correlation_id_from,
                                                hep_version, hep_src, hep_dst)
        if fused:
            from heptool.capture.convert import sip_to_hep3_pcap

            messages: Any = sip_to_hep3_pcap(
                source, synth, hep_src, hep_dst, capture_id=capture_id,  # type: ignore[arg-type]
                node_name=node_name, auth_key=auth_key, ports=ports, stats=st)
        else:
            messages = sip_to_hep(source, ports=ports, packet_filter=packet_filter,
                                  proto_type=proto_type, stats=st, **opts)
        write = out.write
        handed = 0  # messages the fused path handed to emit()
        try:
            for m in messages:
                if type(m) is bytes:  # the fused path's records, ready to write
                    write(m)
                    continue
                handed += 1
                if match is not None and not match(m):
                    continue
                try:
                    emit(m)
                except (HepError, ValueError) as e:
                    self.bad(f"{m.src_ip}:{m.src_port} -> {m.dst_ip}:{m.dst_port} at "
                             f"{m.ts_sec}.{m.ts_usec:06d}: cannot encode as HEPv{hep_version}: "
                             f"{e}")
                    continue
                self.written += 1
                if self.live:
                    out.flush()
                if count is not None and self.written >= count:
                    break
        except CaptureError as e:
            self.bad(str(e))
        finally:
            writer.close()
            if fused:
                self.written += st.messages - handed  # every other message was written
        if self.verbose:
            self.say(f"convert: {st.frames} frames -> {self.written} HEP messages "
                     f"({st.udp_sip} over UDP, {st.tcp_sip} over TCP); not SIP: "
                     f"{st.not_ip} non-IP frames, {st.udp_other} UDP datagrams, "
                     f"{st.tcp_streams_other} TCP streams; {st.not_port} frames left out by --ports/--filter; "
                     f"{st.tcp_incomplete_bytes + st.tcp_skipped_bytes} TCP bytes incomplete "
                     "or skipped")
        # nothing written is never silent (README "heptool convert"); after errors they said it
        if not self.written and self.status == ExitStatus.OK:
            found = st.udp_sip + st.tcp_sip
            if found:
                self.say(f"convert: {self.name}: nothing written: no SIP message matched the "
                         f"filters ({found} SIP messages)")
            else:
                left = (f"; {st.not_port} left out by --ports/--filter" if st.not_port
                        else "")
                self.say(f"convert: {self.name}: no SIP found ({st.frames} frames{left})")
