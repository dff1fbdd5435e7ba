"""The call flow (:mod:`heptool.output.flow`) as self-contained SVG and HTML files.

Hand-written SVG, no dependency and no external resource (no font, script or style is
fetched: the page works offline and from ``file://``).  The HTML page has the title once,
the ladder (each row a link to its message), then a table of every message: index, time
and delta in their own columns, kind, from, to and the message's summary (with ``(SDP)`` on
SIP messages that carry one); a click on a row shows the whole message under it
(``<details>``).  Everything from a payload is XML-escaped.
"""

from __future__ import annotations

from html import escape

from heptool.sip.summary import printable

from .flow import Flow, family, row_endpoints
from .timefmt import clock, zone_label

__all__ = ["render_html", "render_svg"]

_KIND_COLOR = {"sip": "#0b6e99", "xlog": "#9a6700", "log": "#9a6700", "rest": "#1f4fbf",
               "net": "#1a7f37", "mi": "#8250df", "control": "#57606a", "rtcp": "#bf3989",
               "qos": "#bf3989"}
_ROW_H = 24
_COL_W = 190
_LEFT = 190
_TOP = 56


def _x(text: str, limit: int | None = 300) -> str:
    return escape(printable(text, limit), quote=True)


def _delta(us: int | None) -> str:
    return "" if us is None else f"+{us / 1e6:.6f}"


def _label(row: object) -> str:
    text, marker = row.text, row.marker  # type: ignore[attr-defined]
    return f"{text} {marker}" if marker else text


