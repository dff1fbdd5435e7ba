"""``heptool listen``: a HEP collector you can pipe: UDP, TCP and TLS in, records out.

Kept light at import time (every shell TAB press imports it): click and the CLI helpers; the
server, codec and writers are imported when the command runs.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

import click

from heptool.cli.env import Environment, pass_env
from heptool.cli.options import (
    build_message_filter,
    message_filter_options,
    output_options,
    resolve_format,
)
from heptool.cli.params import SizeParam, TargetParam

__all__ = ["listen_command"]

FORMATS = ("auto", "table", "jsonl", "json", "raw")
DEFAULT_BINDS = ("udp://127.0.0.1:9060", "tcp://127.0.0.1:9060")

EPILOG = """\
\b
Examples:
  heptool listen                                   # UDP and TCP on 127.0.0.1:9060
  heptool listen --bind udp://0.0.0.0:9060 -f jsonl | jq .sip.call_id
  heptool listen --bind udp://127.0.0.1:0          # a free port, printed on stderr
  heptool listen --write-hep hep.pcap --rotate-size 100M --rotate-time 3600 -q
  heptool listen --bind tls://0.0.0.0:9061 --cert srv.pem --key srv.key
  heptool listen --proto sip --forward udp://10.0.0.9:9060 -q   # a filtering HEP proxy
  heptool listen --auth-key s3cret --allow 10.0.0.0/8 --stats 10

\b
Exit status: 0 when stopped by Ctrl-C, SIGTERM, --count or --duration (every output is
flushed and complete); 1 a socket could not be opened; 2 bad command line.
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
              help="Print no records on standard output (with --write-hep, --write-jsonl or "
                   "--forward).")
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
@click.option("--rotate-size", "rotate_size", type=SizeParam(), default=None, metavar="SIZE",
              help="Start a new --write-hep/--write-sip/--write-jsonl file when it reaches SIZE "
                   "(100M, 2G...). Files are then named NAME-00000.EXT, NAME-00001.EXT, ...")
@click.option("--rotate-time", "rotate_time", type=click.FloatRange(min=1), default=None,
              metavar="SECONDS",
              help="Start a new --write-hep/--write-sip/--write-jsonl file every SECONDS.")
@click.option("--forward", "forwards", type=TargetParam(), multiple=True, metavar="URL",
              help="Relay every accepted packet (filters applied), bytes unchanged, to URL. "
                   "Repeatable.")
@click.option("--forward-ca", "forward_ca", type=click.Path(exists=True, dir_okay=False),
              default=None, metavar="FILE", help="tls:// --forward: CA to verify the server with.")
@click.option("--forward-insecure", "forward_insecure", is_flag=True,
              help="tls:// --forward: do not verify the server's certificate.")
@click.option("--auth-key", "auth_key", default=None, metavar="KEY",
              help="Drop (and count) packets whose auth key (chunk 0x000e) is not KEY.")
@click.option("--allow", "allow", multiple=True, metavar="CIDR",
              help="Accept packets and connections only from these networks (10.0.0.0/8, "
                   "::1/128, 127.0.0.1). Repeatable.")
@click.option("--reuse-port", "reuse_port", is_flag=True,
              help="Share the ports with other 'heptool listen --reuse-port' processes "
                   "(SO_REUSEPORT: the kernel spreads packets and connections over them), to "
                   "use more than one core.")
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
              help="Every SECONDS print a line on stderr: packets/s per transport, per protocol "
                   "type, drops by reason, kernel receive-buffer drops.")
@click.option("-v", "--verbose", count=True,
              help="Report connections and every dropped packet on stderr.")
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
    summary is printed and the exit status is 0.
    """
    _Listen(env, opts).run()


class _RecordFile:
    """A file written in whole records: ``write`` only buffers; :meth:`commit` writes what
    was buffered with one system call, and is only called between records, so the file on
    disk always ends at a record boundary (readable after SIGKILL)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.buf = bytearray()
        self.size = 0
        self.opened = time.monotonic()

    def write(self, b: bytes) -> int:
        self.buf += b
        return len(b)

    def flush(self) -> None:
        """Nothing: a writer's flush must not split a record (see :meth:`commit`)."""

    def commit(self) -> None:
        buf = self.buf
        if buf:
            view = memoryview(buf)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
            self.size += len(buf)
            del view
            buf.clear()

    def close(self) -> None:
        try:
            self.commit()
        finally:
            os.close(self.fd)


