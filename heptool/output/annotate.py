"""Walk the bytes of one HEP packet and say what every field is (for hex dumps).

:func:`annotate` yields one :class:`Annotation` per header field (v1/v2, the HEP3
magic and length) and per HEP3 chunk, in byte order, each with its offset, its length,
a label (``0x0000:0x0011 correlation_id``) and its decoded value as display text.  It
reads the bytes itself rather than going through :func:`heptool.core.codec.decode`, so
that it can show exactly what is on the wire, including what the decoder would keep raw
or refuse; the chunks are walked by :func:`heptool.core.wire.iter_chunks`, the decoder's
own bounded walk, so a dump stops where and why decoding stops.  It never raises: on damage (a chunk running past the end, a header cut short,
bytes that are not HEP) it yields one last annotation labelled ``damage`` covering the
bytes it could not read, whose value says why decoding stopped there.

Pure and stdlib only: :mod:`heptool.output.hexdump` renders it.
"""

from __future__ import annotations

import datetime as _dt
import json
import struct
from collections.abc import Iterator
from typing import NamedTuple

from ..core.addr import ip4_text, ip6_text
from ..core.compression import inflate
from ..core.errors import HepDecodeError
from ..core.registry import CHUNKS, VENDORS, chunk_spec, proto_name
from ..core.wire import HEP3, MAGICS, V12_IPV6_FAMILIES, ChunkHeader, iter_chunks

__all__ = ["DAMAGE", "Annotation", "annotate", "quote"]

#: The label of the final annotation when the packet could not be read to its end.
DAMAGE = "damage"

#: Longest text shown for a value (the bytes themselves are all in the dump).
TEXT_LIMIT = 80


class Annotation(NamedTuple):
    """One field of a packet: ``data[offset:offset + length]`` is ``label = value``."""

    offset: int
    length: int
    label: str
    value: str


_FAMILIES = {2: "IPv4", 10: "IPv6"}
_IP_PROTOS = {6: "TCP", 17: "UDP", 132: "SCTP", 22: "fake: TLS", 50: "fake: WS/WSS"}


def quote(b: bytes, limit: int = TEXT_LIMIT) -> str:
    """Bytes as a double-quoted, escaped one-line string, cut after ``limit`` characters."""
    text = b.decode("utf-8", "backslashreplace")
    q = json.dumps(text, ensure_ascii=False).replace("\\\\x", "\\x")
    if len(q) > limit + 2:
        return q[: limit + 1] + '…"'
    return q


def _time(sec: int) -> str:
    try:
        t = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(seconds=sec)
    except OverflowError:  # pragma: no cover - u32 always fits
        return str(sec)
    return f"{sec} ({t.strftime('%Y-%m-%dT%H:%M:%SZ')})"


def _named(value: int, names: dict[int, str]) -> str:
    name = names.get(value)
    return f"{value} ({name})" if name else str(value)


def _capture_id(value: int) -> str:
    if value > 0xFFFF and value & 0xFFFF == 0:
        return f"{value} (as sngrep writes htons({value >> 16}))"
    return str(value)


def _text_value(body: bytes) -> str:
    return quote(body) if body else '""'


def _payload_value(body: bytes) -> str:
    if not body:
        return "0 bytes"
    return f"{len(body)} bytes: {quote(body)}"


def _raw_value(body: bytes) -> str:
    """A chunk nobody defines: text when it reads as text, else its size (bytes are dumped)."""
    if not body:
        return "0 bytes"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable():
        return quote(body)
    if len(body) in (1, 2, 4, 8):
        return f"{len(body)} bytes (as an integer: {int.from_bytes(body, 'big')})"
    return f"{len(body)} bytes"


