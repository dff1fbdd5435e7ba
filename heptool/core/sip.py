"""How heptool reads SIP text, and a one-line summary of any message (pure).

How heptool reads SIP text
--------------------------
One definition, implemented twice in Python (:func:`sip_text_info_ref`, the simple
line-by-line reference, and :func:`sip_text_info_py`, the same definition with one regular
expression, the fast pure path) and once in C (``_speedups.c``: ``sip_summary``, ``sip_ids``
and the decode record, which may decline a text but never answer differently).  Every
character class below is ASCII: Unicode whitespace, digits (``²``) and letters (``ı``) are
never blanks, digits or letters here.

* **Text.**  A payload is read as UTF-8 text, invalid sequences replaced by U+FFFD.  OpenSIPS
  in JSON mode (``homer5_on=0``, HEP-SPEC section 14, OpenSIPS item 3) wraps the message as
  ``{"payload": "<SIP>"}`` (the key within the first 64 characters, no ``first_line`` key,
  which is REST); the SIP text is then that JSON string, a lone surrogate in it replaced by
  U+FFFD.
* **Lines** end at LF; one CR right before the LF (or at the very end of the text) is not
  part of the line.  A CR anywhere else is an ordinary character.
* **First line**: the text up to the first LF.  A *reply* is exactly
  ``SIP/2.0 SP d d d [SP reason]``, three ASCII digits the first of them 1-6 (``status``,
  an int; ``reason`` the rest, possibly empty).  A *request* is exactly
  ``method SP uri SP SIP/2.0``: ``method`` a token (one or more of the ASCII letters, digits
  and ``!%'*+.^_`|~-``), ``uri`` non-empty and without SP.  Anything else
  is not SIP (None): the rest of the text is not read.
* **Header block**: the lines after the first line up to the first empty line, or the end of
  the text.  The body after the empty line is never read.
* **Header line**: ``name *(SP / HTAB) ":" value``: ``name`` a token, compared
  ASCII-case-insensitively; the compact forms ``i``, ``f`` and ``t`` are Call-ID, From and
  To.  A line that starts with SP or HTAB (a folded continuation) or that does not have this
  shape is not a header line and is skipped.  Continuations are not joined.
* **Value**: the rest of the line after the colon, SP, HTAB and CR stripped at both ends.
* **Which occurrence**: the *first* header line of each wanted header (Call-ID, CSeq, From,
  To, X-CID), full or compact form, is the one read; later ones are ignored.  When that value
  is empty the header counts as absent (its keys are left out; a later occurrence is *not*
  read instead: "the first one wins" has no exceptions).
* ``call_id`` / ``x_cid``: the Call-ID / X-CID value.
* ``cseq`` / ``cseq_method``: the CSeq value is split at its first run of SP/HTAB.  The part
  before is the number: 1 to 10 ASCII digits (RFC 3261 allows < 2**31; ten digits keep every
  32-bit counter an agent may really send), else there is no ``cseq`` key.  The part after
  is ``cseq_method`` when not empty (read even when the number is not valid).
* ``from_tag`` / ``to_tag``: in the From / To value, after the last ``>`` (the end of the
  name-addr, whose URI parameters are never tags; the whole value when there is no ``>``):
  the first ``;`` *(SP/HTAB) ``tag`` *(SP/HTAB) ``=`` *(SP/HTAB), ``tag`` in any ASCII case;
  the tag is the run of characters after it up to ``;``, ``,``, SP, HTAB, CR or LF.  An empty
  tag counts as absent.

The result of :func:`sip_info` / :func:`sip_text_info` is a dict in this key order:
``method`` + ``ruri`` (requests) or ``status`` + ``reason`` (replies), then ``call_id``,
``cseq``, ``cseq_method``, ``from_tag``, ``to_tag``, ``x_cid``, each only when present.
:func:`sip_ids` gives (``call_id``, label, ``x_cid``) of the same reading, the label being
the method of a request or the three status digits of a reply; (None, None, None) when the
payload is not SIP.  Nothing here has a length limit: every step is linear in the text.

The ``*_py`` and ``*_ref`` functions never reach the C extension: they are what the C code
is tested against (tests/core/test_speedups.py), and :func:`sip_text_info_py` is tested
against :func:`sip_text_info_ref` (tests/core/test_sip.py).

One-line summary
----------------
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

__all__ = ["call_id", "header_values", "printable", "sip_ids", "sip_ids_general", "sip_ids_py",
           "sip_ids_ref", "sip_info", "sip_label", "sip_of_text", "sip_payload", "sip_text",
           "sip_text_info", "sip_text_info_py", "sip_text_info_ref", "summary", "xcid_hint"]

# optional C versions of the hot paths (None in the pure-Python build); same results
_c_sip_ids = c_function("sip_ids")
_c_sip_summary = c_function("sip_summary")

# -- the pieces of the definition (module docstring); every class is ASCII ------------------
_TOKEN = r"[A-Za-z0-9!%'*+.^_`|~-]+"
_TOKEN_RE = re.compile(_TOKEN + r"\Z")
_BLANKS = " \t"           # SP / HTAB
_VALUE_STRIP = " \t\r"    # stripped from both ends of a value
_STATUS_RE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?\Z", re.DOTALL)
_CSEQ_RE = re.compile(r"([^ \t]*)[ \t]*(.*)\Z", re.DOTALL)
_TAG_RE = re.compile(r";[ \t]*[Tt][Aa][Gg][ \t]*=[ \t]*([^;, \t\r\n]*)")
#: lower-case header name -> the key it is read as (compact forms included)
_WANTED = {"call-id": "Call-ID", "i": "Call-ID", "cseq": "CSeq", "from": "From", "f": "From",
           "to": "To", "t": "To", "x-cid": "X-CID"}
_COMPACT = {"i": "call-id", "f": "from", "t": "to"}


def _header_re(names: str) -> re.Pattern[str]:
    """THE header line: ``LF name *(SP/HTAB) ":" value`` (group 1 the name, group 2 the raw
    value up to the next LF), for the names ``names`` matches; searched from the LF that
    ends the first line (the LF is the literal that makes the search fast)."""
    return re.compile(r"\n(" + names + r")[ \t]*:(.*)", re.ASCII | re.IGNORECASE)


#: every header line
_HEADER_RE = _header_re(_TOKEN)
#: the header lines sip_info reads: _HEADER_RE restricted to the wanted names
_WANTED_RE = _header_re("|".join(sorted(map(re.escape, _WANTED), key=len, reverse=True)))
#: the spellings real agents send, used as the keys of the headers found
_CANONICAL = frozenset(("Call-ID", "CSeq", "From", "To", "X-CID"))


def _start(line: str) -> dict[str, Any] | None:
    """The first line (without its line end) read: {status, reason} | {method, ruri} | None."""
    if line[:8] == "SIP/2.0 ":
        mo = _STATUS_RE.match(line)  # [0-9]: ASCII digits only ("²" is no digit here)
        if mo is None:
            return None
        return {"status": int(mo.group(1)), "reason": mo.group(2) or ""}
    parts = line.split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[1] or \
            _TOKEN_RE.match(parts[0]) is None:
        return None
    return {"method": parts[0], "ruri": parts[1]}


def _tag(value: str) -> str | None:
    mo = _TAG_RE.search(value, value.rfind(">") + 1)
    return (mo.group(1) or None) if mo else None


def _derive(info: dict[str, Any], found: dict[str, str]) -> dict[str, Any]:
    """``info`` (the first line's keys) completed from the first raw value of each wanted
    header (key -> value as the header line has it: not stripped yet), as the definition
    says it step by step (the reference's; sip_text_info_py does the same inline)."""
    v = found.get("Call-ID")
    if v is not None:
        v = v.strip(_VALUE_STRIP)
        if v:
            info["call_id"] = v
    v = found.get("CSeq")
    if v is not None:
        num, meth = _CSEQ_RE.match(v.strip(_VALUE_STRIP)).groups()  # type: ignore[union-attr]
        if 1 <= len(num) <= 10 and all(c in "0123456789" for c in num):
            info["cseq"] = int(num)  # at most 10 ASCII digits: int() cannot refuse it
        if meth:
            info["cseq_method"] = meth
    v = found.get("From")
    if v is not None:
        tag = _tag(v.strip(_VALUE_STRIP))
        if tag is not None:
            info["from_tag"] = tag
    v = found.get("To")
    if v is not None:
        tag = _tag(v.strip(_VALUE_STRIP))
        if tag is not None:
            info["to_tag"] = tag
    v = found.get("X-CID")
    if v is not None:
        v = v.strip(_VALUE_STRIP)
        if v:
            info["x_cid"] = v
    return info


# -- the reference: the definition line by line -----------------------------------------------
def _line(raw: str) -> str:
    return raw[:-1] if raw[-1:] == "\r" else raw


def _header_line(line: str) -> tuple[str, str] | None:
    """(name, raw value) of a header line (without its line end), or None."""
    i = 0
    n = len(line)
    while i < n and _TOKEN_RE.match(line[i]) is not None:
        i += 1
    if i == 0:
        return None
    j = i
    while j < n and line[j] in _BLANKS:
        j += 1
    if j == n or line[j] != ":":
        return None
    return line[:i], line[j + 1:]


def sip_text_info_ref(text: str) -> dict[str, Any] | None:
    """:func:`sip_text_info`, the definition (module docstring) read line by line: the
    reference the fast paths are tested against.  Pure and slow."""
    lines = text.split("\n")
    info = _start(_line(lines[0]))
    if info is None:
        return None
    found: dict[str, str] = {}
    for raw in lines[1:]:
        line = _line(raw)
        if not line:
            break  # the end of the header block
        h = _header_line(line)
        if h is None:
            continue
        key = _WANTED.get(h[0].lower())  # a token is ASCII: lower() is ASCII here
        if key is not None and key not in found:
            found[key] = h[1]
    return _derive(info, found)


# -- the fast pure path: the same definition with one regex --------------------------------
def _block_end(text: str, nl: int) -> int:
    """Where the header block that starts after the LF at ``nl`` ends: the LF before the
    first empty line (``\\n\\r\\n`` or ``\\n\\n``), or the end of the text."""
    end = text.find("\n\r\n", nl)
    if end < 0:
        end = len(text)
    e2 = text.find("\n\n", nl, end)
    return e2 if e2 >= 0 else end


def _scan_py(text: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """(first line's keys, raw value of the first occurrence of each wanted header), or None
    when the first line is not SIP: the first line, the end of the header block, then one
    regular expression pass for the wanted header lines."""
    nl = text.find("\n")
    if nl < 0:  # the first line only
        only = _start(_line(text))
        return None if only is None else (only, {})
    fl = nl - 1 if nl and text[nl - 1] == "\r" else nl  # where the first line ends
    if text.startswith("SIP/2.0 "):  # _start(text[:fl]), inline
        code = text[8:11]
        # isdigit() alone also takes "²" and "١" (which int() refuses or reads): isascii()
        if fl < 11 or not ("1" <= code[0] <= "6" and code.isdigit() and code.isascii()) or \
                fl > 11 and text[11] != " ":
            return None
        info: dict[str, Any] = {"status": int(code), "reason": text[12:fl]}
    else:
        parts = text[:fl].split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[1] or \
                _TOKEN_RE.match(parts[0]) is None:
            return None
        info = {"method": parts[0], "ruri": parts[1]}
    end = text.find("\n\r\n", nl)  # _block_end(text, nl), inline
    if end < 0:
        end = len(text)
    e2 = text.find("\n\n", nl, end)
    pairs = _WANTED_RE.findall(text, nl, e2 if e2 >= 0 else end)
    found = dict(reversed(pairs))  # the first occurrence of each spelling
    if not found.keys() <= _CANONICAL:  # compact or other-case names: by meaning, in order
        found = {}
        for name, value in pairs:
            key = _WANTED[name.lower()]
            if key not in found:
                found[key] = value
    return info, found


def sip_text_info_py(text: str) -> dict[str, Any] | None:
    """:func:`sip_text_info` in pure Python (never the C extension), fast: :func:`_scan_py`,
    then the keys derived inline (what :func:`_derive` does, without its calls); equal to
    :func:`sip_text_info_ref` (tests/core/test_sip.py)."""
    r = _scan_py(text)
    if r is None:
        return None
    info, found = r
    if not found:
        return info
    get = found.get
    v = get("Call-ID")
    if v is not None:
        v = v.strip(" \t\r")
        if v:
            info["call_id"] = v
    v = get("CSeq")
    if v is not None:
        v = v.strip(" \t\r")
        if "\t" in v:
            num, meth = _CSEQ_RE.match(v).groups()  # type: ignore[union-attr]
        else:
            num, _, meth = v.partition(" ")
            meth = meth.lstrip(" ")
        if len(num) <= 10 and num.isdigit() and num.isascii():
            info["cseq"] = int(num)
        if meth:
            info["cseq_method"] = meth
    # a tag is the same in the raw value: it ends before SP/HTAB/CR, the blanks around the
    # value hold no ';' or '>'
    v = get("From")
    if v is not None:
        semi = v.find(";", v.rfind(">") + 1)
        if semi >= 0:
            mo = _TAG_RE.search(v, semi)
            if mo is not None:
                tag = mo.group(1)
                if tag:
                    info["from_tag"] = tag
    v = get("To")
    if v is not None:
        semi = v.find(";", v.rfind(">") + 1)
        if semi >= 0:
            mo = _TAG_RE.search(v, semi)
            if mo is not None:
                tag = mo.group(1)
                if tag:
                    info["to_tag"] = tag
    v = get("X-CID")
    if v is not None:
        v = v.strip(" \t\r")
        if v:
            info["x_cid"] = v
    return info


def sip_text_info(text: str) -> dict[str, Any] | None:
    """:func:`sip_info` of a payload already decoded to text (no OpenSIPS unwrapping).

    The hot path of ``heptool decode`` (its records carry the payload as text anyway).  With
    the optional C extension (``heptool.core._speedups``) the text is read in C when C can
    (it declines rare shapes), else by :func:`sip_text_info_py`; both equal
    :func:`sip_text_info_ref` (tests/core/test_speedups.py, tests/core/test_sip.py).
    """
    if _c_sip_summary is not None:
        info = _c_sip_summary(text)
        if info is not None:
            return info  # type: ignore[no-any-return]
    return sip_text_info_py(text)


# -- payloads: bytes, OpenSIPS's JSON wrapping ------------------------------------------------
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _unwrap(text: str) -> str | None:
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


def _decode(payload: bytes) -> str:
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
        return _unwrap(_decode(payload))
    return _decode(payload)


def sip_payload(payload: bytes | None) -> bytes | None:
    """The SIP bytes of a payload: itself, or the ``payload`` string of an OpenSIPS JSON
    wrapper (UTF-8); None when it is neither (cheap for non-SIP)."""
    if not payload:
        return None
    if payload[:1] == b"{":
        inner = sip_text(payload)
        return None if inner is None else inner.encode("utf-8")
    return payload


def sip_info(payload: bytes | None) -> dict[str, Any] | None:
    """Summary of a SIP message (or None when the payload is not SIP): the module
    docstring's reading of :func:`sip_text`.

    Keys: ``method`` + ``ruri`` (requests) or ``status`` + ``reason`` (replies), then, when
    the message has them, ``call_id``, ``cseq`` (number), ``cseq_method``, ``from_tag``,
    ``to_tag``, ``x_cid``.  Values are text (invalid UTF-8 replaced) and ``status``/``cseq``
    integers.
    """
    text = sip_text(payload)
    return None if text is None else sip_text_info(text)


def sip_of_text(text: str) -> dict[str, Any] | None:
    """The ``sip`` view of a payload already decoded to text (the decode record's ``sip``):
    :func:`sip_text_info` when it starts with a letter, the reading of OpenSIPS's JSON
    wrapping when it starts with ``{``, else None."""
    first = text[:1]
    if first.isalpha():
        return sip_text_info(text)
    if first == "{":
        inner = _unwrap(text)
        return None if inner is None else sip_text_info(inner)
    return None


# -- ids for correlation --------------------------------------------------------------------
def _ids(info: dict[str, Any] | None) -> tuple[str | None, str | None, str | None]:
    if info is None:
        return None, None, None
    status = info.get("status")
    label = info["method"] if status is None else str(status)
    return info.get("call_id"), label, info.get("x_cid")


def sip_ids(payload: bytes | None) -> tuple[str | None, str | None, str | None]:
    """(Call-ID, label, X-CID) of a SIP payload, each None when absent: ``call_id``, the
    method or status digits, and ``x_cid`` of :func:`sip_info` (the C extension answers for
    plain SIP and the plain OpenSIPS wrapping, else :func:`sip_ids_py`)."""
    if _c_sip_ids is not None:
        r = _c_sip_ids(payload)
        if r is not None:
            return r  # type: ignore[no-any-return]
    return sip_ids_py(payload)


def sip_ids_py(payload: bytes | None) -> tuple[str | None, str | None, str | None]:
    """:func:`sip_ids` in pure Python (never the C extension): what
    ``sip_text_info_py`` reads, without deriving the keys the ids do not use."""
    text = sip_text(payload)
    r = None if text is None else _scan_py(text)
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
    """:func:`sip_ids` by the line-by-line reference :func:`sip_text_info_ref`."""
    text = sip_text(payload)
    return _ids(None if text is None else sip_text_info_ref(text))


def sip_ids_general(p: bytes) -> tuple[str | None, str | None, str | None]:
    """:func:`sip_ids` of SIP bytes already unwrapped (``p`` is read as it is, never as a
    JSON wrapping)."""
    return _ids(sip_text_info(_decode(p)) if p else None)


def call_id(payload: bytes | None) -> str | None:
    """The SIP Call-ID of a payload (OpenSIPS JSON wrapping undone), or None."""
    return sip_ids(payload)[0]


def sip_label(p: bytes) -> str | None:
    """``INVITE`` for a request, ``200`` for a reply (the first line), or None."""
    nl = p.find(b"\n")
    return _ids(_start(_line(_decode(p if nl < 0 else p[:nl]))))[1]


def header_values(text: str, name: str) -> list[str]:
    """Every non-empty value of header ``name`` (any ASCII case; its compact form too) in the
    header block of SIP text ``text``, in order (module docstring; the first line need not
    be valid here).  Comma-joined values are not split."""
    nl = text.find("\n")
    if nl < 0:
        return []
    lname = name.lower()
    lname = _COMPACT.get(lname, lname)
    out = []
    for n, v in _HEADER_RE.findall(text, nl, _block_end(text, nl)):
        n = n.lower()
        if _COMPACT.get(n, n) == lname:
            v = v.strip(_VALUE_STRIP)
            if v:
                out.append(v)
    return out


#: A cheap "might have an X-CID header" test.
xcid_hint = re.compile(rb"-[Cc][Ii][Dd]").search


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _first_line(p: bytes) -> bytes | None:
    """The first line of SIP bytes (without its line end) when it is a SIP first line."""
    nl = p.find(b"\n")
    line = p if nl < 0 else p[:nl]
    if line[-1:] == b"\r":
        line = line[:-1]
    return line if _start(_text(line)) is not None else None


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
