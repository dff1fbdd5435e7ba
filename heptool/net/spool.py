"""An on-disk spool for HEP packets, and a group of senders with failover and a spool.

:class:`Spool` (heplify's HEP buffer): packets kept in order in append-only segment files
while no destination can take them, replayed in the same order when one comes back.  It
survives a restart (what a run left is sent by the next one, from where the last one got
to) and never grows past its bound: a packet that would take it over is dropped, and
counted (the oldest are kept: they were waiting first).

    spool = Spool("/var/spool/heptool/collector", max_bytes=100 << 20)
    spool.append(data)             # False: dropped, the spool is full
    data = spool.take()            # the oldest packet (None: empty)
    spool.close()                  # remembers where the next run starts

Files: ``SEGMENT.spool`` (``%012d``), each a sequence of records ``4-byte big-endian
length + packet``; ``head`` holds ``SEGMENT OFFSET``, the first packet not taken yet.  A
segment is deleted once every packet in it was taken.  A record cut short (a crash while
writing) ends its segment.  Packets taken but not yet delivered when the process dies are
the sender's (its delivery tracking), not the spool's: a restart may send a few twice,
never skips one.

:class:`SenderGroup` (heplify's failover transport): packets go to the first member that
is connected with nothing waiting (the primary first, then the failovers, in order);
while none is, to the spool (or, without one, to the primary's own queue).  The spool is
drained, oldest first, before any new packet goes out directly.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any

from .senders import EventHook, TargetStatus

__all__ = ["SenderGroup", "Spool"]

_LEN = struct.Struct(">I")
_DRAIN_BATCH = 2000  # packets moved from the spool per poll: new traffic is not starved


class Spool:
    """Packets in order on disk, bounded by ``max_bytes`` (see the module doc)."""

    def __init__(self, directory: str, max_bytes: int, *,
                 segment_bytes: int | None = None) -> None:
        if max_bytes <= 0:
            raise ValueError("the spool's size must be > 0")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 << 10, min(16 << 20, max_bytes // 8))
        self.dropped = 0  # packets refused: the spool was full
        self.spooled = 0  # packets appended by this run
        self.taken = 0  # packets taken by this run
        self.last_error: str | None = None  # why the last packet could not be written
        os.makedirs(directory, exist_ok=True)
        self._segments: list[int] = []  # segment numbers, oldest first
        self._counts: dict[int, int] = {}  # packets in each segment (not yet taken)
        self.bytes = 0  # on disk, every segment whole
        self._reader: Any = None
        self._head_off = 0
        self._writer: Any = None
        self._load()

    # -- files -------------------------------------------------------------------------
    def _path(self, seg: int) -> str:
        return os.path.join(self.directory, f"{seg:012d}.spool")

    def _load(self) -> None:
        segs = sorted(int(n[:-6]) for n in os.listdir(self.directory)
                      if n.endswith(".spool") and n[:-6].isdigit())
        head_seg, head_off = (segs[0] if segs else 0), 0
        try:
            with open(os.path.join(self.directory, "head")) as f:
                a, b = f.read().split()
                head_seg, head_off = int(a), int(b)
        except (OSError, ValueError):
            pass
        for seg in segs:
            if seg < head_seg:
                os.unlink(self._path(seg))  # taken before the last run ended
                continue
            start = head_off if seg == head_seg else 0
            count, end = self._scan(seg, start)
            size = os.path.getsize(self._path(seg))
            if end < size:  # a record cut short: the segment ends before it
                with open(self._path(seg), "r+b") as f:
                    f.truncate(end)
                size = end
            if count == 0:
                os.unlink(self._path(seg))
                continue
            self._segments.append(seg)
            self._counts[seg] = count
            self.bytes += size
            if seg == head_seg:
                self._head_off = start
        if self._segments and self._segments[0] != head_seg:
            self._head_off = 0

    def _scan(self, seg: int, start: int) -> tuple[int, int]:
        """Packets in segment ``seg`` from ``start``, and where the last whole one ends."""
        count, pos = 0, start
        with open(self._path(seg), "rb") as f:
            f.seek(start)
            while True:
                head = f.read(4)
                if len(head) < 4:
                    break
                (n,) = _LEN.unpack(head)
                body = f.read(n)
                if len(body) < n:
                    break
                count += 1
                pos += 4 + n
        return count, pos

    def _save_head(self) -> None:
        seg = self._segments[0] if self._segments else 0
        off = self._head_off if self._segments else 0
        tmp = os.path.join(self.directory, "head.tmp")
        with open(tmp, "w") as f:
            f.write(f"{seg} {off}\n")
        os.replace(tmp, os.path.join(self.directory, "head"))

    # -- the queue -----------------------------------------------------------------------
    @property
    def packets(self) -> int:
        """Packets waiting on disk."""
        return sum(self._counts.values())

    def __len__(self) -> int:
        return self.packets

    def append(self, data: bytes) -> bool:
        """Keep ``data`` after every packet already there; False (and counted in
        ``dropped``) when it would take the spool over its bound."""
        need = 4 + len(data)
        if self.bytes + need > self.max_bytes:
            self.dropped += 1
            return False
        w = self._writer
        at = None
        try:
            if w is None or w.tell() + need > self.segment_bytes:
                if w is not None:
                    self._writer = None
                    w.close()
                seg = self._segments[-1] + 1 if self._segments else 0
                w = open(self._path(seg), "ab")  # noqa: SIM115 (kept open)
                self._writer = w
                self._segments.append(seg)
                self._counts[seg] = 0
                if len(self._segments) == 1:
                    self._head_off = 0
            at = w.tell()
            w.write(_LEN.pack(len(data)) + data)
            w.flush()
        except OSError as e:  # a full disk...: this packet is dropped, and counted
            self.dropped += 1
            self.last_error = e.strerror or str(e)
            if at is not None and self._writer is w:
                try:  # no half record left behind
                    w.truncate(at)
                except OSError:
                    pass
            return False
        self._counts[self._segments[-1]] += 1
        self.bytes += need
        self.spooled += 1
        return True

    def take(self) -> bytes | None:
        """The oldest packet, removed from the spool (None: empty)."""
        while self._segments:
            seg = self._segments[0]
            if self._counts[seg] == 0:
                if self._writer is not None and seg == self._segments[-1]:
                    return None  # the segment being written, all taken
                self._drop_head()
                continue
            r = self._reader
            if r is None:
                r = self._reader = open(self._path(seg), "rb")  # noqa: SIM115 (kept open)
                r.seek(self._head_off)
            head = r.read(4)
            (n,) = _LEN.unpack(head)
            data = r.read(n)
            self._head_off += 4 + n
            self._counts[seg] -= 1
            self.taken += 1
            if self._counts[seg] == 0 and not (self._writer is not None
                                               and seg == self._segments[-1]):
                self._drop_head()
            return data
        return None

    def _drop_head(self) -> None:
        seg = self._segments.pop(0)
        del self._counts[seg]
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        path = self._path(seg)
        self.bytes -= os.path.getsize(path)
        os.unlink(path)
        self._head_off = 0
        self._save_head()

    def close(self) -> None:
        """Close the files and remember where the next run starts."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._segments and self._counts[self._segments[0]] == 0 and len(self._segments) == 1:
            self._drop_head()
        self._save_head()


