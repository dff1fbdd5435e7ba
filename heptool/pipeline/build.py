"""Messages built from fields, and the rewrites ``encode`` and ``send`` share.

* :func:`now`, :func:`loopback_like`: the defaults of a packet built from nothing;
* :func:`record_defaults`: the same defaults for a hand-written JSON record;
* :func:`apply_overrides`: fields given on the command line, set in every message;
* :class:`Rewrites`: what ``send`` (and ``encode --scenario``) change in every packet, the
  time included (``restamp``);
* :func:`scenario_messages`: a scenario run ``count`` times, each run after the previous.

No click: a library user builds and rewrites packets the way the commands do.
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["DECODE_KEYS", "RESTAMPS", "Rewrites", "apply_chunks", "apply_overrides",
           "check_record_keys", "loopback_like", "now", "record_defaults", "scenario_messages"]

#: the keys a ``decode`` (or ``listen``) record carries besides its message's
#: (:data:`heptool.core.record.RECORD_KEYS`): where it was read and its SIP view
DECODE_KEYS = frozenset(("index", "input", "frame", "hep_transport", "hep_src", "hep_dst",
                         "frame_time", "sip"))

#: ``restamp`` values: keep the packets' times, set them to the send time, or move the
#: capture so that it starts now (the gaps kept)
RESTAMPS = ("keep", "now", "shift")


def now() -> tuple[int, int]:
    """The current time as (ts_sec, ts_usec)."""
    ns = _time.time_ns()
    return ns // 1_000_000_000, (ns // 1000) % 1_000_000


def loopback_like(addr: str) -> str:
    """The loopback address of ``addr``'s family (``::1`` or ``127.0.0.1``)."""
    return "::1" if ":" in addr else "127.0.0.1"


def apply_chunks(m: Any, chunks: Sequence[Any] | None) -> None:
    """Apply ``--chunk`` settings (:class:`heptool.core.chunkspec.ChunkSetting`) to ``m``."""
    if chunks:
        from heptool.core.chunkspec import apply_chunks as apply

        apply(m, chunks)


