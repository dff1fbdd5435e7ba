"""The ``opensips`` scenario (pure, deterministic).

``opensips``: what OpenSIPS 3.4 extended tracing sends for one call whose caller leg is
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

from ...core.errors import HepValueError
from ...core.message import HepMessage
from ...core.record import format_extra_correlation
from .common import TCP, UDP, Clock, hep_msg, hex_token, sdp_body, sip_msg

__all__ = ["OPENSIPS_LAYOUT", "OPENSIPS_MODES", "opensips_scenario"]

OPENSIPS_MODES = ("json", "homer5")

#: OpenSIPS's chunk order (HEP-SPEC 14): custom chunks are prepended, so 0x11 comes last.
OPENSIPS_LAYOUT = (0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x03, 0x04, 0x0F, 0x65, 0x11)


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
    clock = Clock(start)
    proxy_ip = "192.0.2.1"
    caller = ("192.0.2.10", rng.randrange(32768, 61000))  # TCP: ephemeral source port
    proxy = (proxy_ip, 5060)
    callee = ("198.51.100.20", 5060)
    rest_local = (proxy_ip, _swap16(rng.randrange(32768, 61000)))
    rest_server = ("192.0.2.50", _swap16(8080))
    loop = ("127.0.0.2", 0)  # no socket given: OpenSIPS puts 127.0.0.2:0 as both ends
    call_id = f"{hex_token(rng, 12)}-{hex_token(rng, 6)}@192.0.2.10"
    conn_id = str(rng.getrandbits(64))
    rest_id = _guid(rng, "RESTCORR")
    mi_id = _guid(rng, "MICORR")
    ftag, ttag = hex_token(rng, 10), hex_token(rng, 8)
    br_c, br_p, br_ack, br_bye = (f"z9hG4bK{hex_token(rng, 8)}" for _ in range(4))
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
            hep_msg(
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

    sdp_a = sdp_body("alice", caller[0], 2 * rng.randrange(10000, 15000), rng.randrange(1000, 9999))
    sdp_b = sdp_body("bob", callee[0], 2 * rng.randrange(15000, 20000), rng.randrange(1000, 9999))
    ruri = "sip:bob@example.net"

    net("ACCEPTED", caller, proxy, "Connection accepted...")
    sip(
        caller,
        proxy,
        sip_msg(
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
        sip_msg("SIP/2.0 100 Giving it a try", h(c_via_recv, cseq="1 INVITE", to_hdr=to)),
        ip_proto=TCP,
        net=True,
    )
    sip(
        proxy,
        callee,
        sip_msg(
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
        sip_msg(
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
        sip_msg("SIP/2.0 180 Ringing",
                h(c_via_recv, cseq="1 INVITE", to_hdr=to_t) + [rr, contact_b]),
        ip_proto=TCP,
        net=True,
    )
    sip(
        callee,
        proxy,
        sip_msg(
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
        sip_msg(
            "SIP/2.0 200 OK", h(c_via_recv, cseq="1 INVITE", to_hdr=to_t) + [rr, contact_b], sdp_b
        ),
        ip_proto=TCP,
        net=True,
    )
    ack = f"ACK sip:bob@{callee[0]}:{callee[1]} SIP/2.0"
    sip(
        caller,
        proxy,
        sip_msg(
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
        sip_msg(ack,
                h(f"SIP/2.0/UDP {proxy_ip}:5060;branch={br_ack}.1", cseq="1 ACK", to_hdr=to_t)),
        ip_proto=UDP,
        net=True,
    )
    bye = f"BYE sip:bob@{callee[0]}:{callee[1]} SIP/2.0"
    sip(
        caller,
        proxy,
        sip_msg(
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
        sip_msg(bye,
                h(f"SIP/2.0/UDP {proxy_ip}:5060;branch={br_bye}.1", cseq="2 BYE", to_hdr=to_t)),
        ip_proto=UDP,
        net=False,
    )
    sip(
        callee,
        proxy,
        sip_msg(
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
        sip_msg(
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
