"""The HEP message: one object for v1, v2 and v3.

A :class:`HepMessage` holds the decoded values as plain attributes (``src_ip``,
``payload``...) plus, when it was decoded from bytes, a ``layout``: the chunk order
and every byte that the values alone would not reproduce (unknown and vendor
chunks, duplicates, odd sizes).  Encoding walks the layout, so decode -> encode is
byte-exact; a message built from fields has no layout and encodes canonically
(spec chunk order, big-endian, lengths right).  Editing an attribute of a decoded
message changes that chunk and keeps the rest of the layout.
"""

from __future__ import annotations

from typing import Any

from .addr import canonical_ip
from .errors import HepValueError
from .fields import BLANK_SLOTS, EXTRA_FIELDS, FIELD_SET, FIELDS, NOVALUE
from .layout import chunk_ids
from .registry import CHUNKS, CHUNKS_BY_NAME, family_from_text, proto_from_text
from .values import mac_to_bytes, mac_to_text

__all__ = ["EXTRA_FIELDS", "FIELDS", "NOVALUE", "HepMessage", "blank", "mac_to_bytes", "mac_to_text"]

_INT_LIMITS = {"u8": 0xFF, "u16": 0xFFFF, "u32": 0xFFFFFFFF, "u64": 0xFFFFFFFFFFFFFFFF}


