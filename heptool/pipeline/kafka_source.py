"""A Kafka topic as an input of :class:`~heptool.pipeline.reader.MessageReader`.

An input named ``kafka://HOST:PORT/TOPIC`` is read with :class:`heptool.net.kafka.KafkaReader`:
each message's value is one HEP packet, given to the reader's loop as it is (an
:class:`~heptool.capture.inputs.InputPacket` numbered in reading order).  How to read it
(the consumer group, where to start, when to stop, when to commit) is a
:class:`KafkaOptions` given to the reader::

    reader = MessageReader(["kafka://127.0.0.1:9092/hep"],
                           kafka=KafkaOptions(group="decoders", until_idle=5))
    try:
        for item in reader:
            write(item.message)
        out.flush()
        reader.close(commit=True)   # the output is written: commit the offsets
    finally:
        reader.close()              # (already closed: nothing more)

At least once: an offset is committed only after the caller's loop moved past its message
(``commit_every``: periodically, after ``before_commit()`` flushed the output) or when
the caller says the output is written (``close(commit=True)``); a consumer that dies in
between leaves the rest to be read again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from heptool.capture.inputs import InputPacket, InputStats

__all__ = ["KafkaOptions", "is_kafka_url", "kafka_packets"]


def is_kafka_url(source: str) -> bool:
    """Whether an input name is a Kafka topic (``kafka://...``)."""
    return source[:8].lower() == "kafka://"


class KafkaOptions(NamedTuple):
    """How a ``kafka://`` input is read (see :class:`heptool.net.kafka.KafkaReader`)."""

    group: str | None = None  # consumer group; None: every partition, no commits
    from_beginning: bool = False  # a partition without a committed offset: from its start
    until_idle: float | None = None  # stop after SECONDS without a message
    commit_every: float | None = None  # commit while reading (None: only at close(commit))
    before_commit: Callable[[], Any] | None = None  # flushes the output before a commit
    on_event: Callable[[str], Any] | None = None  # the partitions assigned and revoked
    on_open: Callable[[Any], Any] | None = None  # gets each KafkaReader opened (to stop it)


def kafka_packets(source: str, options: KafkaOptions | None, stats: InputStats,
                  opened: list[Any], unreadable: Callable[[str], Any],
                  on_error: Callable[[str], Any] | None = None) -> Iterator[InputPacket]:
    """The HEP packets of topic ``source``; the :class:`~heptool.net.kafka.KafkaReader` is
    appended to ``opened`` (the caller closes it, committing or not); a topic that cannot
    be read is reported through ``unreadable(text)``, client errors on the way through
    ``on_error(text)``."""
    from heptool.capture.inputs import InputPacket
    from heptool.net.kafka import KafkaClientMissingError, KafkaReader, ReaderError
    from heptool.net.target import parse_target

    o = options or KafkaOptions()
    stats.kind = "kafka"
    try:
        target = parse_target(source, kafka=True)
        reader = KafkaReader(target, group=o.group, from_beginning=o.from_beginning,
                             until_idle=o.until_idle, commit_every=o.commit_every,
                             before_commit=o.before_commit, on_error=on_error,
                             on_event=o.on_event)
    except (ValueError, ReaderError, KafkaClientMissingError) as e:
        unreadable(str(e))
        return
    opened.append(reader)
    if o.on_open is not None:
        o.on_open(reader)
    built = InputPacket.built
    try:
        for i, (_p, _o, value) in enumerate(reader):
            yield built(i, value)
    except ReaderError as e:
        unreadable(str(e))
        return
    if not reader.ever_assigned and reader.errors:  # the group never got going
        unreadable(f"{reader.errors[-1]} (no partition was assigned)")