def check_record_keys(rec: Any) -> Any:
    """``rec`` itself when every key is one a record has (:data:`DECODE_KEYS` and the
    message's); else HepValueError naming the first unknown key and the nearest known one
    (``unknown key 'srcip' (did you mean 'src_ip'?)``)."""
    if type(rec) is not dict:
        return rec  # from_record says what is wrong with it
    from heptool.core.record import RECORD_KEYS

    for key in rec:
        if key not in RECORD_KEYS and key not in DECODE_KEYS:
            import difflib

            from heptool.core.errors import HepValueError

            near = difflib.get_close_matches(str(key), sorted(RECORD_KEYS | DECODE_KEYS), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise HepValueError(f"unknown key {key!r}{hint}")
    return rec


def record_defaults(rec: dict[str, Any], start: tuple[int, int]) -> dict[str, Any]:
    """A hand-written record (no ``chunks`` key) with the defaults of a packet built from
    options for the keys it lacks entirely (a key present with null stays an absent chunk);
    ``start`` is the time it gets when it has none.  Records ``decode`` wrote, and HEPv1
    ones, are returned as they are."""
    if "chunks" in rec or rec.get("version", 3) == 1:
        return rec
    rec = dict(rec)
    if "ts_sec" not in rec and "time" not in rec:
        rec["ts_sec"], rec["ts_usec"] = start
    for key, value in (("ip_proto", 17), ("capture_id", 1), ("payload", "")):
        rec.setdefault(key, value)
    if "proto_type" not in rec and "proto" not in rec:
        rec["proto_type"] = 1
    if "src_ip" not in rec:
        rec["src_ip"] = loopback_like(str(rec.get("dst_ip") or "127.0.0.1"))
    if "dst_ip" not in rec:
        rec["dst_ip"] = loopback_like(str(rec["src_ip"] or "127.0.0.1"))
    rec.setdefault("src_port", 5060)
    rec.setdefault("dst_port", 5060)
    return rec


def apply_overrides(m: Any, *, src: tuple[str, int] | None = None,
                    dst: tuple[str, int] | None = None, ip_proto: int | None = None,
                    proto_type: int | None = None, capture_id: int | None = None,
                    node_name: str | None = None, auth_key: str | None = None,
                    correlation_id: str | None = None, time: tuple[int, int] | None = None,
                    compression: str | None = None, chunks: Sequence[Any] = (),
                    version: int | None = None) -> Any:
    """``m`` with every field given (not None) set: ``encode --from``'s packet options over
    its records.  Another ``version`` gives a new message (encoded and decoded again, as
    that version carries it); else ``m`` itself, changed."""
    if src is not None:
        m.src_ip, m.src_port = src
        m.family = 10 if ":" in m.src_ip else 2
    if dst is not None:
        m.dst_ip, m.dst_port = dst
    for field, value in (("ip_proto", ip_proto), ("proto_type", proto_type),
                         ("capture_id", capture_id), ("node_name", node_name),
                         ("auth_key", auth_key), ("correlation_id", correlation_id)):
        if value is not None:
            setattr(m, field, value)
    if time is not None:
        m.ts_sec, m.ts_usec = time
    if compression is not None:
        m.compression = compression
    apply_chunks(m, chunks)
    if version is not None and version != m.version:
        from heptool.core.codec import decode, encode

        m = decode(encode(m, version))
    return m


class Rewrites:
    """What ``send`` changes in every packet: the agent fields, any chunk, the time.

    ``restamp``: ``keep`` the packets' times, ``now`` the time of sending, ``shift`` the
    whole capture moved to start now (the gaps between packets kept, divided by ``speed``
    as the replay's ``--speed`` divides them; :meth:`restart` begins a new capture, e.g.
    the next pass of a loop, which starts now or just after the last time given, whichever
    is later: times never go back).  ``compression`` compresses the payload
    (``encode --scenario --compress``).
    """

    __slots__ = (
        "_last",
        "_shift",
        "auth_key",
        "capture_id",
        "chunks",
        "compression",
        "node_name",
        "restamp",
        "speed",
    )

    def __init__(self, *, capture_id: int | None = None, node_name: str | None = None,
                 auth_key: str | None = None, chunks: Sequence[Any] = (),
                 restamp: str = "keep", compression: str | None = None,
                 speed: float = 1.0) -> None:
        if restamp not in RESTAMPS:
            raise ValueError(f"restamp must be one of {', '.join(RESTAMPS)}, not {restamp!r}")
        self.capture_id = capture_id
        self.node_name = node_name
        self.auth_key = auth_key
        self.chunks = list(chunks)
        self.restamp = restamp
        self.compression = compression
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._shift: tuple[int, int] | None = None  # (first packet's time, its new time)
        self._last: int | None = None  # the last time given (microseconds)

    @property
    def fields(self) -> bool:
        """Does it set a field or chunk (not only the time)?"""
        return (self.capture_id is not None or self.node_name is not None
                or self.auth_key is not None or self.compression is not None
                or bool(self.chunks))

    @property
    def any(self) -> bool:
        """Does it change packets at all?"""
        return self.fields or self.restamp != "keep"

    def restart(self) -> None:
        """The next packet starts a new capture (``shift`` measures from it)."""
        self._shift = None

    def apply(self, m: Any) -> None:
        """Rewrite ``m`` in place."""
        if self.capture_id is not None:
            m.capture_id = self.capture_id
        if self.node_name is not None:
            m.node_name = self.node_name
        if self.auth_key is not None:
            m.auth_key = self.auth_key
        if self.compression is not None:
            m.compression = self.compression
        apply_chunks(m, self.chunks)
        restamp = self.restamp
        if restamp != "keep" and m.ts_sec is not None:
            if restamp == "now":
                m.ts_sec, m.ts_usec = now()
            else:
                t_us = m.ts_sec * 1_000_000 + (m.ts_usec or 0)
                if self._shift is None:
                    t0 = now()
                    base = t0[0] * 1_000_000 + t0[1]
                    if self._last is not None and base <= self._last:
                        base = self._last + 1  # a new pass goes on after the last one
                    self._shift = (t_us, base)
                first, base = self._shift
                gap = t_us - first
                new_us = base + (gap if self.speed == 1.0 else round(gap / self.speed))
                if self._last is None or new_us > self._last:
                    self._last = new_us
                m.ts_sec, m.ts_usec = divmod(new_us, 1_000_000)


def scenario_messages(name: str, *, seed: int = 0, start: tuple[int, int] | None = None,
                      count: int = 1, **options: Any) -> Iterator[Any]:
    """The messages of scenario ``name`` run ``count`` times (seeds ``seed``,
    ``seed + 1``, ...), each run starting a second after the previous one's last packet;
    ``start`` defaults to now.  ``options`` go to the scenario (``mode`` for opensips)."""
    from heptool.analysis.scenarios import scenario

    start = start or now()
    for i in range(count):
        msgs = scenario(name, seed=seed + i, start=start, **options)
        yield from msgs
        last = msgs[-1]
        start = (last.ts_sec + 1, last.ts_usec)
