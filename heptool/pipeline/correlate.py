"""The correlation run shared by ``heptool correlate`` and ``heptool flow``: every message a
:class:`~heptool.pipeline.reader.MessageReader` gives, in one graph."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["build_graph", "select_groups"]


def build_graph(reader: Iterable[Any], rules: Any, *, infer: bool, match: Any = None,
                keep: Callable[[int, Any], None] | None = None) -> tuple[Any, list[int]]:
    """(the graph of every message the reader yields, positions of the messages ``match``
    selects).  ``keep(position, message)`` is called for each message when given."""
    from heptool.analysis.correlate import CorrelationGraph
    from heptool.analysis.extract import extract
    from heptool.pipeline.reader import timed

    graph = CorrelationGraph(rules, infer=infer)
    add = graph.add_extract
    matched: list[int] = []
    # The graph is made of many small acyclic objects that live to the end: the cyclic
    # garbage collector would scan them again and again for nothing (~20 % of the run).
    enabled = gc.isenabled()
    gc.disable()
    try:
        for item in reader:
            m = item.message
            pos = add(extract(m, rules), m, item.index)
            if match is not None and match(m if m.ts_sec is not None else timed(m, item.packet)):
                matched.append(pos)
            if keep is not None:
                keep(pos, m)
        graph.groups()
    finally:
        if enabled:
            gc.enable()
    return graph, matched


def select_groups(graph: Any, match: Any, matched: list[int], group_ids: tuple[int, ...]) -> list:
    """The groups to show: those with a ``matched`` message (when filtering), and of those
    the ids in ``group_ids`` (when given)."""
    groups = graph.groups()
    if match is not None:
        wanted = sorted({graph.group_of(p).id for p in matched})
        groups = [groups[i] for i in wanted]
    if group_ids:
        ids = set(group_ids)
        groups = [g for g in groups if g.id in ids]
    return groups
