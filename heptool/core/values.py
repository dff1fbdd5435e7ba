"""One chunk body <-> one value, by the chunk's registry kind (u8..u64, ip4/ip6, text, bytes, mac).

:func:`encode_value` writes a value's canonical body; :func:`decode_value` reads a body back,
saying whether re-encoding gives the same bytes.  :func:`get_value`/:data:`FIELD_SPEC` reach
a message's value by field name, whether it is an attribute or in ``extra`` (duck-typed: this
module never imports the message).
"""

from __future__ import annotations

from typing import Any

from .addr import ip4_text, ip6_text, ip_pack
from .errors import BadChunkValueError, HepEncodeError
from .fields import FIELD_SET
from .registry import CHUNKS, ChunkSpec

__all__ = ["FIELD_SPEC", "decode_value", "encode_value", "get_value", "mac_to_bytes", "mac_to_text"]

#: field name -> the (first) registry spec that carries it
FIELD_SPEC: dict[str, ChunkSpec] = {}
for _s in CHUNKS.values():
    FIELD_SPEC.setdefault(_s.field, _s)
del _s


def get_value(m: Any, field: str) -> Any:
    """A message's value of ``field`` (an attribute, or an ``extra`` entry), None if unset."""
    if field in FIELD_SET:
        return getattr(m, field)
    e = m._extra
    return e.get(field) if e else None


def mac_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value.replace(":", "").replace("-", "").replace(".", ""))


def mac_to_text(body: bytes) -> str:
    return ":".join(f"{b:02x}" for b in body)


def encode_value(spec: ChunkSpec, value: Any) -> bytes:
    """Canonical chunk body for ``value`` (raises HepValueError/HepEncodeError)."""
    kind = spec.kind
    try:
        if kind in ("u8", "u16", "u32", "u64"):
            return int(value).to_bytes(spec.size, "big")  # type: ignore[arg-type]
        if kind == "text" or kind == "bytes":
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if kind in ("ip4", "ip6"):
            return ip_pack(value)
        if kind == "mac":
            return mac_to_bytes(value)
    except OverflowError:
        raise HepEncodeError(f"{spec.name} value {value!r} does not fit in {spec.size} bytes") from None
    except (TypeError, ValueError) as e:
        raise HepEncodeError(f"{spec.name}: cannot encode {value!r} ({e})") from None
    raise HepEncodeError(f"{spec.name}: unknown value kind {kind}")


def decode_value(spec: ChunkSpec, body: bytes) -> tuple[Any, bool]:
    """(value, canonical) or raises BadChunkValueError.  canonical = re-encoding gives body."""
    kind = spec.kind
    n = len(body)
    if spec.size is not None:
        if n == spec.size:
            if kind == "ip4":
                return ip4_text(body), True
            if kind == "ip6":
                return ip6_text(body), True
            return int.from_bytes(body, "big"), True
        if n in spec.lenient_sizes:
            return int.from_bytes(body, "big"), False
        raise BadChunkValueError(f"{spec.name} body is {n} bytes, expected {spec.size}")
    if kind == "text":
        try:
            return body.decode("utf-8"), True
        except UnicodeDecodeError:
            return body.decode("utf-8", "replace"), False
    if kind == "mac":
        if n in (6, 8):
            return mac_to_text(body), True
        raise BadChunkValueError(f"{spec.name} body is {n} bytes, expected 6 or 8")
    return body, True  # bytes
