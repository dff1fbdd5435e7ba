"""Service-grade sending (issue 13): per-target status, write deadlines, background
(re)connection, signals, UDP counts. Loopback only; every wait bounded."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from heptool.net.client import StreamSender, TargetStatus, UdpSender
from heptool.net.target import Target


def test_status_of_udp_and_tcp_senders():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    u = UdpSender(Target("udp", "127.0.0.1", rx.getsockname()[1]))
    u.send(b"HEP3xx")
    st = u.status()
    assert isinstance(st, TargetStatus)
    assert st == TargetStatus(f"udp://127.0.0.1:{rx.getsockname()[1]}", True, 0, 1, 0, 0)
    u.close()
    rx.close()
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    port = ls.getsockname()[1]
    s = StreamSender(Target("tcp", "127.0.0.1", port))
    s.send(b"HEP3\x00\x06")
    st = s.status()
    assert st.target == f"tcp://127.0.0.1:{port}" and st.connected and st.sent == 1
    assert (st.queued, st.undelivered, st.reconnects) == (0, 0, 0)
    c, _ = ls.accept()
    s.close(1.0)
    c.close()
    ls.close()
