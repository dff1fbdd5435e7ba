"""The call list (pure): one summary per correlation group that has SIP, as sngrep's dialog
list, for any capture heptool reads.

:class:`SipFacts` collects, while the graph is built (it is ``build_graph``'s ``keep``),
the little each SIP message says about its call: method or status, CSeq method, From and To
URIs.  :func:`call_summaries` then makes one :class:`dict` per group that has a SIP message:

    {"group": 4, "call_ids": ["a84b4c76e66710@pc33"], "from": "sip:alice@atlanta.example",
     "to": "sip:bob@biloxi.example", "request": "INVITE", "status": 200, "reason": "OK",
     "start": "2026-11-26T08:59:54.649697Z", "duration": 0.604077,
     "messages": {"sip": 13, "xlog": 6, ...}, "linked": ["log", "net", "rest"]}

``request`` is the first SIP request of the group (time order), ``from``/``to`` its From and
To URIs; ``status``/``reason`` the final answer to it (the last final response whose CSeq
method is the request's; the last provisional one when there is no final; null when none);
``start``/``duration`` span every message of the group (logs, REST, net events too);
``messages`` counts the group's messages by kind; ``linked`` lists the families of the
non-SIP messages (``log`` for xlog and log lines, ``rest``, ``net``, ``mi``, ``control``,
``rtcp``, ``qos``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.record import format_time
from ..sip.headers import header_values
from ..sip.info import sip_text_info
from ..sip.payload import sip_text

__all__ = ["SipFacts", "call_summaries", "uri"]


def uri(value: str | None) -> str | None:
    """The URI of a From/To value: inside ``<...>``, else up to the first ``;``."""
    if not value:
        return None
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        return value[lt + 1:gt if gt > 0 else len(value)].strip() or None
    return value.split(";", 1)[0].strip() or None


class SipFacts:
    """What the call list needs of each SIP message, by graph position.  Call it as
    ``build_graph``'s ``keep(position, message)``: non-SIP messages cost one test."""

    def __init__(self) -> None:
        #: position -> (method, status, reason, cseq_method, from URI, to URI)
        self.by_pos: dict[int, tuple[Any, ...]] = {}

    def __call__(self, pos: int, m: Any) -> None:
        if m.proto_type not in (1, None) or not m.payload:
            return
        text = sip_text(m.payload)
        info = None if text is None else sip_text_info(text)
        if info is None:
            return
        frm = header_values(text, "from")  # type: ignore[arg-type]
        to = header_values(text, "to")  # type: ignore[arg-type]
        self.by_pos[pos] = (info.get("method"), info.get("status"), info.get("reason"),
                            info.get("cseq_method"), uri(frm[0] if frm else None),
                            uri(to[0] if to else None))


def _family(kind: str) -> str:
    fam = kind.split("_", 1)[0]
    return "log" if fam == "xlog" else fam


def call_summaries(graph: Any, groups: Iterable[Any], facts: SipFacts) -> list[dict[str, Any]]:
    """One summary per group of ``groups`` that has a SIP message (module docstring), in
    group order; ``graph`` gives times (:meth:`time`) and input indices."""
    out = []
    by_pos = facts.by_pos
    for g in groups:
        sip = [p for p in g.members if p in by_pos]
        if not sip:
            continue
        sip.sort(key=lambda p: (graph.time(p) is None, graph.time(p) or 0, p))
        first = next((p for p in sip if by_pos[p][0] is not None), None)
        request = frm = to = status = reason = None
        if first is not None:
            request, _, _, _, frm, to = by_pos[first]
            final = provisional = None
            for p in sip:
                _m, code, why, cseq_method, _f, _t = by_pos[p]
                if code is None or (cseq_method is not None and cseq_method != request):
                    continue
                if code >= 200:
                    final = (code, why)
                else:
                    provisional = (code, why)
            status, reason = final or provisional or (None, None)
        else:  # replies only (the capture started late): their From/To
            _m, _c, _r, _cm, frm, to = by_pos[sip[0]]
        start = g.first
        out.append({
            "group": g.id,
            "call_ids": list(g.call_ids),
            "from": frm,
            "to": to,
            "request": request,
            "status": status,
            "reason": reason or None if status is not None else None,
            "start": None if start is None else format_time(start // 1_000_000,
                                                            start % 1_000_000),
            "duration": None if start is None or g.last is None
            else round((g.last - start) / 1e6, 6),
            "messages": dict(g.kinds),
            "linked": sorted({_family(k) for k in g.kinds if _family(k) != "sip"}),
        })
    return out
