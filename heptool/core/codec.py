"""Bytes <-> :class:`HepMessage` for HEP v1, v2 and v3.

Decoding modes (HEP-SPEC section 11):

* lenient (default): every variant real software sends decodes (EEP1/EEP3 magic,
  sngrep's garbage v2 length byte, 1-byte VLAN, trailing bytes, OpenSIPS's NUL
  padding).  Damage inside a packet (a chunk that runs past the end, a fixed-size
  chunk with the wrong size, a payload that will not inflate) does not raise: the
  chunks read so far are kept, the rest is kept raw, and one :class:`HepDecodeError`
  per problem is appended to ``message.warnings``.  Only bytes that are not a HEP
  packet at all raise.
* strict: the first of those problems raises; quirks that only some receivers
  accept (EEP magic, v1/v2 length byte that is not 16/40, trailing bytes, odd chunk
  sizes, vendor-0 type-0 chunks) raise too.

Whatever the mode, any byte string either decodes or raises :class:`HepDecodeError`:
stray ``struct.error``/``IndexError``/``ValueError`` are wrapped with the offset.
"""

from __future__ import annotations

import struct
from typing import Any

from .accel import c_function
from .addr import ip4_text, ip6_text, ip_pack
from .compression import DEFAULT_MAX_INFLATE, deflate, inflate
from .errors import (
    BadChunkValueError,
    BadMagicError,
    DecompressionError,
    HepDecodeError,
    HepEncodeError,
    HepError,
    HepValueError,
    LengthMismatchError,
    ShortHeaderError,
    TrailingDataError,
    TruncatedChunkError,
)
from .message import _BLANK_SLOTS, FIELDS, NOVALUE, HepMessage, _blank, mac_to_bytes, mac_to_text
from .registry import CHUNKS, ChunkSpec
from .wire import (
    CHUNK_HDR,
    HEP3,
    MAGICS,
    MAX_HEP3_SIZE,
    V12_IPV6_FAMILIES,
    sniff_version,
    v12_header_size,
)

__all__ = [
    "MAGICS",
    "MAX_HEP3_SIZE",
    "V12_IPV6_FAMILIES",
    "decode",
    "decode_v3",
    "decode_v12",
    "encode",
    "encode_v3",
    "encode_v12",
    "plan_v3",
    "sniff_version",
]

_HDR = CHUNK_HDR
_U16 = struct.Struct(">H")
_MAIN = frozenset(FIELDS)
_new = HepMessage.__new__


# ---------------------------------------------------------------------------
# per-kind value codecs
# ---------------------------------------------------------------------------
def _get(m: HepMessage, field: str) -> Any:
    if field in _MAIN:
        return getattr(m, field)
    e = m._extra
    return e.get(field) if e else None


def _set(m: HepMessage, field: str, value: Any) -> None:
    if field in _MAIN:
        setattr(m, field, value)
    else:
        m.extra[field] = value


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


def _decode_value(spec: ChunkSpec, body: bytes) -> tuple[Any, bool]:
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


# ---------------------------------------------------------------------------
# HEPv3 decode
# ---------------------------------------------------------------------------
TEMPLATE_KINDS = {"u8": "B", "u16": "H", "u32": "I", "ip4": "4s", "ip6": "16s"}

# Fixed-chunk prefixes seen in the wild (HEP-SPEC section 10).  A packet whose first
# chunks have exactly these headers is read with one struct call.
_TEMPLATE_ORDERS = (
    (0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x03, 0x04),  # OpenSIPS, captagent, sngrep, Asterisk
    (0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C),  # Kamailio, heplify, hep-js
    (0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x05, 0x06),
    (0x01, 0x02, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C),
    (0x01, 0x02, 0x03, 0x04, 0x08, 0x07, 0x09, 0x0A, 0x0B, 0x0C),  # Kamailio hlog()
    (0x01, 0x02, 0x05, 0x06, 0x08, 0x07, 0x09, 0x0A, 0x0B, 0x0C),
)


