"""The correlation graph: every HEP message and every id it carries, joined (pure).

Nodes are messages and id values; a message is attached to each value it carries, with a
*reason* (:mod:`heptool.analysis.extract` says which): ``call_id`` (SIP Call-ID of the payload),
``internal`` (chunk 0x0011), ``conn_id`` / ``rest_id`` / ``mi_id`` (OpenSIPS's connection id
and REST/MI GUIDs in 0x0011), ``extra:<key>`` (a key/value of OpenSIPS's chunk 0x0065),
``header:X-CID`` and ``header:<NAME>`` (``--link-header``), ``b2b`` (``--b2b-pattern``) and
``five_tuple`` (inferred, below).  The rules are HEP-SPEC 7.3:

* messages that *own* the same value are joined (equal Call-IDs, equal 0x0011 values: SIP
  dialogs, REST and MI request <-> reply by GUID, RTCP/log -> SIP by Call-ID);
* a *reference* (0x0065 values, X-CID, b2b) joins its message to the owners of the value;
  a reference that no other message owns is **dangling**: reported, never joined to
  anything (two references to the same unknown value do not join: OpenSIPS writes
  ``{"net": "0"}`` on relayed INVITEs of unrelated calls);
* **five_tuple** (inferred): in OpenSIPS's default homer5 mode the ``net`` link is not on
  the wire.  A SIP message without a ``net`` key that travelled over a connection-oriented
  transport (ip proto 6, 22, 50, 132) is attached to the connection whose net events (type
  0x59) show the same two endpoints and ip proto, when its time falls within the
  connection's lifetime (first event with addresses .. its ``CLOSED`` event).  Exactly one
  candidate connection is required; otherwise nothing is inferred.  Such edges are marked
  ``inferred``.

Groups are the connected components (union-find): every message is in exactly one group (a
message that links to nothing is a group of its own), and two calls are never merged
unless some id links them.  Memory grows with the number of ids and messages, not payload
bytes: a message is kept as its kind, time and a short label, and each id attachment as
one packed integer.

Use :meth:`CorrelationGraph.add` for each message in input order, then :meth:`groups`,
:meth:`edges`, :meth:`dangling`, :meth:`links` or :meth:`to_dict` (the ``correlate -f
json`` document).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Any

from ..core.record import format_time
from .extract import TCP_FAMILY, Extract, Rules, extract

__all__ = ["CorrelationGraph", "Group", "correlate"]

_SHIFT = 11  # packed attachment: position << 11 | reason code << 1 | is-reference
_MAX_REASONS = 1 << (_SHIFT - 1)
_LOOPBACK_NONE = ("127.0.0.2", 0)  # OpenSIPS: "no socket" (HEP-SPEC 6)


class Group:
    """One connected component: its messages (positions in input order) and summary."""

    __slots__ = ("call_ids", "first", "id", "ids", "kinds", "label", "last", "members")

    def __init__(self, gid: int, members: list[int]) -> None:
        self.id = gid
        self.members = members
        self.label = ""
        self.kinds: dict[str, int] = {}
        self.call_ids: list[str] = []
        self.ids: dict[str, list[str]] = {}
        self.first: int | None = None  # microseconds since the epoch
        self.last: int | None = None

    def __repr__(self) -> str:
        return f"Group({self.id}, {self.label!r}, {len(self.members)} messages)"


def _category(reason: str) -> tuple[str, ...]:
    """Where a value attached with ``reason`` is listed in a group's ids."""
    if reason == "call_id" or reason == "extra:sip":
        return ("call_ids",)
    if reason == "internal":
        return ("internal",)
    if reason == "conn_id":
        return ("internal", "net")
    if reason == "rest_id":
        return ("internal", "rest")
    if reason == "mi_id":
        return ("internal", "mi")
    if reason == "extra:net" or reason == "five_tuple":
        return ("net",)
    return (reason,)


