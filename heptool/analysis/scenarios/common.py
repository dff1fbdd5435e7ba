"""What both scenarios build messages with: a clock, random tokens, SIP and SDP text, and
one HEP message (pure, deterministic).  The scenarios are :mod:`.call` and :mod:`.opensips`.
"""

from __future__ import annotations

import random

from ...core.message import HepMessage

__all__ = ["TCP", "UDP", "Clock", "hep_msg", "hex_token", "sdp_body", "sip_msg"]

UDP, TCP = 17, 6


class Clock:
    """Start time plus advancing microseconds."""

    def __init__(self, start: tuple[int, int]) -> None:
        self.us = start[0] * 1_000_000 + start[1]

    def advance(self, us: int) -> tuple[int, int]:
        self.us += us
        return divmod(self.us, 1_000_000)

    def now(self) -> tuple[int, int]:
        return divmod(self.us, 1_000_000)


def hex_token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def sip_msg(first: str, headers: list[tuple[str, str]], body: str = "") -> bytes:
    lines = [first] + [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sdp_body(user: str, ip: str, port: int, session: int) -> str:
    return (
        "\r\n".join(
            [
                "v=0",
                f"o={user} {session} {session} IN IP4 {ip}",
                "s=-",
                f"c=IN IP4 {ip}",
                "t=0 0",
                f"m=audio {port} RTP/AVP 0 8 101",
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:8 PCMA/8000",
                "a=rtpmap:101 telephone-event/8000",
                "a=sendrecv",
            ]
        )
        + "\r\n"
    )


def hep_msg(
    t: tuple[int, int],
    src: tuple[str, int],
    dst: tuple[str, int],
    proto: int,
    payload: bytes | str | None,
    *,
    ip_proto: int = UDP,
    capture_id: int,
    correlation_id: str | None = None,
    extra_correlation: str | None = None,
    layout: tuple | None = None,
) -> HepMessage:
    m = HepMessage(
        version=3,
        ip_proto=ip_proto,
        src_ip=src[0],
        src_port=src[1],
        dst_ip=dst[0],
        dst_port=dst[1],
        ts_sec=t[0],
        ts_usec=t[1],
        proto_type=proto,
        capture_id=capture_id,
        correlation_id=correlation_id,
        extra_correlation=extra_correlation,
        payload=payload,
    )
    if layout is not None:
        m.layout = layout
    return m