def _build_template(order: tuple[int, ...]):
    specs = [CHUNKS[t] for t in order]
    fmt = ">" + "".join("6x" + TEMPLATE_KINDS[s.kind] for s in specs)
    st = struct.Struct(fmt)
    sig = bytearray()
    mask = bytearray()
    for s in specs:
        sig += _HDR.pack(0, s.type, 6 + s.size) + bytes(s.size)  # type: ignore[operator]
        mask += b"\xff" * 6 + bytes(s.size)  # type: ignore[arg-type]
    targets = []
    post = []
    for i, s in enumerate(specs):
        if s.kind in ("ip4", "ip6"):
            targets.append(f"_a{i}")
            fn = "_ip4" if s.kind == "ip4" else "_ip6"
            post.append(f"    m.{s.field} = {fn}(_a{i})")
        else:
            targets.append(f"m.{s.field}")
    covered = {s.field for s in specs}
    others = [n for n in _BLANK_SLOTS if n not in covered]
    src = (
        "def _fast(data, m):\n"
        f"    {' = '.join('m.' + n for n in others)} = None\n"
        f"    {', '.join(targets)}, = _unpack(data, 6)\n" + "\n".join(post) + "\n"
    )
    ns: dict[str, Any] = {"_unpack": st.unpack_from, "_ip4": ip4_text, "_ip6": ip6_text}
    exec(compile(src, f"<heptool template {order}>", "exec"), ns)  # noqa: S102 - our own source, never packet data
    end = 6 + st.size
    return (int.from_bytes(sig, "big"), int.from_bytes(mask, "big"), end, ns["_fast"], order)


#: (signature, mask, end, message filler, chunk order) per known fixed-chunk layout
TEMPLATES = [_build_template(o) for o in _TEMPLATE_ORDERS]
# dispatch on the type byte of the third chunk header (offset 6 + 7 + 7 + 3)
_TEMPLATE_BY_THIRD: dict[int, list] = {}
for _t in TEMPLATES:
    _TEMPLATE_BY_THIRD.setdefault(_t[4][2], []).append(_t)
del _t


def decode_v3(data: bytes, strict: bool = False, max_inflate: int = DEFAULT_MAX_INFLATE) -> HepMessage:
    n = len(data)
    if n < 6:
        raise ShortHeaderError(f"HEP3 header needs 6 bytes, got {n}", offset=0)
    magic = data[:4]
    total = data[4] << 8 | data[5]
    m = _new(HepMessage)
    _blank(m)
    m.version = 3
    wire = None
    if magic != HEP3:
        if magic not in MAGICS:
            raise BadMagicError(f"bad magic {magic!r}", offset=0)
        if strict:
            raise BadMagicError(f"magic {magic.decode()} is accepted only in lenient mode", offset=0)
        wire = {"magic": magic.decode()}
    if total < 6:
        raise LengthMismatchError(f"HEP3 length {total} is less than 6", offset=4)
    if total > n:
        raise LengthMismatchError(f"HEP3 length {total} exceeds the {n} bytes present", offset=4)
    if total < n and strict:
        raise TrailingDataError(f"{n - total} bytes after the HEP3 packet (length {total})", offset=total)
    lay: list = []
    off = 6
    if n > 23:
        for sig, mask, end, fast, order in _TEMPLATE_BY_THIRD.get(data[23], ()):
            if end <= total and int.from_bytes(data[6:end], "big") & mask == sig:
                fast(data, m)  # resets the other slots: nothing may be set on m before this
                m.version = 3
                lay.extend(order)
                off = end
                break
    if total < n:
        wire = wire or {}
        wire["trailing"] = data[total:]
        m.warnings.append(TrailingDataError(f"{n - total} bytes after the HEP3 packet (length {total})",
                                            offset=total))
    if off < total:
        _decode_chunks(m, data, off, total, lay, strict, max_inflate)
        if m.wire is not None:  # tail kept raw by _decode_chunks
            wire = {**(wire or {}), **m.wire}
    m.layout = tuple(lay)
    m.wire = wire
    return m


