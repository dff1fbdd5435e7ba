"""The one-line text a table shows for a message, and escaping for terminals (pure).

:func:`summary` is the one-line text a table shows for a message: the SIP first line, a
log line (OpenSIPS xlog JSON ``{"Event", "text"}`` too), an OpenSIPS net event
(``TCP ACCEPTED SUCCESS``), a REST first line, an MI command or reply, or else a short
preview of the payload.  Control characters are escaped there (:func:`printable`) so
that a payload cannot move the cursor or rewrite the terminal.

It lives in the sip layer, below every renderer that imports it (output/, cli/), because it
reads SIP text; it renders nothing itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from typing import Any

from .headers import first_line as _first_line
from .headers import text as _text
from .payload import sip_payload, unwrap

__all__ = ["payload_lines", "printable", "record_summary", "summary", "summary_of"]

_C0 = {c: f"\\x{c:02x}" for c in range(0x20)}
_C0.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x7F: "\\x7f"})
_C1 = {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}
_ESCAPES = {**_C0, **_C1}


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every control or format character escaped (``\\x1b``, ``\\n``,
    ``\\u202e``): safe to print on a terminal.  Cut to ``limit`` characters (``...``)."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    if text.isascii() and text.isprintable():  # the common case: nothing to escape
        return text
    out = text.translate(_ESCAPES)
    if not out.isascii():
        out = "".join(
            f"\\u{ord(ch):04x}" if ord(ch) > 0x7F and unicodedata.category(ch) in ("Cc", "Cf", "Cs",
                                                                               "Zl", "Zp", "Co")
            else ch for ch in out)
    return out


def _json_obj(payload: bytes) -> dict[str, Any] | None:
    if payload[:1] != b"{":
        return None
    try:
        obj = json.loads(payload.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _s(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def summary(message: Any, limit: int = 200) -> str:
    """One line describing a message's payload (for tables); control characters escaped."""
    return summary_of(message.payload, message.proto_type, message.extra_correlation, limit)


def record_summary(record: dict[str, Any], limit: int = 200) -> str:
    """:func:`summary` of the message a decode record was made from (the same text), from
    the record alone: its payload (text, or ``{"base64": ...}``), proto_type and
    extra_correlation_text."""
    payload = record.get("payload")
    if type(payload) is str:
        data = payload.encode("utf-8", "surrogatepass")
    elif isinstance(payload, dict) and isinstance(payload.get("base64"), str):
        try:
            data = base64.b64decode(payload["base64"])
        except (ValueError, binascii.Error):
            data = b""
    else:
        data = b""
    ptype = record.get("proto_type")
    return summary_of(data, ptype if type(ptype) is int else None,
                      record.get("extra_correlation_text"), limit)


def summary_of(payload: bytes | None, ptype: int | None, extra_correlation: str | None,
               limit: int = 200) -> str:
    """:func:`summary` of a payload, its protocol type and its chunk 0x0065 text."""
    if not payload:
        if ptype == 96 and extra_correlation:  # OpenSIPS correlate(): no payload
            return printable("correlate " + " ".join(extra_correlation.split()), limit)
        return ""
    sp = sip_payload(payload)
    if sp is not None:
        fl = _first_line(sp)
        if fl is not None:
            return printable(_text(fl), limit)
    obj = _json_obj(payload)
    if obj is not None:
        text = _json_summary(obj, ptype)
        if text is not None:
            return printable(text, limit)
    line = payload.split(b"\n", 1)[0].rstrip(b"\r")
    more = len(line) < len(payload.rstrip(b"\r\n"))
    return printable(_text(line) + (" ..." if more else ""), limit)


def _json_summary(obj: dict[str, Any], ptype: int | None) -> str | None:
    if "Event" in obj and "text" in obj:  # OpenSIPS xlog
        return f"{_s(obj['Event'])}: {_s(obj['text'])}"
    if "Protocol" in obj and "Event" in obj:  # OpenSIPS net event
        parts = [_s(obj["Protocol"]), _s(obj["Event"])]
        if "Status" in obj:
            parts.append(_s(obj["Status"]))
        if obj.get("Message"):
            parts.append(f"({_s(obj['Message'])})")
        return " ".join(parts)
    if "first_line" in obj:  # OpenSIPS REST
        return _s(obj["first_line"]).rstrip("\r\n")
    if "command" in obj:  # OpenSIPS MI request
        text = f"MI {_s(obj['command'])}"
        if "backend" in obj:
            text += f" via {_s(obj['backend'])}"
        if obj.get("parameters") not in (None, "", [], {}):
            text += f" {_s(obj['parameters'])}"
        return text
    if "reply" in obj and ptype in (87, None) or list(obj) == ["reply"]:  # OpenSIPS MI reply
        return f"MI reply {_s(obj['reply'])}"
    return None


def payload_lines(text: str) -> tuple[str, list[str]]:
    """(what, lines) to show a text payload line by line (``decode -v``): a SIP message
    wrapped in OpenSIPS's JSON is shown unwrapped (what = "SIP in JSON"), else the text
    itself (what = ""); one line per line of the text, its line end dropped, every line
    escaped (:func:`printable`), the empty line between headers and body kept."""
    what = ""
    if text[:1] == "{":
        inner = unwrap(text)
        if inner is not None:
            text, what = inner, "SIP in JSON"
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return what, [printable(line[:-1] if line[-1:] == "\r" else line) for line in lines]
