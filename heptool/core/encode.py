"""HepMessage -> HEP bytes (v1, v2, v3): :func:`encode` and its two halves.

A decoded message re-encodes to the bytes it came from (its ``layout``, planned by
:func:`heptool.core.layout.plan_v3`); a message built from fields encodes canonically.
:func:`encode_v3` is the reference; the fast path is a generated packing function per
layout of plain chunks (:func:`heptool.core.templates.build_encoder`), cached by layout,
which declines (None) anything else.  :func:`shape_cached_encoder` goes one step further for
a stream of messages built from fields (``heptool convert``): it caches the packing function
by the message's shape instead of working out its layout.
"""

from __future__ import annotations

import struct
from typing import Any

from .addr import ip_pack
from .errors import HepEncodeError, HepValueError
from .layout import canonical_layout, plan_v3
from .message import HepMessage
from .templates import build_encoder
from .wire import CHUNK_HDR, HEP3, MAX_HEP3_SIZE, V2_TIME, V12_HEAD

__all__ = ["encode", "encode_v3", "encode_v12", "shape_cached_encoder"]

_U16 = struct.Struct(">H")
_V2_TIME = V2_TIME
#: generated encoders by layout (None: the layout has none)
_encoders: dict[tuple, Any] = {}


def _encode_fast(m: HepMessage) -> bytes | None:
    layout = m.layout
    if layout is None:
        if m.compression is not None or m.wire is not None:
            return None
        layout = tuple(canonical_layout(m))
    enc = _encoders.get(layout)
    if enc is None:
        if layout in _encoders or len(_encoders) > 4096:
            return None
        if any(type(e) is not int for e in layout):
            enc = None
        else:
            enc = build_encoder(layout)
        _encoders[layout] = enc
        if enc is None:
            return None
    try:
        return enc(m)
    except (struct.error, HepValueError, AttributeError, TypeError, ValueError):
        return None  # the general path raises the right error


def encode_v3(m: HepMessage) -> bytes:
    hdr = CHUNK_HDR.pack
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
        head = V12_HEAD.pack(version, hlen, family, m.ip_proto if m.ip_proto is not None else 17,
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


def shape_cached_encoder(encode: Any = encode) -> Any:
    """``encode`` for HEPv3 messages built from fields, faster: one packing function per chunk
    layout is generated (:func:`~heptool.core.templates.build_encoder`), and the messages of
    one conversion have a handful of shapes (IPv6 or not, which optional fields are set), so
    the function is looked up by shape instead of the layout being worked out per message.
    Anything the generated function does not handle goes through ``encode`` itself (same
    bytes, or its error).  Messages must have no ``layout`` (built from fields)."""
    fns: dict[tuple, Any] = {}
    errors = (struct.error, HepValueError, AttributeError, TypeError, ValueError)

    def enc(m: Any) -> bytes:
        key = (":" in (m.src_ip or ""), m.correlation_id is None, m.auth_key is None,
               m.node_name is None, m.capture_id is None, m.payload is None)
        f = fns.get(key)
        if f is None:
            f = fns[key] = build_encoder(tuple(canonical_layout(m))) or encode
        try:
            data = f(m)
        except errors:
            return encode(m)  # type: ignore[no-any-return]
        # None: the generated function declines a message its shape key did not tell apart
        # (e.g. another family or extra_correlation): the general encoder writes it
        return data if data is not None else encode(m)  # type: ignore[no-any-return]

    return enc