def _decode_chunks(m: HepMessage, data: bytes, off: int, total: int, lay: list,
                   strict: bool, max_inflate: int) -> None:
    hdr = _HDR.unpack_from
    chunks = CHUNKS
    main = _MAIN
    while off < total:
        if total - off < 6:
            _damage(m, TruncatedChunkError(f"{total - off} bytes left, a chunk header needs 6",
                                           offset=off), data, off, total, strict)
            return
        vendor, ctype, clen = hdr(data, off)
        if clen < 6:
            _damage(m, TruncatedChunkError(f"chunk 0x{vendor:04x}:0x{ctype:04x} length {clen} is less than 6",
                                           offset=off + 4, chunk=(vendor, ctype)), data, off, total, strict)
            return
        end = off + clen
        if end > total:
            _damage(m, TruncatedChunkError(
                f"chunk 0x{vendor:04x}:0x{ctype:04x} length {clen} exceeds remaining {total - off} bytes",
                offset=off + 4, chunk=(vendor, ctype)), data, off, total, strict)
            return
        body = data[off + 6:end]
        spec = chunks.get(ctype) if vendor == 0 else None
        if spec is None:
            if strict and vendor == 0 and ctype == 0:
                raise BadChunkValueError("chunk type 0 is reserved", offset=off, chunk=(0, 0))
            lay.append((vendor, ctype, body, NOVALUE))
            off = end
            continue
        field = spec.field
        # Decode first: only a valid repeat replaces (and demotes) the earlier value.
        if ctype == 0x10:
            try:
                value, algo = inflate(body, max_inflate)
            except DecompressionError as e:
                e.offset, e.chunk = off + 6, (0, 0x10)
                if strict:
                    raise
                m.warnings.append(e.with_traceback(None))  # keep no frames (nor their buffers)
                lay.append((0, 0x10, body, NOVALUE))
                off = end
                continue
            if m.payload is not None:
                _demote_previous(m, lay, field)
            m.payload = value
            m.compression = algo
            m._zcache = (value, body)
            lay.append(0x10)
            off = end
            continue
        try:
            value, canonical = _decode_value(spec, body)
        except BadChunkValueError as e:
            e.offset, e.chunk = off, (0, ctype)
            if strict:
                raise
            m.warnings.append(e.with_traceback(None))
            lay.append((0, ctype, body, NOVALUE))
            off = end
            continue
        if not canonical and strict and spec.size is not None:
            raise BadChunkValueError(f"{spec.name} body is {len(body)} bytes, expected {spec.size}",
                                     offset=off, chunk=(0, ctype))
        prev = getattr(m, field) if field in main else _get(m, field)
        if prev is not None:
            _demote_previous(m, lay, field)
        if field in main:
            setattr(m, field, value)
            if ctype == 0x0F:  # a plain payload after a compressed one is the effective payload
                m.compression = None
                m._zcache = None
        else:
            m.extra[field] = value
        lay.append(ctype if canonical else (0, ctype, body, value))
        off = end


def _demote_previous(m: HepMessage, lay: list, field: str) -> None:
    """A chunk repeats: the earlier one stops being the field's value and is kept raw."""
    for i in range(len(lay) - 1, -1, -1):
        e = lay[i]
        if type(e) is int:
            spec = CHUNKS[e]
            if spec.field == field:
                if e == 0x10:
                    body = m._zcache[1] if m._zcache else b""
                else:
                    body = encode_value(spec, _get(m, field))
                lay[i] = (0, e, body, NOVALUE)
                return
        elif e[3] is not NOVALUE and CHUNKS[e[1]].field == field:
            lay[i] = (e[0], e[1], e[2], NOVALUE)
            return


def _damage(m: HepMessage, err: HepDecodeError, data: bytes, off: int, total: int, strict: bool) -> None:
    if strict:
        raise err
    m.warnings.append(err)
    m.wire = {"tail": data[off:total]}


