"""The replay engine of ``heptool send``: HEP packets to collectors, paced, rewritten, counted.

:class:`Replay` takes a source (a :class:`~heptool.pipeline.reader.MessageReader` over
captures, HEP streams or records; or messages, e.g. a scenario), the senders
(:func:`open_senders`) and how to send: the pacing (:class:`heptool.net.client.Pacer`),
``count`` and ``loops``, the :class:`~heptool.pipeline.build.Rewrites`, another HEP
``version``, a ``match`` filter.  :meth:`Replay.run` sends and returns a
:class:`ReplaySummary` (what each destination took); what could not be delivered raises
:class:`DeliveryError` after the senders are closed.  :meth:`Replay.stop` (from a signal
handler or another thread) ends the run after the packet being sent.  No click::

    from heptool.net.target import parse_target
    from heptool.pipeline.reader import MessageReader
    from heptool.pipeline.replay import Replay, open_senders

    senders = open_senders([parse_target("udp://127.0.0.1:9060")])
    summary = Replay(MessageReader(["call.pcap"]), senders).run()
    print("\\n".join(summary.lines()))

Packets are sent byte for byte as read unless something changes them (a rewrite, a
restamp, another version; a HEPv1/v2 packet to a TCP/TLS destination becomes HEPv3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from heptool.core.errors import DeliveryError, HepError
from heptool.pipeline.build import Rewrites
from heptool.pipeline.reader import MessageReader

__all__ = ["DeliveryError", "Replay", "ReplaySummary", "ScenarioRuns", "open_senders",
           "pacer_for"]


def open_senders(targets: Sequence[Any], *, ssl_context: Any = None, queue_max: int = 100_000,
                 retry: float = 5.0, write_timeout: float = 5.0,
                 on_event: Callable[[Any, str, str], Any] | None = None,
                 failover: Sequence[Any] = (), spool: str | None = None,
                 spool_max: int = 100 << 20,
                 kafka_key: Sequence[str] | None = None) -> list[Any]:
    """A sender per :class:`heptool.net.target.Target`, in order. A TCP/TLS destination
    that is down is connected in the background (the others are served meanwhile);
    :class:`DeliveryError` if one cannot be opened at all (a UDP name that does not
    resolve; those opened are closed). ``on_event(sender, kind, text)``: connections,
    losses, drops as they happen (:mod:`heptool.net.stream`).

    ``failover`` (targets; one destination only) and ``spool`` (a directory; a
    subdirectory per TCP/TLS destination, at most ``spool_max`` bytes each) make each
    TCP/TLS destination a :class:`heptool.net.spool.SenderGroup`: packets go to a
    failover while it is down, and to the spool while every member is. A ``KafkaTarget``
    gets a :class:`heptool.net.kafka.KafkaSender`, keyed by ``kafka_key``."""
    from heptool.net.client import SendError, open_sender

    def one(t: Any) -> Any:
        if t.scheme == "kafka":
            from heptool.net.kafka import DEFAULT_KEY_ORDER, KafkaSender

            return KafkaSender(t, queue_max=queue_max, block=retry, retry=retry,
                               key_order=DEFAULT_KEY_ORDER if kafka_key is None else kafka_key)
        if t.is_stream:
            return open_sender(t, ssl_context=ssl_context, queue_max=queue_max, retry=retry,
                               write_timeout=write_timeout, on_event=on_event)
        return open_sender(t, on_event=on_event)

    if failover and len(targets) != 1:
        raise ValueError("failover destinations need exactly one primary destination")
    senders: list[Any] = []
    try:
        for t in targets:
            senders.append(one(t))
            if (failover or spool) and t.is_stream:
                from heptool.net.spool import SenderGroup, Spool

                group = senders[-1] = SenderGroup([senders[-1]], on_event=on_event)
                for f in failover:
                    group.members.append(one(f))
                if spool:
                    import os

                    name = f"{t.scheme}-{t.host}-{t.port}".replace(":", "_")
                    try:
                        group.spool = Spool(os.path.join(spool, name), spool_max)
                    except OSError as e:
                        raise SendError(f"spool {spool}: {e.strerror or e}") from None
    except SendError as e:
        for s in senders:
            s.close(0)
        raise DeliveryError(str(e)) from None
    return senders


def pacer_for(pace: str | None = None, *, speed: float | None = None,
              rate: float | None = None) -> Any:
    """The :class:`heptool.net.client.Pacer` of ``send``'s options: ``rate`` packets per
    second; the capture's own timing (``pace="original"``, or a ``speed``), ``speed``
    times faster; else as fast as possible."""
    from heptool.net.client import Pacer

    if rate is not None:
        return Pacer("rate", rate=rate)
    if pace == "original" or speed is not None:
        return Pacer("original", speed=speed or 1.0)
    return Pacer("max")


class ScenarioRuns:
    """A scenario as a :class:`Replay` source: each call (a pass) gives ``runs`` runs of
    scenario ``name`` (:func:`heptool.pipeline.build.scenario_messages`), every run with
    its own seed (``seed``, ``seed + 1``, ... across passes too: fresh Call-IDs, tags and
    branches) and starting a second after the previous run's last packet (``start``:
    the first run's time, default now): a ``--loop`` never repeats ids nor goes back in
    time."""

    def __init__(self, name: str, *, runs: int = 1, seed: int = 0,
                 start: tuple[int, int] | None = None, **options: Any) -> None:
        self.name = name
        self.runs = runs
        self.seed = seed
        self.start = start
        self.options = options

    def __call__(self) -> Iterator[Any]:
        from heptool.pipeline.build import now, scenario_messages

        start = self.start or now()
        last = None
        for m in scenario_messages(self.name, seed=self.seed, start=start, count=self.runs,
                                   **self.options):
            last = m
            yield m
        self.seed += self.runs
        if last is not None and last.ts_sec is not None:
            self.start = (last.ts_sec + 1, last.ts_usec or 0)


class ReplaySummary(NamedTuple):
    """What a run sent: per destination its sender's ``stats``
    (:class:`heptool.net.client.SendStats`), and the run's own counts."""

    senders: list[Any]  # the senders, each with .target and .stats
    elapsed: float  # seconds
    sent: int  # packets taken from the source and sent (to every destination)
    converted: int  # HEPv1/v2 packets converted to HEPv3 for TCP/TLS
    filtered: int  # packets left out by ``match``
    stopped: bool  # stop() ended the run

    def _flat(self) -> list[Any]:
        """Every sender, a group's members in order."""
        return [m for s in self.senders for m in getattr(s, "members", (s,))]

    @property
    def undelivered(self) -> int:
        """Packets some destination did not get (summed over destinations; a spool's
        drops too, not what it keeps for the next run)."""
        return (sum(s.stats.undelivered for s in self._flat())
                + sum(s.spool.dropped for s in self.senders if getattr(s, "spool", None)))

    def lines(self) -> list[str]:
        """The summary ``heptool send`` prints: a line per destination, then the counts."""
        elapsed = self.elapsed
        lines = []
        for s in self._flat():
            st = s.stats
            rate = st.packets / elapsed if elapsed > 0 else 0.0
            line = (f"send {s.target}: {st.packets} packets, {st.bytes} bytes in {elapsed:.2f} s "
                    f"({rate:,.0f} packets/s)")
            extra = []
            if st.reconnects:
                extra.append(f"{st.reconnects} reconnects")
            if getattr(st, "retried", 0):  # Kafka: requests librdkafka sent again
                extra.append(f"{st.retried} retried")
            if st.requeued:
                extra.append(f"{st.requeued} resent after a dropped connection")
            if getattr(st, "refused", 0):
                extra.append(f"{st.refused} ICMP port unreachable (refused: nothing listening?"
                             " UDP cannot tell how many arrived)")
            if st.oversize:
                extra.append(f"{st.oversize} over the UDP maximum of 65507 bytes")
            if st.dropped:
                extra.append(f"{st.dropped} dropped from a full queue")
            if st.undelivered:
                extra.append(f"{st.undelivered} NOT delivered")
            if st.errors:
                kinds = "; ".join(f"{k} x{v}" if v > 1 else k
                                  for k, v in st.error_kinds.most_common(3))
                extra.append(f"{st.errors} errors ({kinds})")
            if extra:
                line += "; " + ", ".join(extra)
            lines.append(line)
        for g in self.senders:
            sp = getattr(g, "spool", None)
            if sp is not None:
                line = (f"send {g.target}: spool {sp.directory}: {sp.spooled} packets spooled, "
                        f"{sp.taken} sent from it, {sp.packets} kept for the next run")
                if sp.dropped:
                    why = (f"could not write: {sp.last_error}" if sp.last_error else
                           f"the spool was full: {sp.max_bytes} bytes")
                    line += f"; {sp.dropped} NOT delivered ({why})"
                lines.append(line)
        if self.converted:
            lines.append(f"send: {self.converted} HEPv1/v2 packets converted to HEPv3 for TCP/TLS")
        if self.filtered:
            lines.append(f"send: {self.filtered} packets left out by the filters")
        return lines


