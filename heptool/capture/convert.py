"""Plain SIP captures -> HEP, and HEP -> the packets it was captured from.

Two generator functions, shared by ``heptool convert``, ``heptool send`` (capture-agent
replay of a SIP pcap) and ``heptool listen --write-sip``:

* :func:`sip_to_hep` reads a capture (or live frames) and yields one :class:`HepMessage`
  per SIP message, exactly as a capture agent (heplify, captagent) would have sent it.
* :func:`hep_to_frames` takes HEP messages and yields the Ethernet frames they stand for
  (UDP datagrams, or TCP flows with a handshake), ready for a pcap/pcapng writer.

Around them: :func:`iter_sip_packets` (the reading half of ``sip_to_hep``: plain
:class:`SipPacket` tuples), :func:`compile_filter` (a pcap-filter subset for files),
:func:`live_frames` (frames from an interface, for ``-i``) and :func:`hep_comment` (the
pcapng comment of a message).  Writers: :mod:`heptool.capture.pcapng_writer`.

Fast paths (``heptool convert`` to classic pcap, the common case; byte for byte the
general path's output, tests/capture/test_convert_fused.py checks it): for a classic
little-endian pcap file, :func:`sip_to_hep3_pcap` (SIP -> HEPv3 records) and
:func:`hep_pcap_to_records` (HEP -> records) read the records straight out of the file's
blocks and handle the common frame at fixed offsets with precompiled structs, and
:func:`hep3_to_pcap_records` does the HEP -> records step for any other input; whatever
they do not handle themselves goes, in order, through the general code
(:class:`_SipReader`, :class:`HepFramer`, the codec), which shares their state.

Decisions (also in the README, "heptool convert"):

* ``correlation_id_from`` defaults to ``"none"``: heplify and captagent set chunk 0x11 on
  non-SIP types only (RTCP, logs), because for SIP the collector takes the Call-ID from
  the payload itself; a converted capture then looks like what those agents send.
  ``"call-id"`` copies the Call-ID into 0x11, for collectors or scripts that join on it.
* Fake ip proto values 22 (TLS; Kamailio, OpenSIPS) and 50 (WS/WSS; OpenSIPS) become
  TCP frames: the HEP copy holds the decrypted SIP, which is what the analyst wants to see;
  the frames then show it as plain SIP over TCP on the original ports.
* HEPv1 has no timestamp: the frame time is the time the HEP packet itself was captured
  (the outer frame), passed in with the message.
* Non-SIP types (logs, RTCP reports, OpenSIPS REST/net/MI/control events) are kept, as
  UDP datagrams on the addresses the HEP gives, whatever its ip proto says, so they never
  disturb a reassembled SIP/TCP stream; with pcapng each frame's comment keeps the HEP
  metadata (version, proto type, capture id, node name, correlation ids).
* Compressed payloads (chunk 0x0010) are written inflated (the codec inflates them), and
  OpenSIPS's JSON-wrapped SIP (``{"payload": "<SIP>"}``) is unwrapped to the SIP bytes.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import IO, Any, NamedTuple

from ..core.addr import ip4_text, ip6_text, ip_pack, port_number
from ..core.message import HepMessage, _blank
from ..core.registry import proto_name
from ..core.sip import call_id as sip_call_id
from ..core.sip import sip_payload
from ..core.sipframe import SipSplitter, looks_like_sip
from .frames import FrameSynth
from .inputs import InputError, InputPacket
from .pcap import (
    MAX_CAPLEN,
    CaptureError,
    CaptureStats,
    Counters,
    Frame,
    IPReassembler,
    TcpReassembler,
    caplen_error,
    endpoint4,
    extract_transport,
    is_hep_candidate,
    iter_hep_payloads,
    open_capture,
    read_exact,
    truncated_record_error,
)
from .writer import DST_MAC, SRC_MAC

__all__ = [
    "PCAP_LE_USEC",
    "TCP_PROTOS",
    "ConvertStats",
    "FilterSyntaxError",
    "HepFramer",
    "SipPacket",
    "compile_filter",
    "hep3_to_pcap_records",
    "hep_comment",
    "hep_pcap_to_records",
    "hep_to_frames",
    "iter_sip_packets",
    "live_frames",
    "sip_to_hep",
    "sip_to_hep3_pcap",
]

#: ip proto values whose SIP is written as TCP: TCP, Kamailio/OpenSIPS fake TLS, OpenSIPS WS.
TCP_PROTOS = frozenset((6, 22, 50))
_IP_PROTO_NAMES = {6: "TCP", 17: "UDP", 22: "TLS", 50: "WS", 132: "SCTP"}


class ConvertStats(Counters):
    """Counters filled in by :func:`sip_to_hep` and :func:`hep_to_frames`."""

    __slots__ = (
        "frames",
        "frames_out",
        "messages",
        "not_ip",
        "not_port",
        "tcp_flows",
        "tcp_incomplete_bytes",
        "tcp_other_bytes",
        "tcp_sip",
        "tcp_skipped_bytes",
        "tcp_streams_other",
        "too_big",
        "udp_other",
        "udp_sip",
        "untimed",
    )


# ---------------------------------------------------------------------------------------
# SIP -> HEP
# ---------------------------------------------------------------------------------------

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


class _SipReader:
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
    reader = _SipReader(ports, packet_filter, sip_only, st, max_streams, max_tcp_buffer)
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
      (:class:`heptool.core.sipframe.SipSplitter`); a stream that does not start with SIP
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
        yield _message(p, hep_version, proto_type, capture_id, auth_key, node_name, want_cid)


def _message(p: SipPacket, version: int, proto_type: int, capture_id: int | None,
             auth_key: str | None, node_name: str | None, want_cid: bool) -> HepMessage:
    """The HEP message a capture agent sends for one packet (a new object every time)."""
    fam, proto, src, sport, dst, dport, sec, usec, payload = p
    m = HepMessage.__new__(HepMessage)
    _blank(m)
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


# ---------------------------------------------------------------------------------------
# SIP pcap -> HEP3 pcap, fused (the speed path of ``heptool convert sip.pcap -o hep.pcap``)
# ---------------------------------------------------------------------------------------

#: Classic pcap, little-endian, microseconds: what :func:`sip_to_hep3_pcap` reads itself.
PCAP_LE_USEC = b"\xd4\xc3\xb2\xa1"
_REC = struct.Struct("<IIII")
#: Ethernet type; IPv4 version+IHL, total length, flags+fragment offset, protocol, source,
#: destination; UDP source port, destination port, length (the frame's first 40 bytes)
_ETH_IP4_UDP = struct.Struct(">12xHBxH2xHxB2x4s4sHHH")
#: the same with the addresses as numbers
_ETH_IP4_UDP4 = struct.Struct(">12xHBxH2xHxB2xIIHHH")
#: TCP sequence number and flags (at offset 4 of the TCP header; the data offset is between)
_TCP_SEQ_FLAGS = struct.Struct(">I5xB")
_CHUNK = struct.Struct(">HHH").pack
#: Ethernet + IPv4 + UDP header of a frame FrameSynth.udp builds (UDP checksum 0)
_IP4UDP_HEAD = struct.Struct(">16sHH4sHIIHHH2x")
#: What one read asks for (the records are cut out of these blocks).
_READ = 1 << 18
#: Output records gathered before one write.
_BATCH = 512


def _text_chunk(ctype: int, value: str | None) -> bytes:
    if value is None:
        return b""
    b = value.encode()
    return _CHUNK(0, ctype, 6 + len(b)) + b


def sip_to_hep3_pcap(
    path: str | os.PathLike[str],
    synth: FrameSynth,
    hep_src: tuple[str, int],
    hep_dst: tuple[str, int],
    *,
    capture_id: int = 0,
    node_name: str | None = None,
    auth_key: str | None = None,
    ports: frozenset[int] | None = None,
    stats: ConvertStats | None = None,
    max_streams: int = 65536,
    max_tcp_buffer: int = 4 * 1024 * 1024,
) -> Iterator[bytes | HepMessage]:
    """:func:`sip_to_hep` (HEPv3, SIP, default correlation) encoded and framed as classic
    pcap records of HEP-over-UDP frames from ``hep_src`` to ``hep_dst`` (IPv4), fused into
    one loop: the same bytes as ``encode`` + ``synth.udp`` + :class:`PcapFrameWriter`
    (without the file header), ~2x faster.

    ``path`` is a classic little-endian microsecond pcap (:data:`PCAP_LE_USEC`).  Yields
    ``bytes`` (whole records, several at a time) and, in between, the :class:`HepMessage`
    of every message the fused path leaves to the caller's general path (``encode`` then
    ``synth.udp``; ``synth`` is shared, so the IPv4 identifications run on): SIP over TCP,
    IPv6, other link types, VLANs, fragments, and messages too big for one datagram.

    The common frame (Ethernet, IPv4 without options, not fragmented, UDP, SIP) is read at
    fixed offsets straight from the read buffer and packed with one precompiled struct:
    no per-packet objects besides the output pieces.  Whether a datagram starts with SIP
    is decided by :func:`looks_like_sip` on its first line, remembered per distinct line
    (the answer depends on nothing else).  Capture errors are raised as the general
    reader raises them, after every record before them was yielded.
    """
    st = stats if stats is not None else ConvertStats()
    reader = _SipReader(ports, None, True, st, max_streams, max_tcp_buffer)
    general = reader.frame
    to_message = _message
    # the frame header and the HEP chunks up to the payload's length, in one struct
    s_out, d_out = ip_pack(hep_src[0]), ip_pack(hep_dst[0])
    if len(s_out) != 4 or len(d_out) != 4:
        raise ValueError("the fused path writes IPv4 HEP frames only")
    ttl = synth.ttl
    tail = (_CHUNK(0, 0x0B, 7) + b"\x01" + _CHUNK(0, 0x0C, 10) + capture_id.to_bytes(4, "big")
            + _text_chunk(0x0E, auth_key) + _text_chunk(0x13, node_name) + b"\0\0\0\x0f")
    pack = struct.Struct(f">16sHH4sH12sH6sH13sB6s4s6s4s6sH6sH6sI6sI{len(tail)}sH").pack
    c_eth = DST_MAC + SRC_MAC + b"\x08\x00\x45\x00"
    c_ip = bytes((0x40, 0, ttl, 17))
    c_udp = s_out + d_out + hep_src[1].to_bytes(2, "big") + hep_dst[1].to_bytes(2, "big")
    c_hep = b"\0\0HEP3"
    c_fam = _CHUNK(0, 1, 7) + b"\x02" + _CHUNK(0, 2, 7)
    c3, c4, c7, c8 = _CHUNK(0, 3, 10), _CHUNK(0, 4, 10), _CHUNK(0, 7, 8), _CHUNK(0, 8, 8)
    c9, c10 = _CHUNK(0, 9, 10), _CHUNK(0, 10, 10)
    hep_fixed = 6 + 13 + 1 + 10 + 10 + 8 + 8 + 10 + 10 + len(tail) + 2  # all but the payload
    # IPv4 header checksum: the constant words once, then + total length + identification
    k_ip = (0x8500 + (ttl << 8 | 17) + int.from_bytes(s_out, "big") % 0xFFFF
            + int.from_bytes(d_out, "big") % 0xFFFF)
    max_payload = 0xFFFF - 28 - hep_fixed  # larger: the general path reports it
    rec = _REC.pack
    unpack_rec = _REC.unpack_from
    unpack_head = _ETH_IP4_UDP.unpack_from
    is_sip = looks_like_sip
    unpack_tcp = _TCP_SEQ_FLAGS.unpack_from
    tcp_segment = reader.tcp_segment
    first_lines: dict[bytes, bool] = {}
    n_frames = n_sip = n_other = n_port = n_not_ip = 0
    sec = usec = 0
    out: list[bytes] = []
    put = out.append
    f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in finally
    try:
        head = read_exact(f.read, 24)
        if len(head) < 24 or head[:4] != PCAP_LE_USEC:
            raise ValueError(f"{path}: not a classic little-endian microsecond pcap")
        linktype = int.from_bytes(head[20:24], "little") & 0xFFFF
        read = f.read
        buf = b""
        pos = have = 0
        base = 24  # file offset of buf[0]
        want = _READ
        while True:
            more = read(want)
            if not more:
                break
            buf = buf[pos:] + more if pos < have else more
            base += pos
            pos = 0
            have = len(buf)
            want = _READ
            ident = synth._ident
            while pos + 16 <= have:
                sec, usec, caplen, _origlen = unpack_rec(buf, pos)
                if caplen > MAX_CAPLEN:
                    yield b"".join(out)
                    out.clear()
                    raise caplen_error(caplen, n_frames + 1, base + pos)
                f0 = pos + 16
                stop = f0 + caplen
                if stop > have:
                    want = max(_READ, stop - have)
                    break
                pos = stop
                n_frames += 1
                if caplen >= 42 and linktype == 1:
                    (etype, vihl, total, frag, proto, src, dst, sport, dport,
                     ulen) = unpack_head(buf, f0)
                    if (etype == 0x0800 and vihl == 0x45 and proto == 17 and not frag & 0x3FFF
                            and 28 <= total <= caplen - 14 and 8 <= ulen <= total - 20):
                        if ports is not None and sport not in ports and dport not in ports:
                            n_port += 1
                            continue
                        a = f0 + 42
                        b = f0 + 34 + ulen
                        eol = buf.find(b"\n", a, b)
                        if eol < 0:
                            ok = False
                        elif eol - a < 256:
                            line = buf[a:eol + 1]
                            ok = first_lines.get(line)
                            if ok is None:
                                ok = is_sip(line)
                                if len(first_lines) > 4096:
                                    first_lines.clear()
                                first_lines[line] = ok
                        else:
                            ok = is_sip(buf[a:eol + 1])
                        if not ok:
                            n_other += 1
                            continue
                        n_sip += 1
                        plen = b - a
                        if plen <= max_payload:
                            hlen = hep_fixed + plen
                            ulen = hlen + 8
                            total = ulen + 20
                            ident = (ident + 1) & 0xFFFF
                            c = (k_ip + total + ident) % 0xFFFF
                            put(rec(sec, usec, total + 14, total + 14))
                            put(pack(c_eth, total, ident, c_ip, ~c & 0xFFFF if c else 0, c_udp,
                                     ulen, c_hep, hlen, c_fam, 17, c3, src, c4, dst, c7, sport,
                                     c8, dport, c9, sec, c10, usec, tail, plen + 6))
                            put(buf[a:b])
                            if len(out) >= _BATCH:
                                yield b"".join(out)
                                out.clear()
                            continue
                        p = (4, 17, ip4_text(src), sport, ip4_text(dst), dport, sec, usec,
                             buf[a:b])
                        found: Iterable[SipPacket] = (p,)
                        n_sip -= 1  # counted with the others below
                    elif (etype == 0x0800 and vihl == 0x45 and proto == 6
                          and not frag & 0x3FFF and 40 <= total <= caplen - 14):
                        # TCP at fixed offsets too (extract_transport's result, without it)
                        hl = (buf[f0 + 46] >> 4) * 4
                        if hl < 20 or hl > total - 20:
                            n_not_ip += 1
                            continue
                        if ports is not None and sport not in ports and dport not in ports:
                            n_port += 1
                            continue
                        seq, flags = unpack_tcp(buf, f0 + 38)
                        found = tcp_segment(4, ip4_text(src), sport, ip4_text(dst), dport, seq,
                                            flags, buf[f0 + 34 + hl:f0 + 14 + total],
                                            n_frames, sec, usec)
                    else:
                        found = general(n_frames, sec, usec, linktype, buf[f0:stop])
                else:
                    found = general(n_frames, sec, usec, linktype, buf[f0:stop])
                for p in found:
                    pfam, pproto, psrc, psport, pdst, pdport, psec, pusec, payload = p
                    if pproto == 17:
                        n_sip += 1
                    plen = len(payload)
                    if pfam == 4 and plen <= max_payload:
                        hlen = hep_fixed + plen
                        ulen = hlen + 8
                        total = ulen + 20
                        ident = (ident + 1) & 0xFFFF
                        c = (k_ip + total + ident) % 0xFFFF
                        put(rec(psec, pusec, total + 14, total + 14))
                        put(pack(c_eth, total, ident, c_ip, ~c & 0xFFFF if c else 0, c_udp,
                                 ulen, c_hep, hlen, c_fam, pproto, c3, ip_pack(psrc), c4,
                                 ip_pack(pdst), c7, psport, c8, pdport, c9, psec, c10, pusec,
                                 tail, plen + 6))
                        put(payload)
                        continue
                    if out:
                        yield b"".join(out)
                        out.clear()
                    synth._ident = ident
                    yield to_message(p, 3, 1, capture_id, auth_key, node_name, False)
                    ident = synth._ident
            synth._ident = ident
        if out:
            yield b"".join(out)
            out.clear()
        left = have - pos
        if left:
            raise truncated_record_error(left, 16, unpack_rec(buf, pos)[2] if left >= 16 else 0,
                                         n_frames + 1, base + pos)
        for p in reader.close(sec, usec):
            yield to_message(p, 3, 1, capture_id, auth_key, node_name, False)
    finally:
        f.close()
        st.frames += n_frames
        st.udp_sip += n_sip
        st.messages += n_sip
        st.udp_other += n_other
        st.not_port += n_port
        st.not_ip += n_not_ip


# ---------------------------------------------------------------------------------------
# HEP -> frames
# ---------------------------------------------------------------------------------------

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


# HEP -> pcap, fused: the common HEPv3 packet straight to its pcap record

#: Fixed-chunk orders seen in the wild (HEP-SPEC section 10; the codec's decode templates
#: list the same): a packet whose first ten chunk headers are exactly these is read with
#: one struct call.
_HEP3_ORDERS = (
    (0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x03, 0x04),  # OpenSIPS, captagent, sngrep
    (0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C),  # Kamailio, heplify, heptool
    (0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x05, 0x06),
    (0x01, 0x02, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C),
    (0x01, 0x02, 0x03, 0x04, 0x08, 0x07, 0x09, 0x0A, 0x0B, 0x0C),  # Kamailio hlog()
    (0x01, 0x02, 0x05, 0x06, 0x08, 0x07, 0x09, 0x0A, 0x0B, 0x0C),
)
#: chunk type -> (struct code, body size): the values the frames need are read (IPv4
#: addresses as numbers: the checksum wants them so), the others (family, capture id)
#: skipped.
_HEP3_FIXED = {0x01: ("x", 1), 0x02: ("B", 1), 0x03: ("I", 4), 0x04: ("I", 4),
               0x05: ("16s", 16), 0x06: ("16s", 16), 0x07: ("H", 2), 0x08: ("H", 2),
               0x09: ("I", 4), 0x0A: ("I", 4), 0x0B: ("B", 1), 0x0C: ("4x", 4)}
#: chunks that may follow the fixed ones without changing the frames (text, read by
#: decode without a warning whatever they hold); 0x0F, the payload, must be there once.
_HEP3_TEXT = frozenset((0x0E, 0x11, 0x13, 0x65))
_CHUNK_HDR = struct.Struct(">HHH").unpack_from
_PAYLOAD_CHUNK = b"\0\0\0\x0f"


def _hep3_template(order: tuple[int, ...]) -> tuple:
    """(signature, mask, end, unpack, pick, IPv6?) of one fixed layout: the magic and the
    ten chunk headers compared at once (values masked out), then every value read with
    one struct call from offset 0 and put in the order (length, ip proto, source,
    destination, source port, destination port, seconds, microseconds, proto type)."""
    fmt = ">4xH"
    sig = b"HEP3\0\0"
    mask = b"\xff" * 4 + b"\0\0"
    fields = [0]  # the length field
    for t in order:
        code, size = _HEP3_FIXED[t]
        fmt += "6x" + code
        sig += _CHUNK(0, t, 6 + size) + bytes(size)
        mask += b"\xff" * 6 + bytes(size)
        if code[-1] != "x":
            fields.append(t)
    v6 = 0x05 in order
    want = [0, 0x02, 0x05 if v6 else 0x03, 0x06 if v6 else 0x04, 0x07, 0x08, 0x09, 0x0A, 0x0B]
    s = struct.Struct(fmt)
    assert s.size == len(sig)
    return (int.from_bytes(sig, "big"), int.from_bytes(mask, "big"), s.size, s.unpack_from,
            itemgetter(*[fields.index(t) for t in want]), v6)


_HEP3_BY_THIRD: dict[int, list[tuple]] = {}
for _order in _HEP3_ORDERS:
    _HEP3_BY_THIRD.setdefault(_order[2], []).append(_hep3_template(_order))
del _order


def hep_pcap_to_records(path: str | os.PathLike[str], framer: HepFramer, *,
                        stats: CaptureStats | None = None) -> Iterator[Any]:
    """``hep3_to_pcap_records(iter_input(path), framer)`` for a classic little-endian
    microsecond pcap file (:data:`PCAP_LE_USEC`), fused one step further: the HEP packets
    are read, checked and converted straight out of the read buffer, with no
    :class:`~heptool.capture.inputs.InputPacket` unless one goes to the caller's general
    path (it is then the one ``iter_input`` would give).

    Records are cut out of 256 KiB reads, and the frame every HEP capture is made of
    (Ethernet, IPv4 without options, not fragmented, UDP) is read at fixed offsets with
    :func:`~heptool.capture.pcap.iter_hep_payloads`' own checks; its HEP packet is
    converted as :func:`hep3_to_pcap_records` converts (same layouts, same rules).  At the
    first record that is anything else (TCP, VLAN, IPv6, fragments, another link type, a
    damaged or truncated record) the rest of the file is read by ``iter_hep_payloads``
    itself, from that record on, with frame numbers and byte offsets carried over (until
    then that reader would have kept no state: no stream, no fragment), and converted by
    :func:`hep3_to_pcap_records`.
    """
    new = tuple.__new__
    packet = InputPacket
    unpack_rec = _REC.unpack_from
    unpack_head = _ETH_IP4_UDP4.unpack_from
    candidate = is_hep_candidate
    magics = (b"HEP3", b"EEP1", b"EEP3")
    eps: dict[int, str] = {}
    synth = framer.synth
    tcp = synth.tcp
    udp = synth.udp
    by_third = _HEP3_BY_THIRD
    texts = _HEP3_TEXT
    hdr = _CHUNK_HDR
    pchunk = _PAYLOAD_CHUNK
    from_bytes = int.from_bytes
    rec = _REC.pack
    head_pack = _IP4UDP_HEAD.pack
    eth = DST_MAC + SRC_MAC + b"\x08\x00\x45\x00"
    ttl = synth.ttl
    k_ip = 0x8500 + (ttl << 8 | 17)
    c_ip = bytes((0x40, 0, ttl, 17))
    tcp_protos = TCP_PROTOS
    max_udp = 0xFFFF - 28
    out: list[bytes] = []
    put = out.append
    n_msgs = n_frames = 0
    index = frame = 0
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in finally
    except OSError as e:  # as iter_input says it
        raise InputError(f"{path}: {e.strerror or e}") from None
    try:
        last = framer.last
        ident = synth._ident
        sig, mask, end, unpack, pick, v6 = by_third[0x03][0]
        try:
            head = read_exact(f.read, 24)
            if len(head) < 24 or head[:4] != PCAP_LE_USEC:
                raise ValueError(f"{path}: not a classic little-endian microsecond pcap")
            read = f.read
            buf = b""
            pos = have = 0
            base = 24  # file offset of buf[0]
            want = _READ
            # at a record the fast loop does not read (any, when the link is not Ethernet)
            stopped = int.from_bytes(head[20:24], "little") & 0xFFFF != 1
            while not stopped:
                more = read(want)
                if not more:
                    break
                buf = buf[pos:] + more if pos < have else more
                base += pos
                pos = 0
                have = len(buf)
                want = _READ
                while pos + 16 <= have:
                    sec, usec, caplen, _origlen = unpack_rec(buf, pos)
                    f0 = pos + 16
                    stop = f0 + caplen
                    if caplen > MAX_CAPLEN or caplen < 42:
                        stopped = True  # the general reader says what is wrong, or reads it
                        break
                    if stop > have:
                        want = max(_READ, stop - have)
                        break
                    etype, vihl, total, frag, proto, sip, dip, sport, dport, ulen = unpack_head(
                        buf, f0)
                    if not (etype == 0x0800 and vihl == 0x45 and proto == 17
                            and not frag & 0x3FFF and 28 <= total <= caplen - 14
                            and 8 <= ulen <= total - 20):
                        stopped = True
                        break
                    pos = stop
                    frame += 1
                    a = f0 + 42  # the datagram's payload: buf[a:z]
                    z = f0 + 34 + ulen
                    if not ((ulen >= 24 and buf[a:a + 4] in magics) or candidate(buf[a:z])):
                        continue
                    # a HEP packet: the common case converted here (see hep3_to_pcap_records)
                    n = z - a
                    if n < end or from_bytes(buf[a:a + end], "big") & mask != sig:
                        for t in by_third.get(buf[a + 23] if n >= 24 else -1, ()):
                            if t[2] <= n and from_bytes(buf[a:a + t[2]], "big") & t[1] == t[0]:
                                sig, mask, end, unpack, pick, v6 = t
                                break
                        else:
                            n = 0
                    if n:
                        (length, hproto, src, dst, hsport, hdport, hsec, husec,
                         pt) = pick(unpack(buf, a))
                        e = a + end
                        if (buf[e:e + 4] == pchunk and n - end >= 6
                                and (buf[e + 4] << 8 | buf[e + 5]) == n - end):
                            payload = buf[e + 6:z]
                        else:
                            payload = None
                            off = e
                            seen = 0
                            while off + 6 <= z:
                                vendor, ctype, clen = hdr(buf, off)
                                nxt = off + clen
                                if vendor or clen < 6 or nxt > z:
                                    break
                                if ctype == 0x0F and payload is None:
                                    payload = buf[off + 6:nxt]
                                elif ctype not in texts or seen & (1 << (ctype & 0x7F)):
                                    break
                                else:
                                    seen |= 1 << (ctype & 0x7F)
                                off = nxt
                            if off != z:
                                payload = None
                        if (length == n and payload is not None
                                and (pt != 1 or payload[:1] != b"{")):
                            plen = len(payload)
                            if not v6 and plen <= max_udp and (pt != 1 or hproto not in tcp_protos
                                                               or not plen):
                                last = (hsec, husec)
                                total = 28 + plen
                                ident = (ident + 1) & 0xFFFF
                                c = (k_ip + src + dst + total + ident) % 0xFFFF
                                put(rec(hsec, husec, total + 14, total + 14))
                                put(head_pack(eth, total, ident, c_ip, ~c & 0xFFFF if c else 0,
                                              src, dst, hsport, hdport, total - 20))
                                put(payload)
                                n_msgs += 1
                                n_frames += 1
                                index += 1
                                if len(out) >= _BATCH:
                                    yield b"".join(out)
                                    out.clear()
                                continue
                            if v6:
                                s_txt, d_txt = ip6_text(src), ip6_text(dst)
                            else:
                                s_txt = ip4_text(src.to_bytes(4, "big"))
                                d_txt = ip4_text(dst.to_bytes(4, "big"))
                            synth._ident = ident
                            try:
                                if pt == 1 and hproto in tcp_protos and plen:
                                    frames = tcp(s_txt, hsport, d_txt, hdport, payload)
                                else:
                                    frames = [udp(s_txt, hsport, d_txt, hdport, payload)]
                            except ValueError:
                                frames = None  # too big: the general path counts it
                            ident = synth._ident
                            if frames is not None:
                                last = (hsec, husec)
                                n_msgs += 1
                                for fr in frames:
                                    k = len(fr)
                                    put(rec(hsec, husec, k, k))
                                    put(fr)
                                n_frames += len(frames)
                                index += 1
                                continue
                    # the general path's packet, as iter_input gives it
                    s_ep = eps.get(sip << 16 | sport) or endpoint4(eps, buf, f0 + 26, sport)
                    d_ep = eps.get(dip << 16 | dport) or endpoint4(eps, buf, f0 + 30, dport)
                    if out:
                        yield b"".join(out)
                        out.clear()
                    synth._ident = ident
                    framer.last = last
                    yield new(packet, (index, frame, None, None, "udp", s_ep, d_ep, (sec, usec),
                                       buf[a:z], None, None))
                    ident = synth._ident
                    last = framer.last
                    index += 1
            if out:
                yield b"".join(out)
                out.clear()
        except Exception:
            if out:  # what came before a damaged input is written before the error
                yield b"".join(out)
                out.clear()
            raise
        finally:
            synth._ident = ident
            framer.last = last
            framer.n_msgs += n_msgs
            framer.n_frames += n_frames
        if not stopped and pos == have:
            return  # every record was read here
        # the rest of the file, from the first record not read here, the general way
        yield from hep3_to_pcap_records(_hep_tail(f, head, base + pos, frame, index, stats),
                                        framer)
    finally:
        f.close()


def _hep_tail(f: Any, head: bytes, offset: int, frame: int, index: int,
              stats: CaptureStats | None = None) -> Iterator[Any]:
    """``iter_input``'s packets of a pcap file from the record at ``offset`` on (frame
    ``frame + 1``, packet ``index``): ``iter_hep_payloads`` reading the file from there,
    its file header put back in front, its frame numbers and offsets shifted back.
    ``stats`` gets that reader's counts (its ``stream_garbage_frame`` shifted back too)."""
    new = tuple.__new__
    packet = InputPacket
    f.seek(offset)
    delta = offset - 24
    st = CaptureStats()
    try:
        for fr, sec, usec, transport, src, dst, data in iter_hep_payloads(_Resume(head, f),
                                                                          stats=st):
            yield new(packet, (index, fr + frame, None, None, transport, src, dst, (sec, usec),
                               data, None, None))
            index += 1
    except CaptureError as e:
        raise CaptureError(e.message, frame=None if e.frame is None else e.frame + frame,
                           offset=None if e.offset is None else e.offset + delta) from None
    finally:
        if stats is not None:
            if st.stream_garbage_frame:
                st.stream_garbage_frame += frame
            for k, v in st.as_dict().items():
                setattr(stats, k, getattr(stats, k) + v)


