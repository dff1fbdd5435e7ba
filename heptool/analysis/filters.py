"""Message filters for ``decode`` (and any command that selects messages): pure predicates.

:func:`build_filter` turns the command-line selections into one function
``match(message) -> bool`` (or None when nothing is selected, so callers skip the call).
Every selection is a :class:`HepMessage` property; the outer transport a packet travelled on
is not (``--port`` narrows the capture reading instead).  Bad values raise ``ValueError``
with a one-line message naming the option.

* ``proto``: protocol types by name or number (``sip``, ``log``, ``100``, ``0x64``),
  comma-separated; :func:`heptool.core.registry.proto_from_text`.
* ``call_id``: the SIP Call-ID of the payload (also inside OpenSIPS's JSON wrapper),
  chunk 0x0011, or any value of chunk 0x0065's JSON object.
* ``grep``: a regular expression searched in the payload bytes (``(?i)`` for any case).
* ``src`` / ``dst``: ``ADDR``, ``ADDR:PORT``, ``[V6ADDR]:PORT``, ``CIDR``, ``[CIDR]:PORT``
  or ``:PORT``/``*:PORT``; matched against the captured packet's addresses (chunks 3-8).
* ``capture_id``, ``node``: exact values of chunks 0x000c and 0x0013.
* ``since`` / ``until``: ISO 8601 (a time without a zone is UTC) or epoch seconds,
  inclusive; a message without a time of its own (HEPv1) is matched by its capture frame's
  time when the caller gives it that (:func:`heptool.pipeline.reader.timed`), else never.
* ``methods`` / ``statuses``: the SIP view of the payload (plain SIP, or OpenSIPS's JSON
  wrapping ``{"payload": ...}``): :func:`parse_methods`, :func:`parse_statuses`.  A method
  matches requests with it and the replies to them (their CSeq method); ``!NAME`` (or
  ``!4xx``) excludes.  Non-SIP messages never match an inclusion; an exclusion-only
  selection lets them through (heplify's discard-by-method drops only what it names).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..core.addr import port_number
from ..core.record import extra_correlation_pairs, parse_time
from ..core.registry import proto_from_text
from ..sip.headers import TOKEN_RE
from ..sip.ids import call_id as sip_call_id
from ..sip.select import method_status

__all__ = ["AddressFilter", "build_filter", "parse_address", "parse_methods", "parse_protos",
           "parse_statuses"]

Predicate = Callable[[Any], bool]


def parse_protos(values: Iterable[str]) -> frozenset[int]:
    """``["sip,log", "100"]`` -> ``{1, 100}``; ValueError names the bad entry."""
    out: set[int] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                out.add(proto_from_text(part))
    if not out:
        raise ValueError("no protocol type given")
    return frozenset(out)


class AddressFilter:
    """An address (or network) and/or port to match one end of a message against."""

    __slots__ = ("host", "network", "port", "text")

    def __init__(self, text: str, network: Any, port: int | None) -> None:
        self.text = text
        self.network = network  # ipaddress network, or None for any address
        # a single address is compared as canonical text: no ipaddress call per message
        self.host = (str(network.network_address)
                     if network is not None and network.prefixlen == network.max_prefixlen else None)
        self.port = port

    def match(self, ip: str | None, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is None:
            return True
        if ip is None:
            return False
        if self.host is not None:
            return ip == self.host
        try:
            return _ip(ip) in self.network
        except ValueError:
            return False

    def __repr__(self) -> str:
        return f"AddressFilter({self.text!r})"


_IP_CACHE: dict[str, Any] = {}


def _ip(text: str) -> Any:
    a = _IP_CACHE.get(text)
    if a is None:
        if len(_IP_CACHE) > 65536:
            _IP_CACHE.clear()
        a = _IP_CACHE[text] = ipaddress.ip_address(text)
    return a


def _port(text: str, whole: str) -> int:
    port = port_number(text)
    if port is None:
        raise ValueError(f"bad port in {whole!r} (expected 0..65535)")
    return port


def _network(text: str, whole: str) -> Any:
    if text in ("", "*"):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{whole!r} is not an address, ADDR:PORT, [V6]:PORT or CIDR") from None


def parse_address(text: str) -> AddressFilter:
    """``10.0.0.1``, ``10.0.0.1:5060``, ``[2001:db8::1]:5060``, ``2001:db8::1``,
    ``10.0.0.0/8``, ``[2001:db8::/32]:5060``, ``:5060`` or ``*:5060``."""
    t = text.strip()
    if t.startswith("["):
        close = t.find("]")
        if close < 0:
            raise ValueError(f"{text!r}: missing ']'")
        rest = t[close + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r}: expected ':PORT' after ']'")
        return AddressFilter(text, _network(t[1:close], text), _port(rest[1:], text) if rest else None)
    if t.count(":") == 1:  # IPv4 (or nothing) with a port
        addr, _, port = t.partition(":")
        return AddressFilter(text, _network(addr, text), _port(port, text))
    if not t:
        raise ValueError("empty address")
    return AddressFilter(text, _network(t, text), None)


def _any(filters: Sequence[AddressFilter], side: str) -> Predicate:
    ipf, portf = f"{side}_ip", f"{side}_port"
    if len(filters) == 1:
        f = filters[0].match
        return lambda m: f(getattr(m, ipf), getattr(m, portf))
    return lambda m: any(f.match(getattr(m, ipf), getattr(m, portf)) for f in filters)


def _call_id_pred(ids: Sequence[str]) -> Predicate:
    wanted = frozenset(ids)
    needles = tuple(i.encode("utf-8") for i in wanted)

    def match(m: Any) -> bool:
        if m.correlation_id in wanted:
            return True
        ec = m.extra_correlation
        if ec and any(i in ec for i in wanted):  # cheap pre-check
            for _key, value in extra_correlation_pairs(ec) or ():
                if (value if isinstance(value, str) else str(value)) in wanted:
                    return True
        payload = m.payload
        if payload and any(n in payload for n in needles):  # cheap pre-check
            return sip_call_id(payload) in wanted
        return False

    return match


def _split(values: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """(item, excluded) for every comma-separated item of ``values``."""
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            excluded = part.startswith("!")
            yield (part[1:].strip() if excluded else part), excluded


def parse_methods(values: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """``["INVITE,bye", "!OPTIONS"]`` -> ({"INVITE", "BYE"}, {"OPTIONS"}): (included,
    excluded), upper case; ValueError names the bad entry."""
    inc: set[str] = set()
    exc: set[str] = set()
    for item, excluded in _split(values):
        if TOKEN_RE.match(item) is None:
            raise ValueError(f"--method: {item!r} is not a SIP method (e.g. INVITE, !OPTIONS)")
        (exc if excluded else inc).add(item.upper())
    if not inc and not exc:
        raise ValueError("--method: no method given")
    return frozenset(inc), frozenset(exc)


_STATUS_RE = re.compile(r"([1-6])(?:([0-9][0-9])|[xX][xX])\Z")


def parse_statuses(values: Iterable[str]) -> tuple[frozenset[int], frozenset[int]]:
    """``["486", "5xx", "!503"]`` -> ({486, 5}, {503}): (included, excluded); a class
    ``Nxx`` is the digit N, a status its number; ValueError names the bad entry."""
    inc: set[int] = set()
    exc: set[int] = set()
    for item, excluded in _split(values):
        mo = _STATUS_RE.match(item) if item.isascii() else None
        if mo is None:
            raise ValueError(f"--status: {item!r} is not a SIP status (100..699) or class "
                             "(1xx..6xx)")
        (exc if excluded else inc).add(int(item) if mo.group(2) else int(mo.group(1)))
    if not inc and not exc:
        raise ValueError("--status: no status given")
    return frozenset(inc), frozenset(exc)


def _in(status: int, wanted: frozenset[int]) -> bool:
    return status in wanted or status // 100 in wanted


def _sip_pred(methods: Iterable[str], statuses: Iterable[str]) -> Predicate | None:
    """The --method/--status predicate (None when neither is given): one reading of the
    payload's SIP first line (and, for a reply under a method selection, its CSeq)."""
    methods, statuses = list(methods), list(statuses)
    if not methods and not statuses:
        return None
    m_in, m_out = parse_methods(methods) if methods else (frozenset(), frozenset())
    s_in, s_out = parse_statuses(statuses) if statuses else (frozenset(), frozenset())
    reply_method = bool(m_in or m_out)
    non_sip = not m_in and not s_in  # exclusions only: what is not SIP is not excluded

    def match(m: Any) -> bool:
        ms = method_status(m.payload, reply_method=reply_method)
        if ms is None:
            return non_sip
        method, status = ms
        if method is not None:
            method = method.upper()
            if method in m_out or m_in and method not in m_in:
                return False
        elif m_in:
            return False
        if status is not None:
            if _in(status, s_out) or s_in and not _in(status, s_in):
                return False
        elif s_in:
            return False
        return True

    return match


