"""Renderings of a correlation graph (``heptool correlate``): a text tree per group, Graphviz
dot and Mermaid.

The JSON document is :meth:`heptool.analysis.correlate.CorrelationGraph.to_dict`; this module
draws the same facts for people.  The tree is plain text lines (:mod:`heptool.output.text`:
wrapped at spaces only, never an address, a port or an id cut; colours as plain ANSI when
asked for), its times marked UTC or the ``--localtime`` zone.  Every payload-derived text
goes through :func:`heptool.sip.summary.printable`, so a Call-ID cannot style or rewrite
the terminal; dot and Mermaid labels are escaped for their own syntax.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from heptool.analysis.correlate import CorrelationGraph, Group
from heptool.sip.summary import printable

from .text import paint, wrap
from .timefmt import clock, zone_label

__all__ = ["render_dot", "render_mermaid", "render_tree", "span_text", "write_json"]

#: At most this many edges per group in the tree (all of them are in -f json).
TREE_EDGES = 40
#: At most this many ids per line of the tree (all of them are in -f json).
TREE_VALUES = 20
_KIND_STYLE = {"sip": "cyan", "xlog": "yellow", "log": "yellow", "rtcp": "magenta",
               "control": "green"}


def write_json(graph: CorrelationGraph, groups: list[Group] | None, out: Any) -> None:
    """The ``correlate -f json`` document (:meth:`CorrelationGraph.to_dict`, byte for byte the
    same JSON) written to the binary stream ``out`` piece by piece: the edges, the biggest
    part, are formatted straight to bytes instead of one dict each."""
    from .jsonl import dumps

    chosen = graph.groups() if groups is None else groups
    positions = None if groups is None else {p for g in chosen for p in g.members}
    ix = graph.index
    write = out.write
    write(b'{"groups":[')
    buf: list[bytes] = []  # pieces joined into one write call (stdout may be unbuffered)
    for n, g in enumerate(chosen):
        if n:
            buf.append(b",")
        buf.append(dumps(graph.group_dict(g))[:-1])
        if len(buf) >= 1024:
            write(b"".join(buf))
            buf.clear()
    write(b"".join(buf))
    buf.clear()
    write(b'],"edges":[')
    # one formatted piece per edge, the "via" part ready-made per reason, joined by commas
    vias: dict[tuple[str, bool], bytes] = {}
    index = graph.index_map()
    append = buf.append
    sep = b""
    for a, b, via, inferred in graph.iter_edges(positions):
        v = vias.get((via, inferred))
        if v is None:
            v = vias[(via, inferred)] = b',"via":' + dumps(via)[:-1] + (
                b',"inferred":true}' if inferred else b"}")
        if index is not None:
            a = index[a]
            b = index[b]
        append(b'{"from":%d,"to":%d%s' % (a, b, v))
        if len(buf) >= 8192:
            write(sep + b",".join(buf))
            sep = b","
            buf.clear()
    if buf:
        write(sep + b",".join(buf))
        buf.clear()
    write(b'],"dangling":[')
    items = [dumps({"from": ix(p), "via": via, "value": v})[:-1]
             for p, via, v in graph.dangling() if positions is None or p in positions]
    write(b",".join(items))
    write(b"]}\n")


def span_text(g: Group, *, local: bool = False) -> str:
    """When a group's messages were captured, its zone said:
    ``09:53:13.745152 .. 09:53:14.912000 UTC (1.167 s)`` (``--localtime``: ``UTC+01:00``)."""
    if g.first is None:
        return "no time"
    zone = zone_label(local, g.first)
    if g.first == g.last or g.last is None:
        return f"{clock(g.first, local=local)} {zone}"
    return (f"{clock(g.first, local=local)} .. {clock(g.last, local=local)} {zone} "
            f"({(g.last - g.first) / 1e6:.3f} s)")


def _msg_text(graph: CorrelationGraph, pos: int) -> str:
    label = graph.label(pos)
    return f"#{graph.index(pos)} {graph.kind(pos)}" + (f" {label}" if label else "")


def _values(values: list[str]) -> str:
    """Ids joined with ", ", at most :data:`TREE_VALUES` of them (never one cut)."""
    text = ", ".join(values[:TREE_VALUES])
    if len(values) > TREE_VALUES:
        text += f" ... ({len(values) - TREE_VALUES} more, see -f json)"
    return printable(text)


class _Tree:
    """Plain-text tree lines (rich's guides), each node's text wrapped at spaces to the width
    under its own start (never a word cut: a line is longer than the width rather)."""

    def __init__(self, width: int | None, color: bool) -> None:
        self.width = width
        self.color = color
        self.lines: list[str] = []

    def node(self, prefix: str, last: bool | None, text: str, style: str | None = None,
             styled: str | None = None) -> str:
        """Add a node (``last`` None: the root) and return the prefix of its children.
        ``styled``: ``text`` with colours of its own, shown when it fits on one line."""
        if last is None:
            first, cont, child = "", "  ", ""
        else:
            first = prefix + ("└── " if last else "├── ")
            cont = child = prefix + ("    " if last else "│   ")
        width = self.width
        if self.color and styled is not None and (width is None or
                                                  len(first) + len(text) <= width):
            self.lines.append(first + styled)
            return child
        parts = wrap(text, None if width is None else max(width - len(first), 20),
                     None if width is None else max(width - len(cont), 20))
        self.lines.append(first + paint(parts[0], style, self.color))
        self.lines.extend(cont + paint(part, style, self.color) for part in parts[1:])
        return child


def render_tree(graph: CorrelationGraph, groups: Iterable[Group], out: Any, *,
                width: int | None = None, color: bool = False, local: bool = False,
                max_edges: int = TREE_EDGES) -> None:
    """One tree per group, as plain text lines to the text stream ``out``: label, time span
    (its zone said), counts per kind, ids, messages, edges, dangling. ``width`` None: no
    limit (lines as long as their contents); else each text wraps at spaces, and nothing
    (an address, a port, an id) is ever cut. ``color``: ANSI colours."""
    chosen = list(groups)
    positions = {p for g in chosen for p in g.members}
    edges_by_group: dict[int, list[tuple[int, int, str, bool]]] = {}
    for e in graph.edges(positions):
        edges_by_group.setdefault(graph.group_of(e[0]).id, []).append(e)
    dangling_by_group: dict[int, list[tuple[int, str, str]]] = {}
    for d in graph.dangling():
        if d[0] in positions:
            dangling_by_group.setdefault(graph.group_of(d[0]).id, []).append(d)
    for g in chosen:
        t = _Tree(width, color)
        n = len(g.members)
        label = printable(g.label)
        count = f"{n} message{'s' if n != 1 else ''}, {span_text(g, local=local)}"
        t.node("", None, f"group {g.id}  {label}  {count}", "bold",
               paint(f"group {g.id}", "bold", color) + "  " + paint(label, "bold cyan", color)
               + "  " + paint(count, "dim", color))
        merged: dict[tuple[int, int], list[tuple[str, bool]]] = {}
        for a, b, via, inferred in edges_by_group.get(g.id, []):
            merged.setdefault((a, b), []).append((via, inferred))
        dangling = dangling_by_group.get(g.id, [])
        kinds = sorted(g.kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        t.node("", False, "kinds: " + ", ".join(f"{k} {c}" for k, c in kinds), None,
               "kinds: " + ", ".join(paint(k, _KIND_STYLE.get(k.split("_")[0], "blue"), color)
                                     + f" {c}" for k, c in kinds))
        ids = t.node("", False, "ids")
        rows = []
        if g.call_ids:
            rows.append(f"call_id: {_values(g.call_ids)}")
        rows.extend(f"{cat}: {_values(values)}" for cat, values in g.ids.items())
        for i, row in enumerate(rows):
            t.node(ids, i == len(rows) - 1, row)
        members = " ".join(str(graph.index(p)) for p in g.members[:60])
        if n > 60:
            members += f" ... ({n - 60} more)"
        t.node("", not merged and not dangling, f"messages: {members}", "dim")
        if merged:
            branch = t.node("", not dangling, f"edges ({len(merged)})")
            shown = list(merged.items())[:max_edges]
            more = len(merged) > max_edges
            for i, ((a, b), vias) in enumerate(shown):
                ends = f"{printable(_msg_text(graph, a))} -> {printable(_msg_text(graph, b))}  "
                text = ends + ", ".join(via + (" (inferred)" if inferred else "")
                                        for via, inferred in vias)
                styled = ends + ", ".join(
                    paint(via, "yellow" if inferred else "magenta", color)
                    + (paint(" (inferred)", "yellow", color) if inferred else "")
                    for via, inferred in vias)
                t.node(branch, i == len(shown) - 1 and not more, text, None, styled)
            if more:
                t.node(branch, True, f"... {len(merged) - max_edges} more (see -f json)", "dim")
        for i, (p, via, value) in enumerate(dangling):
            t.node("", i == len(dangling) - 1,
                   f"dangling: #{graph.index(p)} {via} {printable(value)} (matches nothing)",
                   "red")
        t.lines.append("")
        out.write("\n".join(t.lines))


# ---------------------------------------------------------------------------------------
# dot and mermaid: the id graph (messages and ids as nodes)
# ---------------------------------------------------------------------------------------

def _id_graph(graph: CorrelationGraph, groups: list[Group]):
    """(per group: message positions, value -> node number), attachments, dangling set."""
    positions = {p for g in groups for p in g.members}
    values: dict[str, int] = {}
    atts = []
    for value, pos, reason, owns in graph.attachments(positions):
        vid = values.setdefault(value, len(values))
        atts.append((pos, vid, reason, owns))
    dangling = {(p, via, v) for p, via, v in graph.dangling() if p in positions}
    return values, atts, dangling


def _dot_str(text: str) -> str:
    text = printable(text, 120)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(graph: CorrelationGraph, groups: Iterable[Group]) -> str:
    """Graphviz dot (undirected): a cluster per group, boxes for messages, ellipses for ids
    (red when dangling), edges labelled with the reason (dashed when inferred)."""
    chosen = list(groups)
    values, atts, dangling = _id_graph(graph, chosen)
    group_of_value: dict[int, int] = {}
    pos_group = {p: g.id for g in chosen for p in g.members}
    for pos, vid, _r, _o in atts:
        group_of_value.setdefault(vid, pos_group[pos])
    dangling_values = {v for _p, _via, v in dangling}
    names = {vid: value for value, vid in values.items()}
    out = ["graph heptool {", "  rankdir=LR;", '  node [fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']
    for g in chosen:
        out.append(f"  subgraph cluster_{g.id} {{")
        out.append(f"    label={_dot_str(f'group {g.id}: {g.label}')};")
        for p in g.members:
            out.append(f"    m{graph.index(p)} [shape=box, label={_dot_str(_msg_text(graph, p))}];")
        for vid, gid in group_of_value.items():
            if gid == g.id:
                value = names[vid]
                color = ", color=red, fontcolor=red" if value in dangling_values else ""
                out.append(f"    v{vid} [shape=ellipse, label={_dot_str(value)}{color}];")
        out.append("  }")
    for pos, vid, reason, owns in atts:
        style = "" if owns else ", style=dashed" if reason == "five_tuple" else ", style=bold"
        out.append(f"  m{graph.index(pos)} -- v{vid} [label={_dot_str(reason)}{style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _mm_str(text: str) -> str:
    text = printable(text, 120)
    for ch, ent in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(ch, ent)
    return '"' + text + '"'


def render_mermaid(graph: CorrelationGraph, groups: Iterable[Group]) -> str:
    """Mermaid flowchart: a subgraph per group, messages as boxes, ids as rounded nodes,
    links labelled with the reason (dotted when inferred); dangling ids styled red."""
    chosen = list(groups)
    values, atts, dangling = _id_graph(graph, chosen)
    pos_group = {p: g.id for g in chosen for p in g.members}
    group_of_value: dict[int, int] = {}
    for pos, vid, _r, _o in atts:
        group_of_value.setdefault(vid, pos_group[pos])
    names = {vid: value for value, vid in values.items()}
    dangling_values = {v for _p, _via, v in dangling}
    out = ["flowchart LR"]
    for g in chosen:
        out.append(f"  subgraph g{g.id}[{_mm_str(f'group {g.id}: {g.label}')}]")
        for p in g.members:
            out.append(f"    m{graph.index(p)}[{_mm_str(_msg_text(graph, p))}]")
        for vid, gid in group_of_value.items():
            if gid == g.id:
                out.append(f"    v{vid}([{_mm_str(names[vid])}])")
        out.append("  end")
    for pos, vid, reason, _owns in atts:
        arrow = f"-. {_mm_str(reason)} .-" if reason == "five_tuple" else f"-- {_mm_str(reason)} ---"
        out.append(f"  m{graph.index(pos)} {arrow} v{vid}")
    bad = [f"v{vid}" for vid, value in names.items() if value in dangling_values]
    if bad:
        out.append("  classDef dangling stroke:#d00,color:#d00")
        out.append(f"  class {','.join(bad)} dangling")
    return "\n".join(out) + "\n"