def _ready(s: Any) -> bool:
    """Connected (UDP: always) with nothing waiting in its own queue."""
    return getattr(s, "sock", True) is not None and not getattr(s, "queue", None)


class SenderGroup:
    """A primary destination, its failovers and a spool, as one sender (module doc).

    ``target`` and ``stats`` are the primary's; ``members`` every sender, in order."""

    def __init__(self, members: Sequence[Any], spool: Spool | None = None, *,
                 on_event: EventHook | None = None) -> None:
        if not members:
            raise ValueError("a sender group needs a member")
        self.members = list(members)
        self.spool = spool
        self.on_event = on_event
        self.target = self.members[0].target
        self.stats = self.members[0].stats
        self.aborted = False
        self._spooling = False  # packets went to the spool since it was last empty

    def _event(self, kind: str, text: str) -> None:
        if self.on_event is not None:
            self.on_event(self, kind, text)

    def _to_spool(self, data: bytes) -> None:
        spool = self.spool
        assert spool is not None
        if not self._spooling:
            self._spooling = True
            why = "older packets wait there" if spool.packets else "no destination is up"
            self._event("spooling", f"keeping packets in the spool {spool.directory} ({why})")
        if not spool.append(data) and spool.dropped == 1:
            self._event("dropped", f"spool full ({spool.max_bytes} bytes) or not writable: "
                                   "dropping new packets (counted NOT delivered)")

    def _ready_member(self) -> Any:
        for m in self.members:
            if _ready(m):
                return m
        return None

    def _drain(self) -> None:
        spool = self.spool
        if spool is None:
            return
        for _ in range(_DRAIN_BATCH):
            m = self._ready_member()
            if m is None:
                return
            data = spool.take()
            if data is None:
                break
            m.send(data)
        if self._spooling and not spool.packets:
            self._spooling = False
            self._event("drained", f"spool drained ({spool.taken} packets sent from it)")

    def send(self, data: bytes) -> bool:
        """Send ``data`` to the first ready member, or keep it (spool or the primary's
        queue); False when it was not sent now."""
        for m in self.members:
            m.poll()
        spool = self.spool
        if spool is not None and spool.packets:
            self._drain()
            if spool.packets:
                self._to_spool(data)  # after what waits: the order is kept
                return False
        m = self._ready_member()
        if m is not None:
            return m.send(data)
        if spool is not None:
            self._to_spool(data)
            return False
        return self.members[0].send(data)

    def poll(self) -> None:
        for m in self.members:
            m.poll()
        self._drain()

    def status(self) -> TargetStatus:
        """The primary's status; ``queued`` includes the spool."""
        st = self.members[0].status()
        if self.spool is not None:
            st = st._replace(queued=st.queued + self.spool.packets)
        return st

    def abort(self) -> None:
        self.aborted = True
        for m in self.members:
            m.abort()

    def close(self, timeout: float | None = None) -> None:
        """Drain the spool while a member is up (within the primary's ``retry`` or
        ``timeout``), close the members, keep what is left on disk."""
        import time

        spool = self.spool
        primary = self.members[0]
        wait = timeout if timeout is not None else getattr(primary, "retry", 0.0)
        deadline = time.monotonic() + wait
        while spool is not None and spool.packets and not self.aborted:
            self.poll()
            if not spool.packets or time.monotonic() >= deadline:
                break
            if self._ready_member() is None:
                time.sleep(0.02)
        left = max(0.0, deadline - time.monotonic())
        for m in self.members:
            m.close(left)
        if spool is not None:
            spool.close()
