"""heptool.net.server: the receive loop, stream framing per connection, bounds, access."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from heptool.net.server import Server
from heptool.net.target import Target

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _packet(i: int = 0, payload: bytes = b"OPTIONS sip:a SIP/2.0\r\n\r\n") -> bytes:
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    return encode(HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060,
                             ts_sec=1_700_000_000 + i, ts_usec=0, proto_type=1, capture_id=1,
                             payload=payload))


class _Running:
    def __init__(self, binds: list[str], **kw) -> None:
        from heptool.net.target import parse_target

        self.got: list[tuple] = []
        self.server = Server([parse_target(b) for b in binds], self._handle, **kw)
        self.server.open()
        self.thread = threading.Thread(target=self.server.run, kwargs={"tick_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def _handle(self, data, transport, peer, local, received) -> None:
        self.got.append((data, transport, peer, local))

    def addr(self, i: int = 0) -> tuple[str, int]:
        t = self.server.bound[i]
        return t.host, t.port

    def wait_for(self, cond, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.01)
        return cond()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()
        self.thread.join(5)
        self.server.close()


def test_udp_and_bound_port():
    with _Running(["udp://127.0.0.1:0"]) as r:
        assert r.server.bound[0].port != 0
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(100):
            c.sendto(_packet(i), r.addr())
        c.close()
        assert r.wait_for(lambda: len(r.got) == 100)
        assert [g[0] for g in r.got] == [_packet(i) for i in range(100)]
        assert r.got[0][1] == "udp" and r.got[0][3] == r.addr()
        assert r.server.receive_buffer() >= 1 << 20
        assert r.server.kernel_drops() in (0, None)


def test_tcp_split_anywhere_and_several_connections():
    data = b"".join(_packet(i) for i in range(20))
    with _Running(["tcp://[::1]:0"]) as r:
        conns = [socket.create_connection(r.addr()) for _ in range(3)]
        for k in range(0, len(data), 7):  # 7-byte pieces, interleaved over 3 connections
            for c in conns:
                c.sendall(data[k:k + 7])
        for c in conns:
            c.close()
        assert r.wait_for(lambda: len(r.got) == 60)
    assert r.server.stats.connections == 3
    by_peer: dict = {}
    for d, transport, peer, _ in r.got:
        assert transport == "tcp"
        by_peer.setdefault(peer, []).append(d)
    assert all(v == [_packet(i) for i in range(20)] for v in by_peer.values())


def test_tcp_resync_counted_and_garbage_only_connection_closed():
    with _Running(["tcp://127.0.0.1:0"], garbage_limit=1000) as r:
        c = socket.create_connection(r.addr())
        c.sendall(b"junk!" + _packet(1) + b"\x00" * 10 + _packet(2))
        assert r.wait_for(lambda: len(r.got) == 2)
        assert r.server.stats.garbage_bytes == 15
        g = socket.create_connection(r.addr())
        g.settimeout(5)
        try:
            for _ in range(10):
                g.sendall(b"GET / HTTP/1.1\r\n" * 20)
        except OSError:
            pass
        assert r.wait_for(lambda: r.server.stats.closed["garbage"] == 1)
        c.close()
        g.close()
    # a garbage-closed connection is a drop, counted where every drop is
    assert r.server.stats.drops["connection closed: garbage"] == 1


def test_tcp_stalled_inside_a_packet_is_closed():
    with _Running(["tcp://127.0.0.1:0"], stall_timeout=0.2) as r:
        c = socket.create_connection(r.addr())
        c.sendall(_packet(1) + _packet(2)[:30])
        assert r.wait_for(lambda: len(r.got) == 1)
        assert r.wait_for(lambda: r.server.stats.closed["stalled"] == 1)
        c.settimeout(5)
        assert c.recv(10) == b""  # closed by the server
        c.close()
    assert r.server.stats.drops["stalled inside a packet"] == 1


def test_v2_over_tcp_and_max_connections():
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    sip = b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\nhello"
    v2 = encode(HepMessage(version=2, src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2",
                           dst_port=5060, ts_sec=1, ts_usec=2, capture_id=3, payload=sip))
    with _Running(["tcp://127.0.0.1:0"], max_connections=1) as r:
        a = socket.create_connection(r.addr())
        a.sendall(v2 + v2)
        assert r.wait_for(lambda: len(r.got) == 2)
        assert r.got[0][0] == v2
        b = socket.create_connection(r.addr())
        assert r.wait_for(lambda: r.server.stats.closed["max connections"] == 1)
        a.close()
        b.close()
    assert dict(r.server.stats.drops) == {"connection over --max-connections": 1}


def test_allow_drops_other_sources():
    with _Running(["udp://127.0.0.1:0", "tcp://127.0.0.1:0"], allow=["10.0.0.0/8"]) as r:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.sendto(_packet(), r.addr(0))
        c.close()
        t = socket.create_connection(r.addr(1))
        assert r.wait_for(lambda: r.server.stats.drops["not allowed"] == 1
                          and r.server.stats.closed["not allowed"] == 1)
        t.close()
    assert r.got == []
    with _Running(["udp://127.0.0.1:0"], allow=["127.0.0.0/8"]) as r:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.sendto(_packet(), r.addr(0))
        c.close()
        assert r.wait_for(lambda: len(r.got) == 1)


def test_tls_needs_a_context_and_bad_bind_is_an_oserror():
    with pytest.raises(ValueError):
        Server([Target("tls", "127.0.0.1", 0)], lambda *a: None)
    s = Server([Target("udp", "192.0.2.1", 0)], lambda *a: None)  # not a local address
    with pytest.raises(OSError, match="cannot listen on udp://192.0.2.1:0"):
        s.open()


def test_reuse_port_lets_two_servers_share_a_port():
    with _Running(["udp://127.0.0.1:0"], reuse_port=True) as a:
        port = a.addr()[1]
        with _Running([f"udp://127.0.0.1:{port}"], reuse_port=True) as b:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(50):  # different source ports: the kernel hashes them over both
                c2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                c2.sendto(_packet(i), ("127.0.0.1", port))
                c2.close()
            c.close()
            assert a.wait_for(lambda: len(a.got) + len(b.got) == 50)
    with pytest.raises(OSError, match="cannot listen"), _Running(["udp://127.0.0.1:0"]) as x:
        Server([Target("udp", "127.0.0.1", x.addr()[1])], lambda *args: None).open()


def test_connection_events():
    events: list[str] = []
    with _Running(["tcp://127.0.0.1:0"]) as r:
        r.server.on_event = events.append
        c = socket.create_connection(r.addr())
        c.sendall(b"xx" + _packet(1) + _packet(2)[:10])
        assert r.wait_for(lambda: len(r.got) == 1)
        c.close()
        assert r.wait_for(lambda: len(events) == 2)
    assert events[0].startswith("tcp connection from 127.0.0.1:")
    want = "closed (closed by peer): 1 packets, 2 garbage bytes, 10 bytes of a partial packet"
    assert want in events[1]
    st = r.server.stats
    assert dict(st.drops) == {"incomplete at connection end": 1} and st.truncated_bytes == 10


def test_a_partial_packet_left_at_server_stop_is_a_drop():
    with _Running(["tcp://127.0.0.1:0"]) as r:
        c = socket.create_connection(r.addr())
        c.sendall(_packet(1) + _packet(2)[:25])
        assert r.wait_for(lambda: len(r.got) == 1 and r.server.conns
                          and next(iter(r.server.conns.values())).dec.buffered == 25)
    c.close()
    st = r.server.stats
    assert dict(st.closed) == {"server stopped": 1}
    assert dict(st.drops) == {"incomplete at server stop": 1} and st.truncated_bytes == 25


def test_tls_handshake_stall_and_garbage_are_closed(tmp_path):
    import ssl

    from nethelpers import make_cert

    from heptool.net.server import server_tls_context

    cert, key = make_cert(tmp_path)
    with _Running(["tls://127.0.0.1:0"], tls_context=server_tls_context(str(cert), str(key)),
                  stall_timeout=0.3) as r:
        idle = socket.create_connection(r.addr())  # never says hello
        junk = socket.create_connection(r.addr())
        junk.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not TLS
        assert r.wait_for(lambda: r.server.stats.closed["tls error"] == 1)
        assert r.wait_for(lambda: r.server.stats.closed["tls handshake timeout"] == 1)
        ctx = ssl.create_default_context(cafile=str(cert))
        with ctx.wrap_socket(socket.create_connection(r.addr()), server_hostname="127.0.0.1") as t:
            t.sendall(_packet(7))
            assert r.wait_for(lambda: len(r.got) == 1)
        idle.close()
        junk.close()
    assert r.got[0][0] == _packet(7) and r.got[0][1] == "tls"
    assert dict(r.server.stats.drops) == {"connection closed: TLS error": 1,
                                          "connection closed: TLS handshake timeout": 1}