def render_svg(flow: Flow, *, local: bool = False, title: bool = True) -> str:
    """A standalone SVG document of the ladder (opens in any browser).  ``title``: draw the
    title (the HTML page has its own); each row links to ``#m<index>`` (the page's table)."""
    ncol = max(1, len(flow.columns))
    width = _LEFT + ncol * _COL_W + 40
    texts = {}
    for row in flow.rows:  # room for the longest marked row (monospace 12 px: ~7.3 px/char)
        if not row.arrow:
            ends = row_endpoints(row)
            texts[id(row)] = f"{ends}  {row.text}" if ends else row.text
            col = row.src if row.src is not None else row.dst
            x = (_LEFT + col * _COL_W + _COL_W // 2 + 10) if col is not None else _LEFT + 10
            width = max(width, int(x + 7.3 * (len(printable(texts[id(row)], 300))
                                              + len(row.kind) + 3)) + 20)
    width = max(width, int(10 + 8.5 * len(printable(flow.title, 300))))
    top = _TOP if title else _TOP - 24
    height = top + (len(flow.rows) + 1) * _ROW_H + 20
    cx = [_LEFT + c * _COL_W + _COL_W // 2 for c in range(ncol)]
    first = next((r.time for r in flow.rows if r.time is not None), None)
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">'),
        f"<title>{_x(flow.title)}</title>",
        "<defs>",
    ]
    for fam, color in _KIND_COLOR.items():
        out.append(f'<marker id="arrow-{fam}" viewBox="0 0 10 10" refX="10" refY="5" '
                   f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    out.append('<rect width="100%" height="100%" fill="#ffffff"/>')
    if title:
        out.append(f'<text x="10" y="20" font-size="14" font-weight="bold">{_x(flow.title)}'
                   "</text>")
    out.append(f'<text x="10" y="{top - 10}" fill="#57606a">time {zone_label(local, first)}'
               "</text>")
    bottom = height - 10
    for c, label in enumerate(flow.columns):
        x = cx[c]
        out.append(f'<rect x="{x - _COL_W // 2 + 8}" y="{top - 24}" width="{_COL_W - 16}" '
                   f'height="20" rx="4" fill="#f6f8fa" stroke="#8c959f"/>')
        out.append(f'<text x="{x}" y="{top - 10}" text-anchor="middle" '
                   f'font-weight="bold">{_x(label, None)}</text>')
        out.append(f'<line x1="{x}" y1="{top - 4}" x2="{x}" y2="{bottom}" stroke="#d0d7de" '
                   f'stroke-dasharray="4,3"/>')
    for n, row in enumerate(flow.rows):
        y = top + (n + 1) * _ROW_H
        fam = family(row.kind)
        color = _KIND_COLOR.get(fam, "#24292f")
        out.append(f'<a href="#m{row.index}"><g class="row {escape(fam)}" '
                   f'data-index="{row.index}">')
        out.append(f'<text x="10" y="{y + 4}" fill="#57606a">{clock(row.time, local=local)}'
                   "</text>")
        out.append(f'<text x="{_LEFT - 8}" y="{y + 4}" text-anchor="end" fill="#8c959f">'
                   f"{_delta(row.delta)}</text>")
        if row.arrow and row.src is not None and row.dst is not None:
            a, b = cx[row.src], cx[row.dst]
            if a == b:
                out.append(f'<path d="M{a},{y - 6} h30 v10 h-30" fill="none" stroke="{color}" '
                           f'marker-end="url(#arrow-{fam if fam in _KIND_COLOR else "sip"})"/>')
                out.append(f'<text x="{a + 36}" y="{y + 2}" fill="{color}">'
                           f"{_x(_label(row))}</text>")
            else:
                out.append(f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{color}" '
                           f'stroke-width="1.5" marker-end="url(#arrow-sip)"/>')
                out.append(f'<text x="{(a + b) // 2}" y="{y - 4}" text-anchor="middle" '
                           f'fill="{color}">{_x(_label(row))}</text>')
        else:
            col = row.src if row.src is not None else row.dst
            x = cx[col] + 6 if col is not None else _LEFT + 12
            tag = f"[{row.kind}]"
            out.append(f'<circle cx="{x - 6}" cy="{y}" r="3" fill="{color}"/>')
            out.append(f'<text x="{x + 4}" y="{y + 4}" fill="{color}">'
                       f'<tspan font-weight="bold">{_x(tag)}</tspan> {_x(texts[id(row)])}</text>')
        out.append("</g></a>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
    "font-family:monospace;font-size:12px}td,th{border-bottom:1px solid #d0d7de;"
    "padding:2px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}"
    "summary{cursor:pointer}pre{margin:4px 0;padding:6px;background:#f6f8fa;"
    "white-space:pre-wrap;word-break:break-all}tr:target{background:#fff8c5}"
    ".ladder a{text-decoration:none}"
    + "".join(f"tr.{k} td:nth-child(4){{color:{c}}}" for k, c in _KIND_COLOR.items()))

# a click anywhere on a row (not only on its summary) opens or closes its message; a link
# from the ladder (#m<index>) opens the row it points at
_SCRIPT = """\
document.querySelectorAll("tr.msg").forEach(function (tr) {
  tr.addEventListener("click", function (ev) {
    if (ev.target.closest("summary, pre")) { return; }
    var d = tr.querySelector("details");
    d.open = !d.open;
  });
});
function openTarget() {
  var id = decodeURIComponent(location.hash.slice(1));
  var tr = id ? document.getElementById(id) : null;
  if (tr) { tr.querySelector("details").open = true; }
}
window.addEventListener("hashchange", openTarget);
openTarget();
"""


def render_html(flow: Flow, *, local: bool = False) -> str:
    """A standalone HTML page: the title, the SVG ladder, then a table of every row whose
    whole message opens on a click."""
    rows = []
    for row in flow.rows:
        body = "\n".join(_x((line.removesuffix("\r")).expandtabs(4), None)
                         for line in row.body.split("\n"))
        rows.append(
            f'<tr class="msg {escape(family(row.kind))}" id="m{row.index}">'
            f"<td>{row.index}</td><td>{clock(row.time, local=local)}</td>"
            f"<td>{_delta(row.delta)}</td><td>{escape(row.kind)}</td>"
            f"<td>{_x(row.src_name or '', None)}</td><td>{_x(row.dst_name or '', None)}</td>"
            f"<td><details><summary>{_x(_label(row))}</summary>"
            f"<pre>{body}</pre></details></td></tr>")
    first = next((r.time for r in flow.rows if r.time is not None), None)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_x(flow.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_x(flow.title)}</h1>\n<div class=\"ladder\">\n"
        f"{render_svg(flow, local=local, title=False)}</div>\n"
        "<p>Click a row to see its whole message.</p>\n"
        "<table>\n<thead><tr><th>#</th>"
        f"<th>time ({zone_label(local, first)})</th><th>delta</th><th>kind</th><th>from</th>"
        "<th>to</th><th>message</th></tr></thead>\n<tbody>\n" + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
        f"<script>\n{_SCRIPT}</script>\n"
        "<p>Made by heptool flow.</p>\n</body>\n</html>\n")
