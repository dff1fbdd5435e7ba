"""Bytes -> :class:`HepMessage` for HEP v1, v2 and v3.

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

Fast paths, each equal to :func:`decode_generic` (the reference: the bounded chunk walk of
:func:`heptool.core.wire.iter_chunks`, nothing else): the C ``hep3_fields``
(:func:`decode_fast_c`), else :func:`decode_fast` (a decode template of
:mod:`.templates` plus an inline tail walk), then :func:`decode_v3` with its templates.
"""

from __future__ import annotations

import struct
from typing import Any

from .accel import c_function
from .addr import ip4_text, ip6_text
from .compression import DEFAULT_MAX_INFLATE, inflate
from .errors import (
    BadChunkValueError,
    BadMagicError,
    DecompressionError,
    HepDecodeError,
    HepError,
    LengthMismatchError,
    ShortHeaderError,
    TrailingDataError,
)
from .fields import FIELD_SET, NOVALUE
from .message import HepMessage, blank
from .registry import CHUNKS
from .templates import BY_THIRD
from .values import decode_value, encode_value, get_value
from .wire import (
    CHUNK_HDR,
    HEP3,
    MAGICS,
    V2_TIME,
    V12_HEAD,
    ChunkHeader,
    iter_chunks,
    v12_header_size,
)

__all__ = ["decode", "decode_fast", "decode_fast_c", "decode_generic", "decode_v3", "decode_v12"]

_new = HepMessage.__new__


# ---------------------------------------------------------------------------
# HEPv3 decode
# ---------------------------------------------------------------------------
def decode_v3(data: bytes, strict: bool = False, max_inflate: int = DEFAULT_MAX_INFLATE, *,
              templates: bool = True) -> HepMessage:
    """One HEP3 (or EEP) packet; ``templates=False`` reads every chunk with the generic walk
    (:func:`decode_generic`'s way)."""
    n = len(data)
    if n < 6:
        raise ShortHeaderError(f"HEP3 header needs 6 bytes, got {n}", offset=0)
    magic = data[:4]
    total = data[4] << 8 | data[5]
    m = _new(HepMessage)
    blank(m)
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
    if n > 23 and templates:
        for sig, mask, end, fast, order in BY_THIRD.get(data[23], ()):
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
    chunks = CHUNKS
    main = FIELD_SET
    header = ChunkHeader
    for h in iter_chunks(data, off, total):
        if type(h) is not header:  # the walk's last item: a TruncatedChunkError
            _damage(m, h, data, off, total, strict)  # type: ignore[arg-type]
            return
        off, vendor, ctype, clen = h
        end = off + clen
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
            value, canonical = decode_value(spec, body)
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
        prev = getattr(m, field) if field in main else get_value(m, field)
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
                    body = encode_value(spec, get_value(m, field))
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
_V12 = V12_HEAD
_V2_TIME = V2_TIME


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
    blank(m)
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


def decode_fast(data: bytes) -> HepMessage | None:
    """The common, well-formed HEP3 packet; None means 'take the full path'."""
    n = len(data)
    if n < 24 or (data[4] << 8 | data[5]) != n:
        return None
    for sig, mask, end, fast, order in BY_THIRD.get(data[23], ()):
        if end <= n and int.from_bytes(data[6:end], "big") & mask == sig:
            break
    else:
        return None
    m = _new(HepMessage)
    fast(data, m)  # also sets every slot the template does not fill to None
    m.version = 3
    lay = list(order)
    hdr = CHUNK_HDR.unpack_from
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


# optional C version of decode_fast's parsing (None in the pure-Python build)
_c_fields = c_function("hep3_fields")


def decode_fast_c(data: bytes) -> HepMessage | None:
    """:func:`decode_fast` with the chunks read in C (any order of the same chunks)."""
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


_fast = decode_fast_c if _c_fields is not None else decode_fast


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
    except _WRAPPED as e:
        raise _as_decode_error(e) from None
    raise _not_hep(data)


def decode_generic(data: bytes | bytearray | memoryview, strict: bool = False,
                   max_inflate: int = DEFAULT_MAX_INFLATE) -> HepMessage:
    """:func:`decode` with no fast path: no C, no template, every HEP3 chunk read by the
    bounded walk (:func:`heptool.core.wire.iter_chunks`).  The reference every fast path of
    the decoder must equal (tests/equivalence); same results and errors, slower."""
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"decode_generic() takes bytes, not {type(data).__name__}")
        data = bytes(data)
    try:
        if data[:4] in MAGICS:
            return decode_v3(data, strict, max_inflate, templates=False)
        if data[:1] in (b"\x01", b"\x02"):
            return decode_v12(data, strict)
    except HepDecodeError:
        raise
    except _WRAPPED as e:
        raise _as_decode_error(e) from None
    raise _not_hep(data)


#: what decode turns into a HepDecodeError (HepDecodeError itself passes through)
_WRAPPED = (HepError, struct.error, IndexError, ValueError, TypeError, OverflowError,
            UnicodeDecodeError)


def _as_decode_error(e: Exception) -> HepDecodeError:
    if isinstance(e, HepError):  # e.g. a value error while demoting a duplicate
        return HepDecodeError(str(e), offset=e.offset, chunk=e.chunk)
    return HepDecodeError(f"malformed packet ({type(e).__name__}: {e})", offset=None)


def _not_hep(data: bytes) -> HepDecodeError:
    if not data:
        return ShortHeaderError("empty packet", offset=0)
    return BadMagicError(f"not HEP: starts with {data[:4].hex(' ')}", offset=0)