def _chunk_value(ctype: int, body: bytes) -> str:
    spec = CHUNKS[ctype]
    n = len(body)
    if spec.size is not None and n != spec.size:
        if n in spec.lenient_sizes:
            return (
                f"{int.from_bytes(body, 'big')} ({n}-byte body, the spec says {spec.size}; "
                "accepted leniently)"
            )
        return f"{n}-byte body, expected {spec.size}: not decoded (kept raw)"
    kind = spec.kind
    if kind == "ip4":
        return ip4_text(body)
    if kind == "ip6":
        return ip6_text(body)
    if kind in ("u8", "u16", "u32", "u64"):
        v = int.from_bytes(body, "big")
        if ctype == 0x01:
            return _named(v, _FAMILIES)
        if ctype == 0x02:
            return _named(v, _IP_PROTOS)
        if ctype == 0x09:
            return _time(v)
        if ctype == 0x0B:
            return f"{v} ({proto_name(v)})"
        if ctype == 0x0C:
            return _capture_id(v)
        if ctype == 0x20:
            return f"{v} (MOS {v / 100:g})"
        return str(v)
    if kind == "mac":
        if n in (6, 8):
            return ":".join(f"{x:02x}" for x in body)
        return f"{n}-byte body, expected 6 or 8: not decoded (kept raw)"
    if ctype == 0x0F:
        return _payload_value(body)
    if ctype == 0x10:
        try:
            data, algo = inflate(body, 1 << 20)
        except HepDecodeError as e:
            return f"{n} bytes, cannot be inflated: {e}"
        return f"{n} bytes of {algo}, inflates to {len(data)} bytes: {quote(data)}"
    return _text_value(body)


def _chunk_label(vendor: int, ctype: int) -> str:
    spec = chunk_spec(vendor, ctype)
    head = f"0x{vendor:04x}:0x{ctype:04x}"
    if spec is not None:
        return f"{head} {spec.name}"
    if vendor:
        name = VENDORS.get(vendor)
        return f"{head} vendor chunk" + (f" ({name})" if name else "")
    return f"{head} unknown chunk"


def annotate(data: bytes | bytearray | memoryview) -> Iterator[Annotation]:
    """Every field of one HEP packet (v1, v2 or v3), in byte order; never raises."""
    data = bytes(data)
    try:
        if data[:4] in MAGICS:
            yield from _annotate_v3(data)
        elif data[:1] in (b"\x01", b"\x02"):
            yield from _annotate_v12(data)
        elif not data:
            yield Annotation(0, 0, DAMAGE, "empty packet: nothing to decode")
        else:
            yield Annotation(
                0,
                len(data),
                DAMAGE,
                f"not HEP: starts with {data[:4].hex(' ')} (neither HEP3 magic nor "
                "a v1/v2 version byte); decoding stopped",
            )
    except Exception as e:  # noqa: BLE001  # pragma: no cover - a dump must never crash
        yield Annotation(0, len(data), DAMAGE, f"cannot annotate ({type(e).__name__}: {e})")


def _annotate_v3(data: bytes) -> Iterator[Annotation]:
    n = len(data)
    magic = data[:4].decode("ascii")
    note = "" if data[:4] == HEP3 else " (lenient: EEP magic, only some receivers accept it)"
    yield Annotation(0, 4, "magic", f'"{magic}"{note}')
    if n < 6:
        yield Annotation(4, n - 4, DAMAGE, f"HEP3 header needs 6 bytes, got {n}; decoding stopped")
        return
    total = data[4] << 8 | data[5]
    if total < 6:
        yield Annotation(4, 2, "length", f"{total} (less than 6: invalid)")
        yield Annotation(6, n - 6, DAMAGE, f"HEP3 length {total} is less than 6; decoding stopped")
        return
    if total > n:
        yield Annotation(4, 2, "length", f"{total} (but only {n} bytes are present)")
    elif total < n:
        yield Annotation(4, 2, "length", f"{total} ({n - total} more bytes follow the packet)")
    else:
        yield Annotation(4, 2, "length", str(total))
    end = min(total, n)
    off = 6
    for h in iter_chunks(data, 6, end):
        if type(h) is not ChunkHeader:  # the walk stops: the rest is damage, said as decode says it
            yield Annotation(off, end - off, DAMAGE, f"{h.message}; decoding stopped")  # type: ignore[union-attr]
            break
        off, vendor, ctype, clen = h
        body = data[off + 6 : off + clen]
        if vendor == 0 and ctype in CHUNKS:
            value = _chunk_value(ctype, body)
        elif vendor == 0 and ctype == 0:
            value = f"reserved type 0, {_raw_value(body)}"
        else:
            value = _raw_value(body)
        yield Annotation(off, clen, _chunk_label(vendor, ctype), value)
        off += clen
    if total < n:
        yield Annotation(
            total,
            n - total,
            "trailing",
            f"{n - total} bytes after the HEP3 length (not part of the packet)",
        )


