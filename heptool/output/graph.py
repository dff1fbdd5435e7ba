"""Renderings of a correlation graph (``heptool correlate``): a rich tree per group, Graphviz
dot and Mermaid.

The JSON document is :meth:`heptool.analysis.correlate.CorrelationGraph.to_dict`; this module
draws the same facts for people.  Every payload-derived text goes through
:func:`heptool.sip.summary.printable` (rich ``Text``, never markup), so a Call-ID cannot style
or rewrite the terminal; dot and Mermaid labels are escaped for their own syntax.
rich is imported inside the functions that use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from heptool.analysis.correlate import CorrelationGraph, Group
from heptool.sip.summary import printable

from ..core.record import format_time

__all__ = ["render_dot", "render_mermaid", "render_tree", "span_text", "write_json"]

#: At most this many edges per group in the tree (all of them are in -f json).
TREE_EDGES = 40
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


def _hms(us: int | None) -> str:
    if us is None:
        return "-"
    t = format_time(us // 1_000_000, us % 1_000_000) or "-"
    return t[11:-1]


def span_text(g: Group) -> str:
    """``09:53:13.745152 .. 09:53:14.912000 (1.167 s)``"""
    if g.first is None:
        return "no time"
    if g.first == g.last or g.last is None:
        return _hms(g.first)
    return f"{_hms(g.first)} .. {_hms(g.last)} ({(g.last - g.first) / 1e6:.3f} s)"


def _msg_text(graph: CorrelationGraph, pos: int) -> str:
    label = graph.label(pos)
    return f"#{graph.index(pos)} {graph.kind(pos)}" + (f" {label}" if label else "")


def render_tree(graph: CorrelationGraph, groups: Iterable[Group], console: Any,
                *, max_edges: int = TREE_EDGES) -> None:
    """One rich Tree per group: label, time span, counts per kind, ids, edges, dangling."""
    from rich.text import Text
    from rich.tree import Tree

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
        n = len(g.members)
        head = Text()
        head.append(f"group {g.id}", style="bold")
        head.append("  ")
        head.append(printable(g.label, 200), style="bold cyan")
        head.append(f"  {n} message{'s' if n != 1 else ''}, {span_text(g)}", style="dim")
        tree = Tree(head)
        kinds = Text()
        for i, (k, c) in enumerate(sorted(g.kinds.items(), key=lambda kv: (-kv[1], kv[0]))):
            if i:
                kinds.append(", ")
            kinds.append(k, style=_KIND_STYLE.get(k.split("_")[0], "blue"))
            kinds.append(f" {c}")
        tree.add(Text("kinds: ").append_text(kinds))
        ids = tree.add(Text("ids"))
        if g.call_ids:
            ids.add(Text(f"call_id: {printable(', '.join(g.call_ids), 400)}"))
        for cat, values in g.ids.items():
            ids.add(Text(f"{cat}: {printable(', '.join(values), 400)}"))
        members = " ".join(str(graph.index(p)) for p in g.members[:60])
        if n > 60:
            members += f" ... ({n - 60} more)"
        tree.add(Text(f"messages: {members}", style="dim"))
        merged: dict[tuple[int, int], list[tuple[str, bool]]] = {}
        for a, b, via, inferred in edges_by_group.get(g.id, []):
            merged.setdefault((a, b), []).append((via, inferred))
        if merged:
            branch = tree.add(Text(f"edges ({len(merged)})"))
            for (a, b), vias in list(merged.items())[:max_edges]:
                t = Text(f"{printable(_msg_text(graph, a), 80)} -> "
                         f"{printable(_msg_text(graph, b), 80)}  ")
                for i, (via, inferred) in enumerate(vias):
                    if i:
                        t.append(", ")
                    t.append(via, style="magenta" if not inferred else "yellow")
                    if inferred:
                        t.append(" (inferred)", style="yellow")
                branch.add(t)
            if len(merged) > max_edges:
                branch.add(Text(f"... {len(merged) - max_edges} more (see -f json)",
                                style="dim"))
        for p, via, value in dangling_by_group.get(g.id, []):
            tree.add(Text(f"dangling: #{graph.index(p)} {via} {printable(value, 200)} "
                          "(matches nothing)", style="red"))
        console.print(tree)


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
