"""The ``call`` scenario (pure, deterministic).

``call``: one SIP call over UDP between two user agents (INVITE with SDP, 100, 180, 200
with SDP, ACK, BYE, 200), the RTCP reports of its media stream (type 5, JSON as heplify
and rtpengine send it) and log lines about it (type 100), as a HOMER stack sees them.
The RTCP and log packets carry the SIP Call-ID in chunk 0x0011, which is how every
collector joins them to the call (HEP-SPEC 7.1).  The SIP packets carry no 0x0011: the
capture agents that see SIP on the wire (heplify, captagent, Kamailio's siptrace unless
configured) do not set it, and collectors take the Call-ID from the SIP message itself.
"""

from __future__ import annotations

import json
import random

from ...core.message import HepMessage
from .common import Clock, hep_msg, hex_token, sdp_body, sip_msg

__all__ = ["call_scenario"]


def call_scenario(
    *, seed: int = 0, start: tuple[int, int] = (1700000000, 0), capture_id: int = 2001
) -> list[HepMessage]:
    """One SIP call with its RTCP reports and log lines (see the module docstring)."""
    rng = random.Random(seed)
    clock = Clock(start)
    alice = ("192.0.2.10", 5060)
    bob = ("198.51.100.20", 5060)
    call_id = f"{hex_token(rng, 16)}@192.0.2.10"
    ftag, ttag = hex_token(rng, 8), hex_token(rng, 8)
    b1, b2, b3 = (f"z9hG4bK{hex_token(rng, 10)}" for _ in range(3))
    a_rtp, b_rtp = 2 * rng.randrange(10000, 15000), 2 * rng.randrange(15000, 20000)
    sess = rng.randrange(1000, 9999)
    a_from = f'"Alice" <sip:alice@example.com>;tag={ftag}'
    b_to = "<sip:bob@example.net>"
    b_to_tag = f"{b_to};tag={ttag}"

    def hdrs(branch: str, cseq: str, to: str, via_host: tuple[str, int] = alice) -> list:
        return [
            ("Via", f"SIP/2.0/UDP {via_host[0]}:{via_host[1]};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", a_from),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", cseq),
        ]

    contact_a = ("Contact", f"<sip:alice@{alice[0]}:{alice[1]}>")
    contact_b = ("Contact", f"<sip:bob@{bob[0]}:{bob[1]}>")
    ua = ("User-Agent", "heptool-scenario/1")
    out: list[HepMessage] = []

    def sip(t: tuple[int, int], src: tuple[str, int], dst: tuple[str, int], data: bytes) -> None:
        # No 0x0011 on SIP: heplify/captagent leave it out; the Call-ID is in the message.
        out.append(hep_msg(t, src, dst, 1, data, capture_id=capture_id))

    def log(t: tuple[int, int], host: tuple[str, int], text: str) -> None:
        out.append(hep_msg(t, host, host, 100, text, capture_id=capture_id, correlation_id=call_id))

    invite = sip_msg(
        "INVITE sip:bob@example.net SIP/2.0",
        hdrs(b1, "1 INVITE", b_to) + [contact_a, ua, ("Allow", "INVITE, ACK, BYE, CANCEL")],
        sdp_body("alice", alice[0], a_rtp, sess),
    )
    sip(clock.now(), alice, bob, invite)
    log(
        clock.advance(rng.randrange(200, 900)),
        bob,
        f"INFO: INVITE from sip:alice@example.com to sip:bob@example.net, Call-ID: {call_id}",
    )
    sip(
        clock.advance(rng.randrange(2000, 6000)),
        bob,
        alice,
        sip_msg("SIP/2.0 100 Trying", hdrs(b1, "1 INVITE", b_to)),
    )
    sip(
        clock.advance(rng.randrange(30000, 90000)),
        bob,
        alice,
        sip_msg("SIP/2.0 180 Ringing", hdrs(b1, "1 INVITE", b_to_tag) + [contact_b]),
    )
    sip(
        clock.advance(rng.randrange(1_500_000, 4_000_000)),
        bob,
        alice,
        sip_msg(
            "SIP/2.0 200 OK",
            hdrs(b1, "1 INVITE", b_to_tag) + [contact_b, ua],
            sdp_body("bob", bob[0], b_rtp, sess + 1),
        ),
    )
    log(clock.advance(rng.randrange(200, 900)), bob, f"INFO: call answered, Call-ID: {call_id}")
    sip(
        clock.advance(rng.randrange(20000, 60000)),
        alice,
        bob,
        sip_msg("ACK sip:bob@198.51.100.20:5060 SIP/2.0", hdrs(b2, "1 ACK", b_to_tag) + [ua]),
    )

    # RTCP sender reports every 5 s, each side, while the call lasts
    ssrc_a, ssrc_b = rng.getrandbits(32), rng.getrandbits(32)
    seq = {ssrc_a: rng.randrange(1000, 30000), ssrc_b: rng.randrange(1000, 30000)}
    reports = rng.randrange(2, 5)
    for i in range(reports):
        t = clock.advance(5_000_000 + rng.randrange(-20000, 20000))
        for ssrc, peer, src, dst in (
            (ssrc_a, ssrc_b, (alice[0], a_rtp + 1), (bob[0], b_rtp + 1)),
            (ssrc_b, ssrc_a, (bob[0], b_rtp + 1), (alice[0], a_rtp + 1)),
        ):
            packets = 250 * (i + 1)
            seq[peer] += 250
            report = {
                "sender_information": {
                    "ntp_timestamp_sec": t[0] + 2208988800,
                    "ntp_timestamp_usec": t[1],
                    "rtp_timestamp": 8000 * 5 * (i + 1),
                    "packets": packets,
                    "octets": packets * 160,
                },
                "ssrc": ssrc,
                "type": 200,
                "report_blocks": [
                    {
                        "source_ssrc": peer,
                        "fraction_lost": 0,
                        "packets_lost": rng.randrange(0, 3),
                        "highest_seq_no": seq[peer] & 0xFFFF,
                        "ia_jitter": rng.randrange(5, 40),
                        "lsr": 0 if i == 0 else rng.getrandbits(32),
                        "dlsr": rng.randrange(0, 65536),
                    }
                ],
                "report_count": 1,
            }
            out.append(
                hep_msg(
                    t,
                    src,
                    dst,
                    5,
                    json.dumps(report, separators=(",", ":")),
                    capture_id=capture_id,
                    correlation_id=call_id,
                )
            )
            t = clock.advance(rng.randrange(100, 3000))

    bye = sip_msg("BYE sip:bob@198.51.100.20:5060 SIP/2.0", hdrs(b3, "2 BYE", b_to_tag) + [ua])
    sip(clock.advance(rng.randrange(100_000, 2_000_000)), alice, bob, bye)
    sip(
        clock.advance(rng.randrange(5000, 40000)),
        bob,
        alice,
        sip_msg("SIP/2.0 200 OK", hdrs(b3, "2 BYE", b_to_tag) + [ua]),
    )
    log(
        clock.advance(rng.randrange(200, 900)),
        bob,
        f"INFO: call ended by caller (BYE), duration {reports * 5} s, Call-ID: {call_id}",
    )
    return out