def _where(p: Any) -> str:
    """An input packet's place, for error messages."""
    if p.data is not None and p.frame is None and p.offset is None:
        return f"SIP message {p.index}"  # MessageReader's sip_fallback: no place in the input
    return p.where


#: what a pass yields: (HEP bytes or None, message or None, pacing time or None, the packet
#: or index that names its place)
_Entry = tuple


class Replay:
    """Send ``source`` to ``senders``; see the module's documentation.

    * ``source``: a :class:`MessageReader` (its :meth:`~MessageReader.packets`, read again
      for each pass; the reader's own settings say what a problem does), or HEP messages:
      an iterable, or a function returning one for each pass (built anew each time).
    * ``pacer``: a :class:`heptool.net.client.Pacer` (default: as fast as possible);
      ``original`` pacing takes a capture's frame times, else the packets' own times.
    * ``count``: stop after that many packets; ``loops``: passes over the source (0: until
      ``count`` or :meth:`stop`).
    * ``rewrites`` (:class:`Rewrites`), ``version`` (re-encode as HEPv1/2/3), ``match`` (a
      predicate on messages: the others are left out).
    * ``cache``: keep the first pass's packets for the next passes (a source read once,
      such as standard input).
    * ``on_event(kind, value)``: ``("pass", n)`` as pass ``n`` (0-based) begins,
      ``("stopped", sent)`` when ``count`` or :meth:`stop` ended the run.

    A packet that cannot be decoded or encoded raises its :class:`~heptool.HepError`
    (naming the packet's place)."""

    def __init__(self, source: MessageReader | Iterable[Any] | Callable[[], Iterable[Any]],
                 senders: Sequence[Any], *, pacer: Any = None, count: int | None = None,
                 loops: int = 1, rewrites: Rewrites | None = None, version: int | None = None,
                 match: Callable[[Any], bool] | None = None, cache: bool = False,
                 on_event: Callable[[str, int], Any] | None = None) -> None:
        if pacer is None:
            from heptool.net.client import Pacer

            pacer = Pacer("max")
        self.source = source
        self.senders = list(senders)
        self.pacer = pacer
        self.count = count
        self.loops = loops
        self.rewrites = rewrites if rewrites is not None else Rewrites()
        self.version = version
        self.match = match
        self.cache = cache
        self.on_event = on_event
        self.sent = 0
        self.filtered = 0
        self.converted = 0
        self.stopped = False
        self._stops = 0
        if getattr(pacer, "sleep", None) is time.sleep:
            pacer.sleep = self._sleep

    def stop(self) -> None:
        """End the run after the packet being sent (safe from a signal handler or another
        thread); what was sent is still delivered (each TCP/TLS write and the final
        delivery bounded by the senders' deadlines) and summed up.  Called again (a second
        Ctrl-C): give up at once, what waits counted NOT delivered."""
        self._stops += 1
        self.stopped = True
        if self._stops > 1:
            for s in self.senders:
                abort = getattr(s, "abort", None)
                if abort is not None:
                    abort()

    def _sleep(self, delay: float) -> None:
        """The pacer's sleep, in slices: a stop() ends it (signals do not interrupt a
        sleep in Python, they only run their handler)."""
        end = time.monotonic() + delay
        while not self.stopped:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))

    def _event(self, kind: str, value: int) -> None:
        if self.on_event is not None:
            self.on_event(kind, value)

    # -- the run -----------------------------------------------------------------------
    def run(self) -> ReplaySummary:
        """Send, close the senders (TCP/TLS: delivering what waits, within their retry
        time) and return the summary; :class:`DeliveryError` (with ``.summary``) when a
        packet could not be delivered."""
        started = time.monotonic()
        try:
            self._loop()
        finally:
            for s in self.senders:
                s.close()
        summary = ReplaySummary(self.senders, time.monotonic() - started, self.sent,
                                self.converted, self.filtered, self.stopped)
        failed = summary.undelivered
        if failed:
            raise DeliveryError(f"{failed} packet{'s' if failed != 1 else ''} could not be "
                                "delivered (see above)", summary)
        return summary

    def _entries(self) -> Iterator[_Entry]:
        """One pass over the source: (data, message, when, place) per packet."""
        source = self.source
        if isinstance(source, MessageReader):
            message = source.message
            for p in source.packets():
                when = None
                if p.outer_ts is not None:
                    when = p.outer_ts[0] + p.outer_ts[1] / 1e6
                if p.data is not None:
                    yield p.data, None, when, p
                else:
                    m = message(p)
                    if m is not None:
                        yield None, m, m.time, p
            return
        msgs = source() if callable(source) else source
        for i, m in enumerate(msgs):
            yield None, m, m.time, i

    def _loop(self) -> None:
        from heptool.core.codec import decode, encode

        count = self.count
        loops = self.loops
        pacer = self.pacer
        senders = self.senders
        udp_senders = [s for s in senders if not s.target.is_stream]
        stream_senders = [s for s in senders if s.target.is_stream]
        version = self.version
        rw = self.rewrites
        rewrite = rw.fields or version is not None
        restamp = rw.restamp != "keep"
        match = self.match
        pace_original = pacer.mode == "original"
        need_msg_always = rewrite or restamp or match is not None
        # the common case (a capture replayed unchanged, as fast as possible, over UDP) gets
        # a loop of its own: about half the Python work per packet (bench/bench_listen.py)
        fast = (pacer.mode == "max" and not need_msg_always and not stream_senders
                and isinstance(self.source, MessageReader) and not self.cache
                and all(s.target.scheme == "udp" for s in udp_senders))
        loop = 0
        cached: list[_Entry] | None = None
        while not self.stopped:
            if loops and loop >= loops:
                break
            self._event("pass", loop)
            pacer.restart()
            rw.restart()
            if fast:
                if not self._fast_udp_pass(udp_senders, count):
                    break
                loop += 1
                continue
            if cached is not None:
                entries: Any = iter(cached)
            else:
                entries = self._entries()
                if self.cache and loops != 1:
                    cached = []
            any_item = False
            for entry in entries:
                if self.stopped:
                    break
                if cached is not None and loop == 0:
                    cached.append(entry)
                any_item = True
                data, m, when, place = entry
                if m is None and (need_msg_always or (pace_original and when is None)
                                  or (stream_senders and data[:4] != b"HEP3")):
                    try:
                        m = decode(data)
                    except HepError as e:
                        raise e.with_context(_place(place)) from None
                if pace_original and when is None and m is not None:
                    when = m.time
                if match is not None and not match(m):
                    self.filtered += 1
                    continue
                changed = False
                if m is not None and (rewrite or restamp or data is None):
                    if data is not None:
                        m = m.copy()
                    rw.apply(m)
                    changed = True
                pacer.wait(when)
                if self.stopped:
                    break  # stop() came during the wait: this packet is not sent
                if changed:
                    try:
                        data = encode(m, version)
                    except HepError as e:
                        raise e.with_context(_place(place)) from None
                for s in udp_senders:
                    s.send(data)
                if stream_senders:
                    if data[:4] != b"HEP3":
                        try:
                            sdata = encode(m, 3)
                        except HepError as e:
                            raise e.with_context(_place(place)) from None
                        self.converted += 1
                    else:
                        sdata = data
                    for s in stream_senders:
                        s.send(sdata)
                self.sent += 1
                if count is not None and self.sent >= count:
                    self.stopped = True
                    break
            if not any_item:
                break
            loop += 1
        if self.stopped:
            self._event("stopped", self.sent)

    def _fast_udp_pass(self, senders: list[Any], count: int | None) -> bool:
        """One pass over the reader's inputs, every packet sent unchanged to every UDP
        sender; False when there was nothing to send or ``count``/:meth:`stop` ended it."""
        from heptool.core.codec import encode
        from heptool.net.client import MAX_UDP_PAYLOAD

        reader: MessageReader = self.source  # type: ignore[assignment]
        message = reader.message
        sends = [(s, s.sock.send, s.stats) for s in senders]
        sent = self.sent
        any_packet = False
        packets = reader.packets()
        try:
            for p in packets:
                data = p.data
                if data is None:
                    m = message(p)
                    if m is None:
                        continue
                    data = encode(m)
                n = len(data)
                for s, send, st in sends:
                    if n > MAX_UDP_PAYLOAD:
                        s.send(data)  # counts and reports it
                        continue
                    try:
                        send(data)
                    except OSError as e:
                        s.send(data, e)  # again through the counting path
                        continue
                    st.packets += 1
                    st.bytes += n
                sent += 1
                any_packet = True
                if (count is not None and sent >= count) or self.stopped:
                    self.stopped = True
                    return False
        finally:
            packets.close()
            self.sent = sent
        return any_packet


def _place(place: Any) -> str:
    return f"packet {place}" if isinstance(place, int) else _where(place)
