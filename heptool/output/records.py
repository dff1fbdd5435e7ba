"""The decode record: ``to_record(message)`` plus where the message came from and its SIP view.

:func:`decode_record` is the reference: decode, then :func:`~heptool.core.record.to_record`,
then the ``sip`` view.  :func:`make_fast_record` and :func:`make_fast_jsonl` are its fast
paths for the common, strictly valid HEP3 packet, built straight from the bytes with no
message: the C extension's ``hep3_record``/``hep3_jsonl`` when it is built, else the
generated record builder (:func:`heptool.core.templates.record_builder`) wrapped by
:func:`py_fast_record` for the capture head and the ``sip`` view.  Each returns None for a
packet it does not take, never an error, and is equal to the reference (rows in
tests/equivalence/).  They live here, not in core, because the record's ``sip`` view is the
sip layer's; importing this module configures the C extension's tables.
"""

from __future__ import annotations

from typing import Any

from ..core.accel import c_module
from ..core.addr import ip6_text
from ..core.message import HepMessage
from ..core.record import SECOND_PREFIXES, extra_correlation_pairs, format_time, to_record
from ..core.registry import CHUNKS, FAMILY_NAMES, PROTO_TYPES
from ..core.templates import record_builder
from ..sip.info import sip_info, sip_of_text

__all__ = ["decode_record", "make_fast_jsonl", "make_fast_record", "py_fast_record"]


def decode_record(m: HepMessage, index: int, frame: int | None = None,
                  hep_transport: str | None = None, hep_src: str | None = None,
                  hep_dst: str | None = None, sip: bool = True,
                  frame_time: tuple[int, int] | None = None) -> dict[str, Any]:
    """The record ``heptool decode`` prints: ``index``, ``frame``/``hep_*`` when known,
    ``frame_time`` (ISO 8601, UTC) when given (a HEPv1 message from a capture: it has no time
    of its own), the message record, and ``sip`` (:func:`heptool.sip.info.sip_info`) for SIP
    payloads."""
    r: dict[str, Any] = {"index": index}
    if frame is not None:
        r["frame"] = frame
    if hep_transport is not None:
        r["hep_transport"] = hep_transport
        r["hep_src"] = hep_src
        r["hep_dst"] = hep_dst
    if frame_time is not None:
        r["frame_time"] = format_time(*frame_time)
    r.update(to_record(m))
    if sip:
        text = r["payload"]
        # text: as the fast path (make_fast_record) does; else not UTF-8 (or no payload)
        info = sip_of_text(text) if type(text) is str else sip_info(m.payload)
        if info is not None:
            r["sip"] = info
    return r


# -- bytes -> record, without a HepMessage (the hot path of ``heptool decode -f jsonl``) ------
def make_fast_record() -> Any:
    """``fast(data, index, frame, hep_transport, hep_src, hep_dst, sip=False) -> dict | None``:
    the record ``heptool decode`` prints for a common, strictly valid HEP3 packet, built
    straight from its bytes: ``index``, then (``frame`` not None: a capture) ``frame`` and the
    ``hep_*`` keys, then ``to_record(decode(data))``, then with ``sip`` true the payload's
    ``sip`` view (:func:`heptool.sip.info.sip_of_text`) when it has one.  None means "take the
    full path" (:func:`decode_record`), never an error.  The optional C extension's version
    when it is built, else :func:`py_fast_record`'s."""
    if _c_record is not None:
        return _c_record
    return py_fast_record()


def make_fast_jsonl() -> Any:
    """``fast(data, index, frame, hep_transport, hep_src, hep_dst, sip) -> bytes | None``: the
    JSON line (orjson's bytes, newline included) of :func:`make_fast_record`'s record, written
    straight from the packet by the C extension; None without it, and the function returns
    None for any packet whose record has to be built as a dict (0x0065 pairs, a payload the
    Python SIP code must read)."""
    return _c_jsonl


def py_fast_record() -> Any:
    """:func:`make_fast_record`'s function in pure Python: the generated builder of the head
    the call needs (``frame`` None: index only), plus the ``sip`` view."""
    with_capture = record_builder("capture")
    with_index = record_builder("index")

    def fast(data: bytes, index: int, frame: int | None, hep_transport: str | None,
             hep_src: str | None, hep_dst: str | None, sip: bool = False) -> dict[str, Any] | None:
        if frame is not None:
            r = with_capture(data, index, frame, hep_transport, hep_src, hep_dst)
        else:
            r = with_index(data, index)
        if r is not None and sip and r["payload"]:
            info = sip_of_text(r["payload"])
            if info is not None:
                r["sip"] = info
        return r  # type: ignore[no-any-return]

    return fast


# The C extension's tables (names, formats, the SIP reading) are configured here, where the
# sip layer is in reach; until then its decode leaves IPv6 packets to the Python decoder
# (same result) and refuses to build records.
_c = c_module()
if _c is None:
    _c_record = _c_jsonl = None
else:
    _c.configure(FAMILY_NAMES, PROTO_TYPES, SECOND_PREFIXES, format_time, ip6_text,
                 extra_correlation_pairs, {t: spec.name for t, spec in CHUNKS.items()},
                 sip_of_text)
    _c_record = _c.hep3_record
    _c_jsonl = _c.hep3_jsonl
