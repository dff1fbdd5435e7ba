"""HEP over TCP or TLS: one connection per destination, never blocking for long.

:class:`StreamSender` writes packets back to back on one connection.

* Connecting happens in the background: the socket is non-blocking, the TCP connect and the
  TLS handshake progress at each :meth:`~StreamSender.send`/:meth:`~StreamSender.poll`.
  A destination down at the start is retried with exponential backoff, exactly like one
  that drops later; meanwhile packets wait in a bounded queue (the oldest dropped, and
  counted, when it is full). Only the first attempt is waited for (``connect_timeout`` at
  most), so that a destination that is up gets the first packets directly.
* Every write has a deadline: a collector that accepts and never reads fills the socket's
  buffer; when no byte could be written for ``write_timeout`` seconds the connection is
  given up (its unacknowledged packets queued again, a new one opened with backoff).
  :meth:`~StreamSender.abort` (e.g. a second Ctrl-C) gives up at once.
* Delivery is tracked against the peer's TCP acknowledgements (Linux
  ``TCP_INFO.tcpi_bytes_acked``): when a connection fails, every packet the peer's kernel
  had not acknowledged is queued again. ``stats.undelivered`` is then exact at the level of
  the peer's kernel: what it never acknowledged when the sender gave up. (Bytes it
  acknowledged but its program never read cannot be seen from here; a resent packet whose
  acknowledgement was lost in flight may arrive twice.)
"""

from __future__ import annotations

import collections
import errno
import os
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any

from .senders import SNDBUF, EventHook, SendStats, TargetStatus, error_text, resolve_target
from .target import Target
from .tls import client_tls_context

__all__ = ["StreamSender"]

_TCP_INFO_LEN = 232
_BYTES_ACKED = struct.Struct("<Q")  # struct tcp_info.tcpi_bytes_acked, at offset 120 (Linux 4.1+)
_BYTES_ACKED_OFFSET = 120
_TIOCOUTQ = 0x5411  # SIOCOUTQ: bytes in the send queue (not yet acknowledged)
_strerror = os.strerror
_SLICE = 0.1  # longest single wait: how soon an abort() is noticed
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError)


