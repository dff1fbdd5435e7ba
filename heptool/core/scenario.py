"""Realistic, correlated sets of HEP messages for ``heptool encode --scenario NAME``.

Pure and deterministic: the same ``seed`` and ``start`` time give the same messages, byte
for byte (random parts such as Call-IDs, tags, ports and timing come from
``random.Random(seed)``).  Scenarios are how a user checks a pipeline end to end, and how
tests and demos get data without a capture.

* ``call``: one SIP call over UDP between two user agents (INVITE with SDP, 100, 180, 200
  with SDP, ACK, BYE, 200), the RTCP reports of its media stream (type 5, JSON as heplify
  and rtpengine send it) and log lines about it (type 100), as a HOMER stack sees them.
  The RTCP and log packets carry the SIP Call-ID in chunk 0x0011, which is how every
  collector joins them to the call (HEP-SPEC 7.1).  The SIP packets carry no 0x0011: the
  capture agents that see SIP on the wire (heplify, captagent, Kamailio's siptrace unless
  configured) do not set it, and collectors take the Call-ID from the SIP message itself.
* ``opensips``: what OpenSIPS 3.4 extended tracing sends for one call whose caller leg is
  SIP over TCP (HEP-SPEC section 14, "OpenSIPS as observed", and the capture
  ``tests/vectors/opensips/``): TCP connection events (type 0x59) with the connection id in
  0x0011, SIP (type 1) relayed to a UDP callee, xlog lines (type 0x64), a REST request and
  reply (type 0x58) sharing a ``RESTCORR`` id, and an MI request and reply (type 0x57)
  sharing a ``MICORR`` id; OpenSIPS's chunk order 1,2,7..c,3,4,f,0x65,0x11, its byte-swapped
  REST ports and its 127.0.0.2:0 addresses.  Two modes, as ``proto_hep``'s ``homer5_on``:

  - ``json`` (``homer5_on=0``): payloads are tab-indented JSON objects (cJSON's formatted
    printer), SIP is wrapped as ``{"payload": "<SIP>"}``, chunk 0x0065 carries the extra
    correlation (``{"net": "<conn id>"}`` on SIP over TCP, ``{"sip": "<Call-ID>"}`` on xlog
    and REST);
  - ``homer5`` (``homer5_on=1``, OpenSIPS's default): payload parts joined by ``:``, raw SIP,
    no chunk 0x0065; the ``sip`` extra correlation overwrites 0x0011 (so REST carries the
    Call-ID, not its RESTCORR id) and the ``net`` link is dropped.

  The correlation groups (union-find over equal 0x0011 values, plus every 0x0065 key/value
  linking to the packets whose 0x0011 equals the value: the rule of the capture's
  ``truth.json``) are: json mode, {the call's SIP, xlog, REST and both TCP events} and {the
  MI pair}; homer5 mode, {SIP, xlog, REST}, {the TCP events} and {the MI pair}.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from typing import Any

from .errors import HepValueError
from .message import HepMessage
from .record import format_extra_correlation

__all__ = ["OPENSIPS_MODES", "SCENARIOS", "call_scenario", "opensips_scenario", "scenario"]

OPENSIPS_MODES = ("json", "homer5")

#: OpenSIPS's chunk order (HEP-SPEC 14): custom chunks are prepended, so 0x11 comes last.
OPENSIPS_LAYOUT = (0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x03, 0x04, 0x0F, 0x65, 0x11)

UDP, TCP = 17, 6


class _Clock:
    """Start time plus advancing microseconds."""

    def __init__(self, start: tuple[int, int]) -> None:
        self.us = start[0] * 1_000_000 + start[1]

    def advance(self, us: int) -> tuple[int, int]:
        self.us += us
        return divmod(self.us, 1_000_000)

    def now(self) -> tuple[int, int]:
        return divmod(self.us, 1_000_000)


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _sip(first: str, headers: list[tuple[str, str]], body: str = "") -> bytes:
    lines = [first] + [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def _sdp(user: str, ip: str, port: int, session: int) -> str:
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


def _msg(
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


# ---------------------------------------------------------------------------
# --scenario call
# ---------------------------------------------------------------------------
def call_scenario(
    *, seed: int = 0, start: tuple[int, int] = (1700000000, 0), capture_id: int = 2001
) -> list[HepMessage]:
    """One SIP call with its RTCP reports and log lines (see the module docstring)."""
    rng = random.Random(seed)
    clock = _Clock(start)
    alice = ("192.0.2.10", 5060)
    bob = ("198.51.100.20", 5060)
    call_id = f"{_token(rng, 16)}@192.0.2.10"
    ftag, ttag = _token(rng, 8), _token(rng, 8)
    b1, b2, b3 = (f"z9hG4bK{_token(rng, 10)}" for _ in range(3))
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
        out.append(_msg(t, src, dst, 1, data, capture_id=capture_id))

    def log(t: tuple[int, int], host: tuple[str, int], text: str) -> None:
        out.append(_msg(t, host, host, 100, text, capture_id=capture_id, correlation_id=call_id))

    invite = _sip(
        "INVITE sip:bob@example.net SIP/2.0",
        hdrs(b1, "1 INVITE", b_to) + [contact_a, ua, ("Allow", "INVITE, ACK, BYE, CANCEL")],
        _sdp("alice", alice[0], a_rtp, sess),
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
        _sip("SIP/2.0 100 Trying", hdrs(b1, "1 INVITE", b_to)),
    )
    sip(
        clock.advance(rng.randrange(30000, 90000)),
        bob,
        alice,
        _sip("SIP/2.0 180 Ringing", hdrs(b1, "1 INVITE", b_to_tag) + [contact_b]),
    )
    sip(
        clock.advance(rng.randrange(1_500_000, 4_000_000)),
        bob,
        alice,
        _sip(
            "SIP/2.0 200 OK",
            hdrs(b1, "1 INVITE", b_to_tag) + [contact_b, ua],
            _sdp("bob", bob[0], b_rtp, sess + 1),
        ),
    )
    log(clock.advance(rng.randrange(200, 900)), bob, f"INFO: call answered, Call-ID: {call_id}")
    sip(
        clock.advance(rng.randrange(20000, 60000)),
        alice,
        bob,
        _sip("ACK sip:bob@198.51.100.20:5060 SIP/2.0", hdrs(b2, "1 ACK", b_to_tag) + [ua]),
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
                _msg(
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

    bye = _sip("BYE sip:bob@198.51.100.20:5060 SIP/2.0", hdrs(b3, "2 BYE", b_to_tag) + [ua])
    sip(clock.advance(rng.randrange(100_000, 2_000_000)), alice, bob, bye)
    sip(
        clock.advance(rng.randrange(5000, 40000)),
        bob,
        alice,
        _sip("SIP/2.0 200 OK", hdrs(b3, "2 BYE", b_to_tag) + [ua]),
    )
    log(
        clock.advance(rng.randrange(200, 900)),
        bob,
        f"INFO: call ended by caller (BYE), duration {reports * 5} s, Call-ID: {call_id}",
    )
    return out


# ---------------------------------------------------------------------------
# --scenario opensips
# ---------------------------------------------------------------------------
def _guid(rng: random.Random, prefix: str) -> str:
    """OpenSIPS's GUID: prefix + base64 of 20 bytes (pid, startup time, ticks, random)."""
    return prefix + base64.b64encode(bytes(rng.getrandbits(8) for _ in range(20))).decode()


