"""A stopped Server reads the datagrams already waiting in its UDP buffers, and counts what
it cannot read in time as the drop "unread at stop" (never a silent loss). Loopback only."""

from __future__ import annotations

import socket

from heptool.net.server import Server
from heptool.net.target import Target


def _server_with_backlog(n: int) -> tuple[Server, list[bytes]]:
    got: list[bytes] = []
    server = Server([Target("udp", "127.0.0.1", 0)], lambda data, *rest: got.append(data))
    server.open()
    port = server.bound[0].port
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        s.sendto(b"datagram %d" % i, ("127.0.0.1", port))
    s.close()
    return server, got


def test_a_stop_reads_what_waits_in_the_udp_buffer():
    server, got = _server_with_backlog(500)
    try:
        server.drain_connections(0.05, udp_timeout=5.0)
    finally:
        server.close()
    assert len(got) == 500
    assert "unread at stop" not in server.stats.drops


def test_what_cannot_be_read_in_time_is_counted_not_lost_unseen():
    server, got = _server_with_backlog(300)
    try:
        server.drain_connections(0.0, udp_timeout=1e-9)  # no time to read: all discarded
    finally:
        server.close()
    assert len(got) + server.stats.drops["unread at stop"] == 300
    assert server.stats.drops["unread at stop"] > 0


def test_without_udp_timeout_nothing_is_read_or_counted():
    server, got = _server_with_backlog(50)  # listen --count N reached: stop at once
    try:
        server.drain_connections(0.0)
    finally:
        server.close()
    assert got == [] and "unread at stop" not in server.stats.drops
