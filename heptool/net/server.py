"""Receiving HEP: UDP, TCP and TLS listeners in one selector loop, framed by the core.

    server = Server([parse_target("udp://127.0.0.1:0")], handler)
    server.open()                      # binds; server.bound has the real ports
    server.run(should_stop=lambda: stopped)
    server.close()

``handler(data, transport, peer, local, received)`` is called once per HEP packet, in the
order received: ``data`` the packet's bytes exactly as they arrived, ``transport`` "udp",
"tcp" or "tls", ``peer``/``local`` ``(ip, port)`` tuples, ``received`` the arrival time
(float seconds since the epoch).  The server does not decode (the core does, in the
handler, only when something needs the fields) and never prints.

Why this shape (PERFORMANCE.md): the default asyncio datagram endpoint loses 44% of
700-byte packets at 100,000/s on loopback, while a plain socket loop with a large receive
buffer loses nothing at 300,000/s.  Here every socket is non-blocking and registered with
one ``selectors`` poller; a readable UDP socket is drained with ``recvfrom_into`` into one
reused buffer until the kernel has nothing more (up to a batch bound, so a flood on one
socket cannot starve the others), which costs one poll per batch, not per packet.  The loop
is single-threaded, so handlers need no locks and see packets in order.

TCP/TLS connections each get a :class:`heptool.StreamDecoder` (HEP3 framed by its length,
Kamailio's HEPv1/v2 by the SIP Content-Length; lenient resync over garbage, counted).  A
connection is closed when it sends garbage past ``garbage_limit`` bytes without a packet,
when it stalls inside a packet for ``stall_timeout`` seconds, or when its buffer would
overflow.  Access control: ``allow`` networks (every datagram and connection is checked
against the source address) and ``max_connections``.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..core.errors import StreamError
from ..core.stream import NEED_DATA, StreamDecoder
from .stats import CLOSE_DROPS, PARTIAL_DROPS, ServerStats, kernel_udp_drops
from .target import Target, format_addr
from .tls import server_tls_context  # re-exported: README documents it here

__all__ = ["CLOSE_DROPS", "PARTIAL_DROPS", "Server", "ServerStats", "kernel_udp_drops",
           "server_tls_context"]

Handler = Callable[[bytes, str, tuple, tuple, float], None]

DEFAULT_RCVBUF = 256 << 20
UDP_BATCH = 4096
_BUF_SIZE = 65536


def _addr(sockaddr: Any) -> tuple[str, int]:
    return sockaddr[0], sockaddr[1]


class _Allow:
    """Source address check with a per-address cache."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.cache: dict[str, bool] = {}

    def __call__(self, ip: str) -> bool:
        ok = self.cache.get(ip)
        if ok is None:
            try:
                a = ipaddress.ip_address(ip.split("%")[0])
                if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
                    a = a.ipv4_mapped
                ok = any(a in n for n in self.networks)
            except ValueError:
                ok = False
            if len(self.cache) > 65536:
                self.cache.clear()
            self.cache[ip] = ok
        return ok


class _Listener:
    __slots__ = ("kind", "local", "sock", "target")

    def __init__(self, target: Target, sock: socket.socket, kind: str) -> None:
        self.target = target
        self.sock = sock
        self.local = _addr(sock.getsockname())
        self.kind = kind  # "udp" or "stream"


class _Conn:
    __slots__ = (
        "dec",
        "fd",
        "frames",
        "handshaking",
        "last_data",
        "local",
        "peer",
        "skipped_at_frame",
        "sock",
        "transport",
        "want_write",
    )

    def __init__(self, sock: Any, transport: str, peer: tuple, local: tuple,
                 dec: StreamDecoder, handshaking: bool) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.transport = transport
        self.peer = peer
        self.local = local
        self.dec = dec
        self.handshaking = handshaking
        self.last_data = time.monotonic()
        self.frames = 0
        self.skipped_at_frame = 0
        self.want_write = False



