"""Counters of a HEP server run: what was received, what was dropped and why.

:class:`ServerStats` is where :class:`heptool.net.server.Server` counts packets and bytes per
transport, connections, stream garbage and every drop by reason (callers add their own
reasons, e.g. ``auth key``). :data:`CLOSE_DROPS` and :data:`PARTIAL_DROPS` map why a
connection ended to the drop it counts; :func:`kernel_udp_drops` reads the kernel's
receive-buffer drops of a UDP socket (Linux ``/proc/net/udp{,6}``). :func:`drops_text`,
:func:`streams_text` and :func:`status_text` (a forward's state) are their words in the
stats line and the summary.
"""

from __future__ import annotations

import collections
import os
import socket
import time
from typing import Any

__all__ = ["CLOSE_DROPS", "PARTIAL_DROPS", "ServerStats", "drops_text", "kernel_udp_drops",
           "status_text", "streams_text"]


#: Why a connection ended -> the drop it counts (``ServerStats.drops``); the reasons absent
#: here are normal ends ("closed by peer", "server stopped"), which count a drop only when a
#: partial packet was left (:data:`PARTIAL_DROPS`).
CLOSE_DROPS = {
    "not allowed": "connection not allowed",
    "max connections": "connection over --max-connections",
    "garbage": "connection closed: garbage",
    "stalled": "stalled inside a packet",
    "buffer overflow": "connection closed: buffer overflow",
    "tls error": "connection closed: TLS error",
    "tls handshake timeout": "connection closed: TLS handshake timeout",
}
#: A connection that ended normally with a partial packet buffered: the drop of that packet.
PARTIAL_DROPS = {
    "closed by peer": "incomplete at connection end",
    "server stopped": "incomplete at server stop",
}


class ServerStats:
    """Counters of one server run.

    ``drops`` is the one place every drop is counted, by reason: packets (``not allowed``
    datagrams; the CLI's ``auth key``, ``not HEP``...; partial packets left by a connection)
    and connections (refused, or closed for garbage, a stall, an overflow, a TLS failure: see
    :data:`CLOSE_DROPS`); every connection end goes through :meth:`connection_closed`, so
    ``closed`` and ``drops`` cannot disagree.
    """

    def __init__(self) -> None:
        self.packets: collections.Counter[str] = collections.Counter()  # per transport
        self.bytes: collections.Counter[str] = collections.Counter()
        self.drops: collections.Counter[str] = collections.Counter()  # reason -> packets
        self.connections = 0  # accepted and kept
        self.open_connections = 0
        self.closed: collections.Counter[str] = collections.Counter()  # reason -> connections
        self.garbage_bytes = 0  # skipped by stream resync
        self.resyncs = 0
        self.truncated_bytes = 0  # partial packets left when a connection ended
        self.started = time.monotonic()

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] += n

    def connection_closed(self, reason: str, partial: int = 0) -> None:
        """A connection ended (or was refused) for ``reason``, with ``partial`` bytes of an
        incomplete packet left in its buffer: counts the close and the drop it means."""
        self.closed[reason] += 1
        drop = CLOSE_DROPS.get(reason)
        if partial and reason != "garbage":  # garbage's leftover bytes are garbage, not a packet
            self.truncated_bytes += partial
            if drop is None:
                drop = PARTIAL_DROPS.get(reason, f"incomplete at {reason}")
        if drop is not None:
            self.drops[drop] += 1

    @property
    def total(self) -> int:
        return sum(self.packets.values())


def kernel_udp_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket (its receive buffer was full), from
    ``/proc/net/udp{,6}`` (Linux); None where the OS does not say."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except (OSError, ValueError):
        return None
    want = str(inode)
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name, encoding="ascii") as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) >= 13 and parts[9] == want:
                        return int(parts[-1])
        except OSError:
            continue
    return None


def status_text(st: Any) -> str:
    """A forward's state for the stats line: ``up``/``DOWN``, queue depth, counts (Kafka:
    also ``retried``, the requests the client sent again)."""
    retried = getattr(st, "retried", None)
    return (f"{'up' if st.connected else 'DOWN'}, queued {st.queued}, sent {st.sent}, "
            f"undelivered {st.undelivered}, reconnects {st.reconnects}"
            + (f", retried {retried}" if retried is not None else ""))


def drops_text(st: ServerStats) -> str:
    """``reason N, reason N`` (most first) of every drop on the way in (ServerStats.drops is
    where all are counted); :meth:`heptool.pipeline.collector.Collector.drops_line` adds the forwards'."""
    return ", ".join(f"{k} {v}" for k, v in st.drops.most_common()) or "none"


def streams_text(st: ServerStats) -> str:
    """TCP/TLS bytes skipped as garbage and left in incomplete packets ('' when none)."""
    if not (st.garbage_bytes or st.truncated_bytes):
        return ""
    return (f"{st.garbage_bytes} garbage bytes skipped in {st.resyncs} resyncs; "
            f"{st.truncated_bytes} bytes of incomplete packets dropped")
