"""Codec throughput: decode and encode rates on a 200,000-packet HEP3 capture of realistic SIP.

    python bench/bench_codec.py [--packets N] [--rounds R]

Prints packets/s for: decode to message objects (all chunks), encode of decoded
messages (byte-exact path), encode of messages built from fields, and the
StreamDecoder over the same packets concatenated.  Targets on one core of the
team's machine: decode >= 500,000/s, encode >= 600,000/s.  The capture is built in
memory (deterministic, seeded) in the chunk layouts real agents send: Kamailio
(1,2,3,4,7..c,[11],f), OpenSIPS/captagent/sngrep (1,2,7..c,3,4,f,[0x11]) and hep-js
(..., 13, e, 11, f); about a third carry a correlation id.
"""

from __future__ import annotations

import argparse
import gc
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import heptool

METHODS = ["INVITE", "ACK", "BYE", "OPTIONS", "REGISTER", "CANCEL"]


def sip_message(rng: random.Random, call: int) -> bytes:
    cid = f"{rng.getrandbits(64):016x}-{call}@10.1.{call % 250}.{rng.randint(1, 250)}"
    if rng.random() < 0.5:
        first = f"{rng.choice(METHODS)} sip:bob{call}@example.com SIP/2.0"
    else:
        first = f"SIP/2.0 {rng.choice([100, 180, 200, 404, 486])} Reason"
    body = ""
    if first.startswith(("INVITE", "SIP/2.0 200")):
        body = ("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
    headers = (
        f"{first}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{rng.getrandbits(40):x};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag={rng.getrandbits(32):x}\r\n"
        f"To: <sip:bob{call}@example.com>\r\nCall-ID: {cid}\r\nCSeq: {rng.randint(1, 9)} INVITE\r\n"
        f"Contact: <sip:alice@10.0.0.1:5060>\r\nUser-Agent: bench/1.0\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return (headers + body).encode()


def chunk(t: int, body: bytes) -> bytes:
    return struct.pack(">HHH", 0, t, len(body) + 6) + body


def build(n: int, seed: int = 2026) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        payload = sip_message(rng, i // 8)
        src = bytes([10, 0, 0, rng.randint(1, 254)])
        dst = bytes([10, 0, 1, rng.randint(1, 254)])
        fixed = {
            1: b"\x02", 2: b"\x11", 3: src, 4: dst, 7: struct.pack(">H", 5060),
            8: struct.pack(">H", 5060), 9: struct.pack(">I", 1795683906 + i // 100),
            10: struct.pack(">I", rng.randint(0, 999999)), 11: b"\x01",
            12: struct.pack(">I", 2001),
        }
        corr = payload.split(b"Call-ID: ")[1].split(b"\r\n")[0] if rng.random() < 0.35 else None
        style = i % 3
        if style == 0:  # Kamailio
            order = [1, 2, 3, 4, 7, 8, 9, 10, 11, 12]
            tail = ([chunk(0x11, corr)] if corr else []) + [chunk(0x0F, payload)]
        elif style == 1:  # OpenSIPS / captagent / sngrep
            order = [1, 2, 7, 8, 9, 10, 11, 12, 3, 4]
            tail = [chunk(0x0F, payload)] + ([chunk(0x11, corr)] if corr else [])
        else:  # hep-js
            order = [1, 2, 3, 4, 7, 8, 9, 10, 11, 12]
            tail = [chunk(0x13, b"node-1"), chunk(0x0E, b"myHep")] + \
                   ([chunk(0x11, corr)] if corr else []) + [chunk(0x0F, payload)]
        body = b"".join(chunk(t, fixed[t]) for t in order) + b"".join(tail)
        out.append(b"HEP3" + struct.pack(">H", len(body) + 6) + body)
    return out


def rate(fn, items, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        gc.disable()
        t0 = time.perf_counter()
        fn(items)
        dt = time.perf_counter() - t0
        gc.enable()
        best = min(best, dt)
    return len(items) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    packets = build(a.packets)
    size = sum(map(len, packets))
    print(f"capture: {len(packets):,} HEP3 packets, {size / len(packets):.0f} bytes average", file=sys.stderr)

    decode, encode = heptool.decode, heptool.encode
    msgs = [decode(p) for p in packets]
    assert all(encode(m) == p for m, p in zip(msgs, packets)), "round trip failed"
    built = [heptool.HepMessage(**{k: getattr(m, k) for k in
                                   ("src_ip", "dst_ip", "src_port", "dst_port", "ts_sec", "ts_usec",
                                    "proto_type", "capture_id", "correlation_id", "payload")})
             for m in msgs[:50_000]]

    def dec(items):
        for p in items:
            decode(p)

    def enc(items):
        for m in items:
            encode(m)

    def stream(items):
        s = heptool.StreamDecoder()
        for i in range(0, len(items), 64):
            s.feed(b"".join(items[i:i + 64]))
            for _ in s:
                pass

    print(f"decode (bytes -> HepMessage, all chunks): {rate(dec, packets, a.rounds):>12,.0f} packets/s  target >= 500,000")
    print(f"encode (decoded messages, byte-exact):    {rate(enc, msgs, a.rounds):>12,.0f} packets/s  target >= 600,000")
    print(f"encode (messages built from fields):      {rate(enc, built, a.rounds):>12,.0f} packets/s")
    print(f"stream decode (TCP-style, 64 per feed):   {rate(stream, packets, a.rounds):>12,.0f} packets/s")


if __name__ == "__main__":
    main()
