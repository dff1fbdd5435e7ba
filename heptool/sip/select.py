"""What ``--method`` and ``--status`` read of a payload: its SIP first line (pure).

The same reading as the decode record's ``sip`` view (:func:`heptool.sip.info.sip_of_text`:
plain SIP text starting with a letter, or OpenSIPS's JSON wrapping ``{"payload": ...}``),
but only as far as a selection needs: a request's method is its first line; a reply's
status too; a reply's method (its CSeq method) is read from the header block only when
asked.  A payload that is not SIP gives None.
"""

from __future__ import annotations

from .headers import line as _line
from .headers import start_line as _start
from .info import sip_text_info
from .payload import decode_text, sip_text

__all__ = ["method_status"]


def method_status(payload: bytes | None, *,
                  reply_method: bool = False) -> tuple[str | None, int | None] | None:
    """``(method, status)`` of a SIP payload, None when it is not SIP.

    A request gives ``(method, None)``; a reply ``(None, status)``, or with
    ``reply_method`` ``(cseq_method or None, status)``: the method of the request it
    answers, as its CSeq says."""
    if not payload:
        return None
    first = payload[:1]
    if first == b"{":
        text = sip_text(payload)  # OpenSIPS JSON mode; None for any other JSON
        if text is None:
            return None
        nl = text.find("\n")
        start = _start(_line(text if nl < 0 else text[:nl]))
    elif first.isalpha():
        text = None
        nl = payload.find(b"\n")
        head = payload if nl < 0 else payload[:nl]
        start = _start(_line(decode_text(head)))
    else:
        return None
    if start is None:
        return None
    method = start.get("method")
    if method is not None:
        return method, None
    status: int = start["status"]
    if not reply_method:
        return None, status
    info = sip_text_info(text if text is not None else decode_text(payload))
    return (info.get("cseq_method") if info else None) or None, status