class _Resume:
    """A pcap file read from a record onwards, its file header put back in front."""

    __slots__ = ("_f", "_head")

    def __init__(self, head: bytes, f: Any) -> None:
        self._head = head
        self._f = f

    def read(self, n: int = -1) -> bytes:
        head = self._head
        if not head:
            return self._f.read(n)  # type: ignore[no-any-return]
        if n is None or n < 0:
            self._head = b""
            return head + self._f.read()  # type: ignore[no-any-return]
        self._head = head[n:]
        return head[:n] if n <= len(head) else head + self._f.read(n - len(head))

    def read1(self, n: int = -1) -> bytes:
        return self.read(n)


def hep3_to_pcap_records(packets: Iterable[Any], framer: HepFramer) -> Iterator[Any]:
    """``hep_to_frames`` + :class:`PcapFrameWriter` (no comments) for the common packet,
    fused: the HEP bytes of each input packet (``packets`` are
    :class:`~heptool.capture.inputs.InputPacket` items) go straight to pcap records, no
    message object, no generic decode.  Yields ``bytes`` (whole records, several at a
    time) and, in order between them, every packet it leaves to the caller's general path
    (decode, then ``framer.frames``; ``framer`` is shared, so flows, identifications and
    the last time run on).

    The common packet: HEPv3, its length field equal to its size, the first ten chunks
    one of the fixed layouts agents send (:data:`_HEP3_ORDERS`, exact headers and sizes),
    then the payload chunk once and at most the text chunks 0x0E/0x11/0x13/0x65 once each:
    a packet ``decode`` reads without a warning, into exactly the values used here.  SIP
    whose payload is JSON-wrapped (OpenSIPS), and payloads too big for one datagram, are
    left to the general path.
    """
    synth = framer.synth
    tcp = synth.tcp
    udp = synth.udp
    by_third = _HEP3_BY_THIRD
    texts = _HEP3_TEXT
    hdr = _CHUNK_HDR
    pchunk = _PAYLOAD_CHUNK
    from_bytes = int.from_bytes
    rec = _REC.pack
    head = _IP4UDP_HEAD.pack
    eth = DST_MAC + SRC_MAC + b"\x08\x00\x45\x00"
    ttl = synth.ttl
    k_ip = 0x8500 + (ttl << 8 | 17)
    c_ip = bytes((0x40, 0, ttl, 17))
    tcp_protos = TCP_PROTOS
    max_udp = 0xFFFF - 28
    out: list[bytes] = []
    put = out.append
    n_msgs = n_frames = 0
    last = framer.last
    ident = synth._ident
    # the template of the previous packet is tried first (a capture has few layouts)
    sig, mask, end, unpack, pick, v6 = by_third[0x03][0]
    try:
        for p in packets:
            data = p[8]  # InputPacket.data
            if data is None:
                n = 0
            else:
                n = len(data)
                if n < end or from_bytes(data[:end], "big") & mask != sig:
                    for t in by_third.get(data[23] if n >= 24 else -1, ()):
                        if t[2] <= n and from_bytes(data[:t[2]], "big") & t[1] == t[0]:
                            sig, mask, end, unpack, pick, v6 = t
                            break
                    else:
                        n = 0
            if n:
                (length, proto, src, dst, sport, dport, sec, usec,
                 pt) = pick(unpack(data, 0))
                if (data[end:end + 4] == pchunk and n - end >= 6
                        and (data[end + 4] << 8 | data[end + 5]) == n - end):
                    payload = data[end + 6:]  # the payload chunk right after, and last
                else:
                    payload = None
                    off = end
                    seen = 0
                    while off + 6 <= n:  # the chunks after the fixed ones
                        vendor, ctype, clen = hdr(data, off)
                        nxt = off + clen
                        if vendor or clen < 6 or nxt > n:
                            break
                        if ctype == 0x0F and payload is None:
                            payload = data[off + 6:nxt]
                        elif ctype not in texts or seen & (1 << (ctype & 0x7F)):
                            break
                        else:
                            seen |= 1 << (ctype & 0x7F)
                        off = nxt
                    if off != n:
                        payload = None
                if length == n and payload is not None and (pt != 1 or payload[:1] != b"{"):
                    plen = len(payload)
                    if not v6 and plen <= max_udp and (pt != 1 or proto not in tcp_protos
                                                       or not plen):
                        # UDP over IPv4: FrameSynth.udp written out (the checksum's
                        # address words summed as the numbers they are, modulo 0xFFFF)
                        last = (sec, usec)
                        total = 28 + plen
                        ident = (ident + 1) & 0xFFFF
                        c = (k_ip + src + dst + total + ident) % 0xFFFF
                        put(rec(sec, usec, total + 14, total + 14))
                        put(head(eth, total, ident, c_ip, ~c & 0xFFFF if c else 0, src, dst,
                                 sport, dport, total - 20))
                        put(payload)
                        n_msgs += 1
                        n_frames += 1
                        if len(out) >= _BATCH:
                            yield b"".join(out)
                            out.clear()
                        continue
                    # TCP, or IPv6: through FrameSynth with the addresses as text
                    if v6:
                        s_txt, d_txt = ip6_text(src), ip6_text(dst)
                    else:
                        s_txt, d_txt = ip4_text(src.to_bytes(4, "big")), ip4_text(
                            dst.to_bytes(4, "big"))
                    synth._ident = ident
                    try:
                        if pt == 1 and proto in tcp_protos and plen:
                            frames = tcp(s_txt, sport, d_txt, dport, payload)
                        else:
                            frames = [udp(s_txt, sport, d_txt, dport, payload)]
                    except ValueError:
                        frames = None  # too big for one datagram: the general path counts it
                    ident = synth._ident
                    if frames is not None:
                        last = (sec, usec)
                        n_msgs += 1
                        for fr in frames:
                            k = len(fr)
                            put(rec(sec, usec, k, k))
                            put(fr)
                        n_frames += len(frames)
                        continue
            if out:
                yield b"".join(out)
                out.clear()
            synth._ident = ident
            framer.last = last
            yield p
            ident = synth._ident
            last = framer.last
        if out:
            yield b"".join(out)
            out.clear()
    except Exception:
        if out:  # what came before a damaged input is written before the error is reported
            yield b"".join(out)
            out.clear()
        raise
    finally:
        synth._ident = ident
        framer.last = last
        framer.n_msgs += n_msgs
        framer.n_frames += n_frames


