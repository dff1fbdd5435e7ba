"""The SIP text of a payload: UTF-8, or OpenSIPS's JSON wrapping undone (pure, stdlib only).

OpenSIPS in JSON mode (``homer5_on=0``, HEP-SPEC section 14, OpenSIPS item 3) wraps the
message as ``{"payload": "<SIP>"}`` (the key within the first 64 characters, no
``first_line`` key, which is REST); the SIP text is then that JSON string, a lone surrogate
in it replaced by U+FFFD.  The definition is :mod:`heptool.sip.info`'s docstring.
"""

from __future__ import annotations

import json
import re

__all__ = ["decode_text", "sip_payload", "sip_text", "unwrap"]

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def unwrap(text: str) -> str | None:
    """The SIP text inside OpenSIPS's ``{"payload": "<SIP>"}`` (lone surrogates replaced),
    or None when ``text`` (starting with ``{``) is not that."""
    if '"payload"' not in text[:64]:
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    inner = obj.get("payload") if isinstance(obj, dict) else None
    if not isinstance(inner, str) or "first_line" in obj:  # REST: payload is an HTTP body
        return None
    if not inner.isascii():
        try:
            inner.encode("utf-8")
        except UnicodeEncodeError:
            inner = _SURROGATE_RE.sub("\ufffd", inner)
    return inner


def decode_text(payload: bytes) -> str:
    """``payload`` as UTF-8 text, invalid sequences replaced by U+FFFD."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("utf-8", "replace")


def sip_text(payload: bytes | None) -> str | None:
    """The SIP text of a payload (module docstring): the payload decoded, or the string of
    OpenSIPS's JSON wrapping; None when it is empty or a JSON text that is not that."""
    if not payload:
        return None
    if payload[:1] == b"{":
        if b'"payload"' not in payload[:256]:  # cheap for every other JSON payload
            return None
        return unwrap(decode_text(payload))
    return decode_text(payload)


def sip_payload(payload: bytes | None) -> bytes | None:
    """The SIP bytes of a payload: itself, or the ``payload`` string of an OpenSIPS JSON
    wrapper (UTF-8); None when it is neither (cheap for non-SIP)."""
    if not payload:
        return None
    if payload[:1] == b"{":
        inner = sip_text(payload)
        return None if inner is None else inner.encode("utf-8")
    return payload
