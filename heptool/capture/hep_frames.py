"""HEP messages -> the Ethernet frames they were captured from.

:func:`hep_to_frames` (and :class:`HepFramer`, the same one message at a time) turns each
message into UDP datagrams, or TCP flows with a handshake for SIP over TCP, fake TLS and
fake WS (:data:`TCP_PROTOS`), built by :class:`~.frames.FrameSynth`.  :func:`hep_comment`
is the pcapng comment that keeps a message's HEP metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from heptool.sip.payload import sip_payload

from ..core.message import HepMessage
from ..core.registry import proto_name
from .frames import FrameSynth
from .stats import ConvertStats

__all__ = ["TCP_PROTOS", "HepFramer", "hep_comment", "hep_to_frames"]

#: ip proto values whose SIP is written as TCP: TCP, Kamailio/OpenSIPS fake TLS, OpenSIPS WS.
TCP_PROTOS = frozenset((6, 22, 50))
_IP_PROTO_NAMES = {6: "TCP", 17: "UDP", 22: "TLS", 50: "WS", 132: "SCTP"}


def hep_comment(m: HepMessage) -> str:
    """The HEP metadata of a message as one line (a pcapng packet comment).

    ``HEPv3 proto=sip(1) ip_proto=22(TLS) capture_id=2001 node=n1 correlation_id=...
    extra_correlation=...``; the auth key is left out (it is a credential)."""
    parts = [f"HEPv{m.version}"]
    pt = m.proto_type
    if pt is not None:
        parts.append(f"proto={proto_name(pt)}({pt})")
    ipp = m.ip_proto
    if ipp is not None:
        parts.append(f"ip_proto={ipp}({_IP_PROTO_NAMES.get(ipp, '?')})")
    if m.capture_id is not None:
        parts.append(f"capture_id={m.capture_id}")
    if m.node_name is not None:
        parts.append(f"node={m.node_name}")
    if m.correlation_id is not None:
        parts.append(f"correlation_id={m.correlation_id}")
    if m.extra_correlation is not None:
        parts.append("extra_correlation=" + " ".join(str(m.extra_correlation).split()))
    if m.compression is not None:
        parts.append(f"compressed={m.compression}")
    if m.ts_sec is None:
        parts.append("time=outer-capture")
    return " ".join(parts)


def hep_to_frames(
    messages: Iterable[HepMessage | tuple[HepMessage, tuple[int, int] | None]],
    *,
    comments: bool = False,
    mtu: int = 1500,
    max_flows: int = 65536,
    stats: ConvertStats | None = None,
) -> Iterator[tuple[int, int, bytes, str | None]]:
    """The frames each HEP message was captured from: ``(ts_sec, ts_usec, frame, comment)``.

    ``messages`` holds :class:`HepMessage` objects, or ``(message, (sec, usec))`` pairs
    whose time is used when the message has none (HEPv1: give the time the HEP packet
    was captured or received; without one the previous message's time is used, or 0,
    and ``stats.untimed`` counts it).

    * SIP (proto type 1) with ip proto 6, 22 (fake TLS) or 50 (fake WS) becomes TCP: a
      flow per 4-tuple with a handshake, continuing sequence numbers, segments of at most
      one MSS (``mtu``).  Everything else, non-SIP types always, is one UDP datagram.
    * IPv4 or IPv6 from the addresses (a missing address is 0.0.0.0 / ::, a missing
      port 0); the frame time is the HEP timestamp.
    * The payload is the message's (inflated when it was compressed; OpenSIPS's JSON
      wrapper around SIP removed).
    * ``comments``: the comment is :func:`hep_comment` (set on the first frame of each
      message; handshake frames get None); otherwise every comment is None.

    A message whose payload cannot fit one UDP datagram raises nothing: it is counted in
    ``stats.too_big`` and skipped.
    """
    framer = HepFramer(comments=comments, mtu=mtu, max_flows=max_flows, stats=stats)
    frames = framer.frames
    try:
        for item in messages:
            yield from frames(item)
    finally:
        framer.close()


class HepFramer:
    """:func:`hep_to_frames` one message at a time (its state: the TCP flows, the IPv4
    identification, the last time seen), for callers that mix it with a faster path
    (:func:`hep3_to_pcap_records`).  :meth:`close` adds its counts to ``stats``."""

    def __init__(self, *, comments: bool = False, mtu: int = 1500, max_flows: int = 65536,
                 stats: ConvertStats | None = None) -> None:
        self.st = stats if stats is not None else ConvertStats()
        self.synth = FrameSynth(mtu=mtu, max_flows=max_flows)
        self.comments = comments
        self.last = (0, 0)
        self.n_msgs = 0
        self.n_frames = 0

    def frames(self, item: HepMessage | tuple[HepMessage, tuple[int, int] | None]
               ) -> list[tuple[int, int, bytes, str | None]]:
        """The frames of one message (see :func:`hep_to_frames`)."""
        if type(item) is tuple:
            m, fallback = item
        else:
            m, fallback = item, None
        self.n_msgs += 1
        sec = m.ts_sec
        if sec is not None:
            ts = self.last = (sec, m.ts_usec or 0)
        elif fallback is not None:
            ts = self.last = fallback
        else:
            ts = self.last
            self.st.untimed += 1
        payload = m.payload
        if payload is None:
            payload = b""
        pt = m.proto_type
        sip = pt == 1 or pt is None
        if sip and payload[:1] == b"{":
            inner = sip_payload(payload)
            if inner is not None:
                payload = inner
        src = m.src_ip
        dst = m.dst_ip
        if src is None or dst is None:
            any_ip = "::" if m.family == 10 or ":" in (src or dst or "") else "0.0.0.0"
            src = src or any_ip
            dst = dst or any_ip
        comment = hep_comment(m) if self.comments else None
        synth = self.synth
        try:
            if sip and m.ip_proto in TCP_PROTOS and payload:
                frames = synth.tcp(src, m.src_port or 0, dst, m.dst_port or 0, payload)
                # the handshake (if any) comes first; the comment goes on the first data
                # segment
                data_start = synth.last_handshake
                self.n_frames += len(frames)
                return [(ts[0], ts[1], fr, comment if i == data_start else None)
                        for i, fr in enumerate(frames)]
            fr = synth.udp(src, m.src_port or 0, dst, m.dst_port or 0, payload)
        except ValueError:
            self.st.too_big += 1
            return []
        self.n_frames += 1
        return [(ts[0], ts[1], fr, comment)]

    def close(self) -> None:
        st = self.st
        st.messages += self.n_msgs
        st.frames_out += self.n_frames
        st.tcp_flows += self.synth.flows_opened
        self.n_msgs = self.n_frames = 0
        self.synth.flows_opened = 0
