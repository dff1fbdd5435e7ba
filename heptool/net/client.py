"""Sending HEP: UDP datagrams and TCP/TLS streams, with pacing and an honest delivery count.

Senders take encoded HEP packets (bytes) and count what happened to each one::

    s = open_sender(parse_target("tcp://127.0.0.1:9060"))
    for data in packets:
        s.send(data)
    s.close()                      # flushes, waits for the peer to acknowledge, retries
    s.stats.packets, s.stats.undelivered

UDP (:class:`UdpSender`): one datagram per packet on a connected socket; a packet longer than
65,507 bytes (the most one IPv4 UDP datagram carries) is refused and counted, never truncated.

TCP/TLS (:class:`StreamSender`): packets back to back on one connection. A dropped
connection is re-established with exponential backoff; meanwhile packets wait in a bounded
queue (the oldest are dropped, and counted, when it is full). Delivery is tracked against
the peer's TCP acknowledgements (Linux ``TCP_INFO.tcpi_bytes_acked``): when a connection
fails, every packet the peer's kernel had not acknowledged is queued again, so a packet
written into a dying connection is not silently lost. ``stats.undelivered`` is then exact at
the level of the peer's kernel: what was never acknowledged by it when the sender gave up.
(Bytes the peer's kernel acknowledged but its program never read, because it crashed or
closed the connection with data unread, cannot be seen from here; a resent packet whose
acknowledgement was lost in flight may arrive twice.)

:class:`Pacer` spaces packets in time (``max``, ``original`` at a ``speed``, or a fixed
``rate``). Nothing here prints; callers read ``stats``.
"""

from __future__ import annotations

import collections
import errno
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from .target import Target
from .tls import client_tls_context  # re-exported: README documents it here

__all__ = [
    "MAX_UDP_PAYLOAD",
    "Pacer",
    "SendError",
    "SendStats",
    "StreamSender",
    "TargetStatus",
    "UdpSender",
    "client_tls_context",
    "open_sender",
]

#: Largest UDP payload in one IPv4 datagram (65,535 - 20 IP - 8 UDP).
MAX_UDP_PAYLOAD = 65507
_SNDBUF = 4 << 20
_TCP_INFO_LEN = 232
_BYTES_ACKED = struct.Struct("<Q")  # struct tcp_info.tcpi_bytes_acked, at offset 120 (Linux 4.1+)
_BYTES_ACKED_OFFSET = 120
_TIOCOUTQ = 0x5411  # SIOCOUTQ: bytes in the send queue (not yet acknowledged)


class SendError(OSError):
    """A destination cannot be used at all (refused at the start, bad TLS setup...)."""


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
        "requeued",
        "started",
        "undelivered",
    )

    def __init__(self) -> None:
        self.packets = 0  # accepted by the socket (UDP) / acknowledged or written (TCP)
        self.bytes = 0
        self.errors = 0  # send failures (each also counted where it belongs)
        self.oversize = 0  # UDP packets over 65,507 bytes
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


class TargetStatus(NamedTuple):
    """One destination's state at a glance (``sender.status()``), for stats lines and
    metrics: ``connected`` (UDP: no ICMP refusal seen on the last send), packets
    ``queued`` (waiting for a connection or a writable socket), ``sent`` (handed to the
    kernel; TCP/TLS: not known lost), ``undelivered`` so far (final after ``close``),
    ``reconnects``."""

    target: str
    connected: bool
    queued: int
    sent: int
    undelivered: int
    reconnects: int


def _resolve(target: Target, kind: int) -> tuple[int, Any]:
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=kind)
    except socket.gaierror as e:
        raise SendError(f"{target}: cannot resolve {target.host!r}: {e.strerror or e}") from None
    family, _, _, _, addr = infos[0]
    return family, addr


