"""HepMessage <-> the JSON record (one flat, JSON-able dict per message).

The record is the contract for pipelines (``decode -f jsonl | jq | encode``): see
README "The JSON record".  ``from_record(to_record(m))`` re-encodes to the same
bytes: the ``chunks`` list keeps the chunk order, and every chunk whose bytes the
flat values would not reproduce (unknown/vendor chunks, duplicates, odd sizes) as
hex.  Flat values win over a canonical ``chunks`` entry, so editing ``src_ip`` with
jq changes the packet.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import math
from typing import Any

from .addr import canonical_ip
from .compression import ALGORITHMS
from .errors import HepError, HepValueError
from .message import EXTRA_FIELDS, NOVALUE, HepMessage, blank
from .registry import (
    CHUNKS,
    CHUNKS_BY_NAME,
    FAMILY_NAMES,
    PROTO_TYPES,
    family_from_text,
    proto_from_text,
)
from .values import decode_value
from .wire import MAGICS

__all__ = [
    "RECORD_KEYS",
    "SECOND_PREFIXES",
    "extra_correlation_pairs",
    "format_extra_correlation",
    "format_time",
    "from_record",
    "parse_time",
    "to_record",
]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
#: the ``magic`` values a record may give (the wire magics as text)
_MAGIC_NAMES = tuple(mg.decode("ascii") for mg in MAGICS)


#: ISO 8601 date-and-seconds prefix per second (``format_time``'s cache; the record builders
#: read it too)
SECOND_PREFIXES: dict[int, str] = {}


def format_time(ts_sec: int | None, ts_usec: int | None) -> str | None:
    """ISO 8601 UTC with microseconds, e.g. ``2026-11-26T09:53:26.123456Z``.

    The date-and-seconds part is cached per second (``strftime`` costs ~2 us a call and a
    capture has few distinct seconds per thousand packets).
    """
    if ts_sec is None:
        return None
    usec = ts_usec or 0
    if 0 <= usec < 1_000_000:
        prefix = SECOND_PREFIXES.get(ts_sec)
        if prefix is None:
            if len(SECOND_PREFIXES) > 4096:
                SECOND_PREFIXES.clear()
            prefix = SECOND_PREFIXES[ts_sec] = (_EPOCH + _dt.timedelta(seconds=ts_sec)).strftime(
                "%Y-%m-%dT%H:%M:%S")
        return f"{prefix}.{usec:06d}Z"
    t = _EPOCH + _dt.timedelta(seconds=ts_sec, microseconds=usec)  # garbage usec: normalised
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | float) -> tuple[int, int]:
    """ISO 8601 (``Z`` or offset; naive = UTC) or epoch seconds -> (ts_sec, ts_usec)."""
    if isinstance(text, (int, float)):
        if not math.isfinite(text):
            raise HepValueError(f"time {text!r} is not a number of seconds")
        whole = int(text)
        return whole, round((text - whole) * 1e6)
    s = text.strip()
    try:
        f = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(f):  # "1e400", "inf", "nan": int() would raise OverflowError
            raise HepValueError(f"time {text!r} is not a number of seconds")
        whole = int(f)
        frac = s.split(".", 1)[1] if "." in s else ""
        # ASCII digits only: str.isdigit() accepts '²', which int() refuses
        digits = frac.isascii() and frac.isdigit()
        return whole, int((frac + "000000")[:6]) if digits else round((f - whole) * 1e6)
    try:
        t = _dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise HepValueError(f"time {text!r} is neither ISO 8601 nor epoch seconds") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    delta = t - _EPOCH
    secs = delta.days * 86400 + delta.seconds
    if secs < 0:
        raise HepValueError(f"time {text!r} is before 1970")
    return secs, delta.microseconds


def extra_correlation_pairs(text: str | None) -> list[list[Any]] | None:
    """Chunk 0x0065 JSON object as [key, value] pairs in wire order, duplicates kept."""
    if not text:
        return None
    try:
        pairs = json.loads(text, object_pairs_hook=lambda kv: [list(p) for p in kv])
    except (ValueError, RecursionError):
        return None
    if not isinstance(pairs, list) or (pairs and not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs)):
        return None
    return pairs


def format_extra_correlation(pairs: list) -> str:
    """Pairs -> JSON text the way OpenSIPS (cJSON formatted printer) writes chunk 0x0065."""
    inner = ",\n".join(f"\t{json.dumps(str(k), ensure_ascii=False)}:\t{json.dumps(v, ensure_ascii=False)}"
                       for k, v in pairs)
    return "{\n" + inner + "\n}" if pairs else "{\n}"


def _bytes_value(b: bytes) -> Any:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(b).decode("ascii")}


def _bytes_from(value: Any, name: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict):
        try:
            if "base64" in value:
                return base64.b64decode(value["base64"], validate=True)
            if "hex" in value:
                return bytes.fromhex(value["hex"])
        except (ValueError, binascii.Error, TypeError):
            raise HepValueError(f"{name}: bad base64/hex value") from None
    raise HepValueError(f"{name} must be a string or {{\"base64\": ...}}, not {value!r}")


_LAYOUT_NAMES: dict[tuple, tuple[str, ...] | None] = {}


def _layout_names(layout: tuple) -> tuple[str, ...] | None:
    """Chunk names of a layout of plain entries (cached per layout), else None."""
    try:
        return _LAYOUT_NAMES[layout]
    except KeyError:
        names = tuple(CHUNKS[e].name for e in layout) if all(type(e) is int for e in layout) else None
        if len(_LAYOUT_NAMES) > 4096:
            _LAYOUT_NAMES.clear()
        _LAYOUT_NAMES[layout] = names
        return names
    except TypeError:  # unhashable (never from decode; defensive for hand-made layouts)
        return None


def to_record(m: HepMessage) -> dict[str, Any]:
    """The JSON record of a message (a new dict; JSON-able with any encoder).

    On the hot path of ``heptool decode``: a plain layout's chunk names and each second's
    ISO prefix are cached; everything else is a straight attribute copy.
    """
    ec = m.extra_correlation
    payload = m.payload
    if payload is not None:
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            payload = {"base64": base64.b64encode(payload).decode("ascii")}
    pt = m.proto_type
    fam = m.family
    r: dict[str, Any] = {
        "version": m.version,
        "ts_sec": m.ts_sec,
        "ts_usec": m.ts_usec,
        "time": format_time(m.ts_sec, m.ts_usec),
        "family": None if fam is None else FAMILY_NAMES.get(fam, fam),
        "ip_proto": m.ip_proto,
        "src_ip": m.src_ip,
        "src_port": m.src_port,
        "dst_ip": m.dst_ip,
        "dst_port": m.dst_port,
        "proto_type": pt,
        "proto": None if pt is None else PROTO_TYPES.get(pt) or str(pt),
        "capture_id": m.capture_id,
        "node_name": m.node_name,
        "auth_key": m.auth_key,
        "correlation_id": m.correlation_id,
        "extra_correlation": None if ec is None else extra_correlation_pairs(ec),
        "extra_correlation_text": ec,
        "payload": payload,
    }
    if m.compression:
        r["compression"] = m.compression
        if m._zcache is not None and m._zcache[0] == m.payload:
            r["payload_compressed"] = {"base64": base64.b64encode(m._zcache[1]).decode("ascii")}
    if m._extra:
        for k, v in m._extra.items():
            if v is not None:
                r[k] = v
    layout = m.layout
    if m.version == 3 and layout is not None:
        names = _layout_names(layout)
        r["chunks"] = list(names) if names is not None else [_layout_entry(e) for e in layout]
    w = m.wire
    if w:
        for k, v in w.items():
            r[k] = v.hex() if isinstance(v, bytes) else v
    return r


def _layout_entry(e: Any) -> Any:
    if type(e) is int:
        return CHUNKS[e].name
    vendor, ctype, body, _ = e
    return {"vendor": vendor, "type": ctype, "hex": body.hex()}


_INT_KEYS = ("ip_proto", "src_port", "dst_port", "ts_sec", "ts_usec", "proto_type", "capture_id")
_TEXT_KEYS = ("auth_key", "node_name", "correlation_id")
_WIRE_HEX = ("trailing", "tail", "v2_pad")
#: the wire details that are numbers, and their largest value (a v1/v2 header length is one
#: byte; NUL padding is bounded by the largest packet)
_WIRE_INT = {"v12_length": 0xFF, "trailer_nuls": 0xFFFF}
#: every key of a message's record: what :func:`to_record` writes and :func:`from_record`
#: reads (any other key is not the message's)
RECORD_KEYS = frozenset(("version", "time", "family", "src_ip", "dst_ip", "proto",
                         "extra_correlation", "extra_correlation_text", "payload",
                         "compression", "payload_compressed", "magic", "chunks", *_INT_KEYS,
                         *_TEXT_KEYS, *_WIRE_HEX, *_WIRE_INT, *EXTRA_FIELDS))


def from_record(r: dict[str, Any]) -> HepMessage:
    """Build a message from a record (what ``to_record`` or ``decode -f jsonl`` wrote,
    or a hand-written subset: missing keys are absent chunks).  Raises HepValueError."""
    if not isinstance(r, dict):
        raise HepValueError(f"a HEP record is a JSON object, not {type(r).__name__}")
    m = HepMessage.__new__(HepMessage)
    blank(m)
    version = r.get("version", 3)
    if version not in (1, 2, 3):
        raise HepValueError(f"version must be 1, 2 or 3, not {version!r}")
    m.version = version
    key = ""  # the key being read: every value error names it
    try:
        for k in _INT_KEYS:
            key = k
            v = r.get(k)
            if v is not None:
                if isinstance(v, str):
                    v = int(v, 0)
                setattr(m, k, v)
        key = "proto"
        if m.proto_type is None and r.get("proto") is not None:
            m.proto_type = proto_from_text(str(r["proto"]))
        key = "time"
        if m.ts_sec is None and r.get("time"):
            m.ts_sec, m.ts_usec = parse_time(r["time"])
        key = "family"
        fam = r.get("family")
        if fam is not None:
            m.family = family_from_text(fam)
    except (TypeError, ValueError, AttributeError, OverflowError) as e:
        raise HepValueError(f"bad record value: {key}: {e}") from None
    for k in ("src_ip", "dst_ip"):
        v = r.get(k)
        if v is not None:
            if not isinstance(v, str):
                raise HepValueError(f"{k} must be an IP address string, not {v!r}")
            try:
                setattr(m, k, canonical_ip(v))
            except HepValueError:
                raise HepValueError(f"{k} is not an IP address: {v!r}") from None
    for k in _TEXT_KEYS:
        v = r.get(k)
        if v is not None:
            setattr(m, k, v if isinstance(v, str) else str(v))
    text = r.get("extra_correlation_text")
    if text is None and r.get("extra_correlation") is not None:
        ec = r["extra_correlation"]
        if isinstance(ec, str):
            text = ec
        elif isinstance(ec, dict):
            text = format_extra_correlation(list(ec.items()))
        else:
            text = format_extra_correlation(ec)
    m.extra_correlation = text
    if r.get("payload") is not None:
        m.payload = _bytes_from(r["payload"], "payload")
    comp = r.get("compression")
    if comp is not None:
        if comp not in ALGORITHMS:
            raise HepValueError(f"compression must be one of {', '.join(ALGORITHMS)}, not {comp!r}")
        m.compression = comp
        if r.get("payload_compressed") is not None and m.payload is not None:
            m._zcache = (m.payload, _bytes_from(r["payload_compressed"], "payload_compressed"))
    for k in EXTRA_FIELDS:
        if r.get(k) is not None:
            m.extra[k] = r[k]
    wire: dict[str, Any] = {}
    for k in _WIRE_HEX:
        if r.get(k):
            try:
                wire[k] = bytes.fromhex(r[k])
            except (TypeError, ValueError):
                raise HepValueError(f"{k} must be hex") from None
    for k, top in _WIRE_INT.items():
        v = r.get(k)
        if v is not None:
            if isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= 5:
                v = int(v)
            if type(v) is not int or not 0 <= v <= top:  # trailer_nuls 10**12: MemoryError
                raise HepValueError(f"{k} must be an integer 0..{top}, not {v!r}")
            wire[k] = v
    if r.get("magic"):
        if r["magic"] not in _MAGIC_NAMES:
            raise HepValueError(f"magic must be HEP3, EEP1 or EEP3, not {r['magic']!r}")
        wire["magic"] = r["magic"]
    m.wire = wire or None
    chunks = r.get("chunks")
    if chunks is not None and version == 3:
        m.layout = _layout_from(chunks, m)
    elif m.family is None and m.src_ip is not None:  # hand-written record: sensible default
        m.family = 10 if ":" in str(m.src_ip) else 2
    m.validate()
    return m


def _layout_from(chunks: Any, m: HepMessage) -> tuple:
    if not isinstance(chunks, list):
        raise HepValueError("chunks must be a list")
    lay: list = []
    last_raw: dict[str, int] = {}
    for i, c in enumerate(chunks):
        if isinstance(c, str):
            spec = CHUNKS_BY_NAME.get(c)
            if spec is None:
                raise HepValueError(f"chunks[{i}]: unknown chunk name {c!r}")
            lay.append(spec.type)
            last_raw.pop(spec.field, None)
        elif isinstance(c, dict):
            try:
                vendor, ctype, body = int(c["vendor"]), int(c["type"]), bytes.fromhex(c["hex"])
            except (KeyError, TypeError, ValueError):
                raise HepValueError(f"chunks[{i}]: needs vendor, type and hex") from None
            if not (0 <= vendor <= 0xFFFF and 0 <= ctype <= 0xFFFF):
                raise HepValueError(f"chunks[{i}]: vendor/type out of range")
            lay.append((vendor, ctype, body, NOVALUE))
            spec = CHUNKS.get(ctype) if vendor == 0 else None
            if spec is not None:
                last_raw[spec.field] = len(lay) - 1
        else:
            raise HepValueError(f"chunks[{i}]: expected a name or an object, not {c!r}")
    # A raw entry of a known type that is the last for its field stands for that field's
    # value, exactly as decode made it: keep its bytes while the value is unchanged.
    for field, i in last_raw.items():
        vendor, ctype, body, _ = lay[i]
        if ctype == 0x10:
            continue
        if any(type(e) is int and CHUNKS[e].field == field for e in lay[i + 1:]):
            continue
        try:
            value, _canon = decode_value(CHUNKS[ctype], body)
        except HepError:  # a damaged raw chunk stands for no value
            continue
        lay[i] = (vendor, ctype, body, value)
    return tuple(lay)