def _annotate_v12(data: bytes) -> Iterator[Annotation]:
    n = len(data)
    version = data[0]
    yield Annotation(0, 1, "version", str(version))
    if n < 8:
        yield Annotation(
            1, n - 1, DAMAGE, f"HEPv{version} header needs 8 bytes, got {n}; decoding stopped"
        )
        return
    hlen, family, ip_proto = data[1], data[2], data[3]
    if family == 2 or (family not in V12_IPV6_FAMILIES and hlen == 16):
        asz = 4
    elif family in V12_IPV6_FAMILIES or hlen == 40:
        asz = 16
    else:
        asz = 0
    canon = 8 + 2 * asz
    if asz and hlen == canon:
        note = f"header + IPv{4 if asz == 4 else 6} addresses"
    elif asz:
        note = f"expected {canon}; e.g. sngrep writes the high byte of the total length"
    else:
        note = "names no IP version"
    yield Annotation(1, 1, "length", f"{hlen} ({note})")
    fam = {
        2: "AF_INET",
        10: "AF_INET6 (Linux)",
        16: "IPv6?",
        24: "AF_INET6 (BSD)",
        28: "AF_INET6 (BSD)",
        30: "AF_INET6 (macOS)",
    }.get(family)
    yield Annotation(2, 1, "family", f"{family} ({fam})" if fam else f"{family} (unknown)")
    yield Annotation(3, 1, "ip_proto", _named(ip_proto, _IP_PROTOS))
    yield Annotation(4, 2, "src_port", str(data[4] << 8 | data[5]))
    yield Annotation(6, 2, "dst_port", str(data[6] << 8 | data[7]))
    if not asz:
        yield Annotation(
            8,
            n - 8,
            DAMAGE,
            f"address family {family} and length byte {hlen} name no IP version; decoding stopped",
        )
        return
    start = canon + (12 if version == 2 else 0)
    if n < start:
        yield Annotation(
            8, n - 8, DAMAGE, f"HEPv{version} header needs {start} bytes, got {n}; decoding stopped"
        )
        return
    if asz == 4:
        yield Annotation(8, 4, "src_ip", ip4_text(data[8:12]))
        yield Annotation(12, 4, "dst_ip", ip4_text(data[12:16]))
    else:
        yield Annotation(8, 16, "src_ip", ip6_text(data[8:24]))
        yield Annotation(24, 16, "dst_ip", ip6_text(data[24:40]))
    if version == 2:
        t = canon
        sec, usec, cid = struct.unpack_from("<IIH", data, t)
        yield Annotation(t, 4, "ts_sec", _time(sec) + ", little-endian")
        yield Annotation(t + 4, 4, "ts_usec", f"{usec}, little-endian")
        yield Annotation(t + 8, 2, "capture_id", f"{cid}, little-endian u16")
        pad = data[t + 10 : t + 12]
        yield Annotation(
            t + 10,
            2,
            "pad",
            "2 pad bytes (C struct size 12)"
            if pad == b"\0\0"
            else f"2 pad bytes, not zero: {pad.hex(' ')}",
        )
    payload = data[start:]
    stripped = payload.rstrip(b"\0")
    nuls = len(payload) - len(stripped)
    if stripped or not nuls:
        yield Annotation(start, len(stripped), "payload", _payload_value(stripped))
    if nuls:
        yield Annotation(
            start + len(stripped),
            nuls,
            "trailer",
            f"{nuls} NUL bytes after the payload (OpenSIPS pads v1/v2 so)",
        )
