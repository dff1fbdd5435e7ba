"""The decode record: ``to_record(message)`` plus where the message came from and its SIP view.

:func:`message_record` returns exactly what :func:`heptool.core.record.to_record` returns
(``tests/output/test_records.py`` holds it to that on every capture), built faster for the
common shapes: the ISO time is formatted once per second (``datetime.strftime`` costs ~2 us a
call), and a layout's chunk-name list once per layout.  Anything unusual (compression, rarer
chunks, wire quirks, raw chunks) goes through ``to_record`` itself.
"""

from __future__ import annotations

import base64
from typing import Any

from ..core.message import HepMessage
from ..core.record import extra_correlation_pairs, format_time, to_record
from ..core.registry import CHUNKS, FAMILY_NAMES, PROTO_TYPES
from ..core.sip import sip_info, sip_text_info

__all__ = ["decode_record", "iso_time", "message_record"]

_SECONDS: dict[int, str] = {}
_LAYOUT_NAMES: dict[tuple, list[str] | None] = {}
_CACHE_MAX = 4096


def iso_time(ts_sec: int | None, ts_usec: int | None) -> str | None:
    """``format_time`` with the date-and-seconds part cached (same result)."""
    if ts_sec is None:
        return None
    usec = ts_usec or 0
    if not 0 <= usec < 1_000_000:
        return format_time(ts_sec, ts_usec)
    prefix = _SECONDS.get(ts_sec)
    if prefix is None:
        if len(_SECONDS) > _CACHE_MAX:
            _SECONDS.clear()
        prefix = _SECONDS[ts_sec] = format_time(ts_sec, 0)[:-8]  # drop ".000000Z"
    return f"{prefix}.{usec:06d}Z"


def _names(layout: tuple) -> list[str] | None:
    try:
        names = _LAYOUT_NAMES[layout]
    except KeyError:
        if all(type(e) is int for e in layout):
            names = [CHUNKS[e].name for e in layout]
        else:
            names = None  # raw entries: to_record renders them
        if len(_LAYOUT_NAMES) > _CACHE_MAX:
            _LAYOUT_NAMES.clear()
        _LAYOUT_NAMES[layout] = names
    except TypeError:  # unhashable value in a raw entry
        return None
    return names


def message_record(m: HepMessage) -> dict[str, Any]:
    """Same as ``to_record(m)`` (a new dict), faster for the common shapes."""
    return _record(m, {})


def _record(m: HepMessage, r: dict[str, Any]) -> dict[str, Any]:
    layout = m.layout
    names = None
    if m.version == 3 and layout is not None:
        names = _names(layout)
        if names is None:
            r.update(to_record(m))
            return r
    if m.compression or m._extra or m.wire:
        r.update(to_record(m))
        return r
    ec = m.extra_correlation
    payload = m.payload
    if payload is not None:
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            payload = {"base64": base64.b64encode(payload).decode("ascii")}
    pt = m.proto_type
    fam = m.family
    r["version"] = m.version
    r["ts_sec"] = m.ts_sec
    r["ts_usec"] = m.ts_usec
    r["time"] = iso_time(m.ts_sec, m.ts_usec)
    r["family"] = None if fam is None else FAMILY_NAMES.get(fam, fam)
    r["ip_proto"] = m.ip_proto
    r["src_ip"] = m.src_ip
    r["src_port"] = m.src_port
    r["dst_ip"] = m.dst_ip
    r["dst_port"] = m.dst_port
    r["proto_type"] = pt
    r["proto"] = None if pt is None else PROTO_TYPES.get(pt) or str(pt)
    r["capture_id"] = m.capture_id
    r["node_name"] = m.node_name
    r["auth_key"] = m.auth_key
    r["correlation_id"] = m.correlation_id
    r["extra_correlation"] = None if ec is None else extra_correlation_pairs(ec)
    r["extra_correlation_text"] = ec
    r["payload"] = payload
    if names is not None:
        r["chunks"] = names.copy()
    return r


def decode_record(m: HepMessage, index: int, frame: int | None = None,
                  hep_transport: str | None = None, hep_src: str | None = None,
                  hep_dst: str | None = None, sip: bool = True) -> dict[str, Any]:
    """The record ``heptool decode`` prints: ``index``, ``frame``/``hep_*`` when known, the
    message record, and ``sip`` (:func:`heptool.core.sip.sip_info`) for SIP payloads."""
    r: dict[str, Any] = {"index": index}
    if frame is not None:
        r["frame"] = frame
    if hep_transport is not None:
        r["hep_transport"] = hep_transport
        r["hep_src"] = hep_src
        r["hep_dst"] = hep_dst
    _record(m, r)
    if sip:
        text = r["payload"]
        if type(text) is str and text[:1] != "{":
            info = sip_text_info(text) if text[:1].isalpha() else None
        else:
            info = sip_info(m.payload)  # OpenSIPS JSON wrapping, or not UTF-8
        if info is not None:
            r["sip"] = info
    return r
