"""Server.run(pause=...): a busy round is followed by a short sleep, so packets that trickle
in are read in batches (listen --workers' workers use it: fewer wake-ups per packet)."""

from __future__ import annotations

import socket
import threading
import time

from heptool.net.server import Server
from heptool.net.target import parse_target


def rounds(pause: float) -> tuple[int, int]:
    got: list[bytes] = []
    idle = [0]
    srv = Server([parse_target("udp://127.0.0.1:0")], lambda d, *a: got.append(d))
    srv.open()
    port = srv.bound[0].port

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(40):
                s.sendto(b"x%d" % i, ("127.0.0.1", port))
                time.sleep(0.002)
        time.sleep(0.3)
        srv.stop()

    t = threading.Thread(target=send)
    t.start()
    deadline = time.monotonic() + 10
    try:
        srv.run(on_idle=lambda: idle.__setitem__(0, idle[0] + 1),
                should_stop=lambda: time.monotonic() > deadline, pause=pause)
    finally:
        t.join(10)
        srv.close()
    return len(got), idle[0]


def test_pause_reads_trickling_packets_in_batches():
    n, busy_rounds = rounds(0.1)
    assert n == 40
    assert busy_rounds <= 8  # 80-300 ms of packets, a round every >= 100 ms
    n, busy_rounds = rounds(0.0)
    assert n == 40 and busy_rounds >= 15  # without: about one round per packet