class _Rotating:
    """One --write-* output, rotated by size and/or time."""

    def __init__(self, path: str, make: Callable[[IO[bytes]], Any], *, size: int | None,
                 every: float | None) -> None:
        self.base = path
        self.make = make
        self.size = size
        self.every = every
        self.n = 0
        self.files: list[str] = []
        self.records = 0
        self._open()

    def _name(self) -> str:
        if self.size is None and self.every is None:
            return self.base
        stem, ext = os.path.splitext(self.base)
        return f"{stem}-{self.n:05d}{ext}"

    def _open(self) -> None:
        name = self._name()
        self.file = _RecordFile(name)
        self.writer = self.make(self.file)  # type: ignore[arg-type]
        self.file.commit()  # a pcap's file header: the file is valid from the start
        self.files.append(name)
        self.n += 1

    def after_record(self) -> None:
        f = self.file
        if len(f.buf) >= 1 << 20:
            f.commit()
        if self.size is not None and f.size + len(f.buf) >= self.size:
            self.rotate()

    def tick(self, now: float) -> None:
        self.file.commit()
        if self.every is not None and now - self.file.opened >= self.every:
            self.rotate()

    def rotate(self) -> None:
        self.close_writer()
        self._open()

    def close_writer(self) -> None:
        close = getattr(self.writer, "close", None)
        if close is not None:
            close()
        self.file.close()

    def close(self) -> None:
        self.close_writer()


class _SipWriter:
    """``--write-sip``: :func:`heptool.capture.convert.hep_to_frames` (which keeps TCP flow
    state across messages, so it wants one iterator of messages) run in a thread fed by a
    queue, into a :class:`_Rotating` output (--rotate-size/--rotate-time apply).  The file is
    committed whenever the converter waits for the next message, i.e. between whole records."""

    def __init__(self, path: str, *, size: int | None = None, every: float | None = None) -> None:
        import queue
        import threading

        from heptool.capture.convert import ConvertStats, hep_to_frames
        from heptool.capture.pcapng_writer import PcapFrameWriter, PcapngWriter

        self.path = path
        pcapng = path.lower().endswith(".pcapng")
        self.out = _Rotating(path, PcapngWriter if pcapng else PcapFrameWriter, size=size,
                             every=every)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=100_000)
        self.stats = ConvertStats()
        self.error: BaseException | None = None
        self._frames = hep_to_frames(self._source(), comments=pcapng, stats=self.stats)
        self.thread = threading.Thread(target=self._run, name="write-sip", daemon=True)
        self.thread.start()

    @property
    def files(self) -> list[str]:
        return self.out.files

    def _source(self) -> Any:
        import queue

        while True:
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                self.out.tick(time.monotonic())  # commit; rotate when --rotate-time is due
                continue
            if item is None:
                return
            yield item

    def _run(self) -> None:
        out = self.out
        try:
            for ts_sec, ts_usec, frame, comment in self._frames:
                out.writer.write(ts_sec, ts_usec, frame, comment)
                out.after_record()
        except Exception as e:  # noqa: BLE001 - a thread boundary: close() reports it
            self.error = e

    def put(self, m: Any, received: float) -> None:
        sec = int(received)
        self.queue.put((m, (sec, int((received - sec) * 1e6))))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(30)
        self.out.close()
        if self.error is not None:
            raise OSError(f"--write-sip {self.path}: {self.error}")


def _frame_cache() -> Callable[[bytes, tuple, tuple], bytes]:
    """``udp_frame`` of heptool.capture.writer, with the IPv4 headers cached per
    (source, destination, length): their UDP checksum is 0, so the header does not depend on
    the payload; ~10x cheaper per packet at listen's rates. IPv6 frames are built each time."""
    from heptool.capture.writer import udp_frame

    cache: dict[tuple, bytes] = {}

    def frame(data: bytes, src: tuple, dst: tuple) -> bytes:
        key = (src, dst, len(data))
        head = cache.get(key)
        if head is not None:
            return head + data
        f = udp_frame(data, src, dst)
        if ":" not in src[0]:
            if len(cache) > 65536:
                cache.clear()
            cache[key] = f[: len(f) - len(data)]
        return f

    return frame