def _swap16(port: int) -> int:
    """OpenSIPS writes REST and MI-over-HTTP ports byte-swapped (HEP-SPEC 14.6)."""
    return ((port & 0xFF) << 8) | (port >> 8)


def _cjson(pairs: list[tuple[str, str]]) -> str:
    """A JSON object the way OpenSIPS's cJSON formatted printer writes it (tabs, newlines)."""
    return format_extra_correlation(pairs)


def opensips_scenario(
    *,
    seed: int = 0,
    start: tuple[int, int] = (1700000000, 0),
    mode: str = "json",
    capture_id: int = 1,
) -> list[HepMessage]:
    """One call through OpenSIPS 3.4 with extended tracing (see the module docstring)."""
    if mode not in OPENSIPS_MODES:
        raise HepValueError(
            f"opensips mode must be one of {', '.join(OPENSIPS_MODES)}, not {mode!r}"
        )
    json_mode = mode == "json"
    rng = random.Random(seed)
    clock = _Clock(start)
    proxy_ip = "192.0.2.1"
    caller = ("192.0.2.10", rng.randrange(32768, 61000))  # TCP: ephemeral source port
    proxy = (proxy_ip, 5060)
    callee = ("198.51.100.20", 5060)
    rest_local = (proxy_ip, _swap16(rng.randrange(32768, 61000)))
    rest_server = ("192.0.2.50", _swap16(8080))
    loop = ("127.0.0.2", 0)  # no socket given: OpenSIPS puts 127.0.0.2:0 as both ends
    call_id = f"{_token(rng, 12)}-{_token(rng, 6)}@192.0.2.10"
    conn_id = str(rng.getrandbits(64))
    rest_id = _guid(rng, "RESTCORR")
    mi_id = _guid(rng, "MICORR")
    ftag, ttag = _token(rng, 10), _token(rng, 8)
    br_c, br_p, br_ack, br_bye = (f"z9hG4bK{_token(rng, 8)}" for _ in range(4))
    out: list[HepMessage] = []

    def emit(
        proto: int,
        src: tuple[str, int],
        dst: tuple[str, int],
        payload: str | bytes,
        *,
        ip_proto: int = TCP,
        cid: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        step: tuple[int, int] = (80, 400),
    ) -> None:
        t = clock.advance(rng.randrange(*step))
        ec = None
        if extra and json_mode:
            ec = _cjson(extra)
        elif extra:
            # homer5: only the "sip" extra correlation survives, written over chunk 0x11
            for k, v in extra:
                if k == "sip":
                    cid = v
        out.append(
            _msg(
                t,
                src,
                dst,
                proto,
                payload,
                ip_proto=ip_proto,
                capture_id=capture_id,
                correlation_id=cid,
                extra_correlation=ec,
                layout=OPENSIPS_LAYOUT,
            )
        )

    def sip(
        src: tuple[str, int],
        dst: tuple[str, int],
        data: bytes,
        *,
        ip_proto: int,
        net: bool,
        step: tuple[int, int] = (80, 400),
    ) -> None:
        payload: str | bytes = _cjson([("payload", data.decode())]) if json_mode else data
        emit(
            1,
            src,
            dst,
            payload,
            ip_proto=ip_proto,
            cid=call_id,
            extra=[("net", conn_id)] if net else None,
            step=step,
        )

    def net(event: str, src: tuple[str, int], dst: tuple[str, int], message: str) -> None:
        parts = [("Protocol", "TCP"), ("Event", event), ("Status", "SUCCESS"), ("Message", message)]
        emit(
            0x59,
            src,
            dst,
            _cjson(parts) if json_mode else ":".join(v for _, v in parts),
            cid=conn_id,
        )

    def xlog(host: tuple[str, int], text: str) -> None:
        # xlog: the receiving socket as both ends, always "TCP"; Event is the threshold level
        parts = [("Event", "INFO"), ("text", text)]
        emit(
            100,
            host,
            host,
            _cjson(parts) if json_mode else ":".join(v for _, v in parts),
            cid=call_id,
            extra=[("sip", call_id)],
        )

    def rest(src: tuple[str, int], dst: tuple[str, int], first_line: str, body: str) -> None:
        parts = [("first_line", first_line)] + ([("payload", body)] if body else [])
        emit(
            0x58,
            src,
            dst,
            _cjson(parts) if json_mode else ":".join(v for _, v in parts),
            cid=rest_id,
            extra=[("sip", call_id)],
        )

    def mi(parts: list[tuple[str, str]], step: tuple[int, int] = (80, 400)) -> None:
        emit(
            0x57,
            loop,
            loop,
            _cjson(parts) if json_mode else ":".join(v for _, v in parts),
            cid=mi_id,
            step=step,
        )

    # --- the SIP dialog: caller over TCP, relayed to the callee over UDP -----------------
    c_via = f"SIP/2.0/TCP {caller[0]}:{caller[1]};branch={br_c};rport"
    c_via_recv = (
        f"SIP/2.0/TCP {caller[0]}:{caller[1]};received={caller[0]};branch={br_c};rport={caller[1]}"
    )
    p_via = f"SIP/2.0/UDP {proxy_ip}:5060;branch={br_p}"
    frm = f"<sip:alice@example.com>;tag={ftag}"
    to = "<sip:bob@example.net>"
    to_t = f"{to};tag={ttag}"
    rr = ("Record-Route", f"<sip:{proxy_ip};transport=tcp;lr;ftag={ftag}>")
    contact_c = ("Contact", f"<sip:alice@{caller[0]}:{caller[1]};transport=tcp>")
    contact_b = ("Contact", f"<sip:bob@{callee[0]}:{callee[1]}>")

    def h(*vias: str, cseq: str, to_hdr: str) -> list[tuple[str, str]]:
        return [("Via", v) for v in vias] + [
            ("From", frm),
            ("To", to_hdr),
            ("Call-ID", call_id),
            ("CSeq", cseq),
        ]

    sdp_a = _sdp("alice", caller[0], 2 * rng.randrange(10000, 15000), rng.randrange(1000, 9999))
    sdp_b = _sdp("bob", callee[0], 2 * rng.randrange(15000, 20000), rng.randrange(1000, 9999))
    ruri = "sip:bob@example.net"

    net("ACCEPTED", caller, proxy, "Connection accepted...")
    sip(
        caller,
        proxy,
        _sip(
            f"INVITE {ruri} SIP/2.0",
            h(c_via, cseq="1 INVITE", to_hdr=to) + [("Max-Forwards", "70"), contact_c],
            sdp_a,
        ),
        ip_proto=TCP,
        net=True,
    )
    xlog(proxy, f"INVITE from {caller[0]}:{caller[1]}/tcp ci={call_id}\n")
    rest(rest_local, rest_server, f"GET /route?ruri={ruri} HTTP/1.1", "")
    rest(
        rest_server,
        rest_local,
        "HTTP/1.1 200 OK",
        json.dumps({"route": f"{callee[0]}:{callee[1]}"}, separators=(",", ":")) + "\n",
    )
    xlog(proxy, f"routing {call_id} to {callee[0]}:{callee[1]}\n")
    sip(
        proxy,
        caller,
        _sip("SIP/2.0 100 Giving it a try", h(c_via_recv, cseq="1 INVITE", to_hdr=to)),
        ip_proto=TCP,
        net=True,
    )
    sip(
        proxy,
        callee,
        _sip(
            f"INVITE sip:bob@{callee[0]}:{callee[1]} SIP/2.0",
            [rr]
            + h(p_via, c_via_recv, cseq="1 INVITE", to_hdr=to)
            + [("Max-Forwards", "69"), contact_c],
            sdp_a,
        ),
        ip_proto=UDP,
        net=False,
    )
    sip(
        callee,
        proxy,
        _sip(
            "SIP/2.0 180 Ringing",
            h(p_via, c_via_recv, cseq="1 INVITE", to_hdr=to_t) + [rr, contact_b],
        ),
        ip_proto=UDP,
        net=False,
        step=(20000, 80000),
    )
    sip(
        proxy,
        caller,
        _sip("SIP/2.0 180 Ringing", h(c_via_recv, cseq="1 INVITE", to_hdr=to_t) + [rr, contact_b]),
        ip_proto=TCP,
        net=True,
    )
    sip(
        callee,
        proxy,
        _sip(
            "SIP/2.0 200 OK",
            h(p_via, c_via_recv, cseq="1 INVITE", to_hdr=to_t) + [rr, contact_b],
            sdp_b,
        ),
        ip_proto=UDP,
        net=False,
        step=(1_000_000, 3_000_000),
    )
    xlog(proxy, f"call {call_id} answered\n")
    sip(
        proxy,
        caller,
        _sip(
            "SIP/2.0 200 OK", h(c_via_recv, cseq="1 INVITE", to_hdr=to_t) + [rr, contact_b], sdp_b
        ),
        ip_proto=TCP,
        net=True,
    )
    ack = f"ACK sip:bob@{callee[0]}:{callee[1]} SIP/2.0"
    sip(
        caller,
        proxy,
        _sip(
            ack,
            h(
                f"SIP/2.0/TCP {caller[0]}:{caller[1]};branch={br_ack};rport",
                cseq="1 ACK",
                to_hdr=to_t,
            )
            + [("Route", rr[1])],
        ),
        ip_proto=TCP,
        net=True,
        step=(10000, 40000),
    )
    # OpenSIPS oddity: the relayed ACK carries the caller's connection id even over UDP
    sip(
        proxy,
        callee,
        _sip(ack, h(f"SIP/2.0/UDP {proxy_ip}:5060;branch={br_ack}.1", cseq="1 ACK", to_hdr=to_t)),
        ip_proto=UDP,
        net=True,
    )
    bye = f"BYE sip:bob@{callee[0]}:{callee[1]} SIP/2.0"
    sip(
        caller,
        proxy,
        _sip(
            bye,
            h(
                f"SIP/2.0/TCP {caller[0]}:{caller[1]};branch={br_bye};rport",
                cseq="2 BYE",
                to_hdr=to_t,
            )
            + [("Route", rr[1])],
        ),
        ip_proto=TCP,
        net=True,
        step=(5_000_000, 20_000_000),
    )
    xlog(proxy, f"BYE from {caller[0]}:{caller[1]}/tcp ci={call_id}\n")
    sip(
        proxy,
        callee,
        _sip(bye, h(f"SIP/2.0/UDP {proxy_ip}:5060;branch={br_bye}.1", cseq="2 BYE", to_hdr=to_t)),
        ip_proto=UDP,
        net=False,
    )
    sip(
        callee,
        proxy,
        _sip(
            "SIP/2.0 200 OK",
            h(f"SIP/2.0/UDP {proxy_ip}:5060;branch={br_bye}.1", cseq="2 BYE", to_hdr=to_t),
        ),
        ip_proto=UDP,
        net=False,
        step=(5000, 30000),
    )
    sip(
        proxy,
        caller,
        _sip(
            "SIP/2.0 200 OK",
            h(
                f"SIP/2.0/TCP {caller[0]}:{caller[1]};received={caller[0]};branch={br_bye}",
                cseq="2 BYE",
                to_hdr=to_t,
            ),
        ),
        ip_proto=TCP,
        net=True,
    )
    # CLOSED events have no socket addresses: 127.0.0.2:0 both ends
    net("CLOSED", loop, loop, "EOF received")

    # --- an operator asks for the uptime over the MI FIFO ---------------------------------
    now = clock.now()[0]
    mi([("command", "uptime"), ("backend", "fifo")], step=(500_000, 3_000_000))
    reply = json.dumps(
        {
            "jsonrpc": "2.0",
            "result": {"Now": now, "Up since": now - 3600, "Up time": "3600 [sec]"},
            "id": 1,
        },
        separators=(",", ":"),
    )
    mi([("reply", reply[:128])])
    return out


#: name -> function(seed=, start=, **options) -> list of messages
SCENARIOS: dict[str, Callable[..., list[HepMessage]]] = {
    "call": call_scenario,
    "opensips": opensips_scenario,
}


def scenario(
    name: str, *, seed: int = 0, start: tuple[int, int] = (1700000000, 0), **options: Any
) -> list[HepMessage]:
    """The messages of scenario ``name`` (``call`` or ``opensips``), in time order."""
    try:
        fn = SCENARIOS[name]
    except KeyError:
        raise HepValueError(
            f"unknown scenario {name!r} (use one of {', '.join(SCENARIOS)})"
        ) from None
    return fn(seed=seed, start=start, **options)