# ---------------------------------------------------------------------------
# HEPv1 / HEPv2 decode
# ---------------------------------------------------------------------------
_V12 = struct.Struct(">BBBBHH")
_V2_TIME = struct.Struct("<IIH2s")


def decode_v12(data: bytes, strict: bool = False) -> HepMessage:
    n = len(data)
    if n < 8:
        raise ShortHeaderError(f"HEPv1/v2 header needs 8 bytes, got {n}", offset=0)
    version, hlen, family, ip_proto, sport, dport = _V12.unpack_from(data)
    if version not in (1, 2):
        raise BadMagicError(f"version byte {version} is not 1 or 2", offset=0)
    start = v12_header_size(version, hlen, family)
    if not start:
        raise BadChunkValueError(f"HEPv{version} address family {family} and length byte {hlen} "
                                 "name no IP version", offset=2)
    canon = start - 12 if version == 2 else start
    asz = (canon - 8) // 2
    wire: dict[str, Any] | None = None
    if hlen != canon:
        if strict:
            raise LengthMismatchError(f"HEPv{version} length byte {hlen}, expected {canon}", offset=1)
        wire = {"v12_length": hlen}
    if n < start:
        raise ShortHeaderError(f"HEPv{version} header needs {start} bytes, got {n}", offset=0)
    m = _new(HepMessage)
    _blank(m)
    m.version = version
    m.family = family
    m.ip_proto = ip_proto
    m.src_port = sport
    m.dst_port = dport
    if asz == 4:
        m.src_ip = ip4_text(data[8:12])
        m.dst_ip = ip4_text(data[12:16])
    else:
        m.src_ip = ip6_text(data[8:24])
        m.dst_ip = ip6_text(data[24:40])
    if version == 2:
        m.ts_sec, m.ts_usec, m.capture_id, pad = _V2_TIME.unpack_from(data, canon)
        if pad != b"\0\0":
            wire = wire or {}
            wire["v2_pad"] = pad
    payload = data[start:]
    stripped = payload.rstrip(b"\0")
    if len(stripped) != len(payload):
        # OpenSIPS appends 8/32 NUL bytes to every v1/v2 datagram (HEP-SPEC 1.2): keep
        # them out of the payload and put them back on encode.
        wire = wire or {}
        wire["trailer_nuls"] = len(payload) - len(stripped)
        payload = stripped
    m.payload = payload
    m.proto_type = 1  # v1/v2 carry SIP only; every receiver treats them as SIP
    m.wire = wire
    return m


# Variable-length generic chunks the fast path reads inline: type -> field.  Anything
# else (vendor chunks, duplicates, odd sizes, bad UTF-8, compression) goes the full way.
_FAST_TEXT = {0x0E: "auth_key", 0x11: "correlation_id", 0x13: "node_name", 0x65: "extra_correlation"}


def _decode_fast(data: bytes) -> HepMessage | None:
    """The common, well-formed HEP3 packet; None means 'take the full path'."""
    n = len(data)
    if n < 24 or (data[4] << 8 | data[5]) != n:
        return None
    for sig, mask, end, fast, order in _TEMPLATE_BY_THIRD.get(data[23], ()):
        if end <= n and int.from_bytes(data[6:end], "big") & mask == sig:
            break
    else:
        return None
    m = _new(HepMessage)
    fast(data, m)  # also sets every slot the template does not fill to None
    m.version = 3
    lay = list(order)
    hdr = _HDR.unpack_from
    off = end
    try:
        while off < n:
            vendor, ctype, clen = hdr(data, off)
            nxt = off + clen
            if vendor or clen < 6 or nxt > n:
                return None
            if ctype == 0x0F:
                if m.payload is not None:
                    return None
                m.payload = data[off + 6:nxt]
            else:
                field = _FAST_TEXT.get(ctype)
                if field is None or getattr(m, field) is not None:
                    return None
                setattr(m, field, data[off + 6:nxt].decode())
            lay.append(ctype)
            off = nxt
    except (UnicodeDecodeError, struct.error):
        return None
    m.layout = tuple(lay)
    return m


