"""The call list (:mod:`heptool.analysis.calls`) as text and JSON Lines.

:func:`render_calls_table`: plain aligned text, one line per call, like sngrep's dialog list
(``correlate -f calls``).  Clock times are UTC unless ``local``; the header says which.
Values are never cut: outside a terminal (``width`` None) every column is as wide as its
longest value; on a terminal narrower than the table, whole columns are left out (KINDS,
then LINKED, DURATION, MSGS), never part of a value.  Payload-derived text is escaped for
the terminal (:func:`heptool.sip.summary.printable`).

:func:`write_calls_jsonl`: one JSON object per call, the summaries as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

from heptool.sip.summary import printable

from .jsonl import dumps
from .timefmt import clock_of_record, zone_label

__all__ = ["render_calls_table", "write_calls_jsonl"]

#: columns left out first when the table is wider than the terminal
_OPTIONAL = ("KINDS", "LINKED", "DURATION", "MSGS")


def write_calls_jsonl(calls: Sequence[dict[str, Any]], out: IO[bytes]) -> None:
    for call in calls:
        out.write(dumps(call))


def _kinds(messages: dict[str, int]) -> str:
    return " ".join(f"{k}={n}" for k, n in messages.items())


def render_calls_table(calls: Sequence[dict[str, Any]], out: IO[str], *,
                       width: int | None = None, local: bool = False) -> None:
    """The table (module docstring) on a text stream."""
    first = next((c["start"] for c in calls if c["start"]), None)
    at = None
    if first is not None and local:
        from datetime import datetime

        at = int(datetime.fromisoformat(first.replace("Z", "+00:00")).timestamp() * 1e6)
    start = f"START ({zone_label(local, at)})"
    head = ["GROUP", start, "DURATION", "REQUEST", "STATUS", "FROM", "TO", "MSGS",
            "LINKED", "CALL-ID", "KINDS"]
    rows = []
    for c in calls:
        status = "-" if c["status"] is None else (
            f"{c['status']} {c['reason']}" if c["reason"] else str(c["status"]))
        rows.append([
            str(c["group"]),
            clock_of_record(c["start"], local=local),
            "-" if c["duration"] is None else f"{c['duration']:.3f}s",
            printable(c["request"] or "-"),
            printable(status),
            printable(c["from"] or "-"),
            printable(c["to"] or "-"),
            str(sum(c["messages"].values())),
            ",".join(c["linked"]) or "-",
            printable(",".join(c["call_ids"]) or "-"),
            printable(_kinds(c["messages"])),
        ])
    keep = list(range(len(head)))
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i])
              for i in range(len(head))]

    def total() -> int:
        return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)

    if width is not None:
        for name in _OPTIONAL:
            if total() <= width:
                break
            keep.remove(head.index(name))
    right = {0, 2, 7}  # numbers
    for r in [head, *rows]:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in keep]
        out.write("  ".join(cells).rstrip() + "\n")
