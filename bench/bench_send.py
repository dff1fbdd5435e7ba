"""How fast :class:`heptool.net.stream.StreamSender` writes HEP over TCP/TLS on loopback.

    python bench/bench_send.py                  # 200,000 packets of ~700 bytes, tcp and tls
    python bench/bench_send.py --packets 50000 --only tcp

A reader thread in this process drains the connection as fast as it can; the sender
writes the packets as ``heptool send --pace max`` does, then ``close()`` waits until the
peer acknowledged the last byte. Two modes: ``wait_writes=True`` (``send``: the
collector's pace holds the sender back, every write within ``write_timeout``) and
``wait_writes=False`` (a forward that never waits: half-written packets resumed later).
Figures: packets/s from the first write to the last acknowledgement. Loopback only.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "net"))


def _packet() -> bytes:
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    return encode(HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2",
                             dst_port=5060, ts_sec=1_700_000_000, ts_usec=0, proto_type=1,
                             capture_id=1, payload=b"x" * 640))


def run(scheme: str, n: int, wait_writes: bool) -> str:
    from heptool.net.client import StreamSender
    from heptool.net.target import Target
    from heptool.net.tls import client_tls_context, server_tls_context

    sctx = cctx = None
    if scheme == "tls":
        from nethelpers import make_cert

        cert, key = make_cert(Path(tempfile.mkdtemp()))
        sctx = server_tls_context(str(cert), str(key))
        cctx = client_tls_context(ca=str(cert))
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()

    def reader() -> None:
        c, _ = ls.accept()
        if sctx is not None:
            c = sctx.wrap_socket(c, server_side=True)
        try:
            while c.recv(1 << 20):
                pass
        except OSError:
            pass

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    data = _packet()
    s = StreamSender(Target(scheme, "127.0.0.1", ls.getsockname()[1]), ssl_context=cctx,
                     wait_writes=wait_writes)
    t0 = time.perf_counter()
    for _ in range(n):
        s.send(data)
    s.close(30)
    took = time.perf_counter() - t0
    ls.close()
    return (f"{scheme} wait_writes={wait_writes!s:5}: {n:,} packets of {len(data)} bytes in "
            f"{took:.2f} s = {n / took:,.0f} packets/s; undelivered {s.stats.undelivered}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--only", choices=["tcp", "tls"], default=None)
    a = ap.parse_args()
    for scheme in ([a.only] if a.only else ["tcp", "tls"]):
        for wait in (True, False):
            print(run(scheme, a.packets, wait), flush=True)


if __name__ == "__main__":
    main()
