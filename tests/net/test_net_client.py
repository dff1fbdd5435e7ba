"""heptool.net.client: UDP size check, TCP delivery tracking and reconnection, pacing."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from heptool.net.client import (
    MAX_UDP_PAYLOAD,
    Pacer,
    SendError,
    StreamSender,
    UdpSender,
    open_sender,
)
from heptool.net.target import Target


class _TcpSink:
    """A loopback TCP server (thread) that keeps what it reads per connection; after
    ``close_after`` bytes on a connection it closes it (a collector going away)."""

    def __init__(self, port: int = 0, close_after: int | None = None) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.close_after = close_after
        self.received: list[bytes] = []
        self.discarded: list[bytes] = []  # per cut connection: taken by the kernel, never read
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            c.settimeout(0.1)
            got = bytearray()
            deadline = time.monotonic() + 20
            while not self.stop and time.monotonic() < deadline:
                want = 65536
                if self.close_after is not None:
                    want = min(want, self.close_after - len(got))
                    if want <= 0:
                        self.discarded.append(self._cut(c))
                        break
                try:
                    d = c.recv(want)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not d:
                    break
                got += d
            self.received.append(bytes(got))
            c.close()
            if self.close_after is not None:
                self.close_after = None  # only the first connection is cut

    @staticmethod
    def _cut(c: socket.socket) -> bytes:
        """What the kernel already took on ``c`` (acknowledged to the sender) that the
        collector never reads; then the connection is reset at once.  A slow collector
        leaves more here: no TCP sender can know about these bytes."""
        import struct

        c.setblocking(False)
        lost = bytearray()
        try:
            while d := c.recv(65536):
                lost += d
        except (BlockingIOError, OSError):
            pass
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return bytes(lost)

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def _packets(n: int, size: int = 700) -> list[bytes]:
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    out = []
    for i in range(n):
        m = HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060,
                       ts_sec=1_700_000_000 + i, ts_usec=0, proto_type=1, capture_id=1,
                       payload=(f"MESSAGE {i} ".encode() * size)[:size])
        out.append(encode(m))
    return out


def _frames(stream: bytes) -> list[bytes]:
    from heptool.core.stream import NEED_DATA, StreamDecoder

    dec = StreamDecoder()
    out = []
    for i in range(0, len(stream), 65536):
        dec.feed(stream[i:i + 65536])
        while (f := dec.next_frame()) is not NEED_DATA:
            out.append(f[1])
    return out


def test_udp_rejects_oversize_and_counts():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    s = UdpSender(Target("udp", "127.0.0.1", rx.getsockname()[1]))
    assert s.send(b"HEP3" + b"x" * 100)
    assert not s.send(b"x" * (MAX_UDP_PAYLOAD + 1))
    assert s.send(b"y" * MAX_UDP_PAYLOAD)
    s.close()
    assert rx.recv(70000) == b"HEP3" + b"x" * 100
    assert len(rx.recv(70000)) == MAX_UDP_PAYLOAD
    rx.close()
    assert (s.stats.packets, s.stats.oversize, s.stats.undelivered) == (2, 1, 1)
    assert "65507" in s.stats.last_error


def test_tcp_refused_at_start_is_retried_in_the_background_not_an_error():
    s = open_sender(Target("tcp", "127.0.0.1", 9), retry=0.2, backoff=(0.01, 0.05))
    assert not s.status().connected
    assert s.send(b"HEP3\x00\x06") is False  # queued
    assert s.status().queued == 1
    s.close()
    assert s.stats.undelivered == 1
    assert "connect: Connection refused" in s.stats.error_kinds
    with pytest.raises(SendError, match="cannot resolve"):
        open_sender(Target("udp", "no-such-host.invalid", 9))


def test_tcp_delivers_everything_and_confirms():
    sink = _TcpSink()
    try:
        packets = _packets(3000)
        s = StreamSender(Target("tcp", "127.0.0.1", sink.port))
        for p in packets:
            s.send(p)
        s.close()
        assert s.stats.undelivered == 0
        assert s.stats.packets == 3000
    finally:
        deadline = time.monotonic() + 5
        while not sink.received and time.monotonic() < deadline:
            time.sleep(0.01)
        sink.close()
    assert _frames(b"".join(sink.received)) == packets


def test_tcp_reconnects_and_resends_what_was_not_acknowledged():
    packets = _packets(400)
    # the collector reads 50 packets and a half, then drops the connection
    sink = _TcpSink(close_after=50 * len(packets[0]) + 300)
    try:
        s = StreamSender(Target("tcp", "127.0.0.1", sink.port), backoff=(0.01, 0.05))
        for p in packets:
            s.send(p)
            time.sleep(0.0005)  # let the cut happen mid-send
        s.close()
        deadline = time.monotonic() + 5
        while len(sink.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sink.close()
    assert s.stats.reconnects >= 1
    assert s.stats.undelivered == 0
    first, rest = _frames(sink.received[0]), _frames(b"".join(sink.received[1:]))
    assert first == packets[: len(first)]
    # nothing lost that the sender could know of: everything after what the first connection
    # carried arrived, in order (a packet whose acknowledgement was in flight may come
    # twice, never zero times), except whole packets the collector's kernel had taken and
    # acknowledged when the collector went away without reading them (none unless the
    # collector's thread fell behind: seen on a loaded machine)
    taken = _frames(sink.received[0] + sink.discarded[0])[len(first):]
    seen = first + rest
    assert set(packets) - set(seen) <= set(taken)
    assert rest == packets[len(rest) and packets.index(rest[0]):]


def test_tcp_gives_up_with_an_exact_undelivered_count():
    sink = _TcpSink(close_after=10 * 700)
    s = StreamSender(Target("tcp", "127.0.0.1", sink.port), backoff=(0.01, 0.02), retry=0.3,
                     queue_max=50)
    sink.close()  # the collector goes away for good
    for p in _packets(200):
        s.send(p)
    s.close()
    assert s.stats.undelivered + s.stats.packets == 200
    assert s.stats.undelivered >= 150  # what was queued past the cut
    assert s.stats.dropped == s.stats.undelivered - 50 or s.stats.dropped > 0


def test_pacer_rate_and_original():
    now = [0.0]
    slept = []

    def clock():
        return now[0]

    def sleep(d):
        slept.append(d)
        now[0] += d

    p = Pacer("rate", rate=100, clock=clock, sleep=sleep)
    for _ in range(11):
        p.wait(None)
    assert now[0] == pytest.approx(0.1)
    now[0] = 0.0
    slept.clear()
    p = Pacer("original", speed=2, clock=clock, sleep=sleep)
    for ts in (100.0, 101.0, 101.0, 103.0, None):
        p.wait(ts)
    assert now[0] == pytest.approx(1.5)
    p.restart()
    p.wait(500.0)  # a new loop starts now
    assert now[0] == pytest.approx(1.5)
    with pytest.raises(ValueError):
        Pacer("rate")
    Pacer("max").wait(1.0)


def test_tls_reconnects_and_delivers_everything(tmp_path):
    """The same over TLS: the collector closes the connection after reading 100 packets (a
    restart); the next writes meet a closed socket, are not acknowledged, and are sent again
    on a new connection (the certificate verified again): every packet once, in order."""
    import ssl
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nethelpers import make_cert

    from heptool.net.client import client_tls_context

    cert, key = make_cert(tmp_path)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    lsock.settimeout(10)
    port = lsock.getsockname()[1]
    packets = _packets(300)
    first = sum(len(p) for p in packets[:100])
    received: list[bytes] = []

    def serve() -> None:
        for conn_no in range(2):
            try:
                raw, _ = lsock.accept()
            except OSError:
                return
            c = sctx.wrap_socket(raw, server_side=True)
            c.settimeout(10)
            got = bytearray()
            while conn_no or len(got) < first:
                try:
                    d = c.recv(65536)
                except (OSError, ssl.SSLError):
                    break
                if not d:
                    break
                got += d
            received.append(bytes(got))
            try:
                c.close()
            except OSError:
                pass

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    s = StreamSender(Target("tls", "127.0.0.1", port),
                     ssl_context=client_tls_context(ca=str(cert)), backoff=(0.01, 0.05),
                     connect_timeout=1.0)
    for i, p in enumerate(packets):
        if i == 100:
            time.sleep(0.3)  # the collector reads the first 100 and goes away
        s.send(p)
        time.sleep(0.0005)
    s.close()
    th.join(15)
    lsock.close()
    assert s.stats.undelivered == 0
    assert s.stats.reconnects == 1
    assert _frames(received[0]) == packets[:100]
    assert _frames(b"".join(received[1:])) == packets[100:]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_tls_client_requires_tls_1_2_even_where_the_default_allows_less(monkeypatch):
    """The minimum is set explicitly, not inherited: a system policy (simulated here by a
    default context allowing TLS 1.0) does not lower it, with or without --insecure."""
    import ssl

    from heptool.net.client import client_tls_context

    real = ssl.create_default_context

    def permissive(*a, **kw):
        ctx = real(*a, **kw)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        return ctx

    monkeypatch.setattr(ssl, "create_default_context", permissive)
    for insecure in (False, True):
        assert client_tls_context(insecure=insecure).minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_close_right_after_sending_is_clean(tmp_path):
    """Closing while the collector is still reading. The TCP half-close carries no
    close_notify, and OpenSSL 3 (heptool listen's server included) answers such an end, once
    it has read up to it, with a 'decode error' alert: that alert was counted as an error,
    the packets not yet acknowledged at that instant were queued again, and close() opened a
    second, empty connection ('1 reconnects') on every TLS send. It now means: the collector
    read everything; wait for its acknowledgements."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nethelpers import make_cert

    from heptool.net.client import client_tls_context
    from heptool.net.server import Server, server_tls_context

    cert, key = make_cert(tmp_path)
    got: list[bytes] = []
    srv = Server([Target("tls", "127.0.0.1", 0)], lambda d, *a: got.append(d),
                 tls_context=server_tls_context(str(cert), str(key)))
    srv.open()
    th = threading.Thread(target=srv.run, kwargs={"tick_interval": 0.02}, daemon=True)
    th.start()
    try:
        packets = _packets(300)
        s = StreamSender(srv.bound[0], ssl_context=client_tls_context(ca=str(cert)))
        for p in packets:
            s.send(p)
        s.close()  # at once: most of the stream is still unread
        deadline = time.monotonic() + 10
        while len(got) < len(packets) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert time.monotonic() < deadline
        assert s.stats.reconnects == 0 and s.stats.errors == 0, dict(s.stats.error_kinds)
        assert s.stats.undelivered == 0 and got == packets
        assert srv.stats.connections == 1 and srv.stats.closed["tls error"] == 0
    finally:
        srv.stop()
        th.join(5)
        srv.close()


class _RacingAcks(StreamSender):
    """_acked/_outq as a kernel that acknowledges 50 bytes between the two reads."""

    def __init__(self) -> None:  # no connection: only _raw_end is exercised
        self.reads: list[str] = []
        self.acked_values = [100, 150, 150, 150]
        self.outq_values = [50, 50, 50]

    def _acked(self) -> int:
        self.reads.append("acked")
        return self.acked_values.pop(0)

    def _outq(self) -> int:
        self.reads.append("outq")
        return self.outq_values.pop(0)


def test_tls_stream_position_is_not_cut_short_by_an_ack_in_between():
    """200 bytes written: acked 100 + queued 100, then 50 are acknowledged between the two
    reads. 100 + 50 = 150 would count a packet ending at 200 as acknowledged at 150."""
    s = _RacingAcks()
    assert s._raw_end() == 200
    assert s.reads == ["acked", "outq", "acked", "outq", "acked"]