def build_filter(
    *,
    proto: Iterable[str] = (),
    call_id: Iterable[str] = (),
    grep: str | None = None,
    src: Iterable[str] = (),
    dst: Iterable[str] = (),
    capture_id: Iterable[int] = (),
    node: Iterable[str] = (),
    since: str | None = None,
    until: str | None = None,
    methods: Iterable[str] = (),
    statuses: Iterable[str] = (),
) -> Predicate | None:
    """One predicate for all the selections given (they combine with AND; repeated values
    of one selection with OR), or None when there are none.  ValueError on a bad value."""
    preds: list[Predicate] = []
    proto = list(proto)
    if proto:
        protos = parse_protos(proto)
        preds.append(lambda m: m.proto_type in protos)
    capture_ids = frozenset(capture_id)
    if capture_ids:
        preds.append(lambda m: m.capture_id in capture_ids)
    nodes = frozenset(node)
    if nodes:
        preds.append(lambda m: m.node_name in nodes)
    srcs = [parse_address(s) for s in src]
    if srcs:
        preds.append(_any(srcs, "src"))
    dsts = [parse_address(s) for s in dst]
    if dsts:
        preds.append(_any(dsts, "dst"))
    if since is not None:
        lo = _time(since, "--since")
        preds.append(lambda m: m.ts_sec is not None and (m.ts_sec, m.ts_usec or 0) >= lo)
    if until is not None:
        hi = _time(until, "--until")
        preds.append(lambda m: m.ts_sec is not None and (m.ts_sec, m.ts_usec or 0) <= hi)
    sip = _sip_pred(methods, statuses)
    if sip is not None:
        preds.append(sip)
    if grep is not None:
        try:
            rx = re.compile(grep.encode("utf-8", "surrogateescape"))
        except re.error as e:
            raise ValueError(f"bad regular expression {grep!r}: {e}") from None
        search = rx.search
        preds.append(lambda m: m.payload is not None and search(m.payload) is not None)
    ids = [i for i in call_id if i]
    if ids:
        preds.append(_call_id_pred(ids))  # last: the dearest
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    return lambda m: all(p(m) for p in preds)


def _time(text: str, option: str) -> tuple[int, int]:
    try:
        return parse_time(text)
    except ValueError as e:
        raise ValueError(f"{option}: {e}") from None