class StreamSender:
    """HEP over TCP or TLS, with background (re)connection, write deadlines and delivery
    tracking (see the module doc).

    :param queue_max: packets held while disconnected; beyond it the oldest are dropped.
    :param retry: at ``close``, seconds to keep trying to deliver what waits.
    :param write_timeout: seconds a write may make no progress before the connection is
        given up.
    :param wait_writes: wait (within ``write_timeout``) for room in the socket's buffer,
        as ``send`` does (the collector's pace holds the sender back); False: never wait,
        the rest of a packet is written by later calls and newer packets queue meanwhile
        (``listen --forward``: a slow forward never holds up receiving).
    :param on_event: ``on_event(sender, kind, text)`` for connections, losses, drops.
    """

    def __init__(self, target: Target, *, ssl_context: ssl.SSLContext | None = None,
                 queue_max: int = 100_000, connect_timeout: float = 5.0,
                 backoff: tuple[float, float] = (0.05, 2.0), retry: float = 5.0,
                 write_timeout: float = 5.0, wait_writes: bool = True,
                 on_event: EventHook | None = None,
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
        self.write_timeout = write_timeout
        self.wait_writes = wait_writes
        # (packet, bytes of it written, when the last byte was) while the socket is full
        self._partial: list[Any] | None = None
        self.on_event = on_event
        self.clock = clock
        self.queue: collections.deque[bytes] = collections.deque()
        # packets written on the current connection and not known to be acknowledged:
        # (end position in the connection's byte stream, data)
        self.inflight: collections.deque[tuple[int, bytes]] = collections.deque()
        self.sock: Any = None  # the established connection
        self.written = 0  # bytes written on the current connection (TCP: payload bytes)
        self.down_since: float | None = clock()
        self.next_attempt = 0.0
        self.delay = self.backoff_min
        self.aborted = False
        self._since_check = 0
        self._tls = self.ssl_context is not None
        self._pending: Any = None  # a socket being connected
        self._phase = ""  # connect, handshake, check (TLS 1.3: a refusal of our certificate)
        self._phase_until = 0.0
        self._ever = False  # connected once
        self._failures = 0  # connection attempts failed in a row
        self._dropped_down = 0  # dropped from the full queue since the connection went down
        self._start()
        deadline = clock() + connect_timeout
        while self._pending is not None and clock() < deadline:
            self._progress(wait=min(_SLICE, max(0.0, deadline - clock())))

    # -- events ------------------------------------------------------------------------
    def _event(self, kind: str, text: str) -> None:
        if self.on_event is not None:
            self.on_event(self, kind, text)

    # -- connection (non-blocking) -----------------------------------------------------
    def _start(self) -> None:
        """Begin a connection attempt."""
        try:
            family, addr = resolve_target(self.target, socket.SOCK_STREAM)
        except OSError as e:
            self._failed(e)
            return
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sock.close()
            self._failed(OSError(err, _strerror(err)))
            return
        self._pending = sock
        self._phase = "connect"
        self._phase_until = self.clock() + self.connect_timeout

    def _progress(self, wait: float = 0.0) -> None:
        """Move the attempt in progress on (waiting up to ``wait`` seconds for its socket)."""
        sock = self._pending
        phase = self._phase
        try:
            if phase == "connect":
                _, w, _ = select.select([], [sock], [], wait)
                if not w:
                    if self.clock() >= self._phase_until:
                        raise TimeoutError(errno.ETIMEDOUT, "connection timed out")
                    return
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, _strerror(err))
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
                except OSError:
                    pass
                if self.ssl_context is None:
                    self._established(sock)
                    return
                sock = self._pending = self.ssl_context.wrap_socket(
                    sock, server_hostname=self.target.host, do_handshake_on_connect=False)
                self._phase = phase = "handshake"
                wait = 0.0
            if phase == "handshake":
                try:
                    sock.do_handshake()
                except ssl.SSLWantReadError:
                    self._wait_or_expire(sock, True, wait)
                    return
                except ssl.SSLWantWriteError:
                    self._wait_or_expire(sock, False, wait)
                    return
                if sock.version() != "TLSv1.3":
                    self._established(sock)
                    return
                # TLS 1.3 completes the client's side of the handshake before the server
                # has checked our certificate; a refusal arrives as an alert just after:
                # wait for it briefly, so that it is a connect error, not lost data
                self._phase = phase = "check"
                self._phase_until = self.clock() + 0.05
                wait = 0.0
            if phase == "check":
                try:
                    data = sock.recv(1)
                except ssl.SSLWantReadError:
                    if self.clock() >= self._phase_until:
                        self._established(sock)
                    elif wait:
                        select.select([sock], [], [], min(wait, self._phase_until - self.clock()))
                    return
                if data == b"":
                    raise ConnectionResetError(errno.ECONNRESET,
                                               "the server closed the TLS connection")
                raise ssl.SSLError("unexpected data from the collector")
        except (OSError, ssl.SSLError, ValueError) as e:
            try:
                sock.close()
            except OSError:
                pass
            self._pending = None
            self._failed(e)

    def _wait_or_expire(self, sock: Any, read: bool, wait: float) -> None:
        if self.clock() >= self._phase_until:
            raise TimeoutError(errno.ETIMEDOUT, "TLS handshake timed out")
        if wait:
            if read:
                select.select([sock], [], [], wait)
            else:
                select.select([], [sock], [], wait)

    def _failed(self, e: BaseException) -> None:
        what = error_text(e)
        self.stats.error(("reconnect: " if self._ever else "connect: ") + what)
        self._failures += 1
        now = self.clock()
        self.next_attempt = now + self.delay
        if self._failures == 1:
            self._event("connect failed", f"{what}; retrying in the background")
        self.delay = min(self.delay * 2, self.backoff_max)

    def _established(self, sock: Any) -> None:
        self._pending = None
        self.sock = sock
        self.written = 0
        self.inflight.clear()
        was_down = self.down_since
        self.down_since = None
        self.delay = self.backoff_min
        note = []
        if self._failures:
            note.append(f"{self._failures} attempts")
        if self._dropped_down:
            note.append(f"{self._dropped_down} packets dropped from the full queue meanwhile")
        if self.queue:
            note.append(f"{len(self.queue)} queued")
        tail = f" ({', '.join(note)})" if note else ""
        if self._ever:
            self.stats.reconnects += 1
            down = f" after {self.clock() - was_down:.1f} s" if was_down is not None else ""
            self._event("reconnected", f"reconnected{down}{tail}")
        else:
            self._event("connected", f"connected{tail}")
        self._ever = True
        self._failures = 0
        self._dropped_down = 0

    # -- delivery tracking -------------------------------------------------------------
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
        what = error_text(e)
        self.stats.error(f"connection lost: {what}")
        if unacked:
            self.stats.requeued += len(unacked)
            self.stats.packets -= len(unacked)
            self.stats.bytes -= sum(len(d) for d in unacked)
        if self._partial is not None:
            unacked.append(self._partial[0])
            self._partial = None
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
        self._event("lost", f"connection lost: {what}; {len(unacked)} packets not "
                            f"acknowledged queued again, {len(self.queue)} waiting")

    def _bound_queue(self) -> None:
        q = self.queue
        over = len(q) - self.queue_max
        if over <= 0:
            return
        for _ in range(over):
            q.popleft()
        self.stats.dropped += over
        if not self._dropped_down:
            self._event("dropped", f"queue full ({self.queue_max} packets): dropping the "
                                   "oldest (counted NOT delivered)")
        self._dropped_down += over

    # -- sending -----------------------------------------------------------------------
    def _write(self, data: bytes) -> bool:
        sock = self.sock
        n = len(data)
        try:
            off = sock.send(data)  # the common case: room in the socket's buffer
        except _WOULD_BLOCK:
            off = 0
        except (OSError, ssl.SSLError) as e:
            self._lost(e, also=data)
            return False
        if off < n:
            if not self.wait_writes:
                self._partial = [data, off, self.clock()]
                return True
            if not self._write_rest(data, off):
                return False
        self._record(data)
        return True

    def _record(self, data: bytes) -> None:
        """``data`` is written whole: note where it ends, to know when it is acknowledged."""
        n = len(data)
        if self._tls:
            end = self._raw_end()
        else:
            self.written += n
            end = self.written
        self.inflight.append((end, data))
        stats = self.stats
        stats.packets += 1
        stats.bytes += n
        self._since_check += 1
        if self._since_check >= 256:
            self._since_check = 0
            self._trim_inflight()

    def _advance(self) -> bool:
        """Go on writing the packet the full socket left half written (never waiting);
        True when it is written whole."""
        part = self._partial
        assert part is not None
        data, off, since = part
        n = len(data)
        view = memoryview(data)
        while off < n:
            try:
                k = self.sock.send(view[off:])
            except _WOULD_BLOCK:
                now = self.clock()
                if self.aborted or now - since >= self.write_timeout:
                    why = ("aborted" if self.aborted else
                           f"no byte could be written for {self.write_timeout:g} s "
                           "(the collector is not reading)")
                    self._lost(TimeoutError(errno.ETIMEDOUT, why))
                return False
            except (OSError, ssl.SSLError) as e:
                self._lost(e)
                return False
            off += k
            part[1] = off
            part[2] = since = self.clock()
        self._partial = None
        self._record(data)
        return True

    def _write_rest(self, data: bytes, off: int) -> bool:
        """Write ``data[off:]``, waiting for room in slices, within the write deadline."""
        sock = self.sock
        n = len(data)
        deadline = None
        view = memoryview(data)
        while off < n:
            try:
                off += sock.send(view[off:])
                deadline = None  # progress: the deadline runs from the last byte written
                continue
            except _WOULD_BLOCK as e:
                read = isinstance(e, ssl.SSLWantReadError)
            except (OSError, ssl.SSLError) as e:
                self._lost(e, also=data)
                return False
            now = self.clock()
            if deadline is None:
                deadline = now + self.write_timeout
            if self.aborted or now >= deadline:
                why = ("aborted" if self.aborted else
                       f"no byte could be written for {self.write_timeout:g} s "
                       "(the collector is not reading)")
                self._lost(TimeoutError(errno.ETIMEDOUT, why), also=data)
                return False
            wait = min(_SLICE, deadline - now)
            if read:
                select.select([sock], [], [], wait)
            else:
                select.select([], [sock], [], wait)
        return True

    def send(self, data: bytes) -> bool:
        """Send (or queue) one packet; False when it had to be queued or dropped."""
        if self.sock is None or self.queue or self._partial is not None:
            self.queue.append(data)
            self._bound_queue()
            self.poll()
            return False
        return self._write(data)

    def poll(self) -> None:
        """Move a connection attempt on (or start one when it is time), and drain the queue
        while the connection holds."""
        if self.sock is None:
            if self.aborted:
                return
            if self._pending is None:
                if self.clock() < self.next_attempt:
                    return
                self._start()
            if self._pending is not None:
                self._progress()
            if self.sock is None:
                return
        if self._partial is not None and not self._advance():
            return
        q = self.queue
        while q and self.sock is not None and self._partial is None:
            if not self._write(q.popleft()):
                return

    def status(self) -> TargetStatus:
        st = self.stats
        # while running, what is known lost is what a full queue dropped; close() fixes it
        lost = st.undelivered if st.ended is not None else st.dropped
        queued = len(self.queue) + (self._partial is not None)
        return TargetStatus(str(self.target), self.sock is not None, queued, st.packets, lost,
                            st.reconnects)

    def abort(self) -> None:
        """Give up now: a write waiting for the collector ends, ``close`` no longer retries
        (what waits is counted NOT delivered). Safe from a signal handler."""
        self.aborted = True

    # -- the end -----------------------------------------------------------------------
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
        while not self.aborted:
            acked = self._acked()
            if acked is None or acked >= total:
                ok = True
                break
            if self.clock() >= deadline:
                break
            try:
                select.select([sock], [], [], 0.02)
                if sock.recv(4096) == b"":
                    # the peer closed: anything not acknowledged by now never will be
                    acked = self._acked()
                    ok = acked is None or acked >= total
                    break
            except _WOULD_BLOCK:
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
                self.stats.error(f"TLS: {error_text(e)}")  # an alert: the session refused
                break
            except OSError:
                ok = (self._acked() or 0) >= total
                break
        if ok:
            self.inflight.clear()
        return ok

    def _wait_acked(self, total: int, deadline: float) -> bool:
        """Wait (bounded) until the peer acknowledged ``total`` bytes of this connection."""
        while not self.aborted:
            acked = self._acked()
            if acked is None or acked >= total:
                return True
            if self.clock() >= deadline:
                return False
            time.sleep(0.005)
        return False

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (reconnecting for up to ``retry`` seconds), confirm it was
        acknowledged, and fix ``stats.undelivered``."""
        retry = self.retry if timeout is None else timeout
        deadline = self.clock() + retry
        while not self.aborted:
            if (self.sock is None and not self.queue and not self.inflight
                    and self._partial is None):
                break  # nothing to deliver: no need to wait for a connection
            self.poll()
            if self.sock is not None and not self.queue and self._partial is None:
                if self._confirm(deadline):
                    break
                if self.aborted:
                    break
                # not acknowledged in time: treat as lost and maybe try once more
                self._lost(OSError(errno.ETIMEDOUT, "not acknowledged by the peer"))
            now = self.clock()
            if now >= deadline:
                break
            if self._pending is not None:
                self._progress(wait=min(_SLICE, deadline - now))
            elif self.sock is not None and self._partial is not None:
                select.select([], [self.sock], [], min(_SLICE, deadline - now))
            else:
                time.sleep(min(max(0.0, min(self.next_attempt, deadline) - now), _SLICE)
                           or 0.01)
        left = len(self.queue) + len(self.inflight) + (self._partial is not None)
        self._partial = None
        self.stats.undelivered = left + self.stats.dropped
        if left:
            self._event("undelivered", f"giving up: {left} packets NOT delivered"
                        + (" (aborted)" if self.aborted else ""))
        self.queue.clear()
        self.inflight.clear()
        for sock in (self.sock, self._pending):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self.sock = self._pending = None
        self.stats.ended = time.monotonic()