# ---------------------------------------------------------------------------------------
# Live capture
# ---------------------------------------------------------------------------------------

def _arphrd(iface: str) -> int:
    """The ARPHRD type of a Linux interface (sysfs), 1 (Ethernet) when unknown."""
    try:
        with open(f"/sys/class/net/{iface}/type", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1


def live_frames(iface: str, bpf: str | None = None, *, count: int | None = None,
                timeout: float | None = None, snaplen: int = 262144) -> Iterator[Frame]:
    """Frames read live from ``iface``, as :class:`Frame` tuples for :func:`sip_to_hep`.

    scapy is imported here, never at module level (``import scapy.all`` costs 0.5-0.9 s),
    and only for its packet socket with a compiled BPF filter: frames are taken as raw
    bytes (``recv_raw``) and never dissected by scapy (13 us a packet); the struct-based
    dissection that reads files reads them.  Packets the host sends are included (a capture
    agent sees both directions), except on loopback, where the kernel would show every
    packet twice (going out and coming in) and only the incoming copy is kept, as tcpdump
    does.  Stops after
    ``count`` frames or ``timeout`` seconds in total (both optional; the caller may also
    just stop iterating).  Needs root or CAP_NET_RAW: PermissionError otherwise.
    """
    import logging
    import select
    import time

    import scapy.arch  # noqa: F401 - sets conf.L2listen for this platform
    from scapy.config import conf

    log = logging.getLogger("scapy.runtime")
    level = log.level
    log.setLevel(logging.ERROR)  # "Unable to guess type" warnings for lo: we read raw bytes
    arphrd = _arphrd(iface)
    # L2socket drops the outgoing copies (wanted on lo only), L2listen keeps them
    factory = conf.L2socket if arphrd == 772 else conf.L2listen
    try:
        sock = factory(iface=iface, filter=bpf)
    finally:
        log.setLevel(level)
    # tun/none, GRE, sit have no link header: raw IP; everything else reads as Ethernet
    linktype = 101 if arphrd in (65534, 778, 776) else 1
    deadline = None if timeout is None else time.monotonic() + timeout
    n = 0
    new = tuple.__new__
    try:
        while count is None or n < count:
            wait = 0.2
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, left)
            r, _w, _x = select.select([sock], [], [], wait)
            if not r:
                continue
            _cls, data, ts = sock.recv_raw(snaplen)
            if data is None:
                continue
            if ts is None:
                ts = time.time()
            sec = int(ts)
            usec = min(round((ts - sec) * 1e6), 999_999)
            n += 1
            yield new(Frame, (n, sec, usec, linktype, bytes(data)))
    finally:
        sock.close()


