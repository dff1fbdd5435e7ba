"""A fast SIP summary of a HEP payload, and a one-line summary of any message (pure).

:func:`sip_info` answers "is this SIP, and what is it?" for every packet a decode prints,
so it is built for speed (PERFORMANCE.md: ``bytes.find`` first, a regex only as the
fallback): the header block is searched for the canonical spellings (``\\r\\nCall-ID:``)
and only when one of the mandatory headers is not found that way (compact forms such as
``i:``, other letter case, bare LF line ends, space before the colon) is it scanned once
with a regular expression.

OpenSIPS in JSON mode (``homer5_on=0``, HEP-SPEC section 14, OpenSIPS item 3) wraps the
SIP message as ``{"payload": "<SIP>"}``; that wrapping is undone first.

:func:`summary` is the one-line text a table shows for a message: the SIP first line, a
log line (OpenSIPS xlog JSON ``{"Event", "text"}`` too), an OpenSIPS net event
(``TCP ACCEPTED SUCCESS``), a REST first line, an MI command or reply, or else a short
preview of the payload.  Control characters are escaped there (:func:`printable`) so
that a payload cannot move the cursor or rewrite the terminal.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from .accel import c_function

__all__ = ["call_id", "printable", "sip_ids", "sip_ids_general", "sip_ids_py", "sip_info",
           "sip_label", "sip_of_text", "sip_payload", "sip_text_info", "sip_text_info_py",
           "summary", "xcid_hint"]

_CRLF = b"\r\n"
_SIP20 = b"SIP/2.0"
_MAX_HEAD = 64 * 1024  # only the header block is searched; no real SIP header block is larger

# canonical spellings, searched with bytes.find (with the line break before them)
_F_CALLID = b"\r\nCall-ID:"
_F_CSEQ = b"\r\nCSeq:"
_F_FROM = b"\r\nFrom:"
_F_TO = b"\r\nTo:"
_F_XCID = b"\r\nX-CID:"
# the canonical spellings in one pass: what real agents send (a dict of the first... last wins)
_FAST_TEXT_RE = re.compile(r"\r\n(Call-ID|CSeq|From|To|(?i:X-CID))[ \t]*:[ \t]*([^\r\n]*)")
_TOKEN_TEXT_RE = re.compile(r"[A-Za-z0-9!%'*+.^_`|~-]+\Z")
_FAST_RE = re.compile(rb"\r\n(Call-ID|CSeq|From|To|X-CID):[ \t]*([^\r\n]*)")

# fallback: every header line of the block, any case, compact forms, LF or CRLF
_HEADER_RE = re.compile(rb"\n[ \t]*([A-Za-z0-9!%'*+.^_`|~-]+)[ \t]*:[ \t]*([^\r\n]*)")
_COMPACT = {b"i": b"call-id", b"f": b"from", b"t": b"to"}
_WANTED = frozenset((b"call-id", b"cseq", b"from", b"to", b"x-cid"))
_TAG_RE = re.compile(rb";[ \t]*tag[ \t]*=[ \t]*([^;,\s>]+)", re.IGNORECASE)
_TOKEN_RE = re.compile(rb"[A-Za-z0-9!%'*+.^_`|~-]+\Z")
_STATUS_RE = re.compile(rb"SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?\Z", re.DOTALL)


# optional C versions of the hot paths (None in the pure-Python build); same results
_c_sip_ids = c_function("sip_ids")
_c_sip_summary = c_function("sip_summary")


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def sip_payload(payload: bytes | None) -> bytes | None:
    """The SIP bytes of a payload: itself, or the ``payload`` string of an OpenSIPS JSON
    wrapper; None when it is neither (cheap for non-SIP)."""
    if not payload:
        return None
    first = payload[:1]
    if first == b"{":
        head = payload[:64]
        if b'"payload"' not in head:
            return None
        try:
            obj = json.loads(payload)
        except (ValueError, RecursionError):
            return None
        inner = obj.get("payload") if isinstance(obj, dict) else None
        if not isinstance(inner, str) or "first_line" in obj:  # REST: payload is an HTTP body
            return None
        return inner.encode("utf-8", "surrogateescape")
    return payload


def _first_line(p: bytes) -> tuple[bytes, int] | None:
    """(first line, offset of the line break after it), or None if it cannot be SIP."""
    eol = p.find(b"\n", 0, 2048)
    if eol < 0:
        if len(p) > 2048:
            return None
        eol = len(p)
    line = p[:eol - 1] if eol and p[eol - 1:eol] == b"\r" else p[:eol]
    if line.startswith(b"SIP/2.0 "):
        return line, eol
    if line.endswith(b" SIP/2.0"):
        return line, eol
    return None


def sip_info(payload: bytes | None) -> dict[str, Any] | None:
    """Summary of a SIP message (or None when the payload is not SIP).

    Keys: ``method`` + ``ruri`` (requests) or ``status`` + ``reason`` (replies), then, when
    the message has them, ``call_id``, ``cseq`` (number), ``cseq_method``, ``from_tag``,
    ``to_tag``, ``x_cid``.  Values are text (invalid UTF-8 replaced) and ``status``/``cseq``
    integers.
    """
    p = sip_payload(payload)
    if p is None:
        return None
    try:
        text = p.decode("utf-8")
    except UnicodeDecodeError:
        text = p.decode("utf-8", "replace")
    return sip_text_info(text)


def sip_of_text(text: str) -> dict[str, Any] | None:
    """The ``sip`` view of a payload already decoded to text (the decode record's ``sip``):
    :func:`sip_text_info` when it starts with a letter, :func:`sip_info` of its bytes when it
    may be OpenSIPS's JSON wrapping, else None."""
    first = text[:1]
    if first.isalpha():
        return sip_text_info(text)
    if first == "{":
        return sip_info(text.encode("utf-8", "surrogateescape"))
    return None


def sip_text_info(text: str) -> dict[str, Any] | None:
    """:func:`sip_info` of a payload already decoded to text (no OpenSIPS unwrapping).

    The hot path of ``heptool decode`` (its records carry the payload as text anyway).  With
    the optional C extension (``heptool.core._speedups``, ~0.4 us instead of ~3 us) the plain
    common case is done in C and everything else here; :func:`sip_text_info_py` is the
    reference both must equal (tests/core/test_speedups.py).
    """
    if _c_sip_summary is not None:
        info = _c_sip_summary(text)
        if info is not None:
            return info  # type: ignore[no-any-return]
    return sip_text_info_py(text)


def sip_text_info_py(text: str) -> dict[str, Any] | None:
    """:func:`sip_text_info` in Python: one short ``find`` for the first line, one for the
    end of the header block, and one regular expression pass for the canonical header
    spellings; a full scan only when one of the mandatory headers is not spelled canonically.
    """
    eol = text.find("\r\n", 0, 4096)
    if eol < 0:
        return _slow_info(text)
    if text.startswith("SIP/2.0 "):
        code = text[8:11]
        if not (code.isdigit() and "1" <= code[0] <= "6") or eol > 11 and text[11] != " ":
            return _slow_info(text)
        info: dict[str, Any] = {"status": int(code), "reason": text[12:eol]}
    else:
        parts = text[:eol].split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[1] or \
                not _TOKEN_TEXT_RE.match(parts[0]):
            return _slow_info(text)
        info = {"method": parts[0], "ruri": parts[1]}
    end = text.find("\r\n\r\n", eol)
    if end < 0:
        end = len(text)
    h = dict(_FAST_TEXT_RE.findall(text, eol, end))
    callid = h.get("Call-ID")
    cseq = h.get("CSeq")
    frm = h.get("From")
    to = h.get("To")
    xcid = h.get("X-CID")
    if xcid is None and len(h) > 4:  # X-CID in another letter case
        xcid = next((v for k, v in h.items() if k[0] in "Xx"), None)
    if callid is None or cseq is None or frm is None or to is None:
        found = _scan(text.encode("utf-8", "surrogateescape"), eol, len(text[:end].encode(
            "utf-8", "surrogateescape")))
        callid = _dec(found.get(b"call-id")) or callid
        cseq = _dec(found.get(b"cseq")) or cseq
        frm = _dec(found.get(b"from")) or frm
        to = _dec(found.get(b"to")) or to
        xcid = _dec(found.get(b"x-cid")) or xcid
    if callid is not None:
        info["call_id"] = callid.rstrip()
    if cseq is not None:
        num, _, meth = cseq.strip().partition(" ")
        if num.isdigit():
            info["cseq"] = int(num)
        meth = meth.strip()
        if meth:
            info["cseq_method"] = meth
    if frm is not None and ";" in frm:
        i = frm.find(";tag=")
        if i >= 0 and frm.find(">") < i:
            info["from_tag"] = frm[i + 5:].split(";", 1)[0].strip()
        else:
            tag = _tag(frm.encode("utf-8", "surrogateescape"))
            if tag is not None:
                info["from_tag"] = tag
    if to is not None and ";" in to:
        i = to.find(";tag=")
        if i >= 0 and to.find(">") < i:
            info["to_tag"] = to[i + 5:].split(";", 1)[0].strip()
        else:
            tag = _tag(to.encode("utf-8", "surrogateescape"))
            if tag is not None:
                info["to_tag"] = tag
    if xcid is not None:
        info["x_cid"] = xcid.rstrip()
    return info


def _dec(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", "replace")


def _slow_info(text: str) -> dict[str, Any] | None:
    """The general path: bare-LF line ends, odd first lines."""
    p = text.encode("utf-8", "surrogateescape")
    fl = _first_line(p)
    if fl is None:
        return None
    line, eol = fl
    info: dict[str, Any]
    if line[:8] == b"SIP/2.0 ":
        mo = _STATUS_RE.match(line)
        if mo is None:
            return None
        info = {"status": int(mo.group(1)), "reason": _text(mo.group(2) or b"")}
    else:
        parts = line.split(b" ")
        if len(parts) != 3 or not _TOKEN_RE.match(parts[0]) or not parts[1]:
            return None
        info = {"method": _text(parts[0]), "ruri": _text(parts[1])}
    start = eol - 1 if eol and p[eol - 1:eol] == b"\r" else eol
    end = p.find(b"\r\n\r\n", start, _MAX_HEAD)
    if end < 0:
        end = p.find(b"\n\n", start, _MAX_HEAD)
        if end < 0:
            end = min(len(p), _MAX_HEAD)
    found = _scan(p, start, end)
    for key, name in ((b"call-id", "call_id"), (b"x-cid", "x_cid")):
        if key in found:
            info[name] = _text(found[key])
    if b"cseq" in found:
        num, _, meth = found[b"cseq"].partition(b" ")
        if num.isdigit():
            info["cseq"] = int(num)
        meth = meth.strip()
        if meth:
            info["cseq_method"] = _text(meth)
    for key, name in ((b"from", "from_tag"), (b"to", "to_tag")):
        if key in found:
            tag = _tag(found[key])
            if tag is not None:
                info[name] = tag
    # keep the documented key order
    order = ("method", "ruri", "status", "reason", "call_id", "cseq", "cseq_method", "from_tag",
             "to_tag", "x_cid")
    return {k: info[k] for k in order if k in info}


def _find(p: bytes, name: bytes, start: int, end: int) -> bytes | None:
    i = p.find(name, start, end)
    if i < 0:
        return None
    i += len(name)
    j = p.find(b"\r", i, end)
    if j < 0:
        j = end
    return p[i:j].strip()


def _scan(p: bytes, start: int, end: int) -> dict[bytes, bytes]:
    """Wanted headers of the block by lower-case full name; the first occurrence wins."""
    found: dict[bytes, bytes] = {}
    for mo in _HEADER_RE.finditer(p, start, end):
        name = mo.group(1).lower()
        name = _COMPACT.get(name, name)
        if name in _WANTED and name not in found:
            found[name] = mo.group(2).strip()
    return found


def _tag(value: bytes) -> str | None:
    # header parameters follow the name-addr: skip a <...> URI, whose own params are not tags
    gt = value.rfind(b">")
    i = value.find(b";tag=", gt + 1)
    if i >= 0:
        tag = value[i + 5:].split(b";", 1)[0].strip()
        return _text(tag) if tag else None
    mo = _TAG_RE.search(value, gt + 1)
    return _text(mo.group(1)) if mo else None


def call_id(payload: bytes | None) -> str | None:
    """The SIP Call-ID of a payload (OpenSIPS JSON wrapping undone), or None."""
    p = sip_payload(payload)
    if p is None or _first_line(p) is None:
        return None
    end = p.find(b"\r\n\r\n", 0, _MAX_HEAD)
    if end < 0:
        end = min(len(p), _MAX_HEAD)
    v = _find(p, _F_CALLID, 0, end)
    if v is None:
        v = _scan(p, 0, end).get(b"call-id")
    return None if v is None else _text(v)


#: A cheap "might have an X-CID header" test (one regex scan beats three ``in`` scans).
xcid_hint = re.compile(rb"-[Cc][Ii][Dd]").search


def sip_label(p: bytes) -> str | None:
    """``INVITE`` for a request, ``200`` for a reply (the first line), or None."""
    if p[:8] == b"SIP/2.0 ":
        code = p[8:11]
        return code.decode("ascii", "replace") if code.isdigit() else None
    sp = p.find(b" ", 0, 64)
    if sp <= 0:
        return None
    eol = p.find(b"\n", 0, 4096)
    line = p[:eol] if eol >= 0 else p
    if not line.rstrip(b"\r").endswith(b"SIP/2.0"):
        return None
    return p[:sp].decode("ascii", "replace")


def sip_ids(payload: bytes | None) -> tuple[str | None, str | None, str | None]:
    """(Call-ID, label, X-CID) of a SIP payload, each None when absent (:func:`sip_ids_py`;
    the optional C extension answers for plain SIP, ~0.3 us instead of ~1.5)."""
    if _c_sip_ids is not None:
        r = _c_sip_ids(payload)
        if r is not None:
            return r  # type: ignore[no-any-return]
    return sip_ids_py(payload)


def sip_ids_py(payload: bytes | None) -> tuple[str | None, str | None, str | None]:
    """(Call-ID, label, X-CID) of a SIP payload, each None when absent: what
    :func:`sip_ids_general` gives (the Call-ID as :func:`call_id` reads it, :func:`sip_label`,
    the ``x_cid`` of :func:`sip_info`), OpenSIPS's JSON wrapping undone.

    What correlation reads from every SIP message, so the two common shapes are read with a
    few ``find`` calls: plain SIP with CRLF lines and the canonical ``Call-ID:``, and
    OpenSIPS's ``{"payload": "<SIP>"}`` straight from the JSON text; anything else (compact
    or other-case headers, escapes, a possible ``X-CID``) goes the general way."""
    if not payload:
        return None, None, None
    if payload[:1] == b"{":
        fast = _wrapped_fast(payload)
        if fast is not None:
            return fast
        p = sip_payload(payload)
        if p is None:
            return None, None, None
        return sip_ids_general(p)
    # plain SIP: the first line, the header block's end, the canonical Call-ID
    p = payload
    eol = p.find(b"\r\n", 0, 2048)
    if eol > 0:
        if p[:8] == b"SIP/2.0 ":
            code = p[8:11]
            label = code.decode("ascii") if code.isdigit() else None
        elif p[eol - 8:eol] == b" SIP/2.0":
            label = p[:p.find(b" ", 0, eol)].decode("ascii", "replace")
        else:
            label = None
        if label is not None:
            end = p.find(b"\r\n\r\n", eol - 2, 65536)
            if end >= 0:
                i = p.find(_CALLID, eol - 2, end)
                if i >= 0 and xcid_hint(p, 0, end) is None:
                    i += 10
                    value = p[i:p.find(b"\r", i, end + 2)].strip()
                    if value:
                        try:
                            return value.decode("utf-8"), label, None
                        except UnicodeDecodeError:
                            pass
    return sip_ids_general(p)


def sip_ids_general(p: bytes) -> tuple[str | None, str | None, str | None]:
    """:func:`sip_ids` the general way, for SIP bytes already unwrapped (``p``)."""
    call = call_id(p)
    label = sip_label(p)
    x = None
    if xcid_hint(p) is not None:
        info = sip_info(p)
        x = info.get("x_cid") if info else None
    return call, label, x


_CALLID = b"\r\nCall-ID:"
_WRAP = b'{\n\t"payload":\t"'
_W_CALLID = b"\\r\\nCall-ID: "
_W_EOL = b"\\r\\n"


def _wrapped_fast(payload: bytes) -> tuple[str, str | None, None] | None:
    """:func:`sip_ids` of OpenSIPS's ``{"payload": "<SIP>"}`` straight from the JSON text,
    for the plain case only (canonical ``Call-ID:``, no escapes in it, no ``X-CID``);
    None means "parse it properly"."""
    if not payload.startswith(_WRAP):
        return None
    end = payload.find(b"\\r\\n\\r\\n")  # the header block's end (escaped in the JSON)
    i = payload.find(_W_CALLID, 0, end if end >= 0 else len(payload))
    if i < 0:
        return None
    i += len(_W_CALLID)
    j = payload.find(_W_EOL, i)
    if j < 0:
        return None
    value = payload[i:j].strip()
    if not value or b"\\" in value or b'"' in value or xcid_hint(payload) is not None:
        return None
    k = payload.find(_W_EOL, len(_WRAP))
    first = payload[len(_WRAP):k]
    if b"\\" in first:
        return None
    try:
        call = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return call, sip_label(first + b"\r\n"), None


# ---------------------------------------------------------------------------------------
# One-line summary
# ---------------------------------------------------------------------------------------

_C0 = {c: f"\\x{c:02x}" for c in range(0x20)}
_C0.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x7F: "\\x7f"})
_C1 = {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}
_ESCAPES = {**_C0, **_C1}


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every control or format character escaped (``\\x1b``, ``\\n``,
    ``\\u202e``): safe to print on a terminal.  Cut to ``limit`` characters (``...``)."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
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
    payload = message.payload
    ptype = message.proto_type
    if not payload:
        if ptype == 96 and message.extra_correlation:  # OpenSIPS correlate(): no payload
            return printable("correlate " + " ".join(message.extra_correlation.split()), limit)
        return ""
    sp = sip_payload(payload)
    if sp is not None:
        fl = _first_line(sp)
        if fl is not None:
            return printable(_text(fl[0]), limit)
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