class _Listen:
    def __init__(self, env: Environment, opts: dict[str, Any]) -> None:
        self.env = env
        self.opts = opts
        self.match = build_message_filter(opts)
        self.fmt = resolve_format(opts["fmt"], env, opts["output"])
        if opts["quiet"]:
            self.fmt = "none"
        self.binds = list(opts["binds"]) or None
        self.accepted = 0
        self._accepted_fn: Callable[[], int] | None = None
        self.index = 0
        self.protos: Counter[str] = Counter()
        self.stop_requested = False
        self.closers: list[Any] = []

    def say(self, line: str) -> None:
        err = self.env.stderr
        err.write(line + "\n")
        err.flush()

    # -- setup --------------------------------------------------------------------------
    def run(self) -> None:
        from heptool.net.server import Server, ServerStats, server_tls_context
        from heptool.net.target import parse_target

        o = self.opts
        binds = self.binds or [parse_target(b) for b in DEFAULT_BINDS]
        tls_ctx = None
        if any(t.scheme == "tls" for t in binds):
            if o["cert"] is None:
                raise click.UsageError("tls:// needs --cert (and --key unless the certificate "
                                       "file holds the key)")
            try:
                tls_ctx = server_tls_context(o["cert"], o["key"], o["client_ca"])
            except (OSError, ValueError) as e:
                raise click.ClickException(f"cannot load the TLS certificate: {e}") from None
        elif o["cert"] or o["key"] or o["client_ca"]:
            raise click.UsageError("--cert/--key/--client-ca need a tls:// --bind")
        for cidr in o["allow"]:
            import ipaddress

            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise click.BadParameter(f"{cidr!r} is not an address or CIDR network",
                                         param_hint="'--allow'") from None
        self.stats = ServerStats()
        self.server = Server(binds, lambda *a: None, tls_context=tls_ctx, allow=o["allow"],
                             max_connections=o["max_connections"],
                             stall_timeout=o["stall_timeout"], stats=self.stats,
                             reuse_port=o["reuse_port"])
        self.server.open()
        try:
            self._prepare_outputs()
            for t in self.server.bound:
                self.say(f"listening on {t}")
            self._serve()
        finally:
            self._finish()

    def _prepare_outputs(self) -> None:
        o = self.opts
        env = self.env
        fmt = self.fmt
        self.out_writer: Any = None
        self.emit: Any = None
        self.stdout_stream: Any = None
        if fmt != "none":
            if o["output"] is None or o["output"] == "-":
                if fmt == "table":
                    stream = None
                else:
                    stream = env.stdout_binary
                    env.stdout.flush()
                    if fmt in ("jsonl", "json") and env.stdout_isatty:
                        from heptool.output.jsonl import TerminalJson

                        stream = TerminalJson(stream)  # as open_output does
            else:
                stream = open(o["output"], "wb" if fmt != "table" else "w")  # noqa: SIM115
                self.closers.append(stream)
            self.stdout_stream = stream
            if fmt in ("jsonl", "json"):
                from heptool.output.jsonl import JsonArrayWriter, JsonlWriter

                w = (JsonlWriter if fmt == "jsonl" else JsonArrayWriter)(stream)
                self.out_writer = w
                self.emit = lambda rec, m, data: w.write(rec)
            elif fmt == "table":
                from heptool.output.table import TableWriter

                console = env.console if stream is None else env._make_console(stream, False)
                tw = TableWriter(console, batch=1)
                self.out_writer = tw
                self.emit = lambda rec, m, data: tw.write(rec, m)
            else:  # raw
                from heptool.output.raw import RawWriter

                rw = RawWriter(stream)
                self.out_writer = rw
                self.emit = lambda rec, m, data: rw.write(data)
        self.rotating: list[_Rotating] = []
        self.hep_out: _Rotating | None = None
        self.jsonl_out: _Rotating | None = None
        if o["write_hep"]:
            from heptool.capture.writer import PcapWriter

            self.frame = _frame_cache()
            self.hep_out = self._rotating(o["write_hep"], PcapWriter)
        self.sip_out: _SipWriter | None = None
        if o["write_sip"]:
            try:
                self.sip_out = _SipWriter(o["write_sip"], size=o["rotate_size"],
                                          every=o["rotate_time"])
            except OSError as e:
                raise click.FileError(o["write_sip"], hint=e.strerror or str(e)) from None
        if o["write_jsonl"]:
            from heptool.output.jsonl import JsonlWriter

            self.jsonl_out = self._rotating(o["write_jsonl"], JsonlWriter)
        self.forwarders: list[Any] = []
        if o["forwards"]:
            from heptool.net.client import SendError, client_tls_context, open_sender

            ctx = None
            if any(t.scheme == "tls" for t in o["forwards"]):
                ctx = client_tls_context(ca=o["forward_ca"], insecure=o["forward_insecure"])
            for t in o["forwards"]:
                try:
                    self.forwarders.append(open_sender(t, ssl_context=ctx, retry=1.0))
                except SendError as e:
                    raise click.ClickException(f"--forward {e}") from None
        self.need_msg = (fmt not in ("none", "raw") or self.match is not None
                         or o["auth_key"] is not None or self.jsonl_out is not None
                         or self.sip_out is not None
                         or o["stats_every"] is not None)
        self.auth = o["auth_key"].encode("utf-8") if o["auth_key"] is not None else None
        self.handle = self._make_handler()
        self.server.handler = self.handle
        if o["verbose"]:
            self.server.on_event = self.say

    def _rotating(self, path: str, make: Any) -> _Rotating:
        try:
            r = _Rotating(path, make, size=self.opts["rotate_size"],
                          every=self.opts["rotate_time"])
        except OSError as e:
            raise click.FileError(path, hint=e.strerror or str(e)) from None
        self.rotating.append(r)
        return r

    # -- per packet ---------------------------------------------------------------------
    def _make_handler(self) -> Callable[[bytes, str, tuple, tuple, float], None]:
        """The per-packet function, with everything it needs bound once (it runs up to a few
        hundred thousand times a second)."""
        import hmac

        from heptool.core.codec import decode
        from heptool.core.errors import HepError
        from heptool.output.records import decode_record

        stats = self.stats
        drops = stats.drops
        need_msg = self.need_msg
        auth = self.auth
        match = self.match
        protos = self.protos
        emit = self.emit
        need_rec = self.fmt in ("jsonl", "json", "table") or self.jsonl_out is not None
        jo = self.jsonl_out
        ho = self.hep_out
        so = self.sip_out
        frame = getattr(self, "frame", None)
        forwarders = self.forwarders
        verbose = self.opts["verbose"]
        count = self.opts["count"]
        compare = hmac.compare_digest
        server_stop = self.server.stop

        if (ho is not None and not need_msg and emit is None and jo is None and so is None
                and not forwarders):
            return self._pcap_only_handler(ho, frame, count)
        addr_cache: dict[tuple, str] = {}

        def addr(a: tuple) -> str:
            t = addr_cache.get(a)
            if t is None:
                if len(addr_cache) > 65536:
                    addr_cache.clear()
                t = addr_cache[a] = _addr(a)
            return t

        def handle(data: bytes, transport: str, peer: tuple, local: tuple,
                   received: float) -> None:
            m = None
            if need_msg:
                try:
                    m = decode(data)
                except HepError as e:
                    drops["not HEP"] += 1
                    if verbose:
                        self.say(f"Error: {transport} from {_addr(peer)}: {e}")
                    return
                if auth is not None:
                    got = m.auth_key
                    if got is None or not compare(got.encode("utf-8"), auth):
                        drops["auth key"] += 1
                        return
                if match is not None and not match(m):
                    drops["filtered out"] += 1
                    return
                protos[_proto_name(m.proto_type)] += 1
            index = self.index
            self.index = index + 1
            if need_rec:
                rec = decode_record(m, index, None, transport, addr(peer), addr(local), True)
                if emit is not None:
                    emit(rec, m, data)
                if jo is not None:
                    jo.writer.write(rec)
                    jo.after_record()
            elif emit is not None:
                emit(None, m, data)
            if ho is not None:
                sec = int(received)
                try:
                    f = frame(data, peer, local)  # type: ignore[misc]
                except ValueError:  # a >65,507-byte HEP3 packet from TCP fits no UDP frame
                    drops["too big for a --write-hep UDP frame"] += 1
                else:
                    ho.writer.write_frame(f, (sec, int((received - sec) * 1e6)))
                    ho.after_record()
            if so is not None:
                so.put(m, received)
            for fw in forwarders:
                fw.send(data)
            self.accepted += 1
            if count is not None and self.accepted >= count:
                server_stop()

        return handle

    def _pcap_only_handler(self, ho: _Rotating, frame: Any,
                           count: int | None) -> Callable[[bytes, str, tuple, tuple, float], None]:
        """``--write-hep`` alone (-q, no filter, nothing else): the record is packed here in
        one append (the classic pcap record header of heptool.capture.writer.PcapWriter) to
        keep the per-packet work small enough for 200,000 packets/s."""
        import struct

        pack = struct.Struct("<IIII").pack
        drops = self.stats.drops
        server_stop = self.server.stop
        state = [0]

        def handle(data: bytes, transport: str, peer: tuple, local: tuple,
                   received: float) -> None:
            try:
                f = frame(data, peer, local)
            except ValueError:  # a >65,507-byte HEP3 packet from TCP fits no UDP frame
                drops["too big for a --write-hep UDP frame"] += 1
            else:
                sec = int(received)
                n = len(f)
                rf = ho.file
                rf.buf += pack(sec & 0xFFFFFFFF, int((received - sec) * 1e6), n, n) + f
                if len(rf.buf) >= 1 << 20 or ho.size is not None:
                    ho.after_record()
            state[0] += 1
            if count is not None and state[0] >= count:
                server_stop()

        heads: dict[tuple, bytes] = {}

        def handle_view(view: memoryview, n: int, peer: Any, local: tuple,
                        received: float) -> None:
            """The same for UDP, straight from the receive buffer: the frame header is cached
            per (source, destination, length) (IPv4: UDP checksum 0, so it does not depend
            on the payload); the record is three appends, no intermediate copies."""
            key = (peer, local, n)
            head = heads.get(key)
            if head is None:
                if len(peer) != 2:  # IPv6: its UDP checksum covers the payload
                    handle(bytes(view[:n]), "udp", (peer[0], peer[1]), local, received)
                    return
                data = bytes(view[:n])
                try:
                    f = frame(data, peer, local)
                except ValueError:
                    drops["too big for a --write-hep UDP frame"] += 1
                    state[0] += 1
                    return
                if len(heads) > 65536:
                    heads.clear()
                head = heads[key] = f[: len(f) - n]
            sec = int(received)
            tot = len(head) + n
            buf = ho.file.buf
            buf += pack(sec & 0xFFFFFFFF, int((received - sec) * 1e6), tot, tot)
            buf += head
            buf += view[:n]
            if len(buf) >= 1 << 20 or ho.size is not None:
                ho.after_record()
            state[0] += 1
            if count is not None and state[0] >= count:
                server_stop()

        self.server.udp_view_handler = handle_view

        def accepted() -> int:
            return state[0]

        self._accepted_fn = accepted
        return handle

    # -- loop ---------------------------------------------------------------------------
    def _serve(self) -> None:
        import signal

        o = self.opts
        started = time.monotonic()
        deadline = started + o["duration"] if o["duration"] is not None else None
        stats_every = o["stats_every"]
        self._last_stats = (started, Counter(self.stats.packets))
        next_stats = started + stats_every if stats_every else None
        stdout = self.stdout_stream
        out_writer = self.out_writer

        def stop(_sig: int, _frame: Any) -> None:
            self.stop_requested = True
            self.server.stop()

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, stop)
            except (ValueError, OSError):  # not the main thread (tests)
                pass

        def on_idle() -> None:
            if stdout is not None:
                stdout.flush()
            elif out_writer is not None and hasattr(out_writer, "flush"):
                out_writer.flush()

        def tick() -> None:
            nonlocal next_stats
            now = time.monotonic()
            for r in self.rotating:
                r.tick(now)
            for fw in self.forwarders:
                fw.poll()
            if next_stats is not None and now >= next_stats:
                next_stats = now + stats_every
                self._stats_line(now)

        def should_stop() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        try:
            self.server.run(should_stop=should_stop, on_idle=on_idle, tick=tick,
                            tick_interval=0.1 if deadline is None else min(
                                0.1, max(0.01, deadline - started)))
            self.server.drain_connections(0.05 if o["count"] is None else 0.0)
            on_idle()
        finally:
            for sig, handler in previous.items():
                try:
                    signal.signal(sig, handler)
                except (ValueError, OSError):
                    pass

    def _stats_line(self, now: float) -> None:
        t0, before = self._last_stats
        dt = max(now - t0, 1e-6)
        cur = Counter(self.stats.packets)
        rates = ", ".join(f"{k} {(cur[k] - before.get(k, 0)) / dt:,.0f}/s"
                          for k in sorted(cur)) or "0/s"
        self._last_stats = (now, cur)
        protos = ", ".join(f"{k} {v}" for k, v in self.protos.most_common()) or "-"
        kd = self.server.kernel_drops()
        streams = _streams_text(self.stats)
        self.say(f"stats: {rates}; total {self.stats.total}; protocols: {protos}; "
                 f"drops: {_drops_text(self.stats)}"
                 + (f"; streams: {streams}" if streams else "")
                 + (f"; kernel receive-buffer drops {kd}" if kd is not None else ""))

    def _finish(self) -> None:
        errors: list[str] = []
        kd = None
        try:
            kd = self.server.kernel_drops()
        except OSError:
            pass
        self.server.close()
        for fw in getattr(self, "forwarders", ()):
            try:
                fw.close(1.0)
            except OSError as e:
                errors.append(str(e))
        w = getattr(self, "out_writer", None)
        if w is not None:
            try:
                w.close()
            except OSError as e:
                errors.append(str(e))
        for r in getattr(self, "rotating", ()):
            try:
                r.close()
            except OSError as e:
                errors.append(f"{r.base}: {e}")
        so = getattr(self, "sip_out", None)
        if so is not None:
            try:
                so.close()
            except OSError as e:
                errors.append(str(e))
        for c in self.closers:
            try:
                c.close()
            except OSError:
                pass
        st = self.stats if hasattr(self, "stats") else None
        if st is None:
            return
        per = ", ".join(f"{k} {v}" for k, v in sorted(st.packets.items())) or "none"
        drops = _drops_text(st)
        accepted = self._accepted_fn() if self._accepted_fn is not None else self.accepted
        lines = [(f"listen: {st.total} packets received ({per}); {accepted} accepted; "
                  f"drops: {drops}")]
        if st.connections or st.closed:
            closed = ", ".join(f"{k} {v}" for k, v in st.closed.most_common())
            lines.append(f"  connections: {st.connections} accepted"
                         + (f"; closed: {closed}" if closed else ""))
        streams = _streams_text(st)
        if streams:
            lines.append(f"  streams: {streams}")
        if self.protos:
            lines.append("  protocols: " + ", ".join(f"{k} {v}"
                                                     for k, v in self.protos.most_common()))
        if kd is not None:
            lines.append(f"  kernel receive-buffer drops: {kd}")
        for r in getattr(self, "rotating", ()):
            if len(r.files) > 1:
                lines.append(f"  {r.base}: {len(r.files)} files ({r.files[0]} .. {r.files[-1]})")
        for fw in getattr(self, "forwarders", ()):
            s = fw.stats
            lines.append(f"  forward {fw.target}: {s.packets} sent, {s.undelivered} undelivered"
                         + (f" ({s.last_error})" if s.last_error else ""))
        for line in lines:
            self.say(line)
        if errors:
            raise click.ClickException("; ".join(errors))


def _drops_text(st: Any) -> str:
    """``reason N, reason N`` (most first) of every drop: the same text in the periodic
    --stats line and in the final summary (ServerStats.drops is where all are counted)."""
    return ", ".join(f"{k} {v}" for k, v in st.drops.most_common()) or "none"


def _streams_text(st: Any) -> str:
    """TCP/TLS bytes skipped as garbage and left in incomplete packets ('' when none)."""
    if not (st.garbage_bytes or st.truncated_bytes):
        return ""
    return (f"{st.garbage_bytes} garbage bytes skipped in {st.resyncs} resyncs; "
            f"{st.truncated_bytes} bytes of incomplete packets dropped")


def _addr(a: tuple) -> str:
    ip, port = a[0], a[1]
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


_PROTO_NAMES: dict[Any, str] = {}


def _proto_name(pt: Any) -> str:
    name = _PROTO_NAMES.get(pt)
    if name is None:
        from heptool.core.registry import PROTO_TYPES

        name = _PROTO_NAMES[pt] = "none" if pt is None else PROTO_TYPES.get(pt) or str(pt)
    return name