# ---------------------------------------------------------------------------------------
# A BPF-like filter for capture files
# ---------------------------------------------------------------------------------------

def _both(a: Any, b: Any) -> Any:
    return lambda t: a(t) and b(t)


def _either(a: Any, b: Any) -> Any:
    return lambda t: a(t) or b(t)


class FilterSyntaxError(ValueError):
    """A ``--filter`` expression outside the supported subset (one line, names the token)."""


_FILTER_HELP = ("supported: [src|dst] host ADDR, [src|dst] net CIDR, [src|dst] port N, "
                "[src|dst] portrange A-B, udp, tcp, ip, ip6, not/!, and/&&, or/||, ( )")


def compile_filter(text: str) -> Any:
    """``predicate(transport) -> bool`` for a pcap-filter(7)-like expression, for files.

    The subset: ``[src|dst] host ADDR``, ``[src|dst] net CIDR``, ``[src|dst] port N``,
    ``[src|dst] portrange A-B``, ``udp``, ``tcp``, ``ip``, ``ip6``, combined with
    ``not``/``!``, ``and``/``&&``, ``or``/``||`` (and and or of equal precedence, left to
    right, as in pcap-filter; two terms side by side mean and: ``udp port 5060``) and
    parentheses.  The predicate takes a
    :class:`~heptool.capture.pcap.Transport` (after IP reassembly: a fragmented datagram is
    matched once it is whole).  Live capture hands the expression to the kernel instead.
    Raises :class:`FilterSyntaxError`.
    """
    import ipaddress
    import re

    tokens = re.findall(r"\(|\)|&&|\|\||!|[^\s()!]+", text)
    if not tokens:
        raise FilterSyntaxError(f"empty filter ({_FILTER_HELP})")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterSyntaxError(f"filter {text!r} ends too early ({_FILTER_HELP})")
        pos += 1
        return tokens[pos - 1]

    def port_num(tok: str) -> int:
        port = port_number(tok)
        if port is None:
            raise FilterSyntaxError(f"filter: {tok!r} is not a port number")
        return port

    def primary() -> Any:
        tok = take()
        low = tok.lower()
        if tok == "(":
            e = expr()
            if take() != ")":
                raise FilterSyntaxError(f"filter {text!r}: missing ')'")
            return e
        if low in ("not", "!"):
            inner = primary()
            return lambda t: not inner(t)
        if low in ("udp", "tcp"):
            proto = 17 if low == "udp" else 6
            return lambda t: t.proto == proto
        if low in ("ip", "ip6"):
            fam = 4 if low == "ip" else 6
            return lambda t: t.family == fam
        side = None
        if low in ("src", "dst"):
            side = low
            tok = take()
            low = tok.lower()
        if low == "host":
            arg = take()
            try:
                addr = ipaddress.ip_address(arg).compressed
            except ValueError:
                raise FilterSyntaxError(f"filter: {arg!r} is not an IP address") from None
            if side == "src":
                return lambda t: t.src == addr
            if side == "dst":
                return lambda t: t.dst == addr
            return lambda t: t.src == addr or t.dst == addr
        if low == "net":
            arg = take()
            try:
                net = ipaddress.ip_network(arg, strict=False)
            except ValueError:
                raise FilterSyntaxError(f"filter: {arg!r} is not a network") from None

            def in_net(a: str) -> bool:
                try:
                    return ipaddress.ip_address(a) in net
                except ValueError:
                    return False
            if side == "src":
                return lambda t: in_net(t.src)
            if side == "dst":
                return lambda t: in_net(t.dst)
            return lambda t: in_net(t.src) or in_net(t.dst)
        if low in ("port", "portrange"):
            arg = take()
            if low == "port":
                lo = hi = port_num(arg)
            else:
                a, sep, b = arg.partition("-")
                if not sep:
                    raise FilterSyntaxError(f"filter: portrange needs A-B, not {arg!r}")
                lo, hi = port_num(a), port_num(b)
            if side == "src":
                return lambda t: lo <= t.sport <= hi
            if side == "dst":
                return lambda t: lo <= t.dport <= hi
            return lambda t: lo <= t.sport <= hi or lo <= t.dport <= hi
        raise FilterSyntaxError(f"filter: {tok!r} is not supported for files ({_FILTER_HELP})")

    def expr() -> Any:
        left = primary()
        while peek() is not None and peek() != ")":
            op = peek().lower()  # type: ignore[union-attr]
            if op in ("and", "&&", "or", "||"):
                take()
            else:
                op = "and"  # juxtaposition, as in 'udp port 5060'
            right = primary()
            left = _both(left, right) if op in ("and", "&&") else _either(left, right)
        return left

    pred = expr()
    if pos != len(tokens):
        raise FilterSyntaxError(f"filter {text!r}: unexpected {tokens[pos]!r}")
    return pred