# optional C version of _decode_fast's parsing (None in the pure-Python build)
_c_fields = c_function("hep3_fields")


def _decode_fast_c(data: bytes) -> HepMessage | None:
    """:func:`_decode_fast` with the chunks read in C (any order of the same chunks)."""
    t = _c_fields(data)
    if t is None:
        return None
    m = _new(HepMessage)
    (m.family, m.ip_proto, m.src_ip, m.dst_ip, m.src_port, m.dst_port, m.ts_sec, m.ts_usec,
     m.proto_type, m.capture_id, m.auth_key, m.node_name, m.correlation_id,
     m.extra_correlation, m.payload, m.layout) = t
    m.version = 3
    m.compression = m.wire = m._zcache = m._extra = m._warnings = None
    return m


_fast = _decode_fast_c if _c_fields is not None else _decode_fast


def decode(data: bytes | bytearray | memoryview, strict: bool = False,
           max_inflate: int = DEFAULT_MAX_INFLATE) -> HepMessage:
    """Decode one HEP packet (v1, v2 or v3, detected from its bytes).

    Raises :class:`HepDecodeError` (with ``.offset``) and nothing else.
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"decode() takes bytes, not {type(data).__name__}")
        data = bytes(data)
    try:
        if data[:4] == HEP3:
            m = _fast(data)  # only ever accepts strictly valid packets
            if m is not None:
                return m
            return decode_v3(data, strict, max_inflate)
        if data[:1] in (b"\x01", b"\x02"):
            return decode_v12(data, strict)
        if data[:4] in MAGICS:
            return decode_v3(data, strict, max_inflate)
    except HepDecodeError:
        raise
    except HepError as e:  # e.g. a value error while demoting a duplicate
        raise HepDecodeError(str(e), offset=e.offset, chunk=e.chunk) from None
    except (struct.error, IndexError, ValueError, TypeError, OverflowError, UnicodeDecodeError) as e:
        raise HepDecodeError(f"malformed packet ({type(e).__name__}: {e})", offset=None) from None
    if not data:
        raise ShortHeaderError("empty packet", offset=0)
    raise BadMagicError(f"not HEP: starts with {data[:4].hex(' ')}", offset=0)


# ---------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------
#: Canonical chunk order for messages built from fields: the order of the spec's table,
#: which is what Kamailio and heplify send (HEP-SPEC section 10), with 0x0011 placed
#: before the payload (Kamailio reads it with strlen and needs a vendor-0 chunk after it).
_CANONICAL_HEAD = (0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C)
_CANONICAL_TAIL_LAST = (0x11, 0x65, 0x0F)


def _canonical_layout(m: HepMessage) -> list:
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
        middle.extend(_FIELD_SPEC[k].type for k, v in extra.items() if v is not None)
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
    layout = m.layout if m.layout is not None else _canonical_layout(m)
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
            value = _get(m, field)
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
            cur = _get(m, field)
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
            if name not in done and _get(m, name) is not None:
                spec = _FIELD_SPEC[name]
                missing.append((0,) + _canonical_body(m, spec, _get(m, name)))
                done.add(name)
        if missing:
            at = payload_at if payload_at is not None else len(out)
            out[at:at] = missing
    return out


_FIELD_SPEC: dict[str, ChunkSpec] = {}
for _s in CHUNKS.values():
    _FIELD_SPEC.setdefault(_s.field, _s)
del _s
_ADDABLE = tuple(f for f in _FIELD_SPEC if f not in ("compression",))


# ---------------------------------------------------------------------------
# encode fast path: one generated function per layout of plain generic chunks
# ---------------------------------------------------------------------------
_STRUCT_CODE = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}
_CHUNK_FIELDS = tuple(f for f in FIELDS if f not in ("version", "compression"))
_encoders: dict[tuple, Any] = {}


def _ip4_pack(s: str) -> bytes:
    b = ip_pack(s)
    if len(b) != 4:
        raise HepValueError("not IPv4")
    return b


def _ip6_pack(s: str) -> bytes:
    b = ip_pack(s)
    if len(b) != 16:
        raise HepValueError("not IPv6")
    return b


def _build_encoder(layout: tuple):
    """Source for a function that encodes a message with this exact layout, or None.

    The function returns None whenever the message is not plain (a value missing or
    added, extra chunks, wire quirks): the general path handles that.
    """
    if len({CHUNKS[t].field for t in layout}) != len(layout) or 0x10 in layout:
        return None
    covered = {CHUNKS[t].field for t in layout}
    lines = ["def _enc(m):"]
    guard = ["m.wire is not None", "m._extra", "m.compression is not None"]
    guard += [f"m.{f} is not None" for f in _CHUNK_FIELDS if f not in covered]
    lines.append(f"    if {' or '.join(guard)}: return None")
    fmt = ">4sH"
    args = ["b'HEP3'", "_total"]
    fixed = 6
    var_lines = []
    for i, t in enumerate(layout):
        spec = CHUNKS[t]
        lines.append(f"    v{i} = m.{spec.field}")
        lines.append(f"    if v{i} is None: return None")
        if spec.kind in _STRUCT_CODE or spec.kind in ("ip4", "ip6"):
            size = spec.size
            fmt += "6s" + (_STRUCT_CODE.get(spec.kind) or f"{size}s")
            args.append(repr(_HDR.pack(0, t, 6 + size)))  # type: ignore[operator]
            args.append(f"_ip4(v{i})" if spec.kind == "ip4" else f"_ip6(v{i})" if spec.kind == "ip6" else f"v{i}")
            fixed += 6 + size  # type: ignore[operator]
        elif spec.kind in ("text", "bytes"):
            if spec.kind == "text":
                lines.append(f"    b{i} = v{i}.encode() if v{i}.__class__ is str else None")
            else:
                lines.append(f"    b{i} = v{i} if v{i}.__class__ is bytes else None")
            lines.append(f"    if b{i} is None: return None")
            var_lines.append(i)
        else:
            return None
    tot = [str(fixed)] + [f"6 + len(b{i})" for i in var_lines]
    lines.append(f"    _total = {' + '.join(tot)}")
    lines.append("    if _total > 65535: return None")
    # fixed chunks are packed first into their positions by one struct call: only valid if
    # every fixed chunk precedes every variable one, else interleave in order
    pieces = []
    fixed_fmt = ">4sH"
    fixed_args = ["b'HEP3'", "_total"]
    structs: dict[str, struct.Struct] = {}
    run_fmt, run_args = fixed_fmt, fixed_args
    for i, t in enumerate(layout):
        spec = CHUNKS[t]
        if i in var_lines:
            if run_args:
                name = f"_S{len(structs)}"
                structs[name] = struct.Struct(run_fmt)
                pieces.append(f"{name}({', '.join(run_args)})")
                run_fmt, run_args = ">", []
            pieces.append(f"_hdr(0, {t}, 6 + len(b{i}))")
            pieces.append(f"b{i}")
        else:
            size = spec.size
            run_fmt += "6s" + (_STRUCT_CODE.get(spec.kind) or f"{size}s")
            run_args.append(repr(_HDR.pack(0, t, 6 + size)))  # type: ignore[operator]
            run_args.append(f"_ip4(v{i})" if spec.kind == "ip4" else f"_ip6(v{i})" if spec.kind == "ip6" else f"v{i}")
    if run_args:
        name = f"_S{len(structs)}"
        structs[name] = struct.Struct(run_fmt)
        pieces.append(f"{name}({', '.join(run_args)})")
    lines.append(f"    return b''.join(({', '.join(pieces)},))")
    src = "\n".join(lines) + "\n"
    ns: dict[str, Any] = {"_ip4": _ip4_pack, "_ip6": _ip6_pack, "_hdr": _HDR.pack}
    ns.update({k: v.pack for k, v in structs.items()})
    exec(compile(src, "<heptool encoder>", "exec"), ns)  # noqa: S102 - from the registry, never packet data
    return ns["_enc"]


def _encode_fast(m: HepMessage) -> bytes | None:
    layout = m.layout
    if layout is None:
        if m.compression is not None or m.wire is not None:
            return None
        layout = tuple(_canonical_layout(m))
    enc = _encoders.get(layout)
    if enc is None:
        if layout in _encoders or len(_encoders) > 4096:
            return None
        if any(type(e) is not int for e in layout):
            enc = None
        else:
            enc = _build_encoder(layout)
        _encoders[layout] = enc
        if enc is None:
            return None
    try:
        return enc(m)
    except (struct.error, HepValueError, AttributeError, TypeError, ValueError):
        return None  # the general path raises the right error


def encode_v3(m: HepMessage) -> bytes:
    hdr = _HDR.pack
    parts = [b""]
    size = 6
    for vendor, ctype, body in plan_v3(m):
        ln = len(body) + 6
        if ln > 0xFFFF:
            raise HepEncodeError(f"chunk 0x{vendor:04x}:0x{ctype:04x} is {ln} bytes, more than 65535",
                                 chunk=(vendor, ctype))
        parts.append(hdr(vendor, ctype, ln))
        parts.append(body)
        size += ln
    wire = m.wire
    magic = HEP3
    if wire:
        tail = wire.get("tail")
        if tail:
            parts.append(tail)
            size += len(tail)
        if "magic" in wire:
            magic = wire["magic"].encode("ascii")
    if size > MAX_HEP3_SIZE:
        raise HepEncodeError(f"HEP3 packet would be {size} bytes, more than 65535")
    parts[0] = magic + _U16.pack(size)
    out = b"".join(parts)
    if wire and wire.get("trailing"):
        out += wire["trailing"]
    return out


def encode_v12(m: HepMessage, version: int) -> bytes:
    if m.src_ip is None or m.dst_ip is None:
        raise HepEncodeError(f"HEPv{version} needs src_ip and dst_ip")
    try:
        src = ip_pack(m.src_ip)
        dst = ip_pack(m.dst_ip)
    except HepValueError as e:
        raise HepEncodeError(str(e)) from None
    if len(src) != len(dst):
        raise HepEncodeError(f"HEPv{version} needs both addresses of one IP version")
    wire = m.wire or {}
    family = m.family if m.family is not None else (2 if len(src) == 4 else 10)
    hlen = wire.get("v12_length", 8 + 2 * len(src))
    try:
        head = _V12.pack(version, hlen, family, m.ip_proto if m.ip_proto is not None else 17,
                         m.src_port or 0, m.dst_port or 0)
    except struct.error as e:
        raise HepEncodeError(f"HEPv{version} header: {e}") from None
    parts = [head, src, dst]
    if version == 2:
        cid = m.capture_id or 0
        if cid > 0xFFFF:
            raise HepEncodeError(f"HEPv2 capture id is 16 bits; {cid} does not fit")
        try:
            parts.append(_V2_TIME.pack(m.ts_sec or 0, m.ts_usec or 0, cid, wire.get("v2_pad", b"\0\0")))
        except struct.error as e:
            raise HepEncodeError(f"HEPv2 time header: {e}") from None
    payload = m.payload or b""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    parts.append(payload)
    nuls = wire.get("trailer_nuls")
    if nuls:
        parts.append(b"\0" * nuls)
    return b"".join(parts)


def encode(m: HepMessage, version: int | None = None) -> bytes:
    """Encode a message as HEP bytes (its own version unless ``version`` is given).

    A decoded message re-encodes to the bytes it came from; converting it to another
    version drops the layout and writes that version canonically.
    """
    v = version or m.version
    if v != m.version:
        m = m.copy()
        m.layout = None
        m.wire = None
        m.version = v
    if v == 3:
        out = _encode_fast(m)
        if out is not None:
            return out
        return encode_v3(m)
    if v in (1, 2):
        return encode_v12(m, v)
    raise HepEncodeError(f"unknown HEP version {v!r}")
