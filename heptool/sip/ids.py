"""The ids correlation reads from SIP: (Call-ID, label, X-CID) (pure).

The same reading as :mod:`heptool.sip.info` (whose docstring is the definition), without
deriving the keys the ids do not use.  The label is the method of a request or the three
status digits of a reply.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.accel import c_function
from .headers import VALUE_STRIP as _VALUE_STRIP
from .headers import line as _line
from .headers import start_line as _start
from .info import scan, sip_text_info, sip_text_info_ref
from .payload import decode_text, sip_text

__all__ = ["call_id", "sip_ids", "sip_ids_general", "sip_ids_py", "sip_ids_ref", "sip_label",
           "xcid_hint"]

# optional C version of the hot path (None in the pure-Python build); same results
_c_sip_ids = c_function("sip_ids")


def _ids(info: dict[str, Any] | None) -> tuple[str | None, str | None, str | None]:
    if info is None:
        return None, None, None
    status = info.get("status")
    label = info["method"] if status is None else str(status)
    return info.get("call_id"), label, info.get("x_cid")


def sip_ids(payload: bytes | None) -> tuple[str | None, str | None, str | None]:
    """(Call-ID, label, X-CID) of a SIP payload, each None when absent: ``call_id``, the
    method or status digits, and ``x_cid`` of :func:`~heptool.sip.info.sip_info` (the C
    extension answers for plain SIP and the plain OpenSIPS wrapping, else :func:`sip_ids_py`)."""
    if _c_sip_ids is not None:
        r = _c_sip_ids(payload)
        if r is not None:
            return r  # type: ignore[no-any-return]
    return sip_ids_py(payload)


def sip_ids_py(payload: bytes | None) -> tuple[str | None, str | None, str | None]:
    """:func:`sip_ids` in pure Python (never the C extension): what
    ``sip_text_info_py`` reads, without deriving the keys the ids do not use."""
    text = sip_text(payload)
    r = None if text is None else scan(text)
    if r is None:
        return None, None, None
    info, found = r
    status = info.get("status")
    call = found.get("Call-ID")
    if call is not None:
        call = call.strip(_VALUE_STRIP) or None
    x = found.get("X-CID")
    if x is not None:
        x = x.strip(_VALUE_STRIP) or None
    return call, info["method"] if status is None else str(status), x


def sip_ids_ref(payload: bytes | None) -> tuple[str | None, str | None, str | None]:
    """:func:`sip_ids` by the line-by-line reference
    :func:`~heptool.sip.info.sip_text_info_ref`."""
    text = sip_text(payload)
    return _ids(None if text is None else sip_text_info_ref(text))


def sip_ids_general(p: bytes) -> tuple[str | None, str | None, str | None]:
    """:func:`sip_ids` of SIP bytes already unwrapped (``p`` is read as it is, never as a
    JSON wrapping)."""
    return _ids(sip_text_info(decode_text(p)) if p else None)


def call_id(payload: bytes | None) -> str | None:
    """The SIP Call-ID of a payload (OpenSIPS JSON wrapping undone), or None."""
    return sip_ids(payload)[0]


def sip_label(p: bytes) -> str | None:
    """``INVITE`` for a request, ``200`` for a reply (the first line), or None."""
    nl = p.find(b"\n")
    return _ids(_start(_line(decode_text(p if nl < 0 else p[:nl]))))[1]


#: A cheap "might have an X-CID header" test.
xcid_hint = re.compile(rb"-[Cc][Ii][Dd]").search
