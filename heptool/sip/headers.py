"""The pieces of SIP text every reader here shares (pure, standard library only).

ONE token rule (:data:`TOKEN`), ONE header-line regular expression (:func:`header_re`,
:data:`HEADER_RE`), the first line (:func:`start_line`), the end of the header block
(:func:`block_end`), tags (:func:`tag`) and header values (:func:`header_values`), as the
definition in :mod:`heptool.sip.info` says them.  Every character class is ASCII.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BLANKS", "CANONICAL", "COMPACT", "HEADER_RE", "STATUS_RE", "TAG_RE", "TOKEN",
           "TOKEN_RE", "VALUE_STRIP", "WANTED", "WANTED_RE", "block_end", "first_line",
           "header_line", "header_re", "header_values", "line", "start_line", "tag", "text"]

#: a token (RFC 3261): a method or a header name
TOKEN = r"[A-Za-z0-9!%'*+.^_`|~-]+"
TOKEN_RE = re.compile(TOKEN + r"\Z")
BLANKS = " \t"           # SP / HTAB
VALUE_STRIP = " \t\r"    # stripped from both ends of a value
STATUS_RE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?\Z", re.DOTALL)
TAG_RE = re.compile(r";[ \t]*[Tt][Aa][Gg][ \t]*=[ \t]*([^;, \t\r\n]*)")
#: lower-case header name -> the key it is read as (compact forms included)
WANTED = {"call-id": "Call-ID", "i": "Call-ID", "cseq": "CSeq", "from": "From", "f": "From",
          "to": "To", "t": "To", "x-cid": "X-CID"}
COMPACT = {"i": "call-id", "f": "from", "t": "to"}


def header_re(names: str) -> re.Pattern[str]:
    """THE header line: ``LF name *(SP/HTAB) ":" value`` (group 1 the name, group 2 the raw
    value up to the next LF), for the names ``names`` matches; searched from the LF that
    ends the first line (the LF is the literal that makes the search fast)."""
    return re.compile(r"\n(" + names + r")[ \t]*:(.*)", re.ASCII | re.IGNORECASE)


#: every header line
HEADER_RE = header_re(TOKEN)
#: the header lines sip_info reads: HEADER_RE restricted to the wanted names
WANTED_RE = header_re("|".join(sorted(map(re.escape, WANTED), key=len, reverse=True)))
#: the spellings real agents send, used as the keys of the headers found
CANONICAL = frozenset(("Call-ID", "CSeq", "From", "To", "X-CID"))


def start_line(line: str) -> dict[str, Any] | None:
    """The first line (without its line end) read: {status, reason} | {method, ruri} | None."""
    if line[:8] == "SIP/2.0 ":
        mo = STATUS_RE.match(line)  # [0-9]: ASCII digits only ("²" is no digit here)
        if mo is None:
            return None
        return {"status": int(mo.group(1)), "reason": mo.group(2) or ""}
    parts = line.split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[1] or \
            TOKEN_RE.match(parts[0]) is None:
        return None
    return {"method": parts[0], "ruri": parts[1]}


def tag(value: str) -> str | None:
    """The tag of a From/To value (after the last ``>``), None when absent or empty."""
    mo = TAG_RE.search(value, value.rfind(">") + 1)
    return (mo.group(1) or None) if mo else None


def line(raw: str) -> str:
    """A line without its line end: one CR before the LF (or at the end) is not part of it."""
    return raw[:-1] if raw[-1:] == "\r" else raw


def header_line(line: str) -> tuple[str, str] | None:
    """(name, raw value) of a header line (without its line end), or None."""
    i = 0
    n = len(line)
    while i < n and TOKEN_RE.match(line[i]) is not None:
        i += 1
    if i == 0:
        return None
    j = i
    while j < n and line[j] in BLANKS:
        j += 1
    if j == n or line[j] != ":":
        return None
    return line[:i], line[j + 1:]


def block_end(text: str, nl: int) -> int:
    """Where the header block that starts after the LF at ``nl`` ends: the LF before the
    first empty line (``\\n\\r\\n`` or ``\\n\\n``), or the end of the text."""
    end = text.find("\n\r\n", nl)
    if end < 0:
        end = len(text)
    e2 = text.find("\n\n", nl, end)
    return e2 if e2 >= 0 else end


def header_values(text: str, name: str) -> list[str]:
    """Every non-empty value of header ``name`` (any ASCII case; its compact form too) in the
    header block of SIP text ``text``, in order (:mod:`heptool.sip.info`; the first line need not
    be valid here).  Comma-joined values are not split."""
    nl = text.find("\n")
    if nl < 0:
        return []
    lname = name.lower()
    lname = COMPACT.get(lname, lname)
    out = []
    for n, v in HEADER_RE.findall(text, nl, block_end(text, nl)):
        n = n.lower()
        if COMPACT.get(n, n) == lname:
            v = v.strip(VALUE_STRIP)
            if v:
                out.append(v)
    return out


def text(b: bytes) -> str:
    """SIP bytes as text, invalid UTF-8 replaced."""
    return b.decode("utf-8", "replace")


def first_line(p: bytes) -> bytes | None:
    """The first line of SIP bytes (without its line end) when it is a SIP first line."""
    nl = p.find(b"\n")
    first = p if nl < 0 else p[:nl]
    if first[-1:] == b"\r":
        first = first[:-1]
    return first if start_line(text(first)) is not None else None
