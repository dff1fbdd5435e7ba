"""HEP packets in a capture: candidate sniffing, :func:`iter_hep_payloads`, TCP stream state.

:func:`iter_hep_payloads` glues the lower modules together (:mod:`.source` frames,
:mod:`.dissect` transport, :mod:`.reassembly` fragments and streams) and yields one
:class:`HepPayload` per HEP packet: one per UDP datagram whose first bytes look like HEP
(:func:`is_hep_candidate`), and as many as the stream holds for TCP (split by the core's
:class:`~heptool.core.stream.StreamDecoder`, see :class:`_StreamState`).  Its hot loop has
a fused Ethernet/IPv4/UDP fast path, and a C version of it (``udp4_hep``) when the
extension is built; :data:`_c_udp4_hep` is looked up here, in this module, on every call.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import IO, NamedTuple

from heptool.sip.framing import looks_like_sip

from ..core.accel import c_function
from ..core.addr import ip4_text
from ..core.stream import NEED_DATA, StreamDecoder
from ..core.wire import EEP1, HEP3, MAGICS, v12_header_size
from .dissect import eth_ip4_udp, extract_transport
from .reassembly import TCP_SYN, ConnKey, IPReassembler, TcpReassembler
from .source import open_capture
from .stats import CaptureStats

__all__ = [
    "HepPayload",
    "endpoint4",
    "is_hep_candidate",
    "is_hep_stream_start",
    "iter_hep_payloads",
]

_new_tuple = tuple.__new__  # builds NamedTuples without the Python-level __new__ (hot loop)
_ip4_str = ip4_text

# optional C version of iter_hep_payloads' fused Ethernet/IPv4/UDP/HEP3 fast path
_c_udp4_hep = c_function("udp4_hep")


def is_hep_candidate(data: bytes) -> bool:
    """Does this datagram look like HEP (by its first bytes only)?

    ``HEP3``/``EEP1``/``EEP3`` magic, or a v1/v2 header: byte 0 is 1 or 2 and either the
    length byte is 16/40 (IPv4/IPv6 header size) or the family byte is 2/10.  The family
    alternative is there because sngrep's v2 sender writes garbage into the length byte
    (HEP-SPEC section 14, sngrep item 3).  This is a sniff, not a decode.
    """
    if len(data) < 16:
        return len(data) >= 6 and data[:4] in MAGICS
    b0 = data[0]
    if b0 == 1 or b0 == 2:
        return data[1] in (16, 40) or data[2] in (2, 10)
    return data[:4] in MAGICS


def is_hep_stream_start(data: bytes) -> bool:
    """Does this TCP payload start a HEP packet (by its first bytes; a sniff, not a decode)?

    ``HEP3``/``EEP1`` magic, or a HEPv1/v2 header (:func:`is_hep_candidate`) followed by a
    SIP start line: v1/v2 have no length, so over TCP (Kamailio's ``siptrace`` sends them
    so) a packet is the header and one SIP message, and the SIP text right after the header
    is what tells it from any binary protocol whose first byte happens to be 1 or 2.  A
    segment holding exactly the header (a sender that writes the header and the SIP
    separately) counts too.
    """
    if data[:4] in (HEP3, EEP1):  # not EEP3: today's rule, kept (plan12 1.13 a)
        return True
    if not (data[:1] in (b"\x01", b"\x02") and is_hep_candidate(data)):
        return False
    start = v12_header_size(data[0], data[1], data[2])
    if not start:
        return False
    return len(data) == start or looks_like_sip(data[start:])


class HepPayload(NamedTuple):
    """One HEP packet found in a capture."""

    frame: int  # 1-based frame where the HEP packet starts
    ts_sec: int  # capture time of that frame
    ts_usec: int
    transport: str  # "udp" or "tcp"
    src: str  # outer "ip:port" ("[v6]:port" for IPv6)
    dst: str
    data: bytes  # exactly one HEP packet


def _endpoint(family: int, ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if family == 6 else f"{ip}:{port}"


def endpoint4(eps: dict[int, str], data: bytes, at: int, port: int) -> str:
    """The ``ip:port`` text of the IPv4 address at ``data[at:at + 4]`` and ``port``, made
    and remembered in ``eps`` under ``address << 16 | port`` (the fast paths look it up
    there first and call this on a miss; the cache is emptied past 65,536 entries)."""
    if len(eps) > 65536:
        eps.clear()
    ip = data[at:at + 4]
    text = eps[int.from_bytes(ip, "big") << 16 | port] = f"{_ip4_str(ip)}:{port}"
    return text


def iter_hep_payloads(
    source: str | os.PathLike[str] | IO[bytes],
    port: int | None = None,
    *,
    stats: CaptureStats | None = None,
    max_tcp_buffer: int = 4 * 1024 * 1024,
) -> Iterator[HepPayload]:
    """Every HEP packet in a capture, in the order its first byte was captured.

    UDP: one HEP packet per datagram whose first bytes look like HEP
    (:func:`is_hep_candidate`), whatever the ports.  TCP: each direction is reassembled
    and split into HEP packets.  ``port`` keeps only traffic with that source or
    destination port.  Everything skipped is counted in ``stats``.
    """
    st = stats if stats is not None else CaptureStats()
    frag = IPReassembler()
    tcp = TcpReassembler(max_buffer=max_tcp_buffer)
    streams: dict[ConnKey, _StreamState] = {}
    extract = extract_transport
    candidate = is_hep_candidate
    new = _new_tuple
    tcp_times: dict[
        int, tuple[int, int]
    ] = {}  # frame -> (sec, usec) of TCP frames still referenced
    eps: dict[int, str] = {}  # outer "ip:port" text per (IPv4 address, port) of the fast path
    e4u = eth_ip4_udp
    magics = MAGICS
    c_udp4 = _c_udp4_hep
    for frame_no, sec, usec, linktype, data in open_capture(source):
        st.frames += 1
        if linktype == 1 and c_udp4 is not None:
            # the same fused fast path in C (heptool.core._speedups): HEP3 magic only
            hit = c_udp4(data, eps, port)
            if hit is not None:
                if hit == 0:
                    st.not_port += 1
                    continue
                st.hep_packets += 1
                yield new(HepPayload, (frame_no, sec, usec, "udp", *hit))
                continue
        # fast path, fused: extract_transport's Ethernet/IPv4/UDP case and the UDP branch
        # below, with the endpoint text cached (same checks, same results)
        h = e4u(data, 0, len(data)) if linktype == 1 else None
        if h is not None:
            sip, dip, sport, dport, end = h
            if port is not None and sport != port and dport != port:
                st.not_port += 1
                continue
            payload = data[42:end]
            if (end >= 58 and data[42:46] in magics) or candidate(payload):
                st.hep_packets += 1
                src = eps.get(sip << 16 | sport) or endpoint4(eps, data, 26, sport)
                dst = eps.get(dip << 16 | dport) or endpoint4(eps, data, 30, dport)
                yield new(HepPayload, (frame_no, sec, usec, "udp", src, dst, payload))
            else:
                st.not_hep_udp += 1
            continue
        t = extract(linktype, data, frag)
        if t is None:
            st.not_ip += 1
            continue
        if port is not None and t.sport != port and t.dport != port:
            st.not_port += 1
            continue
        if t.proto == 17:
            payload = t.payload
            if candidate(payload):
                st.hep_packets += 1
                fam = t.family
                yield new(
                    HepPayload,
                    (
                        frame_no,
                        sec,
                        usec,
                        "udp",
                        _endpoint(fam, t.src, t.sport),
                        _endpoint(fam, t.dst, t.dport),
                        payload,
                    ),
                )
            else:
                st.not_hep_udp += 1
            continue
        st.tcp_segments += 1
        key = (t.src, t.sport, t.dst, t.dport)
        if t.flags & TCP_SYN and key in streams and streams[key].end:
            _close_stream(streams.pop(key), st)  # 4-tuple reused: a new stream
        chunks = tcp.add(key, t.seq, t.flags, t.payload, frame_no)
        if chunks:
            tcp_times[frame_no] = (sec, usec)
            for ckey, off, cframe, cdata in chunks:
                s = streams.get(ckey)
                if s is None:
                    s = streams[ckey] = _StreamState(t.family, ckey)
                yield from s.feed(off, cframe, cdata, tcp_times, st)
        if len(tcp_times) > 100_000:
            _prune_times(tcp_times, streams)
    for ckey, off, cframe, cdata in tcp.flush():
        s = streams.get(ckey)
        if s is None:
            continue
        yield from s.feed(off, cframe, cdata, tcp_times, st)
    for s in streams.values():
        _close_stream(s, st)
    st.tcp_dropped_bytes += tcp.dropped_bytes
    st.tcp_gap_bytes += tcp.gap_bytes
    st.fragments_dropped += frag.dropped


def _prune_times(
    tcp_times: dict[int, tuple[int, int]], streams: dict[ConnKey, _StreamState]
) -> None:
    keep = set()
    for s in streams.values():
        keep.update(fr for _o, fr in s.starts)
    for fr in [fr for fr in tcp_times if fr not in keep]:
        del tcp_times[fr]


def _close_stream(s: _StreamState, st: CaptureStats) -> None:
    if s.mode is None:  # never found HEP in it
        st.non_hep_tcp_bytes += s.undecided + s.leftover()
    elif s.mode == "hep":
        st.stream_leftover_bytes += s.leftover()


class _StreamState:
    """Splits one TCP direction into HEP packets and maps them back to frames.

    The framing is the core's :class:`~heptool.core.stream.StreamDecoder` (lenient:
    garbage is skipped up to the next magic and counted), so v3 length framing and
    v1/v2-by-Content-Length framing follow one set of rules.  Its
    :meth:`~heptool.core.stream.StreamDecoder.next_frame` hands out each packet's exact
    bytes and stream offset without decoding it (a packet that would not decode is still
    a HEP packet, for the caller to report).
    """

    __slots__ = ("base", "dec", "dst", "end", "mode", "src", "starts", "undecided")

    def __init__(self, family: int, key: ConnKey) -> None:
        self.src = _endpoint(family, key[0], key[1])
        self.dst = _endpoint(family, key[2], key[3])
        self.starts: deque[tuple[int, int]] = deque()  # (stream offset, frame) of each chunk
        self.mode: str | None = None  # None = undecided, "hep", "other"
        self.undecided = 0  # bytes skipped before the first HEP packet was found
        self._restart(0)

    def _restart(self, off: int) -> None:
        self.dec = StreamDecoder(strict=False)
        self.base = off  # stream offset of the decoder's offset 0
        self.end = off  # stream offset just past the last byte fed

    def leftover(self) -> int:
        return self.dec.buffered

    def _garbage(self, off: int, n: int, st: CaptureStats) -> None:
        """``n`` bytes from stream offset ``off`` were skipped after the stream had carried
        HEP (counted in ``stream_skipped_bytes`` too): also counted as damage, with the frame
        the first such run starts in (``stream_garbage_frame``) for the report."""
        st.stream_garbage_bytes += n
        if not st.stream_garbage_frame:
            frame = self.starts[0][1] if self.starts else 0
            for o, f in self.starts:
                if o > off:
                    break
                frame = f
            st.stream_garbage_frame = frame

    def feed(
        self,
        off: int,
        frame: int,
        data: bytes,
        tcp_times: dict[int, tuple[int, int]],
        st: CaptureStats,
    ) -> Iterator[HepPayload]:
        if self.mode == "other":
            st.non_hep_tcp_bytes += len(data)
            return
        if (
            off != self.end
        ):  # a hole the reassembler skipped (end of capture): drop the partial packet
            lost = self.dec.buffered
            if self.mode is None:
                self.undecided += lost
            else:
                st.stream_skipped_bytes += lost
            self._restart(off)
        self.end = off + len(data)
        self.starts.append((off, frame))
        dec = self.dec
        dec.feed(data)
        next_frame = dec.next_frame
        base = self.base
        starts = self.starts
        while True:
            before = dec.offset
            skipped = dec.skipped_bytes
            got = next_frame()
            run = dec.skipped_bytes - skipped
            if run and self.mode == "hep":  # not HEP inside a HEP stream: damage, not a start
                self._garbage(base + before, run, st)
            if got is NEED_DATA:
                break
            at, pkt = got  # type: ignore[misc]
            start = base + at
            if self.mode is None:
                self.mode = "hep"
                st.stream_skipped_bytes += self.undecided
            while len(starts) > 1 and starts[1][0] <= start:
                starts.popleft()
            fr = starts[0][1]
            sec, usec = tcp_times.get(fr, (0, 0))
            st.hep_packets += 1
            yield _new_tuple(HepPayload, (fr, sec, usec, "tcp", self.src, self.dst, pkt))
        new_skipped = dec.skipped_bytes
        dec.skipped_bytes = 0
        if self.mode is None:
            self.undecided += new_skipped
            if self.end - self.base > _UNDECIDED_LIMIT:
                # no HEP packet in the first 64 KiB: not a HEP stream (SIP over TCP, ...)
                self.mode = "other"
                st.non_hep_tcp_bytes += self.undecided + dec.buffered
                self._restart(self.end)
                starts.clear()
                return
        else:
            st.stream_skipped_bytes += new_skipped
        if not dec.buffered:
            starts.clear()


_UNDECIDED_LIMIT = 64 * 1024
