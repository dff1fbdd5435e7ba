"""A HEP collector as a library: :class:`Collector`, what ``heptool listen`` runs.

UDP, TCP and TLS listeners (:class:`heptool.net.server.Server`) feed one per-packet handler
(:mod:`heptool.pipeline.handlers`) that checks the auth key and the filter, and hands every
accepted packet to the outputs: an ``emit`` callable (the caller renders: listen prints the
records), a HEP pcap, a decapsulated SIP pcap, a JSON Lines file (each rotated by size or
time, see :mod:`heptool.output.files`) and forwards to other collectors.  Nothing here
prints: connection events, errors and the periodic stats lines go to callbacks, and the
summary is text lines the caller prints.  No click, no rich::

    from heptool.pipeline.collector import Collector

    c = Collector(["udp://127.0.0.1:0"], write_hep="hep.pcap", count=100)
    print(c.open())          # the addresses bound (port 0: the port picked)
    try:
        c.run()              # until count, duration, or c.stop() (any thread, or a signal)
    finally:
        files = c.close()    # outputs flushed and closed: the files written
    print("\\n".join(c.summary_lines()))

Captured data is never destroyed: a rotated output numbers on after the files already there;
an unrotated one that already holds data is refused (:exc:`OutputError` with ``exists``)
unless ``overwrite``.  :meth:`Collector.reopen` (listen's SIGHUP, for logrotate) starts new
output files at the next chance between packets.

The steps, in the order listen takes them: :meth:`Collector.open` binds (an OSError leaves
nothing open); :meth:`Collector.open_outputs` opens the files and forwards and builds the
handler (:exc:`OutputError` when a file cannot be opened; :meth:`run` calls it when it was
not called); :meth:`Collector.run` serves; :meth:`Collector.close` closes everything, also
after a failed :meth:`open_outputs`, and raises :exc:`CloseError` when an output failed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from heptool.net.stats import ServerStats, drops_text, status_text, streams_text
from heptool.net.target import Target, parse_target
from heptool.pipeline.handlers import DropReporter, Tally, make_handler, pcap_only_handlers

if TYPE_CHECKING:
    import ssl

    from typing_extensions import Self

    from heptool.net.server import Server
    from heptool.output.files import RotatingFile
    from heptool.pipeline.sinks import SipSink

__all__ = ["KAFKA_FLUSH", "UDP_DRAIN", "CloseError", "Collector", "OutputError", "drops_text",
           "status_text", "streams_text"]

#: Seconds a stopped listen keeps reading the datagrams already in its UDP receive buffers
#: (what is left then is counted as the drop "unread at stop")
UDP_DRAIN = 2.0
#: Seconds a Kafka --forward gets at the end (Ctrl-C, SIGTERM...) to deliver what it holds
KAFKA_FLUSH = 10.0


class OutputError(OSError):
    """An output file could not be opened: its ``path`` and why (``hint``); ``exists``: it
    already holds data and ``overwrite`` was not given."""

    def __init__(self, path: str, hint: str, exists: bool = False) -> None:
        super().__init__(f"{path}: {hint}")
        self.path = path
        self.hint = hint
        self.exists = exists


class CloseError(OSError):
    """Outputs failed while being flushed and closed (every output was still closed):
    ``errors`` the texts, in closing order; ``files`` every file written."""

    def __init__(self, errors: list[str], files: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.files = files


class Collector:
    """Receive HEP on ``binds`` and hand every accepted packet to the outputs.

    Listening: ``binds`` (:class:`heptool.net.target.Target` or URL strings;
    port 0 picks a free port), ``tls_context`` (required for ``tls://``), ``allow`` (CIDR
    networks), ``max_connections``, ``stall_timeout``, ``reuse_port`` (see
    :class:`heptool.net.server.Server`).
    Selecting: ``auth_key`` (packets without it are dropped), ``match(message) -> bool``.
    Stopping: after ``count`` accepted packets, after ``duration`` seconds, or :meth:`stop`.
    Outputs: ``write_hep`` (the HEP packets in UDP frames, classic pcap), ``write_sip`` (the
    packets the HEP carried, decapsulated; ``.pcapng`` adds comments), ``write_jsonl``
    (decode's records), ``write_parquet`` (a directory: HOMER 11's tables, see
    :mod:`heptool.output.parquet`; pyarrow needed), rotated by ``rotate_size`` bytes and/or every ``rotate_time``
    seconds (numbered on after the files already there), else refused when the file holds
    data, unless ``overwrite``; ``forwards`` (targets the packets are relayed to, bytes
    unchanged; ``forward_ca``/``forward_insecure``, and ``forward_cert``/``forward_key`` a
    client certificate, for ``tls://``); ``emit``, see :meth:`open_outputs`.
    Callbacks: ``on_event(text)`` connection events and every dropped packet (rate-limited,
    see :class:`heptool.pipeline.handlers.DropReporter`; None: not told); ``on_line(text)``
    the stats line every ``stats_every`` seconds; ``on_notice(text)`` what an operator must
    always see: output files reopened, a file that could not be.
    Watching: ``metrics`` (host, port): a Prometheus endpoint served from :meth:`open` to
    :meth:`close` (:mod:`heptool.net.metrics`; ``metrics_url`` says where).  ``dedup``
    (seconds): a packet identical to one accepted within it is dropped as "duplicate"
    (:mod:`heptool.pipeline.dedup`).

    Counts: ``stats`` (:class:`heptool.net.stats.ServerStats`: received, drops by reason),
    ``tally.protos`` (accepted per protocol), :attr:`accepted`.
    """

    def __init__(self, binds: Sequence[Target | str], *,
                 tls_context: ssl.SSLContext | None = None, allow: Sequence[str] = (),
                 max_connections: int = 1000, stall_timeout: float = 10.0,
                 reuse_port: bool = False, match: Callable[[Any], bool] | None = None,
                 auth_key: str | None = None, count: int | None = None,
                 duration: float | None = None, stats_every: float | None = None,
                 write_hep: str | None = None, write_sip: str | None = None,
                 write_jsonl: str | None = None, write_parquet: str | None = None,
                 rotate_size: int | None = None,
                 rotate_time: float | None = None, forwards: Sequence[Target | str] = (),
                 forward_ca: str | None = None, forward_insecure: bool = False,
                 metrics: tuple[str, int] | None = None, dedup: float | None = None,
                 forward_cert: str | None = None, forward_key: str | None = None,
                 overwrite: bool = False, kafka_key: Sequence[str] | None = None,
                 on_event: Callable[[str], None] | None = None,
                 on_line: Callable[[str], None] | None = None,
                 on_notice: Callable[[str], None] | None = None,
                 on_tick: Callable[[], None] | None = None) -> None:
        self.binds = [parse_target(b) if isinstance(b, str) else b for b in binds]
        self.tls_context = tls_context
        self.allow = tuple(allow)
        self.max_connections = max_connections
        self.stall_timeout = stall_timeout
        self.reuse_port = reuse_port
        self.match = match
        self.auth_key = auth_key
        self.count = count
        self.duration = duration
        self.stats_every = stats_every
        self.write_hep = write_hep
        self.write_sip = write_sip
        self.write_jsonl = write_jsonl
        self.write_parquet = write_parquet
        self.rotate_size = rotate_size
        self.rotate_time = rotate_time
        self.forwards = [parse_target(f, kafka=True) if isinstance(f, str) else f
                         for f in forwards]
        self.kafka_key = kafka_key
        self.forward_ca = forward_ca
        self.forward_insecure = forward_insecure
        self.forward_cert = forward_cert
        self.forward_key = forward_key
        self.overwrite = overwrite
        self.on_event = on_event
        self.on_line = on_line
        self.metrics = metrics
        self.metrics_server: Any = None
        self.hep_counts: Any = None
        self.dedup: Any = None
        if dedup is not None:
            from heptool.pipeline.dedup import Dedup

            self.dedup = Dedup(dedup)
        self.on_notice = on_notice
        #: called every 0.1 s from the receive loop (a --workers worker reports its counts)
        self.on_tick = on_tick
        #: seconds the receive loop sleeps after each busy round (see Server.run's pause)
        self.pause = 0.0
        self.drop_reporter = DropReporter(on_event) if on_event is not None else None
        self.stats = ServerStats()
        self.tally = Tally()
        self.server: Server | None = None
        self.hep_out: RotatingFile | None = None
        self.jsonl_out: RotatingFile | None = None
        self.sip_out: SipSink | None = None
        self.parquet_out: Any = None
        self.rotating: list[RotatingFile] = []
        self.forwarders: list[Any] = []
        self.flush: Callable[[], None] | None = None
        self.on_close: Callable[[], None] | None = None
        #: the kernel's receive-buffer drops, read by :meth:`close` (None: unknown)
        self.kernel_drops: int | None = None
        self._accepted_fn: Callable[[], int] | None = None
        self._outputs_open = False
        self._reopen_due = False
        self._closed = False
        self._last_stats: tuple[float, Counter[str]] = (time.monotonic(), Counter())

    # -- setup --------------------------------------------------------------------------
    def open(self) -> list[Target]:
        """Bind every listener; the targets bound (port 0 replaced by the port picked).
        OSError when one cannot be opened (then none is)."""
        from heptool.net.server import Server

        self.server = Server(self.binds, lambda *a: None, tls_context=self.tls_context,
                             allow=self.allow, max_connections=self.max_connections,
                             stall_timeout=self.stall_timeout, stats=self.stats,
                             reuse_port=self.reuse_port)
        self.server.open()
        if self.metrics is not None:
            try:
                self._start_metrics(self.metrics)
            except BaseException:
                self.server.close()
                raise
        return self.server.bound

    def _start_metrics(self, address: tuple[str, int]) -> None:
        from heptool.net.metrics import HepCounts, MetricsServer, listen_families

        server = self.server
        assert server is not None
        hc = self.hep_counts = HepCounts()
        started = time.time()

        def collect() -> list:
            try:
                kd = server.kernel_drops()
            except (OSError, ValueError):
                kd = None
            return listen_families(self.stats, accepted=self.accepted, hep_counts=hc,
                                   forwards=list(self.forwarders), kernel_drops=kd,
                                   start_time=started)

        self.metrics_server = MetricsServer(address, collect)
        self.metrics_server.start()

    @property
    def metrics_url(self) -> str | None:
        """Where the metrics are served (None without ``metrics``)."""
        return self.metrics_server.url if self.metrics_server is not None else None

    @property
    def bound(self) -> list[Target]:
        """The targets listened on (empty before :meth:`open`)."""
        return self.server.bound if self.server is not None else []

    def open_outputs(self, emit: Callable[[Any, Any, bytes], None] | None = None, *,
                     need_record: bool = False, flush: Callable[[], None] | None = None,
                     on_close: Callable[[], None] | None = None) -> None:
        """Open the files and the forwards, and build the per-packet handler.

        ``emit(record, message, data)`` is called for every accepted packet: with
        ``need_record``, ``record`` is decode's record (``hep_transport``, ``hep_src``,
        ``hep_dst`` say how it came in) and ``message`` the HepMessage; else both may be None
        and ``data`` (the bytes as received) is what there is.  ``flush()`` runs whenever the
        sockets are drained; ``on_close()`` in :meth:`close`, after the forwards and before
        the files (the caller closes its own output there).  :exc:`OutputError` when a file
        cannot be opened; :class:`heptool.net.client.SendError` when a forward cannot.
        """
        from heptool.output.files import OutputExistsError, RotatingFile

        assert self.server is not None, "open() first"
        self._outputs_open = True
        self.flush = flush
        self.on_close = on_close

        def rotating(path: str, make: Any) -> RotatingFile:
            try:
                r = RotatingFile(path, make, size=self.rotate_size, every=self.rotate_time,
                                 overwrite=self.overwrite)
            except OutputExistsError as e:
                raise OutputError(path, e.strerror, exists=True) from None
            except OSError as e:
                raise OutputError(path, e.strerror or str(e)) from None
            self.rotating.append(r)
            return r

        frame = None
        if self.write_hep:
            from heptool.capture.writer import PcapWriter
            from heptool.pipeline.sinks import frame_cache

            frame = frame_cache()
            self.hep_out = rotating(self.write_hep, PcapWriter)
        if self.write_sip:
            from heptool.pipeline.sinks import SipSink

            try:
                self.sip_out = SipSink(self.write_sip, size=self.rotate_size,
                                       every=self.rotate_time, overwrite=self.overwrite,
                                       on_warning=self.on_notice)
            except OutputExistsError as e:
                raise OutputError(self.write_sip, e.strerror, exists=True) from None
            except OSError as e:
                raise OutputError(self.write_sip, e.strerror or str(e)) from None
        if self.write_jsonl:
            from heptool.output.jsonl import JsonlWriter

            self.jsonl_out = rotating(self.write_jsonl, JsonlWriter)
        if self.write_parquet:
            emit = self._parquet_emit(emit)
        if self.forwards:
            from heptool.net.client import SendError, open_sender
            from heptool.net.tls import client_tls_context

            ctx = None
            if any(t.scheme == "tls" for t in self.forwards):
                try:
                    ctx = client_tls_context(ca=self.forward_ca, insecure=self.forward_insecure,
                                             cert=self.forward_cert, key=self.forward_key)
                except OSError as e:  # ssl.SSLError too
                    raise SendError(f"cannot load the TLS client certificate or CA: "
                                    f"{e.strerror or e}") from None
            say = self.on_event
            hook = (None if say is None else
                    lambda fw, _kind, text: say(f"forward {fw.target}: {text}"))
            for t in self.forwards:
                if t.scheme == "kafka":  # never blocks receiving: a full queue is counted
                    from heptool.net.kafka import DEFAULT_KEY_ORDER, KafkaSender

                    self.forwarders.append(KafkaSender(
                        t, block=0.0, retry=KAFKA_FLUSH, key_order=DEFAULT_KEY_ORDER
                        if self.kafka_key is None else self.kafka_key))
                    continue
                # write_timeout: the receive loop is one thread; a forward that stops reading
                # may hold it that long before its connection is given up (packets requeued)
                self.forwarders.append(open_sender(t, ssl_context=ctx, retry=1.0,
                                                   write_timeout=1.0, on_event=hook))
        want_record = emit is not None and need_record
        need_message = (want_record or self.match is not None or self.auth_key is not None
                        or self.parquet_out is not None
                        or self.jsonl_out is not None or self.sip_out is not None
                        or self.stats_every is not None or self.hep_counts is not None
                        or self.dedup is not None)
        server = self.server
        drops = self.stats.drops
        if (self.hep_out is not None and frame is not None and not need_message and emit is None
                and self.jsonl_out is None and self.sip_out is None and not self.forwarders):
            fast = pcap_only_handlers(self.hep_out, frame, drops, count=self.count,
                                      stop=server.stop, on_drop=self.drop_reporter)
            server.handler = fast.handle
            server.udp_view_handler = fast.handle_view
            self._accepted_fn = fast.accepted
        else:
            server.handler = make_handler(
                self.tally, drops, need_message=need_message,
                auth_key=self.auth_key.encode("utf-8") if self.auth_key is not None else None,
                match=self.match, emit=emit,
                need_record=want_record or self.jsonl_out is not None,
                jsonl_out=self.jsonl_out, hep_out=self.hep_out, frame=frame,
                sip_out=self.sip_out, forwards=self.forwarders, count=self.count,
                stop=server.stop, on_drop=self.drop_reporter, hep_counts=self.hep_counts,
                dedup=self.dedup)
        server.on_event = self.on_event
        if self.drop_reporter is not None:
            reporter = self.drop_reporter
            server.on_drop = lambda reason, transport, peer: reporter(reason, transport, peer)

    def _parquet_emit(self, emit: Callable[[Any, Any, bytes], None] | None
                      ) -> Callable[[Any, Any, bytes], None]:
        """Open the ``write_parquet`` writer (:mod:`heptool.pipeline.parquet_sink`); the
        ``emit`` that also gives it each accepted message."""
        from heptool.pipeline.parquet_sink import open_parquet, with_rows

        assert self.write_parquet is not None
        try:
            pq = self.parquet_out = open_parquet(self.write_parquet, size=self.rotate_size,
                                                 every=self.rotate_time)
        except OSError as e:
            raise OutputError(self.write_parquet, e.strerror or str(e)) from None
        self.rotating.append(pq)  # tick/reopen/close/files/base, as a RotatingFile
        return with_rows(pq, emit)

    # -- running ------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until ``count``, ``duration`` or :meth:`stop`; then read what connected
        peers had already sent (bounded) and flush."""
        if not self._outputs_open:
            self.open_outputs()
        server = self.server
        assert server is not None
        started = time.monotonic()
        deadline = started + self.duration if self.duration is not None else None
        stats_every = self.stats_every
        self._last_stats = (started, Counter(self.stats.packets))
        next_stats = started + stats_every if stats_every else None
        flush = self.flush

        def on_idle() -> None:
            if flush is not None:
                flush()

        def tick() -> None:
            nonlocal next_stats
            now = time.monotonic()
            if self._reopen_due:
                self._reopen_due = False
                self._reopen_outputs()
            for r in self.rotating:
                r.tick(now)
            for fw in self.forwarders:
                fw.poll()
            if self.drop_reporter is not None:
                self.drop_reporter.tick()
            if self.on_tick is not None:
                self.on_tick()
            if next_stats is not None and now >= next_stats:
                next_stats = now + stats_every  # type: ignore[operator]
                line = self.stats_line(now)
                if self.on_line is not None:
                    self.on_line(line)

        def should_stop() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        server.run(should_stop=should_stop, on_idle=on_idle, tick=tick,
                   tick_interval=0.1 if deadline is None else min(
                       0.1, max(0.01, deadline - started)), pause=self.pause)
        if self.count is None or self.accepted < self.count:
            # stopped (a signal, --duration): what reached the kernel is still read
            server.drain_connections(0.05, udp_timeout=UDP_DRAIN)
        else:
            server.drain_connections(0.0)
        on_idle()

    def stop(self) -> None:
        """Make :meth:`run` return soon (from a signal handler, a callback or a thread)."""
        if self.server is not None:
            self.server.stop()

    def reopen(self) -> None:
        """Start new output files soon, between packets (safe from a signal handler: listen's
        SIGHUP, after logrotate moved the files away): see
        :meth:`heptool.output.files.RotatingFile.reopen`."""
        self._reopen_due = True

    def _reopen_outputs(self) -> None:
        for r in self.rotating:
            warning = r.reopen()
            if warning is not None and self.on_notice is not None:
                self.on_notice(warning)
        if self.sip_out is not None:
            self.sip_out.reopen()  # in its thread, after what is queued
        if self.on_notice is not None:
            names = [o.files[-1] for o in (self.hep_out, self.jsonl_out) if o is not None]
            if self.sip_out is not None:
                names.append(f"{self.write_sip} (rotated: its next number)")
            if self.parquet_out is not None:
                names.append(f"{self.write_parquet} (new files: the next numbers)")
            self.on_notice("output files reopened: " + (", ".join(names) or "none"))

    # -- ending -------------------------------------------------------------------------
    @property
    def files(self) -> list[str]:
        """Every file written so far (--write-hep, --write-sip, --write-jsonl, then the
        complete --write-parquet files; a name reopened after SIGHUP once)."""
        out: list[str] = []
        for o in (self.hep_out, self.sip_out, self.jsonl_out, self.parquet_out):
            if o is not None:
                out += o.files
        return list(dict.fromkeys(out))

    def close(self) -> list[str]:
        """Close the listeners, the forwards (waiting up to 1 s each for delivery),
        ``on_close`` and the files; the files written.  Every output is closed even when
        one fails; then :exc:`CloseError` says which failed."""
        errors: list[str] = []
        if self.metrics_server is not None:
            self.metrics_server.close()
        self._closed = True
        if self.drop_reporter is not None:
            self.drop_reporter.flush()
        if self.server is not None:
            try:
                self.kernel_drops = self.server.kernel_drops()
            except OSError:
                pass
            self.server.close()
        for fw in self.forwarders:
            try:
                fw.close(KAFKA_FLUSH if fw.target.scheme == "kafka" else 1.0)
            except OSError as e:
                errors.append(str(e))
        if self.on_close is not None:
            try:
                self.on_close()
            except OSError as e:
                errors.append(str(e))
        for r in self.rotating:
            try:
                r.close()
            except OSError as e:
                errors.append(f"{r.base}: {e}")
        if self.sip_out is not None:
            try:
                self.sip_out.close()
            except OSError as e:
                errors.append(str(e))
        if errors:
            raise CloseError(errors, self.files)
        return self.files

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- counts and text ----------------------------------------------------------------
    @property
    def accepted(self) -> int:
        """Packets accepted (passed the auth key and the filter) so far."""
        return self._accepted_fn() if self._accepted_fn is not None else self.tally.accepted

    def forward_status(self) -> list[Any]:
        """Each forward's :class:`heptool.net.client.TargetStatus`, in --forward order."""
        return [fw.status() for fw in self.forwarders]

    def forward_errors(self) -> list[str | None]:
        """Each forward's last error (None: none), in --forward order."""
        return [fw.stats.last_error for fw in self.forwarders]

    def kernel_drops_now(self) -> int | None:
        """The kernel's receive-buffer drops of the UDP sockets now (None: unknown)."""
        if self._closed:
            return self.kernel_drops
        return self.server.kernel_drops() if self.server is not None else None

    def snapshot(self) -> dict[str, Any]:
        """The counts as plain (picklable) data: what a ``listen --workers`` worker reports
        to the supervisor, which sums them (:mod:`heptool.pipeline.workers`)."""
        st = self.stats
        hc = self.hep_counts
        return {"packets": dict(st.packets), "bytes": dict(st.bytes), "drops": dict(st.drops),
                "connections": st.connections, "open_connections": st.open_connections,
                "closed": dict(st.closed), "garbage_bytes": st.garbage_bytes,
                "resyncs": st.resyncs, "truncated_bytes": st.truncated_bytes,
                "accepted": self.accepted, "protos": dict(self.tally.protos),
                "kernel_drops": self.kernel_drops_now(), "files": self.files,
                "forwards": list(zip(self.forward_status(), self.forward_errors())),
                "hep_counts": None if hc is None else {k: list(v) for k, v in hc.counts.items()}}

    def drops_line(self) -> str:
        """Every drop by reason, then what the forwards did not deliver and what waits for a
        forward that is down: ``none`` only when nothing was lost and nothing waits."""
        parts = [f"{k} {v}" for k, v in self.stats.drops.most_common()]
        for st in self.forward_status():
            if st.undelivered:
                parts.append(f"forward {st.target} undelivered {st.undelivered}")
            if not st.connected and not self._closed:
                parts.append(f"forward {st.target} down ({st.queued} queued)")
        return ", ".join(parts) or "none"

    def stats_line(self, now: float) -> str:
        """The periodic stats line: the time (UTC), rates per transport since the last one,
        totals, drops, and each forward's state."""
        t0, before = self._last_stats
        dt = max(now - t0, 1e-6)
        cur = Counter(self.stats.packets)
        rates = ", ".join(f"{k} {(cur[k] - before.get(k, 0)) / dt:,.0f}/s"
                          for k in sorted(cur)) or "0/s"
        self._last_stats = (now, cur)
        protos = ", ".join(f"{k} {v}" for k, v in self.tally.protos.most_common()) or "-"
        kd = self.kernel_drops_now()
        streams = streams_text(self.stats)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return (f"stats: {stamp} {rates}; total {self.stats.total}; protocols: {protos}; "
                f"drops: {self.drops_line()}"
                + (f"; streams: {streams}" if streams else "")
                + (f"; kernel receive-buffer drops {kd}" if kd is not None else "")
                + "".join(f"; forward {st.target} {status_text(st)}"
                          for st in self.forward_status()))

    def summary_lines(self) -> list[str]:
        """The summary of the run, after :meth:`close`: received, accepted, drops,
        connections, protocols, kernel drops, the files written, forwards."""
        st = self.stats
        per = ", ".join(f"{k} {v}" for k, v in sorted(st.packets.items())) or "none"
        lines = [(f"listen: {st.total} packets received ({per}); {self.accepted} accepted; "
                  f"drops: {self.drops_line()}")]
        if st.connections or st.closed:
            closed = ", ".join(f"{k} {v}" for k, v in st.closed.most_common())
            lines.append(f"  connections: {st.connections} accepted"
                         + (f"; closed: {closed}" if closed else ""))
        streams = streams_text(st)
        if streams:
            lines.append(f"  streams: {streams}")
        protos = self.tally.protos
        if protos:
            lines.append("  protocols: " + ", ".join(f"{k} {v}" for k, v in protos.most_common()))
        if self.kernel_drops is not None:
            lines.append(f"  kernel receive-buffer drops: {self.kernel_drops}")
        files = self.files
        if files:
            lines.append(f"  {len(files)} file{'s' if len(files) != 1 else ''} written: "
                         + ", ".join(files))
        for fs, last in zip(self.forward_status(), self.forward_errors()):
            lines.append(f"  forward {fs.target}: {fs.sent} sent, {fs.undelivered} undelivered, "
                         f"{fs.reconnects} reconnects"  # Kafka: requests sent again too
                         + (f", {fs.retried} retried" if fs.retried is not None else "")
                         + (f" ({last})" if last else ""))
        return lines
