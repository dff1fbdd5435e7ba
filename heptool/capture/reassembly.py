"""IP fragment and TCP stream reassembly.

* :class:`IPReassembler` puts IPv4 and IPv6 fragments back together (bounded: a number of
  datagrams in progress, 65535 bytes each).
* :class:`TcpReassembler` turns TCP segments into an in-order byte stream per direction,
  with bounded out-of-order buffering, retransmission and gap accounting.
"""

from __future__ import annotations

__all__ = ["TCP_FIN", "TCP_RST", "TCP_SYN", "ConnKey", "IPReassembler", "TcpReassembler"]


class IPReassembler:
    """Reassembles fragmented IPv4 and IPv6 datagrams (the transport part only).

    Fragments are keyed by (family, src, dst, protocol, identification).  At most
    ``max_pending`` datagrams are kept in progress (the oldest is dropped beyond that) and
    none may grow past 65535 bytes.  ``dropped`` counts datagrams given up.
    """

    def __init__(self, max_pending: int = 1024) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple, list] = {}
        self.dropped = 0
        self.completed = 0

    def add(
        self,
        family: int,
        src: str,
        dst: str,
        proto: int,
        ident: int,
        offset: int,
        more: bool,
        data: bytes,
    ) -> bytes | None:
        """Add one fragment; return the whole transport payload once every byte is there."""
        key = (family, src, dst, proto, ident)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self.max_pending:
                self._pending.pop(next(iter(self._pending)))
                self.dropped += 1
            entry = self._pending[key] = [None, {}]  # [total length or None, {offset: bytes}]
        if offset + len(data) > 65535:
            del self._pending[key]
            self.dropped += 1
            return None
        if not more:
            entry[0] = offset + len(data)
        pieces = entry[1]
        old = pieces.get(offset)
        if old is None or len(old) < len(data):
            pieces[offset] = data
        total = entry[0]
        if total is None:
            return None
        # complete when the pieces cover [0, total) without a hole
        covered = 0
        for o in sorted(pieces):
            if o > covered:
                return None
            covered = max(covered, o + len(pieces[o]))
        if covered < total:
            return None
        buf = bytearray(total)
        for o in sorted(pieces):  # later (sorted) pieces win on overlap
            chunk = pieces[o][: max(0, total - o)]
            buf[o : o + len(chunk)] = chunk
        del self._pending[key]
        self.completed += 1
        return bytes(buf)


TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04

ConnKey = tuple  # (src ip, src port, dst ip, dst port): one direction of a connection


class _Half:
    __slots__ = ("closed", "fin_off", "next_off", "next_seq", "pending", "pending_bytes", "syn")

    def __init__(self, next_seq: int, syn: bool) -> None:
        self.next_seq = next_seq  # absolute sequence number expected next
        self.next_off = 0  # stream offset of next_seq
        self.pending: dict[int, tuple[bytes, int]] = {}  # offset -> (data, frame), out of order
        self.pending_bytes = 0
        self.fin_off: int | None = None
        self.closed = False
        self.syn = syn


