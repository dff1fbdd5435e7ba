"""What a HEP message says about correlation: its kind and the ids it carries (pure).

:func:`extract` looks at one :class:`~heptool.core.message.HepMessage` and returns an
:class:`Extract`: the message's *kind* (``sip``, ``xlog``, ``rest_request``, ``net_tls``,
``mi_reply``, ``control``, ``rtcp``...) and its ids, each ``(value, reason, owns)``:

* ``owns`` ids name the message itself: the SIP Call-ID of the payload (``call_id``),
  chunk 0x0011 (``internal``; ``conn_id`` on OpenSIPS net events, ``rest_id``/``mi_id`` for
  OpenSIPS's ``RESTCORR``/``MICORR`` GUIDs), and the values of ``--link-header`` headers
  (``header:<NAME>``, shared by every message that carries them);
* reference ids (``owns`` false) point at another message's own id: every key/value of
  OpenSIPS's chunk 0x0065 (``extra:<key>``), the SIP ``X-CID`` header (``header:X-CID``,
  the A-leg's Call-ID), and the base id a ``--b2b-pattern`` derives from a B2BUA leg's
  Call-ID (``b2b``).

The correlation graph (:mod:`heptool.analysis.correlate`) joins messages through equal values:
owners with each other, references to owners; a reference that matches no owner is
*dangling* (reported, never guessed).

Payload understanding per protocol type (HEP-SPEC sections 5, 6 and 14):

* SIP (1): through :mod:`heptool.sip` (Call-ID, also compact ``i:``; OpenSIPS's JSON
  wrapper ``{"payload": "<SIP>"}`` undone); ``X-CID`` and ``--link-header`` values here.
* OpenSIPS (HEP-SPEC 6/14), in both encodings: JSON (``homer5_on=0``: pretty-printed,
  duplicate keys kept, binary TLS master keys that are not UTF-8) and the delimited text of
  ``homer5_on=1`` (``INFO:<text>``, ``TCP:ACCEPTED:SUCCESS:<msg>``, ``uptime:fifo``):
  xlog (0x64, and 0x56 before 2020), REST (0x58; request or reply by the first line), net
  (0x59: protocol, event, status, TLS and WS details), MI (0x57; request or reply),
  control (0x60, no payload: its chunk 0x0065 is all there is).
* Logs (100) and RTCP/QoS JSON (5, 32, 34, 35, 99): their 0x0011 (a Call-ID, as heplify,
  rtpengine, captagent and Kamailio send them).

Everything here is stdlib only and deterministic; nothing is read but the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..core.record import extra_correlation_pairs
from ..core.registry import PROTO_TYPES
from ..sip.headers import TOKEN_RE as _HEADER_NAME_RE
from ..sip.headers import header_values as _sip_header_values
from ..sip.ids import sip_ids, sip_ids_general
from ..sip.payload import sip_payload

__all__ = [
    "KINDS",
    "NULL_IDS",
    "TCP_FAMILY",
    "Extract",
    "Rules",
    "extract",
    "header_values",
    "opensips_fields",
    "parse_b2b_pattern",
    "parse_link_header",
]

#: Values that mean "no id": OpenSIPS writes ``<null>`` in 0x0011 of an xlog line outside
#: a SIP transaction; an empty chunk says nothing either.  Never a graph node (joining every
#: message that says "no id" would merge unrelated calls).
NULL_IDS = frozenset({"", "<null>", "(null)"})

#: ip proto values of connection-oriented transports: TCP, OpenSIPS/Kamailio's fake 22
#: (TLS) and 50 (WS/WSS), SCTP.
TCP_FAMILY = frozenset({6, 22, 50, 132})

#: OpenSIPS xlog levels (the ``Event`` of an xlog line), for the homer5 text encoding.
_XLOG_LEVELS = frozenset({"ALERT", "CRITICAL", "CRIT", "ERROR", "ERR", "WARNING", "WARN",
                          "NOTICE", "INFO", "DEBUG", "L_ALERT", "L_CRIT", "L_ERR", "L_WARN",
                          "L_NOTICE", "L_INFO", "L_DBG"})
_NET_PROTOCOLS = frozenset({"TCP", "TLS", "WS", "WSS", "BINS", "MSRP", "SCTP", "UDP"})

_SIP, _XLOG_OLD, _MI, _REST, _NET, _CONTROL, _LOG = 1, 0x56, 0x57, 0x58, 0x59, 0x60, 100

#: Every kind :func:`extract` gives a message a name for (an unregistered protocol type
#: is its number, written in decimal).
KINDS = frozenset({"sip", "xlog", "log", "control", "unknown", "rest", "rest_request",
                   "rest_reply", "net", *(f"net_{p.lower()}" for p in _NET_PROTOCOLS), "mi",
                   "mi_request", "mi_reply",
                   *(n for t, n in PROTO_TYPES.items() if t not in (_XLOG_OLD, _MI, _REST,
                                                                      _NET, _CONTROL, _LOG))})


class Extract:
    """The kind of one message and the ids it carries (see the module docstring).

    ``ids``: ``(value, reason, owns)`` tuples.  ``event``: for net events, the event name
    (``ACCEPTED``, ``CONNECTED``, ``CLOSED``...); ``has_net``: the message's chunk 0x0065
    has a ``net`` key (so no connection needs to be inferred for it); ``label``: a short
    text for group labels (SIP method or status, MI command, net event), or None.
    """

    __slots__ = ("event", "has_net", "ids", "kind", "label")

    def __init__(self, kind: str, ids: list[tuple[str, str, bool]], event: str | None = None,
                 has_net: bool = False, label: str | None = None) -> None:
        self.kind = kind
        self.ids = ids
        self.event = event
        self.has_net = has_net
        self.label = label

    def __repr__(self) -> str:
        return (f"Extract(kind={self.kind!r}, ids={self.ids!r}, event={self.event!r}, "
                f"has_net={self.has_net!r}, label={self.label!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Extract):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------
# Rules: --link-header and --b2b-pattern
# ---------------------------------------------------------------------------------------

class LinkHeader:
    """One ``--link-header``: a SIP header name and, optionally, one of its parameters.

    ``P-Charging-Vector`` alone means its ``icid-value`` parameter (the IMS charging id,
    the same on every hop; the rest of the header changes from hop to hop)."""

    __slots__ = ("lname", "name", "param", "reason")

    def __init__(self, name: str, param: str | None = None) -> None:
        self.name = name
        self.lname = name.lower().encode("ascii")
        if param is None and name.lower() == "p-charging-vector":
            param = "icid-value"
        self.param = param.lower() if param else None
        self.reason = f"header:{name}"

    def value(self, raw: str) -> str | None:
        # raw is a header value as heptool.sip reads it (SP/HTAB/CR already stripped);
        # parameters: "name = value", blanks SP/HTAB, the name ASCII-case-insensitive
        if self.param is None:
            return raw or None
        for part in raw.split(";"):
            k, sep, v = part.partition("=")
            k = k.strip(" \t")
            if sep and k.isascii() and k.lower() == self.param:
                return v.strip(" \t").strip('"') or None
        return None

    def __repr__(self) -> str:
        return f"LinkHeader({self.name!r}, {self.param!r})"


def parse_link_header(text: str) -> LinkHeader:
    """``NAME`` or ``NAME;PARAM`` (``P-Charging-Vector;icid-value``); ValueError if bad."""
    name, _, param = text.strip().partition(";")
    name = name.strip().rstrip(":")
    if not _HEADER_NAME_RE.match(name):
        raise ValueError(f"--link-header {text!r}: not a SIP header name")
    if name.lower() in ("call-id", "i"):
        raise ValueError("--link-header Call-ID: the Call-ID always links")
    return LinkHeader(name, param.strip() or None)


def parse_b2b_pattern(text: str) -> Callable[[str], str | None]:
    """A function giving the A-leg id that a B2BUA leg's id ``v`` was made from, or None.

    ``PREFIX*`` / ``*SUFFIX`` (one ``*`` standing for the A-leg id: ``b2b-*``,
    ``*_b2b-1``), or ``re:REGEX`` whose first group (or the whole match) is the A-leg id
    (``re:^(.+)_b2b-\\d+$``).  ValueError if the pattern is bad.
    """
    t = text.strip()
    if t.startswith("re:"):
        try:
            rx = re.compile(t[3:])
        except re.error as e:
            raise ValueError(f"--b2b-pattern {text!r}: {e}") from None

        def by_regex(v: str) -> str | None:
            mo = rx.search(v)
            if mo is None:
                return None
            base = mo.group(1) if rx.groups else mo.group(0)
            return base if base and base != v else None

        return by_regex
    if t.count("*") != 1 or t == "*":
        raise ValueError(f"--b2b-pattern {text!r}: use PREFIX*, *SUFFIX or re:REGEX "
                         "(one '*' standing for the A-leg Call-ID)")
    prefix, _, suffix = t.partition("*")
    lp, ls = len(prefix), len(suffix)

    def by_affix(v: str) -> str | None:
        if len(v) > lp + ls and v.startswith(prefix) and v.endswith(suffix):
            return v[lp:len(v) - ls] if ls else v[lp:]
        return None

    return by_affix


class Rules:
    """The optional correlation rules: ``--link-header`` headers, ``--b2b-pattern``s."""

    __slots__ = ("b2b", "headers")

    def __init__(self, headers: Iterable[LinkHeader | str] = (),
                 b2b: Iterable[Callable[[str], str | None] | str] = ()) -> None:
        self.headers: tuple[LinkHeader, ...] = tuple(
            h if isinstance(h, LinkHeader) else parse_link_header(h) for h in headers)
        self.b2b: tuple[Callable[[str], str | None], ...] = tuple(
            parse_b2b_pattern(b) if isinstance(b, str) else b for b in b2b)


_NO_RULES = Rules()


# ---------------------------------------------------------------------------------------
# Payload helpers
# ---------------------------------------------------------------------------------------

def opensips_fields(payload: bytes | None) -> list[tuple[str, Any]] | None:
    """An OpenSIPS JSON payload as (key, value) pairs in wire order, duplicates kept.

    Reads what OpenSIPS really sends: cJSON's pretty-printed objects, control characters
    inside strings, and bytes that are not UTF-8 (a TLS ``master-key``: kept as surrogate
    escapes).  None when the payload is not a JSON object."""
    if not payload or payload[:1] != b"{":
        return None
    try:
        obj = json.loads(payload.decode("utf-8", "surrogateescape"), strict=False,
                         object_pairs_hook=list)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, list) else None


def _field(pairs: Sequence[tuple[str, Any]], key: str) -> Any:
    """The last value of ``key`` (OpenSIPS's duplicate keys: the last one wins, as cJSON's
    lookups read the first; either is the same in every capture seen)."""
    found = None
    for k, v in pairs:
        if k == key:
            found = v
    return found


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def header_values(sip: bytes, lname: bytes) -> list[str]:
    """Every non-empty value of header ``lname`` (lower-case bytes) in the header block of
    ``sip``, in order, read as :mod:`heptool.sip` reads SIP text (ASCII-case-insensitive
    names, compact forms, LF line ends, continuation lines are not headers); comma-joined
    values are not split (a parameter is looked up per value)."""
    return _sip_header_values(_text(sip), lname.decode("ascii"))


_STR = r'"[^"\\\x00-\x1f]*"'
_EC_RE = re.compile(r"\{\s*(?:%s\s*:\s*%s\s*(?:,\s*%s\s*:\s*%s\s*)*)?\}" % ((_STR,) * 4))
_EC_PAIR_RE = re.compile(r'"([^"\\\x00-\x1f]*)"\s*:\s*"([^"\\\x00-\x1f]*)"')


def extra_pairs(text: str) -> tuple[tuple[str, Any], ...]:
    """Chunk 0x0065's key/value pairs in wire order, duplicates kept: what
    :func:`heptool.core.record.extra_correlation_pairs` returns, with a fast path for the
    plain string-to-string objects OpenSIPS writes (no escapes)."""
    pairs = _PAIRS.get(text)
    if pairs is None:
        if _EC_RE.fullmatch(text):
            pairs = _EC_PAIR_RE.findall(text)
        else:
            pairs = [tuple(p) for p in extra_correlation_pairs(text) or ()]
        if len(_PAIRS) > 4096:
            _PAIRS.clear()
        _PAIRS[text] = pairs = tuple(pairs)
    return pairs  # type: ignore[return-value]


#: extra_pairs() per 0x0065 text: the messages of one call or connection repeat it
_PAIRS: dict[str, tuple] = {}


def _ok(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    s = value if isinstance(value, str) else json.dumps(value)
    return None if s in NULL_IDS else s


# ---------------------------------------------------------------------------------------
# extract
# ---------------------------------------------------------------------------------------

def extract(m: Any, rules: Rules | None = None) -> Extract:
    """The kind and ids of message ``m`` (see the module docstring)."""
    r = rules or _NO_RULES
    pt = m.proto_type
    if pt is None and m.version in (1, 2):
        pt = _SIP
    payload = m.payload
    ids: list[tuple[str, str, bool]] = []
    cid = m.correlation_id
    event = None
    label = None
    if pt == _SIP:
        kind = "sip"
        if cid is not None and cid not in NULL_IDS:
            ids.append((cid, "internal", True))
        if r.headers:
            p = sip_payload(payload) if payload else None
            call, label, x = sip_ids_general(p) if p is not None else (None, None, None)
        else:
            p = None
            call, label, x = sip_ids(payload)
        if call is not None and call not in NULL_IDS:
            ids.append((call, "call_id", True))
            for fn in r.b2b if call != cid else ():
                base = fn(call)
                if base:
                    ids.append((base, "b2b", False))
        if x and x not in NULL_IDS:
            ids.append((x, "header:X-CID", False))
        if p is not None:
            for h in r.headers:
                for raw in header_values(p, h.lname):
                    v = h.value(raw)
                    if v and v not in NULL_IDS:
                        ids.append((v, h.reason, True))
    elif pt == _NET:
        kind, event, label = _net(payload)
        if cid is not None and cid not in NULL_IDS:
            ids.append((cid, "conn_id", True))
    elif pt == _REST:
        kind = _rest_kind(payload)
        if cid is not None and cid not in NULL_IDS:
            ids.append((cid, "rest_id" if cid.startswith("RESTCORR") else "internal", True))
    elif pt == _MI:
        kind, label = _mi(payload)
        if cid is not None and cid not in NULL_IDS:
            ids.append((cid, "mi_id" if cid.startswith("MICORR") else "internal", True))
    else:
        if pt == _LOG or pt == _XLOG_OLD:
            kind = "xlog" if pt == _XLOG_OLD or _is_xlog(payload, m.extra_correlation) else "log"
        elif pt == _CONTROL:
            kind = "control"
        else:
            kind = PROTO_TYPES.get(pt) or ("unknown" if pt is None else str(pt))
        if cid is not None and cid not in NULL_IDS:
            ids.append((cid, "internal", True))
    if r.b2b and cid is not None and cid not in NULL_IDS:
        for fn in r.b2b:
            base = fn(cid)
            if base:
                ids.append((base, "b2b", False))
    has_net = False
    ec = m.extra_correlation
    if ec:
        for pair in extra_pairs(ec):
            key, value = pair
            v = _ok(value)
            if key == "net":
                has_net = True
            if v is None:
                continue
            ids.append((v, f"extra:{key}", False))
            if key == "sip" and r.b2b:
                for fn in r.b2b:
                    base = fn(v)
                    if base:
                        ids.append((base, "b2b", False))
    if label is not None:
        label = _interned(label)
    return Extract(_interned(kind), ids, event, has_net, label)


_INTERNED: dict[str, str] = {}


def _interned(text: str) -> str:
    """One shared object per distinct kind or label (a graph keeps one per message)."""
    v = _INTERNED.get(text)
    if v is None:
        if len(_INTERNED) > 65536:
            _INTERNED.clear()
        v = _INTERNED[text] = text
    return v


def _is_xlog(payload: bytes | None, ec: str | None) -> bool:
    if ec:
        return True
    if not payload:
        return False
    if payload[:1] == b"{":
        pairs = opensips_fields(payload)
        if pairs is None:
            return False
        keys = {k for k, _ in pairs}
        return "Event" in keys and "text" in keys
    head, sep, _ = payload[:16].partition(b":")
    return bool(sep) and _text(head) in _XLOG_LEVELS


def _net(payload: bytes | None) -> tuple[str, str | None, str | None]:
    """(kind ``net_tcp``..., event, label) of an OpenSIPS net event, JSON or homer5 text."""
    proto = event = status = None
    pairs = opensips_fields(payload)
    if pairs is not None:
        proto = _field(pairs, "Protocol")
        event = _field(pairs, "Event")
        status = _field(pairs, "Status")
    elif payload:
        parts = _text(payload[:256]).split(":", 3)
        if parts and parts[0].upper() in _NET_PROTOCOLS:
            proto = parts[0]
            event = parts[1] if len(parts) > 1 else None
            status = parts[2] if len(parts) > 2 else None
    proto = proto if isinstance(proto, str) and proto else None
    event = event.upper() if isinstance(event, str) and event else None
    kind = f"net_{proto.lower()}" if proto and proto.upper() in _NET_PROTOCOLS else "net"
    label = " ".join(x for x in (proto, event, status if isinstance(status, str) else None) if x)
    return kind, event, label or None


def _rest_kind(payload: bytes | None) -> str:
    if not payload:
        return "rest"
    if payload[:15] == b'{\n\t"first_line"':  # OpenSIPS's own layout: no parse needed
        return "rest_reply" if payload[15:25].lstrip(b":\t ")[:6] == b'"HTTP/' else "rest_request"
    pairs = opensips_fields(payload)
    if pairs is not None:
        first = _field(pairs, "first_line")
        if not isinstance(first, str):
            return "rest"
    else:
        first = _text(payload[:64])
    return "rest_reply" if first.startswith("HTTP/") else "rest_request"


def _mi(payload: bytes | None) -> tuple[str, str | None]:
    """(``mi_request`` or ``mi_reply``, label) of an OpenSIPS MI packet, JSON or homer5."""
    if not payload:
        return "mi", None
    if payload[:1] in (b"{", b"["):
        pairs = opensips_fields(payload)
        if pairs is not None:
            command = _field(pairs, "command")
            if isinstance(command, str):
                backend = _field(pairs, "backend")
                label = f"MI {command}" + (f" via {backend}" if isinstance(backend, str) else "")
                return "mi_request", label
        # {"reply": ...} (JSON mode), or the reply text itself (homer5 mode, maybe cut short)
        return "mi_reply", None
    parts = _text(payload[:256]).split(":", 2)  # homer5: command:backend[:parameters]
    label = f"MI {parts[0]}" + (f" via {parts[1]}" if len(parts) > 1 else "")
    return "mi_request", label
