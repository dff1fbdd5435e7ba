"""The decode record: ``to_record(message)`` plus where the message came from and its SIP view.

:func:`decode_record` is the reference: decode, then :func:`~heptool.core.record.to_record`,
then the ``sip`` view.  :func:`make_fast_record` and :func:`make_fast_jsonl` are its fast
paths for the common, strictly valid HEP3 packet, built straight from the bytes with no
message by the C extension (``hep3_record``/``hep3_jsonl``; None in the pure-Python build).
Each returns None for a packet it does not take, never an error, and is byte for byte the
reference (tests/core/test_speedups.py).  This is their public path; their code (with the C
extension's ``configure``) is still in :mod:`heptool.core.record` and moves here once
``heptool.pipeline.reader`` imports them from here (core may not import output).
"""

from __future__ import annotations

from typing import Any

from ..core.message import HepMessage
from ..core.record import make_fast_jsonl, make_fast_record, to_record
from ..sip.info import sip_info, sip_of_text

__all__ = ["decode_record", "make_fast_jsonl", "make_fast_record"]


def decode_record(m: HepMessage, index: int, frame: int | None = None,
                  hep_transport: str | None = None, hep_src: str | None = None,
                  hep_dst: str | None = None, sip: bool = True) -> dict[str, Any]:
    """The record ``heptool decode`` prints: ``index``, ``frame``/``hep_*`` when known, the
    message record, and ``sip`` (:func:`heptool.sip.info.sip_info`) for SIP payloads."""
    r: dict[str, Any] = {"index": index}
    if frame is not None:
        r["frame"] = frame
    if hep_transport is not None:
        r["hep_transport"] = hep_transport
        r["hep_src"] = hep_src
        r["hep_dst"] = hep_dst
    r.update(to_record(m))
    if sip:
        text = r["payload"]
        # text: as the fast path (make_fast_record) does; else not UTF-8 (or no payload)
        info = sip_of_text(text) if type(text) is str else sip_info(m.payload)
        if info is not None:
            r["sip"] = info
    return r