class HepMessage:
    """One HEP message (any version).

    Build one from fields (all keyword arguments, validated)::

        HepMessage(src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060,
                   ts_sec=1700000000, ts_usec=0, proto_type=1, capture_id=2001,
                   payload=b"OPTIONS sip:x SIP/2.0\\r\\n...")

    ``family`` defaults from the addresses, ``ip_proto`` to UDP (17), ``version`` to 3.
    Values of rarer chunks (``vlan``, ``mos``...) go in ``extra`` or as keywords.
    """

    __slots__ = FIELDS + ("_extra", "layout", "wire", "_warnings", "_zcache")

    version: int
    family: int | None
    ip_proto: int | None
    src_ip: str | None
    dst_ip: str | None
    src_port: int | None
    dst_port: int | None
    ts_sec: int | None
    ts_usec: int | None
    proto_type: int | None
    capture_id: int | None
    auth_key: str | None
    node_name: str | None
    correlation_id: str | None
    extra_correlation: str | None
    payload: bytes | None
    compression: str | None
    layout: tuple | None
    wire: dict[str, Any] | None
    _extra: dict[str, Any] | None
    _warnings: list | None
    _zcache: tuple[bytes, bytes] | None

    def __init__(self, *, version: int = 3, **fields: Any) -> None:
        blank(self)
        self.version = version
        extra = fields.pop("extra", None) or {}
        for name, value in fields.items():
            if name in FIELD_SET:
                setattr(self, name, value)
            elif name in _EXTRA_SET:
                extra[name] = value
            else:
                raise HepValueError(f"unknown HEP field {name!r}")
        self._extra = dict(extra) if extra else None
        self._normalise()
        self.validate()

    # -- construction helpers -------------------------------------------------
    def _normalise(self) -> None:
        try:
            if isinstance(self.payload, str):
                self.payload = self.payload.encode("utf-8")
            elif isinstance(self.payload, (bytearray, memoryview)):
                self.payload = bytes(self.payload)
            if isinstance(self.family, str):
                self.family = family_from_text(self.family)
            if isinstance(self.proto_type, str):
                self.proto_type = proto_from_text(self.proto_type)
        except ValueError as e:  # UnicodeEncodeError (lone surrogates) included
            raise HepValueError(str(e).splitlines()[0]) from None
        for ipf in ("src_ip", "dst_ip"):
            v = getattr(self, ipf)
            if v is not None:
                setattr(self, ipf, _canonical_ip(v, ipf))
        if self.family is None and self.src_ip is not None:
            self.family = 10 if ":" in self.src_ip else 2
        if self.ip_proto is None and (self.src_port is not None or self.src_ip is not None):
            self.ip_proto = 17

    def validate(self) -> None:
        """Raise :class:`HepValueError` for a value no HEP packet can carry."""
        if self.version not in (1, 2, 3):
            raise HepValueError(f"version must be 1, 2 or 3, not {self.version!r}")
        for name in FIELDS[1:]:
            value = getattr(self, name)
            if value is None or name == "compression":
                continue
            if name in ("src_ip", "dst_ip"):
                _canonical_ip(value, name)
                continue
            spec = _SPEC_FOR_FIELD.get(name)
            if spec is not None:
                _check_value(spec.kind, name, value)
        if self.compression is not None and self.compression not in ("gzip", "zlib", "deflate"):
            raise HepValueError(f"compression must be gzip, zlib or deflate, not {self.compression!r}")
        for name, value in self.extra.items():
            spec = CHUNKS_BY_NAME.get(name)
            if spec is None:
                raise HepValueError(f"unknown HEP field {name!r}")
            _check_value(spec.kind, name, value)

    # -- lazily created containers (most messages need neither) ----------------
    @property
    def extra(self) -> dict[str, Any]:
        """Values of the rarer generic chunks (vlan, mos, src_mac...), by registry name."""
        e = self._extra
        if e is None:
            e = self._extra = {}
        return e

    @extra.setter
    def extra(self, value: dict[str, Any]) -> None:
        self._extra = dict(value)

    @property
    def warnings(self) -> list:
        """Problems a lenient decode noted (HepDecodeError objects with offsets)."""
        w = self._warnings
        if w is None:
            w = self._warnings = []
        return w

    @warnings.setter
    def warnings(self, value: list) -> None:
        self._warnings = list(value)

    @property
    def has_warnings(self) -> bool:
        """True if a lenient decode noted problems (without creating an empty list)."""
        return bool(self._warnings)

    # -- views ----------------------------------------------------------------
    def chunk_ids(self) -> list[tuple[int, int]]:
        """(vendor, type) of every chunk in wire order (v3; empty for v1/v2)."""
        return chunk_ids(self)

    @property
    def time(self) -> float | None:
        """Seconds since the epoch as a float (display only; exact values are ts_sec/ts_usec)."""
        if self.ts_sec is None:
            return None
        return self.ts_sec + (self.ts_usec or 0) / 1e6

    def get(self, name: str, default: Any = None) -> Any:
        """Any field by name, attribute or extra."""
        if name in FIELD_SET:
            v = getattr(self, name)
            return default if v is None else v
        return self.extra.get(name, default)

    def copy(self) -> HepMessage:
        new = HepMessage.__new__(HepMessage)
        for name in HepMessage.__slots__:
            setattr(new, name, getattr(self, name))
        new._extra = dict(self._extra) if self._extra else None
        new._warnings = list(self._warnings) if self._warnings else None
        if self.wire is not None:
            new.wire = dict(self.wire)
        return new

    def _values(self) -> tuple:
        return tuple(getattr(self, f) for f in FIELDS) + (
            tuple(sorted((k, v) for k, v in (self._extra or {}).items() if v is not None)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HepMessage):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        parts = [f"version={self.version}"]
        for name in FIELDS[1:]:
            v = getattr(self, name)
            if v is None:
                continue
            if name == "payload" and len(v) > 40:
                v = v[:40] + b"..."
            parts.append(f"{name}={v!r}")
        parts.extend(f"{k}={v!r}" for k, v in (self._extra or {}).items())
        return f"HepMessage({', '.join(parts)})"


_EXTRA_SET = frozenset(EXTRA_FIELDS)
_SPEC_FOR_FIELD = {}
for _s in CHUNKS.values():
    _SPEC_FOR_FIELD.setdefault(_s.field, _s)
del _s

_blank_src = "def blank(m):\n    " + " = ".join(f"m.{n}" for n in BLANK_SLOTS) + " = None\n"
_ns: dict[str, Any] = {}
exec(compile(_blank_src, "<heptool blank>", "exec"), _ns)  # noqa: S102 - fixed source from slot names
#: Set every value slot of a fresh message to None (one generated statement: fast).
blank = _ns["blank"]
del _ns, _blank_src


def _shown(value: Any) -> str:
    """``repr(value)`` for an error message, kept short: ``repr`` of an int of more than
    4,300 digits raises ValueError (Python's limit), and a record can hold one (``int("0x" +
    "f" * 5000, 0)``; a float like 1e300 becomes a 301-digit int)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"{'a negative' if value < 0 else 'an'} integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_value(kind: str, name: str, value: Any) -> None:
    limit = _INT_LIMITS.get(kind)
    if limit is not None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise HepValueError(f"{name} must be an integer 0..{limit}, not {_shown(value)}")
    elif kind in ("text",):
        if not isinstance(value, (str, bytes)):
            raise HepValueError(f"{name} must be text, not {type(value).__name__}")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise HepValueError(f"{name} is not encodable as UTF-8 (lone surrogate?)") from None
    elif kind == "bytes":
        if not isinstance(value, (bytes, str)):
            raise HepValueError(f"{name} must be bytes, not {type(value).__name__}")
    elif kind == "mac":
        try:
            n = len(mac_to_bytes(value))
        except (ValueError, TypeError):
            raise HepValueError(f"{name} must be a MAC address like 00:11:22:33:44:55") from None
        if n not in (6, 8):
            raise HepValueError(f"{name} must have 6 or 8 bytes, not {n}")
    elif kind in ("ip4", "ip6"):
        _canonical_ip(value, name)


def _canonical_ip(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise HepValueError(f"{name} must be an IP address string, not {type(value).__name__}")
    try:
        return canonical_ip(value)
    except HepValueError:
        raise HepValueError(f"{name} is not an IP address: {value!r}") from None

