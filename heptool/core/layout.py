"""The chunk plan of a HEP3 message: which chunks, in which order, with which bodies.

:func:`plan_v3` is what :func:`heptool.core.encode.encode_v3` writes: the message's decoded
``layout`` (raw entries kept byte for byte, edited values written canonically, fields
added since placed before the payload), or, for a message built from fields,
:func:`canonical_layout`.  :func:`chunk_ids` is ``HepMessage.chunk_ids``.

Duck-typed: the message is only read by attribute, and this module never imports
:mod:`.message` (which imports it), so the codec has no import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .compression import deflate
from .fields import NOVALUE
from .registry import CHUNKS, ChunkSpec
from .values import FIELD_SPEC, encode_value, get_value

if TYPE_CHECKING:
    from .message import HepMessage

__all__ = ["canonical_layout", "chunk_ids", "plan_v3"]

#: Canonical chunk order for messages built from fields: the order of the spec's table,
#: which is what Kamailio and heplify send (HEP-SPEC section 10), with 0x0011 placed
#: before the payload (Kamailio reads it with strlen and needs a vendor-0 chunk after it).
_CANONICAL_HEAD = (0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C)
_CANONICAL_TAIL_LAST = (0x11, 0x65, 0x0F)


def canonical_layout(m: HepMessage) -> list:
    """Chunk types for a message built from fields, only those with a value."""
    src, dst = m.src_ip, m.dst_ip
    v6 = (src is not None and ":" in src) or (dst is not None and ":" in dst)
    lay = [t for t, v in zip(_CANONICAL_HEAD, (m.family, m.ip_proto, src, dst, m.src_port, m.dst_port,
                                               m.ts_sec, m.ts_usec, m.proto_type, m.capture_id))
           if v is not None]
    if v6:
        lay = [0x05 if t == 0x03 else 0x06 if t == 0x04 else t for t in lay]
    middle = []
    if m.auth_key is not None:
        middle.append(0x0E)
    if m.node_name is not None:
        middle.append(0x13)
    extra = m._extra
    if extra:
        middle.extend(FIELD_SPEC[k].type for k, v in extra.items() if v is not None)
        middle.sort()
    lay.extend(middle)
    if m.correlation_id is not None:
        lay.append(0x11)
    if m.extra_correlation is not None:
        lay.append(0x65)
    if m.payload is not None:
        lay.append(0x10 if m.compression else 0x0F)
    return lay


def _ip_type_for(spec: ChunkSpec, value: str) -> int:
    v6 = ":" in value
    if spec.field == "src_ip":
        return 0x05 if v6 else 0x03
    return 0x06 if v6 else 0x04


def _canonical_body(m: HepMessage, spec: ChunkSpec, value: Any) -> tuple[int, bytes]:
    t = spec.type
    if spec.kind in ("ip4", "ip6"):
        t = _ip_type_for(spec, value)
        return t, encode_value(CHUNKS[t], value)
    if t in (0x0F, 0x10):
        if m.compression:
            z = m._zcache
            if z is not None and (z[0] is value or z[0] == value):
                return 0x10, z[1]
            return 0x10, deflate(value.encode() if isinstance(value, str) else bytes(value), m.compression)
        return 0x0F, encode_value(CHUNKS[0x0F], value)
    return t, encode_value(spec, value)


def plan_v3(m: HepMessage) -> list[tuple[int, int, bytes]]:
    """The (vendor, type, body) list that encode_v3 writes, in order."""
    layout = m.layout if m.layout is not None else canonical_layout(m)
    out: list[tuple[int, int, bytes]] = []
    done: set[str] = set()
    payload_at = None
    for e in layout:
        if type(e) is int:
            spec = CHUNKS.get(e)
            if spec is None:  # pragma: no cover - layouts only hold registered types
                continue
            field = spec.field
            if field in done:
                continue
            done.add(field)
            value = get_value(m, field)
            if value is None:
                continue
            if field == "payload" and payload_at is None:
                payload_at = len(out)
            out.append((0,) + _canonical_body(m, spec, value))
            continue
        vendor, ctype, body, value = e
        if value is not NOVALUE:
            spec = CHUNKS[ctype]
            field = spec.field
            if field in done:
                continue
            done.add(field)
            cur = get_value(m, field)
            if cur != value:  # edited after decoding: write the new value canonically
                if cur is not None:
                    out.append((0,) + _canonical_body(m, spec, cur))
                continue
        elif vendor == 0 and ctype in (0x0F, 0x10) and payload_at is None:
            payload_at = len(out)
        out.append((vendor, ctype, body))
    if m.layout is not None:
        # fields set after decoding that the layout has no place for: before the payload
        missing = []
        for name in _ADDABLE:
            if name not in done and get_value(m, name) is not None:
                spec = FIELD_SPEC[name]
                missing.append((0,) + _canonical_body(m, spec, get_value(m, name)))
                done.add(name)
        if missing:
            at = payload_at if payload_at is not None else len(out)
            out[at:at] = missing
    return out


_ADDABLE = tuple(f for f in FIELD_SPEC if f not in ("compression",))


def chunk_ids(m: HepMessage) -> list[tuple[int, int]]:
    """(vendor, type) of every chunk in wire order (v3; empty for v1/v2)."""
    if m.version != 3:
        return []
    return [(v, t) for v, t, _ in plan_v3(m)]