class CorrelationGraph:
    """The graph of one input (see the module docstring)."""

    def __init__(self, rules: Rules | None = None, *, infer: bool = True,
                 keep_links: bool = False) -> None:
        self.rules = rules
        self.infer = infer
        self.keep_links = keep_links
        self._kinds: list[str] = []
        self._ts = array("q")  # microseconds since the epoch; -1: no time (HEPv1)
        self._labels: list[str | None] = []
        self._index: list[int] | None = None  # when input indices differ from positions
        self._att: dict[str, list[int]] = {}
        self._reasons: list[str] = []
        self._rcode: dict[str, int] = {}
        self._links: list[tuple[int, str, str]] = []
        # five_tuple inference
        self._conn_seen: dict[tuple, list[tuple[int, str, int | None]]] = {}
        self._conn_close: dict[str, list[int]] = {}
        self._tcp_sip: list[tuple[int, tuple, int, int | None]] = []
        self._finished: tuple[list[int], list[Group]] | None = None

    # -- building ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._kinds)

    def _code(self, reason: str) -> int:
        c = self._rcode.get(reason)
        if c is None:
            if len(self._reasons) >= _MAX_REASONS - 1:
                # chunk 0x0065 keys are free text: past 1,023 distinct reasons the rest share
                # one ("extra:..." / "header:..." becomes "other"), the links stay
                c = self._rcode.get("other")
                if c is None:
                    c = self._rcode["other"] = len(self._reasons)
                    self._reasons.append("other")
                self._rcode[reason] = c
                return c
            c = self._rcode[reason] = len(self._reasons)
            self._reasons.append(reason)
        return c

    def add(self, m: Any, index: int | None = None) -> int:
        """Add message ``m`` (next in input order); ``index`` is its input index (decode's
        0-based position) when that is not its position here.  Returns its position."""
        return self.add_extract(extract(m, self.rules), m, index)

    def add_extract(self, e: Extract, m: Any, index: int | None = None) -> int:
        """Add a message whose :class:`Extract` is already known."""
        kinds = self._kinds
        pos = len(kinds)
        self._finished = None
        if self._index is not None:
            self._index.append(pos if index is None else index)
        elif index is not None and index != pos:
            self._index = list(range(pos))
            self._index.append(index)
        kind = e.kind
        kinds.append(kind)  # kind and label strings come interned from extract()
        ts = m.ts_sec
        t = -1 if ts is None else ts * 1_000_000 + (m.ts_usec or 0)
        self._ts.append(t)
        self._labels.append(e.label)
        att = self._att
        rcode = self._rcode
        base = pos << _SHIFT
        for value, reason, owns in e.ids:
            c = rcode.get(reason)
            if c is None:
                c = self._code(reason)
            packed = base | (c << 1) | (0 if owns else 1)
            lst = att.get(value)
            if lst is None:
                att[value] = [packed]
            else:
                lst.append(packed)
            if self.keep_links and reason[:6] == "extra:":
                self._links.append((pos, reason[6:], value))
        if self.infer and (kind[:3] == "net" or (
                kind == "sip" and not e.has_net and m.ip_proto in TCP_FAMILY)):
            self._note_connection(pos, e, m, None if t < 0 else t)
        return pos

    def _note_connection(self, pos: int, e: Extract, m: Any, t: int | None) -> None:
        kind = e.kind
        if kind.startswith("net"):
            conn = None
            for value, reason, _owns in e.ids:
                if reason == "conn_id":
                    conn = value
            if conn is None or t is None:
                return
            key = _endpoints(m)
            if key is not None:
                self._conn_seen.setdefault(key, []).append((t, conn, m.ip_proto))
            if e.event == "CLOSED":
                self._conn_close.setdefault(conn, []).append(t)
        elif kind == "sip" and not e.has_net and m.ip_proto in TCP_FAMILY and t is not None:
            key = _endpoints(m)
            if key is not None:
                self._tcp_sip.append((pos, key, t, m.ip_proto))

    def extend(self, messages: Iterable[Any]) -> CorrelationGraph:
        for m in messages:
            self.add(m)
        return self

    # -- inference -----------------------------------------------------------------------
    def _connections(self) -> dict[tuple, list[tuple[int, int | None, str, int | None]]]:
        """endpoints -> [(open, close or None, conn id, ip proto)] sorted by open time."""
        first: dict[tuple[tuple, str], tuple[int, int | None]] = {}
        for key, seen in self._conn_seen.items():
            for t, conn, proto in seen:
                k = (key, conn)
                if k not in first or t < first[k][0]:
                    first[k] = (t, proto)
        out: dict[tuple, list[tuple[int, int | None, str, int | None]]] = {}
        for (key, conn), (opened, proto) in first.items():
            closes = [c for c in self._conn_close.get(conn, ()) if c >= opened]
            out.setdefault(key, []).append((opened, min(closes) if closes else None, conn, proto))
        for lst in out.values():
            lst.sort()
        return out

    def _infer(self) -> list[tuple[int, str]]:
        """(position, connection id) for each SIP message whose connection is inferred."""
        if not self._tcp_sip or not self._conn_seen:
            return []
        conns = self._connections()
        found = []
        for pos, key, t, proto in self._tcp_sip:
            cands = conns.get(key)
            if not cands:
                continue
            hits = [c for o, cl, c, p in cands
                    if o <= t and (cl is None or t <= cl) and p == proto]
            if len(hits) == 1:
                found.append((pos, hits[0]))
        return found

    # -- solving -------------------------------------------------------------------------
    def _solve(self) -> tuple[list[int], list[Group]]:
        if self._finished is not None:
            return self._finished
        n = len(self._kinds)
        if self.infer:
            code = self._code("five_tuple")
            for pos, conn in self._infer():
                packed = (pos << _SHIFT) | (code << 1) | 1
                lst = self._att.setdefault(conn, [])
                if packed not in lst:
                    lst.append(packed)
        # Union-find where a root is always the smallest position of its set, so parent[x]
        # <= x everywhere (path halving keeps that): roots then come out in one forward pass.
        parent = list(range(n))
        for atts in self._att.values():
            anchor = -1
            for a in atts:
                if not a & 1:
                    anchor = a >> _SHIFT
                    break
            if anchor < 0:
                continue
            ra = anchor
            while parent[ra] != ra:
                parent[ra] = parent[parent[ra]]
                ra = parent[ra]
            for a in atts:
                rp = a >> _SHIFT
                if rp == anchor:
                    continue
                while parent[rp] != rp:
                    parent[rp] = parent[parent[rp]]
                    rp = parent[rp]
                if rp != ra:
                    if rp < ra:
                        parent[ra] = rp
                        ra = rp
                    else:
                        parent[rp] = ra
        roots = parent  # reused in place: roots[i] = the smallest position of i's set
        for i in range(n):
            p = parent[i]
            if p != i:
                roots[i] = roots[p]
        members: dict[int, list[int]] = {}
        for i, r in enumerate(roots):
            lst = members.get(r)
            if lst is None:
                members[r] = [i]
            else:
                lst.append(i)
        groups = []
        gid_of_root: dict[int, int] = {}
        for gid, (root, mem) in enumerate(members.items()):  # roots in first-member order
            gid_of_root[root] = gid
            groups.append(Group(gid, mem))
        gids = [gid_of_root[r] for r in roots]
        self._summarise(gids, groups)
        self._finished = (gids, groups)
        return self._finished

    def _summarise(self, gids: list[int], groups: list[Group]) -> None:
        kinds, ts, labels = self._kinds, self._ts, self._labels
        label_pos: dict[int, int] = {}
        for g in groups:
            counts: dict[str, int] = {}
            first = last = None
            best = None  # (rank, position)
            for p in g.members:
                k = kinds[p]
                counts[k] = counts.get(k, 0) + 1
                t = ts[p]
                if t >= 0:
                    if first is None or t < first:
                        first = t
                    if last is None or t > last:
                        last = t
                if labels[p] is not None:
                    rank = _label_rank(k, labels[p])  # type: ignore[arg-type]
                    if best is None or rank < best[0]:
                        best = (rank, p)
            g.kinds = counts
            g.first, g.last = first, last
            label_pos[g.id] = best[1] if best is not None else g.members[0]
        sets: list[dict[str, set[str]]] = [{} for _ in groups]
        label_cid: dict[int, str] = {}
        reasons = self._reasons
        cats = [_category(r) for r in reasons]
        call_code = self._rcode.get("call_id", -1)
        for value, atts in self._att.items():
            owners = None  # computed for values that have references
            for a in atts:
                p = a >> _SHIFT
                if a & 1:
                    if owners is None:
                        owners = {x >> _SHIFT for x in atts if not x & 1}
                    if not owners - {p}:
                        continue  # dangling (see dangling()): reported there, not an id here
                c = (a >> 1) & (_MAX_REASONS - 1)
                g = gids[p]
                s = sets[g]
                for cat in cats[c]:
                    bucket = s.get(cat)
                    if bucket is None:
                        s[cat] = {value}
                    else:
                        bucket.add(value)
                if c == call_code and label_pos[g] == p and g not in label_cid:
                    label_cid[g] = value
        for g in groups:
            s = sets[g.id]
            g.call_ids = sorted(s.pop("call_ids", ()))
            g.ids = {k: sorted(v) for k, v in sorted(s.items())}
            p = label_pos[g.id]
            g.label = _group_label(kinds[p], labels[p], label_cid.get(g.id), g)

    # -- results -------------------------------------------------------------------------
    def index_map(self) -> list[int] | None:
        """Input index per position, or None when every position is its own index."""
        return self._index

    def index(self, pos: int) -> int:
        """The input index of the message at position ``pos``."""
        return pos if self._index is None else self._index[pos]

    def groups(self) -> list[Group]:
        """The groups, ordered by their first message (group ids 0, 1, ...)."""
        return self._solve()[1]

    def group_of(self, pos: int) -> Group:
        gids, groups = self._solve()
        return groups[gids[pos]]

    def groups_with_id(self, value: str) -> list[Group]:
        """The groups that have a message carrying ``value`` (any id, any reason)."""
        gids, groups = self._solve()
        found = sorted({gids[a >> _SHIFT] for a in self._att.get(value, ())})
        return [groups[g] for g in found]

    def kind(self, pos: int) -> str:
        return self._kinds[pos]

    def time(self, pos: int) -> int | None:
        """Microseconds since the epoch, or None (HEPv1)."""
        t = self._ts[pos]
        return None if t < 0 else t

    def label(self, pos: int) -> str | None:
        """SIP method or status, MI command, net event of the message, or None."""
        return self._labels[pos]

    def attachments(self, pos_filter: set[int] | None = None) -> Iterator[tuple[str, int, str, bool]]:
        """(value, position, reason, owns) for every id attachment (of the given messages)."""
        reasons = self._reasons
        for value, atts in self._att.items():
            for a in atts:
                p = a >> _SHIFT
                if pos_filter is None or p in pos_filter:
                    yield value, p, reasons[(a >> 1) & (_MAX_REASONS - 1)], not a & 1

    def edges(self, positions: set[int] | None = None) -> list[tuple[int, int, str, bool]]:
        """Message-to-message edges (from position, to position, reason, inferred), sorted.

        Per value, every other message is linked to the value's first owner (the anchor);
        the anchor's own references go to the next owner.  Enough to explain every group
        without listing all pairs (a call of n messages gives n-1 edges per id, not n^2)."""
        return sorted(self.iter_edges(positions))

    def iter_edges(self, positions: set[int] | None = None
                   ) -> Iterator[tuple[int, int, str, bool]]:
        """:meth:`edges` in graph order (by id value, as first seen), without a list."""
        self._solve()
        reasons = self._reasons
        inferred = self._rcode.get("five_tuple", -1)
        mask = _MAX_REASONS - 1
        for atts in self._att.values():
            owners = [a >> _SHIFT for a in atts if not a & 1]
            if not owners:
                continue
            anchor = owners[0]
            if positions is not None and anchor not in positions:
                continue
            alt = next((o for o in owners if o != anchor), None)
            seen = set()
            for a in atts:
                p = a >> _SHIFT
                c = (a >> 1) & mask
                if p == anchor:
                    if not a & 1 or alt is None:
                        continue
                    to = alt
                else:
                    to = anchor
                k = (p, to, c)
                if k in seen:
                    continue
                seen.add(k)
                yield p, to, reasons[c], c == inferred

    def dangling(self) -> list[tuple[int, str, str]]:
        """(position, reason, value) of every reference that no other message owns."""
        self._solve()
        reasons = self._reasons
        mask = _MAX_REASONS - 1
        out = []
        for value, atts in self._att.items():
            owners = {a >> _SHIFT for a in atts if not a & 1}
            for a in atts:
                if a & 1:
                    p = a >> _SHIFT
                    if not owners - {p}:
                        out.append((p, reasons[(a >> 1) & mask], value))
        out.sort(key=lambda d: d[0])
        return out

    def links(self) -> list[dict[str, Any]]:
        """Every chunk-0x0065 key/value (needs ``keep_links=True``), in input order, with the
        messages owning the value: ``{"from", "via", "value", "to": [index...]}``
        (``to == []``: dangling).  The shape of the OpenSIPS truth file's links."""
        self._solve()
        out = []
        for p, key, value in self._links:
            owners = sorted({self.index(a >> _SHIFT) for a in self._att.get(value, ())
                             if not a & 1 and a >> _SHIFT != p})
            out.append({"from": self.index(p), "via": key, "value": value, "to": owners})
        return out

    def group_dict(self, g: Group) -> dict[str, Any]:
        """One group of the ``correlate -f json`` document."""
        ix = self.index
        return {
            "id": g.id,
            "label": g.label,
            "packets": [ix(p) for p in g.members] if self._index is not None else g.members,
            "call_ids": g.call_ids,
            "ids": g.ids,
            "kinds": g.kinds,
            "first": _iso(g.first),
            "last": _iso(g.last),
        }

    def to_dict(self, groups: Iterable[Group] | None = None) -> dict[str, Any]:
        """The ``heptool correlate -f json`` document (of the given groups, or all)::

            {"groups": [{"id", "label", "packets", "call_ids", "ids", "kinds", "first",
                         "last"}],
             "edges": [{"from", "to", "via"[, "inferred": true]}],   # by id, as first seen
             "dangling": [{"from", "via", "value"}]}

        ``packets``, ``from`` and ``to`` are input indices (decode's 0-based positions)."""
        every = self.groups()
        chosen = every if groups is None else list(groups)
        positions: set[int] | None = None
        if groups is not None:
            positions = {p for g in chosen for p in g.members}
        ix = self.index
        out_groups = [self.group_dict(g) for g in chosen]
        edges = []
        for a, b, via, inferred in self.iter_edges(positions):
            e: dict[str, Any] = {"from": ix(a), "to": ix(b), "via": via}
            if inferred:
                e["inferred"] = True
            edges.append(e)
        dangling = [{"from": ix(p), "via": via, "value": v} for p, via, v in self.dangling()
                    if positions is None or p in positions]
        return {"groups": out_groups, "edges": edges, "dangling": dangling}


