"""SIP packets out of a capture, and the HEP message a capture agent sends for each.

:func:`iter_sip_packets` yields one :class:`SipPacket` per SIP message of a capture (or of
live frames): UDP datagrams that start with a SIP line, and TCP streams reassembled and
split by Content-Length.  :func:`sip_to_hep` wraps each in a :class:`HepMessage`
(:func:`packet_message`).  :class:`SipReader` is the per-frame half with the state (IP
fragments, TCP streams); the fused SIP pcap loop (:mod:`.fused_sip`) feeds it too, so the
rules live once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import IO, Any, NamedTuple

from heptool.sip.framing import SipSplitter, looks_like_sip
from heptool.sip.ids import call_id as sip_call_id

from ..core.message import HepMessage, blank
from .dissect import extract_transport
from .pcapfile import Frame
from .reassembly import IPReassembler, TcpReassembler
from .source import open_capture
from .stats import ConvertStats

__all__ = ["SipPacket", "SipReader", "iter_sip_packets", "packet_message", "sip_to_hep"]


class _Stream:
    __slots__ = ("family", "next_off", "sip", "splitter")

    def __init__(self, family: int) -> None:
        self.family = family
        self.splitter = SipSplitter()
        self.next_off = 0
        self.sip: bool | None = None  # None: undecided (no byte seen yet)


def _frames_of(source: Any) -> Iterator[Frame]:
    if isinstance(source, (str, bytes, os.PathLike)) or hasattr(source, "read"):
        return open_capture(source)
    return iter(source)


class SipPacket(NamedTuple):
    """One SIP message (or, with another proto type, one UDP payload) found in a capture."""

    family: int  # 4 or 6
    ip_proto: int  # 17 UDP, 6 TCP
    src: str
    sport: int
    dst: str
    dport: int
    ts_sec: int  # time of the frame that completed it
    ts_usec: int
    payload: bytes


class SipReader:
    """The per-frame half of :func:`iter_sip_packets`: one frame in, the SIP messages it
    completes out (its state: IP fragments, TCP streams).  :func:`iter_sip_packets` and the
    fused pcap path of :func:`sip_to_hep3_pcap` both feed it, so the rules live once."""

    __slots__ = ("frag", "max_streams", "packet_filter", "ports", "sip_only", "st", "streams",
                 "tcp")

    def __init__(self, ports: frozenset[int] | None, packet_filter: Any, sip_only: bool,
                 st: ConvertStats, max_streams: int, max_tcp_buffer: int) -> None:
        self.ports = ports
        self.packet_filter = packet_filter
        self.sip_only = sip_only
        self.st = st
        self.max_streams = max_streams
        self.frag = IPReassembler()
        self.tcp = TcpReassembler(max_buffer=max_tcp_buffer, max_streams=max_streams)
        self.streams: OrderedDict[tuple, _Stream] = OrderedDict()

    def frame(self, no: int, sec: int, usec: int, linktype: int,
              data: bytes) -> Iterable[SipPacket]:
        """The messages one frame completes: ``()``, a 1-tuple (UDP) or an iterator (TCP,
        lazy like the stream it reads).  UDP SIP is counted by the caller (``udp_sip``,
        ``messages``); everything else here."""
        st = self.st
        t = extract_transport(linktype, data, self.frag)
        if t is None:
            st.not_ip += 1
            return ()
        ports = self.ports
        if (ports is not None and t.sport not in ports and t.dport not in ports
                or self.packet_filter is not None and not self.packet_filter(t)):
            st.not_port += 1
            return ()
        if t.proto == 17:
            payload = t.payload
            if looks_like_sip(payload) if self.sip_only else bool(payload):
                return (tuple.__new__(SipPacket, (t.family, 17, t.src, t.sport, t.dst, t.dport,
                                                  sec, usec, payload)),)
            st.udp_other += 1
            return ()
        if not self.sip_only:
            return ()
        return self.tcp_segment(t.family, t.src, t.sport, t.dst, t.dport, t.seq, t.flags or 0,
                                t.payload, no, sec, usec)

    def tcp_segment(self, family: int, src: str, sport: int, dst: str, dport: int, seq: int,
                    flags: int, payload: bytes, no: int, sec: int,
                    usec: int) -> Iterator[SipPacket]:
        """One TCP segment (that passed the port and packet filters): the messages it
        completes, lazily."""
        st = self.st
        streams = self.streams
        key = (src, sport, dst, dport)
        if flags & 0x02 and key in streams:  # SYN: a new connection on this 4-tuple
            st.tcp_incomplete_bytes += streams.pop(key).splitter.close()
        for ckey, off, _cframe, cdata in self.tcp.add(key, seq, flags, payload, no):
            s = streams.get(ckey)
            if s is None:
                if len(streams) >= self.max_streams:
                    old = streams.popitem(last=False)[1]
                    st.tcp_incomplete_bytes += old.splitter.close()
                s = streams[ckey] = _Stream(family)
                s.next_off = off
            yield from _feed(s, ckey, off, cdata, sec, usec, st)

    def close(self, sec: int, usec: int) -> Iterator[SipPacket]:
        """The end of the capture: what waited behind holes, at the last frame's time."""
        st = self.st
        streams = self.streams
        for ckey, off, _cframe, cdata in self.tcp.flush():
            s = streams.get(ckey)
            if s is not None:
                yield from _feed(s, ckey, off, cdata, sec, usec, st)
        for s in streams.values():
            st.tcp_incomplete_bytes += s.splitter.close()
            st.tcp_skipped_bytes += s.splitter.skipped_bytes
        st.tcp_skipped_bytes += self.tcp.gap_bytes + self.tcp.dropped_bytes


