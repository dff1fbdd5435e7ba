"""Dropping identical packets seen again within a time window (``listen --dedup SECONDS``).

The same SIP message often reaches a collector twice: captured on two interfaces or by two
agents, relayed by two proxies, resent by an agent that failed over.  heplify (``-dd``) and
heplify-server (``Dedup``) drop such copies; :class:`Dedup` does it here.  Two packets are
identical when they carry the same payload between the same addresses and ports with the same
protocol type: the HEP timestamp, capture id, node name and the rest of the envelope are not
compared (two agents stamp the same packet differently).  So a byte-identical SIP
retransmission within the window is a duplicate too, as in heplify-server: keep the window
short (a fraction of a second to a few seconds) when retransmissions matter.

Memory is bounded: each packet seen leaves one hash (not its bytes) for ``window`` seconds,
at most ``max_entries`` of them; past that the oldest are forgotten early (``evicted``
counts them).  Pure logic: the caller gives the time::

    d = Dedup(2.0)
    d.duplicate(d.key(message), now)   # False the first time, True within 2 s after
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["DEFAULT_MAX_ENTRIES", "Dedup"]

#: at most this many packets remembered (~100 bytes each): 50,000 packets/s for 10 s
DEFAULT_MAX_ENTRIES = 500_000


class Dedup:
    """Identical packets within ``window`` seconds (see the module doc).

    ``duplicates`` counts the packets :meth:`duplicate` said were copies; ``evicted`` the
    packets forgotten before their window ended because ``max_entries`` were remembered.
    """

    __slots__ = ("_next_sweep", "_seen", "duplicates", "evicted", "max_entries", "window")

    def __init__(self, window: float, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if window <= 0:
            raise ValueError("the dedup window must be more than 0 seconds")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.window = float(window)
        self.max_entries = max_entries
        self._seen: OrderedDict[int, float] = OrderedDict()  # key -> first seen, oldest first
        self._next_sweep = 0.0
        self.duplicates = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._seen)

    @staticmethod
    def key(m: Any) -> int:
        """What makes two HEP messages identical: payload, addresses, ports, IP protocol and
        HEP protocol type (a 64-bit hash: the bytes are not kept)."""
        return hash((m.payload, m.src_ip, m.src_port, m.dst_ip, m.dst_port, m.ip_proto,
                     m.proto_type))

    def duplicate(self, key: int, now: float) -> bool:
        """True when ``key`` was seen less than ``window`` seconds before ``now`` (counted);
        else remember it from ``now`` on and return False."""
        seen = self._seen
        if now >= self._next_sweep:
            self._sweep(now)
        first = seen.get(key)
        if first is not None:
            if now - first < self.window:
                self.duplicates += 1
                return True
            del seen[key]  # expired but not swept yet: seen anew from now
        seen[key] = now
        if len(seen) > self.max_entries:
            seen.popitem(last=False)
            self.evicted += 1
        return False

    def _sweep(self, now: float) -> None:
        """Forget what is older than the window (oldest first; stops at the first one still
        inside it).  Runs at most ten times per window."""
        seen = self._seen
        limit = now - self.window
        while seen:
            k = next(iter(seen))
            if seen[k] > limit:
                break
            del seen[k]
        self._next_sweep = now + self.window / 10
