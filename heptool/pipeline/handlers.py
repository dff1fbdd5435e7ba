"""The collector's per-packet functions (``heptool listen``), built once per run.

A handler is called by :class:`heptool.net.server.Server` for every packet received,
``handler(data, transport, peer, local, received)``, up to a few hundred thousand times a
second, so everything it needs is bound in a closure when it is built:

* :func:`make_handler`: the general one: decode when something needs the fields, check the
  auth key and the filter (drops counted by reason), then the record to ``emit`` and the
  JSON Lines file, the frame to the HEP pcap, the message to the SIP sink, the bytes to the
  forwards;
* :func:`pcap_only_handlers`: ``--write-hep`` and nothing else: the pcap record appended
  straight to the file buffer (for UDP from the server's receive buffer, no copy), the same
  bytes as :class:`heptool.capture.writer.PcapWriter` would write.

Both count into a :class:`Tally` and call ``stop()`` after ``count`` accepted packets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from heptool.net.metrics import HepCounts
    from heptool.output.files import RotatingFile
    from heptool.pipeline.dedup import Dedup
    from heptool.pipeline.sinks import SipSink

__all__ = ["DUPLICATE", "DropReport", "DropReporter", "Handler", "PcapOnly", "Tally",
           "make_handler", "pcap_only_handlers", "proto_name"]

#: ``handler(data, transport, peer, local, received)``
Handler = Callable[[bytes, str, tuple, tuple, float], None]
#: ``handler(view, n, peer, local, received)``: a UDP datagram in the server's reused buffer
ViewHandler = Callable[[memoryview, int, Any, tuple, float], None]
#: ``on_drop(reason, transport, peer, detail)``: a packet was dropped (and counted)
DropReport = Callable[[str, str, tuple, str], None]

TOO_BIG = "too big for a --write-hep UDP frame"
#: the drop reason of --dedup
DUPLICATE = "duplicate"


class Tally:
    """What the general handler counts: ``index`` (the next record's; each record adds
    ``step``: ``listen --workers N`` numbers worker k's records k, k+N, k+2N..., unique
    across the workers), ``accepted`` packets and ``protos`` (accepted packets per protocol
    type name)."""

    __slots__ = ("accepted", "index", "protos", "step")

    def __init__(self) -> None:
        self.index = 0
        self.step = 1
        self.accepted = 0
        self.protos: Counter[str] = Counter()


class PcapOnly(NamedTuple):
    """The ``--write-hep``-only handlers: ``handle`` (TCP/TLS, and UDP from IPv6),
    ``handle_view`` (the server's ``udp_view_handler``) and ``accepted()``, their count."""

    handle: Handler
    handle_view: ViewHandler
    accepted: Callable[[], int]


def make_handler(tally: Tally, drops: Counter[str], *, need_message: bool,
                 auth_key: bytes | None = None, match: Callable[[Any], bool] | None = None,
                 emit: Callable[[Any, Any, bytes], None] | None = None,
                 need_record: bool = False, jsonl_out: RotatingFile | None = None,
                 hep_out: RotatingFile | None = None,
                 frame: Callable[[bytes, tuple, tuple], bytes] | None = None,
                 sip_out: SipSink | None = None, forwards: list[Any] | tuple = (),
                 count: int | None = None, stop: Callable[[], None] = lambda: None,
                 on_drop: DropReport | None = None,
                 hep_counts: HepCounts | None = None, dedup: Dedup | None = None) -> Handler:
    """The general per-packet function.

    ``need_message``: decode every packet (``auth_key``, ``match`` and ``need_record`` need
    it; a packet that does not decode is dropped as "not HEP").  Every packet dropped
    (other than by ``match``) is counted in ``drops`` and told to ``on_drop``.
    ``emit(record, message, data)`` gets every accepted packet: the record (decode's) when
    ``need_record``, else None. ``hep_out`` (with ``frame``, see
    :func:`heptool.pipeline.sinks.frame_cache`) and ``jsonl_out`` are rotating files,
    ``sip_out`` a :class:`heptool.pipeline.sinks.SipSink`, ``forwards`` senders of
    :mod:`heptool.net.client` (and :class:`heptool.net.kafka.KafkaSender`, which gets the
    message decoded here: a packet is decoded once).  ``hep_counts`` (:class:`heptool.net.metrics.HepCounts`)
    counts every packet that decoded by capture id and protocol type; ``dedup``
    (:class:`heptool.pipeline.dedup.Dedup`) drops, as "duplicate", a packet identical to one
    accepted within its window (checked after the auth key and the filter).
    """
    import hmac

    from heptool.core.codec import decode
    from heptool.core.errors import HepError
    from heptool.net.target import format_addr
    from heptool.output.records import decode_record

    need_msg = need_message
    auth = auth_key
    protos = tally.protos
    step = tally.step
    need_rec = need_record
    jo = jsonl_out
    ho = hep_out
    so = sip_out
    # a sender that ``takes_message`` (Kafka: key and headers) gets the decoded message too
    plain_sends = [fw.send for fw in forwards if not getattr(fw, "takes_message", False)]
    message_sends = [fw.send for fw in forwards if getattr(fw, "takes_message", False)]
    compare = hmac.compare_digest
    addr_cache: dict[tuple, str] = {}
    hc_get = hep_counts.counts.get if hep_counts is not None else None
    hc_new = hep_counts.entry if hep_counts is not None else None
    dup = dedup.duplicate if dedup is not None else None
    dup_key = dedup.key if dedup is not None else None

    def addr(a: tuple) -> str:
        t = addr_cache.get(a)
        if t is None:
            if len(addr_cache) > 65536:
                addr_cache.clear()
            t = addr_cache[a] = format_addr(a[0], a[1])
        return t

    def handle(data: bytes, transport: str, peer: tuple, local: tuple,
               received: float) -> None:
        m = None
        if need_msg:
            try:
                m = decode(data)
            except HepError as e:
                drops["not HEP"] += 1
                if on_drop is not None:
                    on_drop("not HEP", transport, peer, str(e))
                return
            if hc_get is not None:
                key = (m.capture_id, m.proto_type)
                e = hc_get(key) or hc_new(key)  # type: ignore[misc]
                e[0] += 1
                e[1] += len(data)
            if auth is not None:
                got = m.auth_key
                if got is None or not compare(got.encode("utf-8"), auth):
                    drops["auth key"] += 1
                    if on_drop is not None:
                        on_drop("auth key", transport, peer,
                                "no auth key" if got is None else "another auth key")
                    return
            if match is not None and not match(m):
                drops["filtered out"] += 1
                return
            if dup is not None and dup(dup_key(m), received):  # type: ignore[misc]
                drops[DUPLICATE] += 1
                return
            protos[proto_name(m.proto_type)] += 1
        index = tally.index
        tally.index = index + step
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
                drops[TOO_BIG] += 1
                if on_drop is not None:
                    on_drop(TOO_BIG, transport, peer, f"{len(data)} bytes")
            else:
                ho.writer.write_frame(f, (sec, int((received - sec) * 1e6)))
                ho.after_record()
        if so is not None:
            so.put(m, received)
        for send in plain_sends:
            send(data)
        for send in message_sends:
            send(data, m)  # m None (not decoded here): the sender decodes
        tally.accepted += 1
        if count is not None and tally.accepted >= count:
            stop()

    return handle


def pcap_only_handlers(hep_out: RotatingFile, frame: Callable[[bytes, tuple, tuple], bytes],
                       drops: Counter[str], *, count: int | None = None,
                       stop: Callable[[], None] = lambda: None,
                       on_drop: DropReport | None = None) -> PcapOnly:
    """``--write-hep`` alone (-q, no filter, nothing else): the record is packed here in
    one append (the classic pcap record header of heptool.capture.writer.PcapWriter) to
    keep the per-packet work small enough for 200,000 packets/s."""
    import struct

    ho = hep_out
    pack = struct.Struct("<IIII").pack
    state = [0]

    def handle(data: bytes, transport: str, peer: tuple, local: tuple,
               received: float) -> None:
        try:
            f = frame(data, peer, local)
        except ValueError:  # a >65,507-byte HEP3 packet from TCP fits no UDP frame
            drops[TOO_BIG] += 1
            if on_drop is not None:
                on_drop(TOO_BIG, transport, peer, f"{len(data)} bytes")
        else:
            sec = int(received)
            n = len(f)
            rf = ho.file
            rf.buf += pack(sec & 0xFFFFFFFF, int((received - sec) * 1e6), n, n) + f
            if len(rf.buf) >= 1 << 20 or ho.size is not None:
                ho.after_record()
        state[0] += 1
        if count is not None and state[0] >= count:
            stop()

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
                drops[TOO_BIG] += 1
                if on_drop is not None:
                    on_drop(TOO_BIG, "udp", (peer[0], peer[1]), f"{n} bytes")
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
            stop()

    def accepted() -> int:
        return state[0]

    return PcapOnly(handle, handle_view, accepted)


_PROTO_NAMES: dict[Any, str] = {}


def proto_name(pt: Any) -> str:
    """The name of a HEP protocol type for the counts ("sip", "none", or the number)."""
    name = _PROTO_NAMES.get(pt)
    if name is None:
        from heptool.core.registry import PROTO_TYPES

        name = _PROTO_NAMES[pt] = "none" if pt is None else PROTO_TYPES.get(pt) or str(pt)
    return name


class DropReporter:
    """``listen -v``: one line per dropped packet to ``say`` (a :data:`DropReport`), at most
    ``limit`` per reason each second; the packets over it are told in one line per reason
    when the second is over (:meth:`tick`, on the collector's timer) or at the end
    (:meth:`flush`), so a flood of bad packets cannot flood the terminal but none goes
    untold."""

    def __init__(self, say: Callable[[str], None], *, limit: int = 10,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.say = say
        self.limit = limit
        self.clock = clock or time.monotonic
        self.window = int(self.clock())
        self.shown: Counter[str] = Counter()
        self.held: Counter[str] = Counter()

    def __call__(self, reason: str, transport: str, peer: tuple, detail: str = "") -> None:
        self.tick()
        if self.shown[reason] < self.limit:
            self.shown[reason] += 1
            from heptool.net.target import format_addr

            self.say(f"dropped a {transport} packet from {format_addr(peer[0], peer[1])}: "
                     f"{reason}" + (f" ({detail})" if detail else ""))
        else:
            self.held[reason] += 1

    def tick(self) -> None:
        """At a new second: tell the packets held back in the last one."""
        if int(self.clock()) != self.window:
            self.flush()

    def flush(self) -> None:
        """Tell the packets held back, and start a new second."""
        for reason, n in self.held.items():
            self.say(f"dropped {n} more packet{'s' if n != 1 else ''}: {reason} (over "
                     f"{self.limit} a second, not shown one by one)")
        self.held.clear()
        self.shown.clear()
        self.window = int(self.clock())