def _iso(us: int | None) -> str | None:
    if us is None:
        return None
    return format_time(us // 1_000_000, us % 1_000_000)


def _endpoints(m: Any) -> tuple | None:
    a = (m.src_ip, m.src_port)
    b = (m.dst_ip, m.dst_port)
    if a[0] is None or b[0] is None or not a[1] or not b[1]:
        return None
    if a == _LOOPBACK_NONE or b == _LOOPBACK_NONE:
        return None
    return (a, b) if a <= b else (b, a)


def _label_rank(kind: str, label: str) -> int:
    if kind == "sip":
        return 0 if not label[:1].isdigit() else 1
    if kind == "mi_request":
        return 2
    return 3


def _group_label(kind: str, label: str | None, call_id: str | None, g: Group) -> str:
    if kind == "sip":
        what = f"SIP {label}" if label else "SIP"
        cid = call_id or (g.call_ids[0] if g.call_ids else None)
        return f"{what}, Call-ID {cid}" if cid else what
    if kind == "mi_request" and label:
        return label
    text = kind if not label else f"{kind} {label}"
    some = g.call_ids or [v for vs in g.ids.values() for v in vs]
    return f"{text}, id {some[0]}" if some else text


def correlate(messages: Iterable[Any], rules: Rules | None = None, *,
              infer: bool = True) -> CorrelationGraph:
    """The graph of ``messages`` (in input order)."""
    return CorrelationGraph(rules, infer=infer).extend(messages)
