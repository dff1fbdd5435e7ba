"""How heptool reads SIP text: the definition, its reference and its fast paths (pure).

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
(:func:`heptool.sip.ids.sip_ids` gives (``call_id``, label, ``x_cid``) of the same
reading, the label being the method of a request or the three status digits of a reply;
(None, None, None) when the payload is not SIP.)  Nothing here has a length limit: every
step is linear in the text.

The ``*_py`` and ``*_ref`` functions never reach the C extension: they are what the C code
is tested against (tests/equivalence/), and :func:`sip_text_info_py` is tested
against :func:`sip_text_info_ref` (tests/core/test_sip.py).
"""

from __future__ import annotations

import re
from typing import Any

from ..core.accel import c_function
from .headers import CANONICAL as _CANONICAL
from .headers import TAG_RE as _TAG_RE
from .headers import TOKEN_RE as _TOKEN_RE
from .headers import VALUE_STRIP as _VALUE_STRIP
from .headers import WANTED as _WANTED
from .headers import WANTED_RE as _WANTED_RE
from .headers import header_line as _header_line
from .headers import line as _line
from .headers import start_line as _start
from .headers import tag as _tag
from .payload import sip_text, unwrap

__all__ = ["scan", "sip_info", "sip_of_text", "sip_text_info", "sip_text_info_py",
           "sip_text_info_ref"]

# optional C version of the hot path (None in the pure-Python build); same results
_c_sip_summary = c_function("sip_summary")
#: the headers whose ``tag`` parameter the summary reports, and its key for each
_TAG_HEADERS = (("From", "from_tag"), ("To", "to_tag"))
_CSEQ_RE = re.compile(r"([^ \t]*)[ \t]*(.*)\Z", re.DOTALL)


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
def scan(text: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """(first line's keys, raw value of the first occurrence of each wanted header), or None
    when the first line is not SIP: the first line, the end of the header block, then one
    regular expression pass for the wanted header lines."""
    nl = text.find("\n")
    if nl < 0:  # the first line only
        only = _start(_line(text))
        return None if only is None else (only, {})
    fl = nl - 1 if nl and text[nl - 1] == "\r" else nl  # where the first line ends
    if text.startswith("SIP/2.0 "):  # headers.start_line(text[:fl]), inline
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
    end = text.find("\n\r\n", nl)  # headers.block_end(text, nl), inline
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
    """:func:`sip_text_info` in pure Python (never the C extension), fast: :func:`scan`,
    then the keys derived inline (what :func:`_derive` does, without its calls); equal to
    :func:`sip_text_info_ref` (tests/core/test_sip.py)."""
    r = scan(text)
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
    for name, key in _TAG_HEADERS:
        v = get(name)
        if v is not None:
            semi = v.find(";", v.rfind(">") + 1)
            if semi >= 0:
                mo = _TAG_RE.search(v, semi)
                if mo is not None:
                    tag = mo.group(1)
                    if tag:
                        info[key] = tag
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
    :func:`sip_text_info_ref` (tests/equivalence/, tests/core/test_sip.py).
    """
    if _c_sip_summary is not None:
        info = _c_sip_summary(text)
        if info is not None:
            return info  # type: ignore[no-any-return]
    return sip_text_info_py(text)


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
        inner = unwrap(text)
        return None if inner is None else sip_text_info(inner)
    return None


