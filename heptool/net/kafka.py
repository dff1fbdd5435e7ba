"""Kafka as a HEP bus: a producer sender and a topic reader (optional extra ``heptool[kafka]``).

The client is confluent-kafka (librdkafka), imported only when a ``kafka://`` URL is used;
without it :func:`client` raises :class:`KafkaClientMissingError`, whose one line names
``pip install heptool[kafka]``.

Producing (:class:`KafkaSender`, the same interface as the senders of
:mod:`heptool.net.client`: ``send``, ``poll``, ``close``, ``stats``, ``status()``):

* the message **value** is the HEP packet's bytes, unchanged (any version; a reader gets
  them back byte for byte);
* the **key** is the call the packet belongs to, the first of ``key_order`` that the packet
  has (:func:`call_key`): by default OpenSIPS's chunk 0x0065 ``sip`` value (the call an
  xlog, REST or other OpenSIPS event names explicitly), then chunk 0x0011 (the correlation
  id agents give B2BUA legs, RTCP reports and logs), then the SIP Call-ID.  Equal keys go
  to one partition (librdkafka ``partitioner: murmur2_random``: murmur2 as the Java client
  computes it, random for packets without a key), so one consumer sees a whole call;
* **headers**: ``hep_proto`` (protocol type, chunk 0x000b, decimal), ``hep_capture_id``,
  ``hep_node`` (node name, when the packet has one) and ``hep_time`` (the packet's own time,
  ``seconds.microseconds``), so consumers can route without decoding.

Delivery is counted from the broker's acknowledgements: ``stats.packets`` delivered
(``stats.bytes``: of the packets taken into the producer's queue),
``stats.undelivered`` refused, timed out or still queued when :meth:`KafkaSender.close`
gave up (nothing is dropped without being counted), ``stats.retried`` the requests
librdkafka sent again (:class:`RetryCount`).  The producer's queue is bounded
(``queue_max`` messages): when it is full ``send`` waits up to ``block`` seconds for room,
then counts the packet undelivered.

Consuming (:class:`KafkaReader`): a topic's messages, with a consumer group or without
(every partition, nothing committed); offsets committed only for what the caller finished.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..analysis.extract import extra_pairs
from ..core.codec import decode
from ..core.errors import HepError
from ..sip.ids import sip_ids
from .client import SendStats, TargetStatus
from .target import KafkaTarget

__all__ = [
    "CONFIG_ENV",
    "CONSUMER_SETTINGS",
    "DEFAULT_KEY_ORDER",
    "INSTALL_HINT",
    "KEY_SOURCES",
    "PRODUCER_SETTINGS",
    "KafkaClientMissingError",
    "KafkaReader",
    "KafkaSender",
    "KafkaStats",
    "ReaderError",
    "RetryCount",
    "call_key",
    "client",
    "env_config",
    "hep_headers",
    "parse_key_order",
]

INSTALL_HINT = "pip install heptool[kafka]"

#: where a packet's key can come from (``--kafka-key``), and the default order
KEY_SOURCES = ("extra-sip", "correlation-id", "call-id")
DEFAULT_KEY_ORDER = KEY_SOURCES

#: The producer's settings (librdkafka names); ``queue.buffering.max.messages`` is
#: ``queue_max``.  Idempotence keeps each partition in order across retries.
PRODUCER_SETTINGS: dict[str, Any] = {
    "partitioner": "murmur2_random",
    "linger.ms": 5,
    "batch.num.messages": 10000,
    "batch.size": 1000000,
    "compression.type": "lz4",
    "enable.idempotence": True,
    "acks": "all",
    "delivery.report.only.error": True,
    "statistics.interval.ms": 1000,
    "log_level": 2,  # errors come through error_cb (counted, said once), not as log lines
}


#: The consumers' settings: a member that stops heartbeating is replaced after 10 s (the
#: client's default, 45 s, is long for a tool started and stopped by hand).
CONSUMER_SETTINGS: dict[str, Any] = {
    "session.timeout.ms": 10000,
    "log_level": 2,
}

#: Environment variable with librdkafka settings for every client heptool makes, over its
#: own: ``key=value`` pairs separated by ``;`` (security.protocol, sasl.*, ssl.*...).
CONFIG_ENV = "HEPTOOL_KAFKA_CONFIG"


def env_config(environ: Any = None) -> dict[str, str]:
    """The settings of :data:`CONFIG_ENV` (ValueError names a pair without ``=``)."""
    text = (os.environ if environ is None else environ).get(CONFIG_ENV, "")
    out = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{CONFIG_ENV}: {part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


class KafkaClientMissingError(ImportError):
    """The Kafka client (confluent-kafka) is not installed."""


def client() -> Any:
    """The ``confluent_kafka`` module; :class:`KafkaClientMissingError` without it."""
    try:
        import confluent_kafka
    except ImportError:
        raise KafkaClientMissingError(
            f"kafka:// needs the Kafka client (confluent-kafka): {INSTALL_HINT}") from None
    return confluent_kafka


def parse_key_order(text: str) -> tuple[str, ...]:
    """``--kafka-key``: comma-separated :data:`KEY_SOURCES` in the order to try, or
    ``none`` (no key: packets spread over the partitions).  ValueError names a bad one."""
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    if parts == ["none"]:
        return ()
    if parts == ["auto"] or not parts:
        return DEFAULT_KEY_ORDER
    for p in parts:
        if p not in KEY_SOURCES:
            raise ValueError(f"{p!r} is not a key source (use {', '.join(KEY_SOURCES)}, a "
                             "comma-separated order of them, auto or none)")
    return tuple(dict.fromkeys(parts))


def _extra_sip(m: Any) -> str | None:
    ec = m.extra_correlation
    if not ec:
        return None
    for k, v in extra_pairs(ec):
        if k == "sip" and isinstance(v, str) and v:
            return v
    return None


def call_key(m: Any, order: Sequence[str] = DEFAULT_KEY_ORDER) -> str | None:
    """The call message ``m`` belongs to: the first source of ``order`` it has (see the
    module documentation), or None."""
    for source in order:
        if source == "correlation-id":
            v = m.correlation_id
        elif source == "call-id":
            if m.payload is None:
                continue
            v = sip_ids(m.payload)[0]
        else:
            v = _extra_sip(m)
        if v:
            return v  # type: ignore[no-any-return]
    return None


def hep_headers(m: Any) -> list[tuple[str, bytes]]:
    """The Kafka headers of message ``m`` (see the module documentation)."""
    h = [("hep_proto", b"%d" % m.proto_type if m.proto_type is not None else b""),
         ("hep_capture_id", b"%d" % m.capture_id if m.capture_id is not None else b""),
         ("hep_time", b"%d.%06d" % (m.ts_sec or 0, m.ts_usec or 0))]
    if m.node_name:
        h.append(("hep_node", m.node_name.encode("utf-8", "surrogateescape")))
    return h


class KafkaStats(SendStats):
    """:class:`~heptool.net.client.SendStats` plus ``retried``: requests librdkafka sent
    again (its statistics' ``txretries``)."""

    __slots__ = ("retried",)

    def __init__(self) -> None:
        super().__init__()
        self.retried = 0


class RetryCount:
    """Requests librdkafka sent again (its statistics' per-broker ``txretries``), summed
    over the brokers and kept across their reconnections: librdkafka's per-broker
    counters can start again from 0 after one, and ``retried`` is a counter that never
    goes down (the metrics' ``heptool_forward_retried_requests_total``)."""

    __slots__ = ("last", "total")

    def __init__(self) -> None:
        self.total = 0
        self.last: dict[str, int] = {}  # broker name -> its txretries at the last update

    def update(self, brokers: dict[str, Any]) -> int:
        """Take the ``brokers`` of one statistics report; the total so far."""
        for name, b in brokers.items():
            if b.get("nodeid", -1) < 0:  # the bootstrap connection, not a broker
                continue
            now = int(b.get("txretries", 0))
            before = self.last.get(name, 0)
            self.total += now - before if now >= before else now  # less: started again
            self.last[name] = now
        return self.total


class KafkaSender:
    """HEP packets to a Kafka topic, keyed by call (see the module documentation).

    :param key_order: :data:`KEY_SOURCES` to try, in order (empty: no key).
    :param queue_max: messages the producer holds (waiting for a batch or the broker).
    :param block: seconds ``send`` waits for room in a full queue before it counts the
        packet undelivered (0: at once, as ``listen --forward`` does: it must not stop
        receiving).
    :param retry: seconds :meth:`close` waits for what is queued to be acknowledged.
    :param config: librdkafka settings over :data:`PRODUCER_SETTINGS`.
    """

    def __init__(self, target: KafkaTarget, *, key_order: Sequence[str] = DEFAULT_KEY_ORDER,
                 queue_max: int = 100_000, block: float = 5.0, retry: float = 5.0,
                 config: dict[str, Any] | None = None) -> None:
        ck = client()
        self.target = target
        self.topic = target.topic
        self.stats = KafkaStats()
        self.key_order = tuple(key_order)
        self.block = block
        self.retry = retry
        self.produced = 0  # taken into the producer's queue
        self.failed = 0  # taken, then not delivered (a delivery report said so, or given up)
        self.refused = 0  # never taken (queue full, too big...)
        self.connected = False
        self._retries = RetryCount()
        from .client import SendError

        try:
            self.settings = {**PRODUCER_SETTINGS, "queue.buffering.max.messages": queue_max,
                             **(config or {}), **env_config()}
        except ValueError as e:
            raise SendError(str(e)) from None
        conf = {**self.settings, "bootstrap.servers": target.bootstrap,
                "on_delivery": self._delivered, "error_cb": self._error,
                "stats_cb": self._statistics}
        try:
            self.producer = ck.Producer(conf)
        except (ck.KafkaException, ValueError, TypeError) as e:
            raise SendError(f"{target}: {e}") from None
        self._produce = self.producer.produce
        self._poll = self.producer.poll
        self._kafka_error = ck.KafkaException
        self._n = 0
        self._closed = False

    # -- callbacks (served by poll/flush) ----------------------------------------------
    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:  # delivery.report.only.error: only failures come here
            self.failed += 1
            self.stats.error(f"not delivered: {err.str()}")

    def _error(self, err: Any) -> None:
        name = err.name()
        if name in ("_ALL_BROKERS_DOWN", "_TRANSPORT", "_RESOLVE"):
            self.connected = False
        self.stats.error(err.str())

    def _statistics(self, text: str) -> None:
        try:
            s = json.loads(text)
        except ValueError:
            return
        brokers = s.get("brokers", {})
        self.connected = any(b.get("state") == "UP" for b in brokers.values()
                             if b.get("nodeid", -1) >= 0)
        self.stats.retried = self._retries.update(brokers)

    # -- sending -----------------------------------------------------------------------
    #: ``send`` takes the packet's decoded message too (a caller that has it passes it:
    #: the packet is not decoded again)
    takes_message = True

    def key_and_headers(self, data: bytes, message: Any = None
                        ) -> tuple[bytes | None, list[tuple[str, bytes]] | None]:
        """The key and headers of one packet (None, None when it does not decode);
        ``message``: ``decode(data)`` when the caller has it already."""
        m = message
        if m is None:
            try:
                m = decode(data)
            except HepError:
                return None, None
        key = call_key(m, self.key_order) if self.key_order else None
        return (key.encode("utf-8", "surrogateescape") if key is not None else None,
                hep_headers(m))

    def send(self, data: bytes, message: Any = None) -> bool:
        """Queue one packet for the topic (``message``: its ``decode(data)``, when the
        caller has it); False when it could not be (counted undelivered)."""
        key, headers = self.key_and_headers(data, message)
        try:
            self._produce(self.topic, data, key, headers=headers)
        except BufferError:
            if not self._wait_for_room(data, key, headers):
                return False
        except (self._kafka_error, ValueError, TypeError) as e:  # e.g. over message.max.bytes
            self.refused += 1
            self.stats.error(f"refused: {e}")
            return False
        self.produced += 1
        self.stats.bytes += len(data)
        self._n += 1
        if not self._n & 0x3FF:
            self._poll(0)
        return True

    def _wait_for_room(self, data: bytes, key: bytes | None, headers: Any) -> bool:
        deadline = time.monotonic() + self.block
        while True:
            self._poll(0.05 if self.block else 0)
            try:
                self._produce(self.topic, data, key, headers=headers)
                return True
            except BufferError:
                if time.monotonic() >= deadline:
                    self.refused += 1
                    self.stats.dropped += 1
                    self.stats.error("producer queue full")
                    return False

    def poll(self) -> None:
        """Serve delivery reports and statistics (and sum them up in ``stats``)."""
        self._poll(0)
        self._update()

    def _update(self) -> None:
        st = self.stats
        queued = len(self.producer) if not self._closed else 0
        st.undelivered = self.refused + self.failed
        acked = max(0, self.produced - queued - self.failed)
        if acked > st.packets:  # the brokers acknowledged more since: they are up (the
            self.connected = True  # statistics callback says so only every second)
        st.packets = acked

    def status(self) -> TargetStatus:
        """The destination's state now (queued: in the producer, not yet acknowledged)."""
        if not self._closed:
            self._poll(0)
        self._update()
        st = self.stats
        return TargetStatus(str(self.target), self.connected,
                            len(self.producer) if not self._closed else 0, st.packets,
                            st.undelivered, st.reconnects, st.retried)

    def close(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` (default ``retry``) seconds for every queued packet to be
        acknowledged; what is not by then is given up and counted undelivered."""
        if self._closed:
            return
        wait = self.retry if timeout is None else timeout
        p = self.producer
        left = p.flush(wait)
        if left:
            p.purge()  # their delivery reports say so: counted undelivered
            p.flush(1.0)
            left = len(p)
            if left:  # reports not served: count them here
                self.failed += left
                self.stats.error(f"{left} not acknowledged in {wait:g} s")
        p.poll(0)
        self._update()
        self._closed = True
        self.stats.ended = time.monotonic()


#: Seconds ``until_idle`` waits at least for a group's first assignment.
JOIN_WAIT = 30.0


#: consumer errors that end the reading (the topic cannot be read at all)
_UNREADABLE = frozenset({"UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "TOPIC_AUTHORIZATION_FAILED",
                         "GROUP_AUTHORIZATION_FAILED"})


class ReaderError(OSError):
    """A topic cannot be read (no such topic, the client refused a setting...)."""


class KafkaReader:
    """The messages of a topic, as ``(partition, offset, value)``, with offsets committed
    only for what the caller has finished (at least once).

    * ``group``: consumer group (partitions shared with its other members, offsets committed
      there); None: every partition, no group, nothing committed.
    * ``from_beginning``: where a partition without a committed offset starts (the oldest
      message; else new messages only).
    * ``until_idle``: stop after that many seconds without a message (counted from the last
      message or (re)assignment; while a group has assigned nothing yet, at least
      :data:`JOIN_WAIT` seconds); None: read until the caller stops.
    * ``commit_every``: seconds between commits while reading, and a commit whenever the
      reader has caught up, each after ``before_commit()`` (the caller flushes its output
      there); None: only :meth:`commit`.
    * ``on_event(text)``: the partitions the group assigns and revokes (``-v``).

    A message counts as finished once the iteration moves past it (the loop body ran);
    :meth:`commit` with ``pending=True`` also counts the last one handed out.  Partitions
    taken away in a rebalance have what was finished there committed first (with
    ``commit_every``; else another member reads it again).  :meth:`stop` ends the iteration.
    """

    def __init__(self, target: KafkaTarget, *, group: str | None = None,
                 from_beginning: bool = False, until_idle: float | None = None,
                 commit_every: float | None = None,
                 before_commit: Callable[[], Any] | None = None,
                 on_error: Callable[[str], Any] | None = None,
                 on_event: Callable[[str], Any] | None = None,
                 config: dict[str, Any] | None = None, batch: int = 500) -> None:
        ck = self.ck = client()
        self.target = target
        self.group = group
        self.from_beginning = from_beginning
        self.until_idle = until_idle
        self.commit_every = commit_every
        self.before_commit = before_commit
        self.on_error, self.on_event = on_error, on_event
        self.batch = batch
        self.done: dict[int, int] = {}  # partition -> next offset to read (finished below)
        self.committed: dict[int, int] = {}  # what the last successful commits said
        self.pending: tuple[int, int] | None = None
        self.read = 0
        self.errors: list[str] = []
        self.ever_assigned = self.stopping = self._closed = False
        self._active = time.monotonic()
        try:
            extra = env_config()
        except ValueError as e:
            raise ReaderError(str(e)) from None
        conf = {"bootstrap.servers": target.bootstrap,
                "group.id": group or f"heptool-nogroup-{os.getpid()}-{id(self):x}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest" if from_beginning else "latest",
                **CONSUMER_SETTINGS, **(config or {}), **extra, "error_cb": self._error}
        try:
            self.consumer = ck.Consumer(conf)
        except (ck.KafkaException, ValueError, TypeError) as e:
            raise ReaderError(f"{target}: {e}") from None
        if group is not None:
            self.consumer.subscribe([target.topic], on_assign=self._assigned,
                                    on_revoke=self._revoked, on_lost=self._lost)
        else:
            self._assign_all()

    def _assign_all(self) -> None:
        ck = self.ck
        try:
            md = self.consumer.list_topics(self.target.topic, timeout=10)
        except ck.KafkaException as e:
            raise ReaderError(f"{self.target}: {e.args[0].str() if e.args else e}") from None
        t = md.topics.get(self.target.topic)
        if t is None or t.error is not None or not t.partitions:
            why = t.error.str() if t is not None and t.error is not None else "no partitions"
            raise ReaderError(f"{self.target}: {why}")
        start = ck.OFFSET_BEGINNING if self.from_beginning else ck.OFFSET_END
        self.consumer.assign([ck.TopicPartition(self.target.topic, p, start)
                              for p in sorted(t.partitions)])
        self.ever_assigned = True

    # -- callbacks ---------------------------------------------------------------------
    def _error(self, err: Any) -> None:
        self._note(err.str())

    def _note(self, what: str) -> None:
        text = f"{self.target}: {what}"
        if text in self.errors:  # a broker that stays down says so again and again
            return
        self.errors.append(text)
        if self.on_error is not None:
            self.on_error(text)

    def _told(self, partitions: list[Any], what: str) -> None:
        if self.on_event is not None and partitions:
            ps = ", ".join(str(p) for p in sorted(tp.partition for tp in partitions))
            self.on_event(f"{self.target}: partitions {ps} {what}")

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        self.ever_assigned = True
        self._active = time.monotonic()
        self._told(partitions, "assigned")

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        self._told(partitions, "revoked")
        if self.commit_every is not None:
            self._commit(only={tp.partition for tp in partitions})
        self._lost(consumer, partitions)

    def _lost(self, consumer: Any, partitions: list[Any]) -> None:
        gone = {tp.partition for tp in partitions}
        for p in gone:
            self.done.pop(p, None)
            self.committed.pop(p, None)
        if self.pending is not None and self.pending[0] in gone:
            self.pending = None
        self._active = time.monotonic()

    def stop(self) -> None:
        """End the iteration before the next batch (safe from a signal handler)."""
        self.stopping = True

    # -- reading -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        consume = self.consumer.consume
        idle = self.until_idle
        every = self.commit_every
        next_commit = time.monotonic() + every if every is not None else None
        done = self.done
        short = True
        while not self.stopping:
            if every is not None and short and done != self.committed:
                # caught up (the last batch was not full): commit what was finished now, so
                # that a rebalance hands nothing finished here to another member (a commit
                # inside the rebalance may be refused: some brokers answer "rebalance in
                # progress", and then the next member reads those messages again)
                self._commit()
            batch = consume(self.batch, 0.1)
            short = len(batch) < self.batch
            now = time.monotonic()
            if next_commit is not None and now >= next_commit:
                self._commit()
                next_commit = now + every  # type: ignore[operator]
            if not batch:
                if idle is not None and now - self._active >= (
                        idle if self.ever_assigned else max(idle, JOIN_WAIT)):
                    return
                continue
            self._active = now
            for msg in batch:
                err = msg.error()
                if err is not None:
                    name = err.name()
                    if name == "_PARTITION_EOF":
                        continue
                    if err.fatal() or name in _UNREADABLE:
                        raise ReaderError(f"{self.target}: {err.str()}")
                    self._error(err)
                    continue
                p, o = msg.partition(), msg.offset()
                value = msg.value()
                if value is None:
                    value = b""
                self.pending = (p, o)
                self.read += 1
                yield p, o, value
                self.pending = None
                done[p] = o + 1

    def _commit(self, *, only: set[int] | None = None) -> None:
        if self.group is None or self._closed:
            return
        offs = [self.ck.TopicPartition(self.target.topic, p, o) for p, o in self.done.items()
                if only is None or p in only]
        if not offs:
            return
        if self.before_commit is not None:
            self.before_commit()
        try:
            self.consumer.commit(offsets=offs, asynchronous=False)
            self.committed.update((tp.partition, tp.offset) for tp in offs)
        except self.ck.KafkaException as e:
            err = e.args[0] if e.args else e
            self._note(f"commit failed: {err.str() if hasattr(err, 'str') else err}")

    def commit(self, *, pending: bool = False) -> None:
        """Commit what was finished (``pending``: and the last message handed out)."""
        if pending and self.pending is not None:
            p, o = self.pending
            self.done[p] = o + 1
            self.pending = None
        self._commit()

    def close(self, *, commit: bool = False) -> None:
        """Leave the group (after committing what was finished, with ``commit``)."""
        if self._closed:
            return
        if commit:
            self.commit(pending=True)
        self._closed = True
        try:
            self.consumer.close()
        except (self.ck.KafkaException, RuntimeError):
            pass