def iter_sip_packets(
    source: str | os.PathLike[str] | IO[bytes] | Iterable[Frame],
    *,
    ports: frozenset[int] | None = None,
    packet_filter: Any = None,
    sip_only: bool = True,
    stats: ConvertStats | None = None,
    max_streams: int = 65536,
    max_tcp_buffer: int = 4 * 1024 * 1024,
) -> Iterator[SipPacket]:
    """The SIP messages of a capture as :class:`SipPacket` tuples, in capture order: the
    reading half of :func:`sip_to_hep` (see there), for callers that pack HEP themselves.
    ``sip_only=False`` yields every non-empty UDP payload (on ``ports``) instead.
    ``packet_filter`` is a ``predicate(Transport)`` (:func:`compile_filter`) that a packet
    must pass, like ``ports``."""
    st = stats if stats is not None else ConvertStats()
    reader = SipReader(ports, packet_filter, sip_only, st, max_streams, max_tcp_buffer)
    frame = reader.frame
    n_frames = n_udp = 0
    sec = usec = 0
    try:
        for no, sec, usec, linktype, data in _frames_of(source):
            n_frames += 1
            for p in frame(no, sec, usec, linktype, data):
                if p[1] == 17:
                    n_udp += 1
                yield p
        yield from reader.close(sec, usec)
    finally:
        st.frames += n_frames
        st.udp_sip += n_udp
        st.messages += n_udp


def _feed(s: _Stream, key: tuple, off: int, data: bytes, sec: int, usec: int,
          st: ConvertStats) -> Iterator[SipPacket]:
    """One in-order chunk of a TCP direction into its SIP splitter."""
    if s.sip is None:
        s.sip = looks_like_sip(data) or (data[:1].isalpha() and b"\n" not in data)
        if not s.sip:
            st.tcp_streams_other += 1
    if not s.sip:
        st.tcp_other_bytes += len(data)
        return
    if off != s.next_off:  # a hole skipped at the end of the capture
        st.tcp_incomplete_bytes += s.splitter.close()
        s.splitter = SipSplitter()
    s.next_off = off + len(data)
    fam = s.family
    for _moff, msg in s.splitter.feed(data):
        st.tcp_sip += 1
        st.messages += 1
        yield tuple.__new__(SipPacket, (fam, 6, key[0], key[1], key[2], key[3], sec, usec, msg))