class TcpReassembler:
    """In-order byte streams from TCP segments, one per direction.

    :meth:`add` takes a segment and returns the stream data it makes available, as a
    list of ``(key, offset, frame, data)``: ``key`` = ``(src, sport, dst, dport)``,
    ``offset`` = position of ``data`` in that direction's stream (0 = first byte after
    the SYN, or the first byte seen when the capture starts mid-connection), ``frame`` =
    the frame whose segment supplied the first byte of ``data``.  Chunks of one direction
    come in offset order without overlap; retransmitted and overlapping bytes are given
    once.  Out-of-order segments wait, up to ``max_buffer`` bytes per direction; a segment
    that would exceed it is dropped and counted in ``dropped_bytes`` (and ``drops`` keeps
    ``(key, offset, length, frame)`` of the first few).  :meth:`flush` hands out what is
    still waiting behind a hole (the offset jump shows the hole) at the end of a capture.
    A new SYN on a finished or reset 4-tuple starts a new stream at offset 0.
    """

    def __init__(self, max_buffer: int = 4 * 1024 * 1024, max_streams: int = 65536) -> None:
        self.max_buffer = max_buffer
        self.max_streams = max_streams
        self._halves: dict[ConnKey, _Half] = {}
        self.dropped_bytes = 0
        self.retransmitted_bytes = 0
        self.gap_bytes = 0
        self.drops: list[tuple[ConnKey, int, int, int]] = []

    def add(
        self, key: ConnKey, seq: int, flags: int, payload: bytes, frame: int
    ) -> list[tuple[ConnKey, int, int, bytes]]:
        halves = self._halves
        h = halves.get(key)
        if flags & TCP_RST:
            if h is not None:
                h.closed = True
                h.pending.clear()
                h.pending_bytes = 0
            return []
        if flags & TCP_SYN:
            if h is not None and not h.closed and h.syn and (seq + 1) & 0xFFFFFFFF == _rewind(h):
                pass  # retransmitted SYN of the stream we already have
            else:
                if h is not None:
                    del halves[key]  # 4-tuple reused: a new stream starts at offset 0
                h = self._new_half(key, (seq + 1) & 0xFFFFFFFF, True)
            seq = (seq + 1) & 0xFFFFFFFF  # data on a SYN starts after it
        elif h is None:
            if not payload:
                return []  # pure ACK of a stream whose start we did not see
            h = self._new_half(key, seq, False)
        elif h.closed:
            self.retransmitted_bytes += len(payload)
            return []
        out: list[tuple[ConnKey, int, int, bytes]] = []
        delta = ((seq - h.next_seq + 0x80000000) & 0xFFFFFFFF) - 0x80000000  # signed 32-bit
        off = h.next_off + delta
        if payload:
            end = off + len(payload)
            if end <= h.next_off:
                self.retransmitted_bytes += len(payload)
            elif off <= h.next_off:
                if off < h.next_off:
                    self.retransmitted_bytes += h.next_off - off
                    payload = payload[h.next_off - off :]
                self._deliver(key, h, payload, frame, out)
                self._drain(key, h, out)
            else:
                old = h.pending.get(off)
                if old is not None and len(old[0]) >= len(payload):
                    self.retransmitted_bytes += len(payload)
                elif h.pending_bytes + len(payload) - (len(old[0]) if old else 0) > self.max_buffer:
                    self.dropped_bytes += len(payload)
                    if len(self.drops) < 100:
                        self.drops.append((key, off, len(payload), frame))
                else:
                    if old is not None:
                        h.pending_bytes -= len(old[0])
                    h.pending[off] = (payload, frame)
                    h.pending_bytes += len(payload)
        if flags & TCP_FIN:
            h.fin_off = off + len(payload)
        if h.fin_off is not None and h.next_off >= h.fin_off and not h.pending:
            h.closed = True
        return out

    def _new_half(self, key: ConnKey, next_seq: int, syn: bool) -> _Half:
        halves = self._halves
        if len(halves) >= self.max_streams:
            # forget a finished stream first, else the oldest one
            victim = next((k for k, v in halves.items() if v.closed), None)
            if victim is None:
                victim = next(iter(halves))
                self.dropped_bytes += halves[victim].pending_bytes
            del halves[victim]
        h = halves[key] = _Half(next_seq, syn)
        return h

    @staticmethod
    def _deliver(key: ConnKey, h: _Half, data: bytes, frame: int, out: list) -> None:
        out.append((key, h.next_off, frame, data))
        h.next_off += len(data)
        h.next_seq = (h.next_seq + len(data)) & 0xFFFFFFFF

    def _drain(self, key: ConnKey, h: _Half, out: list) -> None:
        pending = h.pending
        while pending:
            off = min(pending)
            if off > h.next_off:
                return
            data, frame = pending.pop(off)
            h.pending_bytes -= len(data)
            end = off + len(data)
            if end <= h.next_off:
                self.retransmitted_bytes += len(data)
                continue
            if off < h.next_off:
                self.retransmitted_bytes += h.next_off - off
                data = data[h.next_off - off :]
            self._deliver(key, h, data, frame, out)

    def flush(self) -> list[tuple[ConnKey, int, int, bytes]]:
        """Hand out the data still waiting behind holes, skipping the holes (end of capture)."""
        out: list[tuple[ConnKey, int, int, bytes]] = []
        for key, h in self._halves.items():
            while h.pending:
                off = min(h.pending)
                if off > h.next_off:
                    self.gap_bytes += off - h.next_off
                    h.next_seq = (h.next_seq + off - h.next_off) & 0xFFFFFFFF
                    h.next_off = off
                self._drain(key, h, out)
        return out

    def streams(self) -> int:
        return len(self._halves)


def _rewind(h: _Half) -> int:
    """Sequence number of the stream's first byte."""
    return (h.next_seq - h.next_off) & 0xFFFFFFFF
