"""What every HEP sender shares, and the UDP sender.

* :class:`SendError`: a destination that cannot be used at all;
* :class:`SendStats`: what one sender did (``undelivered`` final after ``close()``);
* :class:`TargetStatus`: one destination's state at a glance (``sender.status()``);
* :class:`UdpSender`: one datagram per packet (the stream sender is
  :class:`heptool.net.stream.StreamSender`).

What UDP can know: a datagram the kernel accepted is counted sent; whether it arrived, no
one tells the sender. When nothing listens on the destination port, the destination's host
may answer with ICMP "port unreachable"; the kernel reports it on a *later* send on the same
socket. Such a report is counted as ``refused`` (a note: some datagrams were very likely not
received, how many depends on timing), never as a packet not sent: the datagram being sent
when the report comes is sent again, so ``packets`` and ``undelivered`` do not depend on the
pacing. ``undelivered`` counts what the kernel did not take (a packet over 65,507 bytes, a
send buffer full for ``write_timeout`` seconds, a network error).

Nothing here prints; ``on_event(sender, kind, text)`` tells a caller what happened.
"""

from __future__ import annotations

import collections
import errno
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from .target import Target

__all__ = ["MAX_UDP_PAYLOAD", "EventHook", "SendError", "SendStats", "TargetStatus", "UdpSender",
           "error_text", "resolve_target"]

#: Largest UDP payload in one IPv4 datagram (65,535 - 20 IP - 8 UDP).
MAX_UDP_PAYLOAD = 65507
SNDBUF = 4 << 20

#: ``on_event(sender, kind, text)``: kind is connected, connect failed, lost, reconnected,
#: dropped, undelivered or refused; text says it in words (without the target).
EventHook = Callable[[Any, str, str], Any]


class SendError(OSError):
    """A destination cannot be used at all (a name that does not resolve for UDP...)."""


class TargetStatus(NamedTuple):
    """One destination's state at a glance (``sender.status()``), for stats lines and
    metrics: ``connected`` (UDP: no ICMP refusal on the last send), packets ``queued``
    (waiting for a connection), ``sent`` (handed to the kernel; TCP/TLS: not known lost),
    ``undelivered`` so far (final after ``close``), ``reconnects``, and ``retried``: requests
    sent again by the client (Kafka: librdkafka's ``txretries``; None for the HEP senders,
    which have no such count)."""

    target: str
    connected: bool
    queued: int
    sent: int
    undelivered: int
    reconnects: int
    retried: int | None = None


class SendStats:
    """What one sender did; ``undelivered`` is final after ``close()``."""

    __slots__ = (
        "bytes",
        "dropped",
        "ended",
        "error_kinds",
        "errors",
        "last_error",
        "oversize",
        "packets",
        "reconnects",
        "refused",
        "requeued",
        "started",
        "undelivered",
    )

    def __init__(self) -> None:
        self.packets = 0  # accepted by the socket (UDP) / acknowledged or written (TCP)
        self.bytes = 0
        self.errors = 0  # send failures (each also counted where it belongs)
        self.oversize = 0  # UDP packets over 65,507 bytes
        self.refused = 0  # UDP: ICMP port unreachable reports (a note, see the module doc)
        self.dropped = 0  # stream queue overflow while disconnected
        self.requeued = 0  # packets queued again after a connection failed
        self.reconnects = 0
        self.undelivered = 0
        self.last_error: str | None = None
        self.error_kinds: collections.Counter[str] = collections.Counter()
        self.started = time.monotonic()
        self.ended: float | None = None

    def error(self, what: str) -> None:
        self.errors += 1
        self.last_error = what
        self.error_kinds[what] += 1

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started


def resolve_target(target: Target, kind: int) -> tuple[int, Any]:
    """(family, address) of ``target`` for a socket of ``kind``; :class:`SendError` if the
    name does not resolve."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=kind)
    except socket.gaierror as e:
        raise SendError(f"{target}: cannot resolve {target.host!r}: {e.strerror or e}") from None
    family, _, _, _, addr = infos[0]
    return family, addr


def error_text(e: BaseException) -> str:
    """An exception in a few words (its strerror when it has one)."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _timeval(seconds: float) -> bytes:
    return struct.pack("ll", int(seconds), int((seconds % 1) * 1e6))


class UdpSender:
    """HEP over UDP: one datagram per packet (what it counts: see the module doc).

    :param write_timeout: how long one send may wait for room in the socket's buffer."""

    def __init__(self, target: Target, *, write_timeout: float = 1.0,
                 on_event: EventHook | None = None) -> None:
        self.target = target
        self.stats = SendStats()
        self.on_event = on_event
        self.refused_last = False
        family, addr = resolve_target(target, socket.SOCK_DGRAM)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        except OSError:
            pass
        try:
            # a deadline for every write, kept in the kernel: the socket stays blocking
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(write_timeout))
        except (OSError, struct.error):
            pass
        try:
            self.sock.connect(addr)
        except OSError as e:
            self.sock.close()
            raise SendError(f"{target}: {error_text(e)}") from None
        self._send = self.sock.send

    def send(self, data: bytes, failed: OSError | None = None) -> bool:
        """Send one packet; False when it was not sent (counted). ``failed``: the error a
        first attempt made elsewhere (a caller's own loop) met."""
        n = len(data)
        st = self.stats
        if n > MAX_UDP_PAYLOAD:
            st.oversize += 1
            st.undelivered += 1
            st.error(f"packet of {n} bytes exceeds the UDP maximum of {MAX_UDP_PAYLOAD}")
            self._event("undelivered", f"a packet of {n} bytes is over the UDP maximum "
                                       f"of {MAX_UDP_PAYLOAD}: NOT sent")
            return False
        refused = False
        for _ in range(3):
            try:
                if failed is not None:
                    e, failed = failed, None
                    raise e
                self._send(data)
                break
            except OSError as e:
                if e.errno == errno.ECONNREFUSED:
                    # the ICMP "port unreachable" of an earlier datagram, reported (and
                    # cleared) now: a note; this datagram is sent again
                    st.refused += 1
                    if not refused and st.refused == 1:
                        self._event("refused", "ICMP port unreachable: nothing listening?")
                    refused = True
                    continue
                what = ("send buffer full (timed out)" if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
                        else error_text(e))
                st.error(what)
                st.undelivered += 1
                self._event("undelivered", f"a packet NOT sent: {what}")
                return False
        else:
            st.error("connection refused (nothing listening)")
            st.undelivered += 1
            return False
        self.refused_last = refused
        st.packets += 1
        st.bytes += n
        return True

    def _event(self, kind: str, text: str) -> None:
        if self.on_event is not None:
            self.on_event(self, kind, text)

    def poll(self) -> None:
        """Nothing to do for UDP (streams retry here)."""

    def status(self) -> TargetStatus:
        st = self.stats
        return TargetStatus(str(self.target), not self.refused_last, 0, st.packets,
                            st.undelivered, st.reconnects)

    def abort(self) -> None:
        """Nothing waits in a UDP sender."""

    def close(self, timeout: float = 0.0) -> None:
        self.stats.ended = time.monotonic()
        self.sock.close()