def bind_socket(t: Target, *, reuse_port: bool = False,
                prepare: Callable[[socket.socket], None] | None = None) -> socket.socket:
    """A socket bound (not yet listening) to ``t``: UDP or TCP, IPv6 sockets v6-only,
    SO_REUSEPORT with ``reuse_port`` (several processes share the port: ``listen
    --reuse-port``, ``--workers``), SO_REUSEADDR for TCP; ``prepare(sock)`` before the bind
    (the UDP receive buffer). OSError naming ``t`` when it cannot be."""
    try:
        infos = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_DGRAM if t.scheme == "udp"
                                   else socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise OSError(f"{t}: cannot resolve {t.host!r}: {e.strerror or e}") from None
    family, stype, _, _, addr = infos[0]
    sock = socket.socket(family, stype)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:  # several processes share the port; the kernel spreads load
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if prepare is not None:
            prepare(sock)
        if t.scheme != "udp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {t}: {e.strerror or e}") from None
    return sock

class Server:
    """UDP/TCP/TLS HEP listeners (see the module doc).

    :param binds: targets to listen on (port 0 = a free port; see ``bound``).
    :param tls_context: required when a ``tls://`` target is given.
    :param allow: CIDR networks a source must be in (empty: any source).
    :param garbage_limit: bytes of garbage since the last packet after which a stream
        connection is closed.
    :param stall_timeout: seconds a stream may sit inside a partial packet.
    """

    def __init__(self, binds: list[Target], handler: Handler, *,
                 tls_context: ssl.SSLContext | None = None, allow: Iterable[str] = (),
                 max_connections: int = 1000, rcvbuf: int = DEFAULT_RCVBUF,
                 garbage_limit: int = 65536, stall_timeout: float = 10.0,
                 stats: ServerStats | None = None, reuse_port: bool = False) -> None:
        if any(t.scheme == "tls" for t in binds) and tls_context is None:
            raise ValueError("tls:// needs a certificate and key")
        self.binds = list(binds)
        self.handler = handler
        self.tls_context = tls_context
        allow = list(allow)
        self.allow: _Allow | None = _Allow(allow) if allow else None
        self.max_connections = max_connections
        self.rcvbuf = rcvbuf
        self.garbage_limit = garbage_limit
        self.stall_timeout = stall_timeout
        self.reuse_port = reuse_port
        self.stats = stats if stats is not None else ServerStats()
        self.listeners: list[_Listener] = []
        self.conns: dict[int, _Conn] = {}
        self.sel: selectors.BaseSelector | None = None
        self.stopping = False
        #: Optional ``f(view, n, peer, local, received)`` for UDP, called instead of the
        #: handler with the reused receive buffer (``view[:n]`` is valid only during the call)
        #: and the raw peer address (``allow`` already checked); for callers that copy the
        #: bytes themselves anyway.
        self.udp_view_handler: Callable[[memoryview, int, Any, tuple, float], None] | None = None
        #: Optional ``f(text)`` told about connections opened, refused and closed (one line).
        self.on_event: Callable[[str], None] | None = None
        #: Optional ``f(reason, transport, peer)`` told about every datagram dropped here
        #: (outside ``allow``), after it is counted.
        self.on_drop: Callable[[str, str, tuple], None] | None = None
        self._buf = bytearray(_BUF_SIZE)
        self._view = memoryview(self._buf)

    # -- setup ------------------------------------------------------------------------
    @property
    def bound(self) -> list[Target]:
        """The targets actually listened on (port 0 replaced by the port picked)."""
        return [lsn.target.with_port(lsn.local[1]) for lsn in self.listeners]

    def open(self) -> None:
        self.sel = selectors.DefaultSelector()
        try:
            for t in self.binds:
                self._open_one(t)
        except BaseException:
            self.close()
            raise

    def _open_one(self, t: Target) -> None:
        sock = bind_socket(t, reuse_port=self.reuse_port,
                           prepare=self._grow_rcvbuf if t.scheme == "udp" else None)
        try:
            if t.scheme != "udp":
                sock.listen(128)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise OSError(e.errno, f"cannot listen on {t}: {e.strerror or e}") from None
        lsn = _Listener(t, sock, "udp" if t.scheme == "udp" else "stream")
        self.listeners.append(lsn)
        assert self.sel is not None
        self.sel.register(sock, selectors.EVENT_READ, lsn)

    def _grow_rcvbuf(self, sock: socket.socket) -> None:
        force = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)
        if force is not None:
            try:  # root (CAP_NET_ADMIN) may exceed net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, force, self.rcvbuf)
                return
            except OSError:
                pass
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        except OSError:
            pass

    def receive_buffer(self) -> int | None:
        """The receive buffer the kernel gave the first UDP socket (bytes)."""
        for lsn in self.listeners:
            if lsn.kind == "udp":
                return lsn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        return None

    def kernel_drops(self) -> int | None:
        """Sum of the kernel's receive-buffer drops over the UDP sockets (None: unknown)."""
        total = None
        for lsn in self.listeners:
            if lsn.kind == "udp":
                d = kernel_udp_drops(lsn.sock)
                if d is not None:
                    total = (total or 0) + d
        return total

    # -- the loop ---------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to return (safe from a handler or a signal handler)."""
        self.stopping = True

    def run(self, *, should_stop: Callable[[], bool] | None = None,
            on_idle: Callable[[], None] | None = None, tick: Callable[[], None] | None = None,
            tick_interval: float = 0.2, pause: float = 0.0) -> None:
        """Serve until :meth:`stop` or ``should_stop()``.  ``on_idle`` runs whenever every
        ready socket has been drained (flush outputs there); ``tick`` every
        ``tick_interval`` seconds (timers, stats).  ``pause`` > 0: sleep that long after each
        round that had something to read, so packets gather in the receive buffers and are
        read in batches (fewer wake-ups per packet when several processes share the cores;
        what a round can read is unchanged, the latency grows by ``pause``)."""
        sel = self.sel
        assert sel is not None, "open() first"
        next_tick = time.monotonic() + tick_interval
        while not self.stopping and not (should_stop is not None and should_stop()):
            timeout = max(0.0, next_tick - time.monotonic())
            events = sel.select(timeout)
            for key, mask in events:
                obj = key.data
                if type(obj) is _Listener:
                    if obj.kind == "udp":
                        self._drain_udp(obj)
                    else:
                        self._accept(obj)
                else:
                    self._service(obj, mask)
                if self.stopping:
                    break
            if on_idle is not None and events:
                on_idle()
            if pause and events:
                time.sleep(pause)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + tick_interval
                self._check_stalls(now)
                if tick is not None:
                    tick()

    def _drain_udp(self, lsn: _Listener) -> None:
        """Read the datagrams waiting on a UDP socket (up to UDP_BATCH) into the reused
        buffer; each one from an allowed source goes to ``udp_view_handler`` when there is
        one (it copies what it needs), else to the handler as bytes."""
        recv = lsn.sock.recvfrom_into
        buf = self._buf
        view = self._view
        local = lsn.local
        allow = self.allow
        stats = self.stats
        clock = time.time
        n_ok = 0
        nbytes = 0
        deliver = self.udp_view_handler
        if deliver is None:
            handler = self.handler

            def deliver(view: memoryview, n: int, peer: Any, local: tuple,
                        received: float) -> None:
                handler(bytes(view[:n]), "udp", (peer[0], peer[1]), local, received)

        try:
            for _ in range(UDP_BATCH):
                try:
                    n, peer = recv(buf)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:  # ICMP of an earlier send (forwarding)
                    continue
                if allow is not None and not allow(peer[0]):
                    stats.drops["not allowed"] += 1
                    if self.on_drop is not None:
                        self.on_drop("not allowed", "udp", _addr(peer))
                    continue
                n_ok += 1
                nbytes += n
                deliver(view, n, peer, local, clock())
                if self.stopping:
                    break
        finally:
            stats.packets["udp"] += n_ok
            stats.bytes["udp"] += nbytes

    def _accept(self, lsn: _Listener) -> None:
        stats = self.stats
        assert self.sel is not None
        for _ in range(64):
            try:
                sock, peer = lsn.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            peer = _addr(peer)
            if self.allow is not None and not self.allow(peer[0]):
                if self.on_event is not None:
                    self.on_event(f"refused a connection from {addr_text(peer)}: not in --allow")
                stats.connection_closed("not allowed")
                sock.close()
                continue
            if len(self.conns) >= self.max_connections:
                if self.on_event is not None:
                    self.on_event(f"refused a connection from {addr_text(peer)}: "
                                  f"{self.max_connections} open already")
                stats.connection_closed("max connections")
                sock.close()
                continue
            sock.setblocking(False)
            transport = lsn.target.scheme
            handshaking = False
            if transport == "tls":
                assert self.tls_context is not None
                try:
                    sock = self.tls_context.wrap_socket(sock, server_side=True,
                                                        do_handshake_on_connect=False)
                except (OSError, ssl.SSLError):
                    sock.close()
                    stats.connection_closed("tls error")
                    continue
                handshaking = True
            conn = _Conn(sock, transport, peer, lsn.local, StreamDecoder(), handshaking)
            if self.on_event is not None:
                self.on_event(f"{transport} connection from {addr_text(peer)} to "
                              f"{addr_text(lsn.local)}")
            self.conns[sock.fileno()] = conn
            stats.connections += 1
            stats.open_connections = len(self.conns)
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def _service(self, conn: _Conn, mask: int) -> None:
        if conn.handshaking:
            try:
                conn.sock.do_handshake()
            except ssl.SSLWantReadError:
                self._want(conn, False)
                return
            except ssl.SSLWantWriteError:
                self._want(conn, True)
                return
            except (OSError, ssl.SSLError, ValueError):
                self._close(conn, "tls error")
                return
            conn.handshaking = False
            self._want(conn, False)
        self._read(conn)

    def _want(self, conn: _Conn, write: bool) -> None:
        if conn.want_write != write:
            conn.want_write = write
            assert self.sel is not None
            self.sel.modify(conn.sock, selectors.EVENT_WRITE if write else selectors.EVENT_READ,
                            conn)

    def _read(self, conn: _Conn) -> None:
        sock = conn.sock
        dec = conn.dec
        eof = False
        got = 0
        for _ in range(64):  # bounded: other sockets get their turn
            try:
                data = sock.recv(262144)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                break
            except ssl.SSLWantWriteError:
                self._want(conn, True)
                break
            except (OSError, ssl.SSLError):
                eof = True
                break
            if not data:
                eof = True
                break
            got += len(data)
            try:
                dec.feed(data)
            except StreamError:
                self._frames(conn)
                try:
                    dec.feed(data)
                except StreamError:
                    self._close(conn, "buffer overflow")
                    return
            if not self._frames(conn):
                return
            if self.stopping:
                break
            if conn.transport == "tls" and not sock.pending():
                break
        if got:
            conn.last_data = time.monotonic()
        if eof and self._frames(conn):  # (False: _frames closed it, for garbage)
            self._close(conn, "closed by peer")

    def _frames(self, conn: _Conn) -> bool:
        """Hand over every complete packet; False when the connection was closed."""
        dec = conn.dec
        handler = self.handler
        stats = self.stats
        transport = conn.transport
        peer, local = conn.peer, conn.local
        n = 0
        nbytes = 0
        before = dec.skipped_bytes
        before_resyncs = dec.resyncs
        try:
            while True:
                fr = dec.next_frame()
                if fr is NEED_DATA:
                    break
                data = fr[1]  # type: ignore[index]
                n += 1
                nbytes += len(data)
                conn.skipped_at_frame = dec.skipped_bytes
                handler(data, transport, peer, local, time.time())
                if self.stopping:
                    break
        finally:
            stats.packets[transport] += n
            stats.bytes[transport] += nbytes
            conn.frames += n
            skipped = dec.skipped_bytes - before
            if skipped:
                stats.garbage_bytes += skipped
                stats.resyncs += dec.resyncs - before_resyncs
        if dec.skipped_bytes - conn.skipped_at_frame > self.garbage_limit:
            self._close(conn, "garbage")
            return False
        return True

    def _check_stalls(self, now: float) -> None:
        for conn in list(self.conns.values()):
            if conn.dec.buffered and now - conn.last_data > self.stall_timeout:
                self._close(conn, "stalled")
            elif conn.handshaking and now - conn.last_data > self.stall_timeout:
                self._close(conn, "tls handshake timeout")

    def _close(self, conn: _Conn, reason: str) -> None:
        if self.conns.get(conn.fd) is conn:
            del self.conns[conn.fd]
        if self.sel is not None:
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass
        self.stats.connection_closed(reason, conn.dec.buffered)
        self.stats.open_connections = len(self.conns)
        if self.on_event is not None:
            d = conn.dec
            self.on_event(f"{conn.transport} connection from {addr_text(conn.peer)} closed "
                          f"({reason}): {conn.frames} packets, {d.skipped_bytes} garbage bytes"
                          + (f", {d.buffered} bytes of a partial packet" if d.buffered else ""))

    def drain_connections(self, timeout: float = 0.2, udp_timeout: float = 0.0) -> None:
        """On stop: read what connected peers have already sent (for up to ``timeout``
        seconds) and, with ``udp_timeout``, the datagrams waiting in the UDP sockets'
        receive buffers (until they are empty, for up to ``udp_timeout`` seconds; what is
        still there then is discarded and counted as the drop ``unread at stop``), so that
        packets which reached the kernel before the stop are never lost unseen."""
        sel = self.sel
        if sel is None:
            return
        started = time.monotonic()
        udp = [lsn for lsn in self.listeners if lsn.kind == "udp"] if udp_timeout > 0 else []
        self.stopping = False
        try:
            while True:
                now = time.monotonic()
                want_conns = bool(self.conns) and now < started + timeout
                want_udp = bool(udp) and now < started + udp_timeout
                if not (want_conns or want_udp):
                    break
                busy = False
                for key, mask in sel.select(0.01):
                    if isinstance(key.data, _Conn):
                        if want_conns:
                            self._service(key.data, mask)
                            busy = True
                    elif key.data.kind == "udp" and (want_udp or want_conns):
                        self._drain_udp(key.data)
                        busy = True
                if not busy:
                    break
        finally:
            self.stopping = True
        for lsn in udp:
            self._discard_udp(lsn)

    def _discard_udp(self, lsn: _Listener, limit: int = 1_000_000) -> None:
        """Count (as ``unread at stop``) and discard what is left in a UDP socket's buffer."""
        recv = lsn.sock.recv_into
        buf = self._buf
        n = 0
        while n < limit:
            try:
                recv(buf)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:  # ICMP of an earlier send (forwarding)
                continue
            except OSError:
                break
            n += 1
        if n:
            self.stats.drops["unread at stop"] += n

    def close(self) -> None:
        for conn in list(self.conns.values()):
            self._close(conn, "server stopped")
        for lsn in self.listeners:
            if self.sel is not None:
                try:
                    self.sel.unregister(lsn.sock)
                except (KeyError, ValueError):
                    pass
            lsn.sock.close()
        if self.sel is not None:
            self.sel.close()
            self.sel = None

    def describe(self) -> list[str]:
        return [str(t) for t in self.bound]


def addr_text(addr: tuple) -> str:
    """``ip:port`` / ``[v6]:port`` for records and messages."""
    return format_addr(addr[0], addr[1])