def _err_text(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


class UdpSender:
    """HEP over UDP: one datagram per packet."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.stats = SendStats()
        family, addr = _resolve(target, socket.SOCK_DGRAM)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
        except OSError:
            pass
        try:
            self.sock.connect(addr)
        except OSError as e:
            self.sock.close()
            raise SendError(f"{target}: {_err_text(e)}") from None
        self._send = self.sock.send

    def send(self, data: bytes) -> bool:
        n = len(data)
        st = self.stats
        if n > MAX_UDP_PAYLOAD:
            st.oversize += 1
            st.undelivered += 1
            st.error(f"packet of {n} bytes exceeds the UDP maximum of {MAX_UDP_PAYLOAD}")
            return False
        try:
            self._send(data)
        except OSError as e:
            if e.errno == errno.ECONNREFUSED:
                # the ICMP "port unreachable" of an earlier datagram: this one is not sent
                st.error("connection refused (nothing listening)")
            else:
                st.error(_err_text(e))
            st.undelivered += 1
            return False
        st.packets += 1
        st.bytes += n
        return True

    def poll(self) -> None:
        """Nothing to do for UDP (streams retry here)."""

    def status(self) -> TargetStatus:
        st = self.stats
        return TargetStatus(str(self.target), True, 0, st.packets, st.undelivered,
                            st.reconnects)

    def close(self, timeout: float = 0.0) -> None:
        self.stats.ended = time.monotonic()
        self.sock.close()


class StreamSender:
    """HEP over TCP or TLS, with reconnection and delivery tracking (see the module doc).

    :param queue_max: packets held while disconnected; beyond it the oldest are dropped.
    :param retry: seconds to keep trying to reconnect, counted from the failure, before the
        packets waiting are given up (at ``close``; while sending, retries go on with backoff).
    """

    def __init__(self, target: Target, *, ssl_context: ssl.SSLContext | None = None,
                 queue_max: int = 100_000, connect_timeout: float = 5.0,
                 backoff: tuple[float, float] = (0.05, 2.0), retry: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if target.scheme == "tls" and ssl_context is None:
            ssl_context = client_tls_context()
        self.target = target
        self.stats = SendStats()
        self.ssl_context = ssl_context if target.scheme == "tls" else None
        self.queue_max = queue_max
        self.connect_timeout = connect_timeout
        self.backoff_min, self.backoff_max = backoff
        self.retry = retry
        self.clock = clock
        self.queue: collections.deque[bytes] = collections.deque()
        # packets written on the current connection and not known to be acknowledged:
        # (end position in the connection's byte stream, data)
        self.inflight: collections.deque[tuple[int, bytes]] = collections.deque()
        self.sock: Any = None
        self.written = 0  # bytes written on the current connection (TCP: payload bytes)
        self.down_since: float | None = None
        self.next_attempt = 0.0
        self.delay = self.backoff_min
        self._since_check = 0
        self._tls = self.ssl_context is not None
        self._connect(first=True)

    # -- connection -------------------------------------------------------------------
    def _connect(self, first: bool = False) -> bool:
        try:
            family, addr = _resolve(self.target, socket.SOCK_STREAM)
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self.connect_timeout)
            try:
                sock.connect(addr)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
                except OSError:
                    pass
                if self.ssl_context is not None:
                    sock = self.ssl_context.wrap_socket(sock, server_hostname=self.target.host)
                    _check_tls_refusal(sock)
                sock.settimeout(None)
            except BaseException:
                sock.close()
                raise
        except (OSError, ssl.SSLError) as e:
            what = _err_text(e)
            if first or isinstance(e, ssl.SSLCertVerificationError):
                raise SendError(f"{self.target}: {what}") from None
            self.stats.error(f"reconnect: {what}")
            now = self.clock()
            self.next_attempt = now + self.delay
            self.delay = min(self.delay * 2, self.backoff_max)
            return False
        self.sock = sock
        self.written = 0
        self.inflight.clear()
        if not first:
            self.stats.reconnects += 1
        self.down_since = None
        self.delay = self.backoff_min
        return True

    def _acked(self) -> int | None:
        """Bytes of this connection the peer's kernel has acknowledged (None: unknown)."""
        try:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
        except (OSError, AttributeError, ValueError):
            return None
        if len(info) < _BYTES_ACKED_OFFSET + 8:
            return None
        acked = _BYTES_ACKED.unpack_from(info, _BYTES_ACKED_OFFSET)[0]
        return max(0, acked - 1)  # the SYN counts as one byte

    def _outq(self) -> int:
        """Bytes in the socket's send queue, not yet acknowledged by the peer (0: unknown)."""
        try:
            import array
            import fcntl

            buf = array.array("i", [0])
            fcntl.ioctl(self.sock.fileno(), _TIOCOUTQ, buf)
            return buf[0]
        except (OSError, ImportError, ValueError):
            return 0

    def _raw_end(self) -> int:
        """TLS: position in the raw TCP stream after the last write (acked + still queued).

        The two are read by two system calls: an acknowledgement arriving in between moves
        bytes from the queue to the acknowledged count, and ``acked`` read before it plus the
        queue read after it would fall short of the true end, so a packet would count as
        acknowledged before it was.  Read until ``acked`` is the same on both sides of the
        queue (bounded); failing that, the later ``acked``: too far, which at worst sends a
        packet twice, never reports one delivered that was not."""
        acked = self._acked() or 0
        for _ in range(16):
            outq = self._outq()
            after = self._acked() or 0
            if after == acked:
                break
            acked = after
        return acked + outq

    def _trim_inflight(self) -> None:
        acked = self._acked()
        if acked is None:
            return
        infl = self.inflight
        while infl and infl[0][0] <= acked:
            infl.popleft()

    def _lost(self, e: BaseException, also: bytes | None = None) -> None:
        """The connection failed: queue again what the peer did not acknowledge (and
        ``also``, the packet whose write failed), ahead of what was already waiting."""
        acked = self._acked() if self.sock is not None else None
        unacked = [d for end, d in self.inflight if acked is None or end > acked]
        self.stats.error(f"connection lost: {_err_text(e)}")
        if unacked:
            self.stats.requeued += len(unacked)
            self.stats.packets -= len(unacked)
            self.stats.bytes -= sum(len(d) for d in unacked)
        if also is not None:
            unacked.append(also)
        if unacked:
            self.queue.extendleft(reversed(unacked))
            self._bound_queue()
        self.inflight.clear()
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None
        self.down_since = self.clock()
        self.next_attempt = self.down_since + self.delay

    def _bound_queue(self) -> None:
        q = self.queue
        while len(q) > self.queue_max:
            q.popleft()
            self.stats.dropped += 1

    # -- sending ----------------------------------------------------------------------
    def _write(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as e:
            self._lost(e, also=data)
            return False
        if self._tls:
            end = self._raw_end()
        else:
            self.written += len(data)
            end = self.written
        self.inflight.append((end, data))
        self.stats.packets += 1
        self.stats.bytes += len(data)
        self._since_check += 1
        if self._since_check >= 256:
            self._since_check = 0
            self._trim_inflight()
        return True

    def send(self, data: bytes) -> bool:
        """Send (or queue) one packet; False when it had to be queued or dropped."""
        if self.sock is None or self.queue:
            self.queue.append(data)
            self._bound_queue()
            self.poll()
            return False
        return self._write(data)

    def status(self) -> TargetStatus:
        st = self.stats
        # while running, what is known lost is what a full queue dropped; close() fixes it
        lost = st.undelivered if st.ended is not None else st.dropped
        return TargetStatus(str(self.target), self.sock is not None, len(self.queue),
                            st.packets, lost, st.reconnects)

    def poll(self) -> None:
        """Reconnect when it is time, and drain the queue while the connection holds."""
        if self.sock is None and (self.clock() < self.next_attempt or not self._connect()):
            return
        q = self.queue
        while q and self.sock is not None:
            if not self._write(q.popleft()):
                return

    def _confirm(self, deadline: float) -> bool:
        """Half-close and wait until the peer acknowledged every byte (or closed)."""
        sock = self.sock
        total = self._raw_end() if self._tls else self.written
        try:
            # a plain TCP half-close, also under TLS (no close_notify: a collector that stops
            # reading once it has what it wants, e.g. listen --count, would close with the
            # close_notify unread, and its kernel then answers with a reset instead of the
            # last acknowledgements; the collector sees the end of the stream, and a TLS
            # alert it sent, e.g. a refused client certificate, still reaches us below)
            socket.socket.shutdown(sock, socket.SHUT_WR)
        except (OSError, ValueError):
            pass
        ok = False
        while True:
            acked = self._acked()
            if acked is None or acked >= total:
                ok = True
                break
            if self.clock() >= deadline:
                break
            try:
                sock.settimeout(0.02)
                if sock.recv(4096) == b"":
                    # the peer closed: anything not acknowledged by now never will be
                    acked = self._acked()
                    ok = acked is None or acked >= total
                    break
            except TimeoutError:
                continue
            except ssl.SSLEOFError:
                ok = (self._acked() or 0) >= total
                break
            except ssl.SSLError as e:
                if getattr(e, "reason", None) == "TLSV1_ALERT_DECODE_ERROR":
                    # OpenSSL 3 answers a TCP end without close_notify with this alert once
                    # it has read up to it: the collector read the whole stream; its
                    # acknowledgements are there or on their way
                    ok = self._wait_acked(total, deadline)
                    break
                self.stats.error(f"TLS: {_err_text(e)}")  # an alert: the session refused
                break
            except OSError:
                ok = (self._acked() or 0) >= total
                break
        if ok:
            self.inflight.clear()
        return ok

    def _wait_acked(self, total: int, deadline: float) -> bool:
        """Wait (bounded) until the peer acknowledged ``total`` bytes of this connection."""
        while True:
            acked = self._acked()
            if acked is None or acked >= total:
                return True
            if self.clock() >= deadline:
                return False
            time.sleep(0.005)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (reconnecting for up to ``retry`` seconds), confirm it was
        acknowledged, and fix ``stats.undelivered``."""
        retry = self.retry if timeout is None else timeout
        deadline = self.clock() + retry
        while True:
            self.poll()
            if self.sock is not None and not self.queue:
                if self._confirm(deadline):
                    break
                # not acknowledged in time: treat as lost and maybe try once more
                self._lost(OSError(errno.ETIMEDOUT, "not acknowledged by the peer"))
            if self.clock() >= deadline:
                break
            wait = max(0.0, min(self.next_attempt, deadline) - self.clock())
            time.sleep(min(wait, 0.1) if wait else 0.01)
        left = len(self.queue) + len(self.inflight)
        self.stats.undelivered = left + self.stats.dropped
        self.queue.clear()
        self.inflight.clear()
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.stats.ended = time.monotonic()


def _check_tls_refusal(sock: Any, wait: float = 0.05) -> None:
    """TLS 1.3 completes the client's side of the handshake before the server has checked
    the client's certificate; a refusal then arrives as an alert just after. Wait for it
    briefly so that it is an error at connect time, not silently lost data."""
    if sock.version() != "TLSv1.3":
        return
    sock.settimeout(wait)
    try:
        data = sock.recv(1)
    except (TimeoutError, ssl.SSLWantReadError):
        return
    if data == b"":
        raise ConnectionResetError(errno.ECONNRESET, "the server closed the TLS connection")
    raise ssl.SSLError("unexpected data from the collector")


Sender = UdpSender | StreamSender


def open_sender(target: Target, **stream_options: Any) -> Sender:
    """The sender for ``target``'s transport (stream options go to :class:`StreamSender`)."""
    if target.scheme == "udp":
        return UdpSender(target)
    return StreamSender(target, **stream_options)


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
