"""Sending HEP: UDP datagrams and TCP/TLS streams, with pacing and an honest delivery count.

Senders take encoded HEP packets (bytes) and count what happened to each one::

    s = open_sender(parse_target("tcp://127.0.0.1:9060"))
    for data in packets:
        s.send(data)
    s.close()                      # flushes, waits for the peer to acknowledge, retries
    s.stats.packets, s.stats.undelivered
    s.status()                     # TargetStatus(target, connected, queued, sent, ...)

UDP (:class:`UdpSender`, :mod:`heptool.net.senders`): one datagram per packet on a
connected socket; a packet longer than 65,507 bytes (the most one IPv4 UDP datagram
carries) is refused and counted, never truncated. "Sent" is what the kernel accepted; an ICMP
port unreachable is a ``refused`` note, not a packet lost (UDP cannot know what arrived).

TCP/TLS (:class:`StreamSender`, :mod:`heptool.net.stream`): packets back to back on one
connection, connected in the background (a destination down at the start is retried with
backoff like one that drops later), every write with a deadline, delivery tracked against
the peer's TCP acknowledgements; a dropped connection is re-established with exponential
backoff while packets wait in a bounded queue.

:class:`Pacer` spaces packets in time (``max``, ``original`` at a ``speed``, or a fixed
``rate``). Nothing here prints; callers read ``stats``/``status()`` or pass ``on_event``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .senders import (
    MAX_UDP_PAYLOAD,
    EventHook,
    SendError,
    SendStats,
    TargetStatus,
    UdpSender,
)
from .stream import StreamSender
from .target import Target
from .tls import client_tls_context  # re-exported: README documents it here

__all__ = [
    "MAX_UDP_PAYLOAD",
    "EventHook",
    "Pacer",
    "SendError",
    "SendStats",
    "StreamSender",
    "TargetStatus",
    "UdpSender",
    "client_tls_context",
    "open_sender",
]


Sender = UdpSender | StreamSender


def open_sender(target: Target, *, on_event: EventHook | None = None,
                **stream_options: Any) -> Sender:
    """The sender for ``target``'s transport (stream options go to :class:`StreamSender`).
    A TCP/TLS destination that is down is not an error: it is connected in the background."""
    if target.scheme == "udp":
        return UdpSender(target, on_event=on_event)
    return StreamSender(target, on_event=on_event, **stream_options)


class Pacer:
    """When to send each packet.

    * ``max``: at once;
    * ``original``: keep the gaps between the packets' own times, divided by ``speed``;
    * ``rate``: ``rate`` packets per second.

    ``wait(ts)`` sleeps until packet time ``ts`` (seconds, float; None = no time, sent at
    once) is due. Sleeps shorter than a millisecond are gathered, so high rates stay exact on
    average without a system call per packet.
    """

    def __init__(self, mode: str = "max", *, speed: float = 1.0, rate: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if mode not in ("max", "original", "rate"):
            raise ValueError(f"unknown pacing {mode!r}")
        if mode == "rate" and not rate:
            raise ValueError("pacing by rate needs a rate > 0")
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.mode = mode
        self.speed = speed
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.start: float | None = None
        self.first_ts: float | None = None
        self.sent = 0

    def restart(self) -> None:
        """A new loop over the input: with the original timing its first packet is due now
        (a fixed rate just goes on)."""
        if self.mode == "original":
            self.start = None
            self.first_ts = None

    def wait(self, ts: float | None) -> None:
        mode = self.mode
        if mode == "max":
            return
        now = self.clock()
        if self.start is None:
            self.start = now
        if mode == "rate":
            due = self.start + self.sent / self.rate  # type: ignore[operator]
            self.sent += 1
        else:
            if ts is None:
                return
            if self.first_ts is None:
                self.first_ts = ts
            due = self.start + max(0.0, ts - self.first_ts) / self.speed
        delay = due - now
        if delay > 0.001:
            self.sleep(delay)