def sip_to_hep(
    source: str | os.PathLike[str] | IO[bytes] | Iterable[Frame],
    *,
    ports: frozenset[int] | None = None,
    packet_filter: Any = None,
    proto_type: int = 1,
    capture_id: int | None = 0,
    node_name: str | None = None,
    auth_key: str | None = None,
    correlation_id_from: str = "none",
    hep_version: int = 3,
    stats: ConvertStats | None = None,
    max_streams: int = 65536,
    max_tcp_buffer: int = 4 * 1024 * 1024,
) -> Iterator[HepMessage]:
    """One HEP message per SIP message found in a capture, in capture order.

    ``source`` is a pcap/pcapng path or binary file object (gzip too; any link type
    :func:`~heptool.capture.pcap.extract_transport` reads), or an iterable of
    :class:`~heptool.capture.pcap.Frame` tuples (live capture: :func:`live_frames`).

    * UDP: a datagram whose payload starts with a SIP request or status line is one
      message.  TCP: each direction is reassembled (:class:`TcpReassembler`: out-of-order
      segments waited for, retransmissions dropped) and split by ``Content-Length``
      (:class:`heptool.sip.framing.SipSplitter`); a stream that does not start with SIP
      (TLS, HEP, HTTP...) is ignored.  IP fragments are reassembled.
    * ``ports``: only traffic with a source or destination port in the set (default: any
      port; SIP is recognised by content); ``packet_filter``: only packets it accepts
      (a ``predicate(Transport)``, e.g. from :func:`compile_filter`).
    * ``proto_type`` other than 1: every UDP payload on ``ports`` is wrapped as that HEP
      protocol type (no SIP recognition; e.g. 5 for RTCP).
    * Each message carries the packet's addresses, ports, ip proto (17/6) and capture
      time (the frame that completed it), ``capture_id`` (default 0, what heplify sends
      when none is configured; None leaves chunk 0x0c out), ``node_name`` (chunk 0x13),
      ``auth_key`` (0x0e), ``hep_version`` (1, 2 or 3; the version the caller encodes),
      and chunk 0x11 = the Call-ID when ``correlation_id_from == "call-id"`` (default
      ``"none"``: see the module doc for why).

    Every message is a new object, built from fields (no layout: ``heptool.encode``
    writes it canonically), so callers may edit and keep them.  Memory is bounded: at
    most ``max_streams`` TCP directions are followed (the oldest is dropped) with up to
    ``max_tcp_buffer`` out-of-order bytes each.
    """
    if correlation_id_from not in ("none", "call-id"):
        raise ValueError(f"correlation_id_from must be 'call-id' or 'none', "
                         f"not {correlation_id_from!r}")
    if hep_version not in (1, 2, 3):
        raise ValueError(f"hep_version must be 1, 2 or 3, not {hep_version!r}")
    want_cid = correlation_id_from == "call-id" and proto_type == 1
    for p in iter_sip_packets(source, ports=ports, packet_filter=packet_filter,
                              sip_only=proto_type == 1, stats=stats, max_streams=max_streams,
                              max_tcp_buffer=max_tcp_buffer):
        yield packet_message(p, hep_version, proto_type, capture_id, auth_key, node_name, want_cid)


def packet_message(p: SipPacket, version: int, proto_type: int, capture_id: int | None,
             auth_key: str | None, node_name: str | None, want_cid: bool) -> HepMessage:
    """The HEP message a capture agent sends for one packet (a new object every time)."""
    fam, proto, src, sport, dst, dport, sec, usec, payload = p
    m = HepMessage.__new__(HepMessage)
    blank(m)
    m.version = version
    m.family = 10 if fam == 6 else 2
    m.ip_proto = proto
    m.src_ip = src
    m.src_port = sport
    m.dst_ip = dst
    m.dst_port = dport
    m.ts_sec = sec
    m.ts_usec = usec
    m.proto_type = proto_type
    m.capture_id = capture_id
    m.auth_key = auth_key
    m.node_name = node_name
    if want_cid:
        m.correlation_id = sip_call_id(payload)
    m.payload = payload
    return m
