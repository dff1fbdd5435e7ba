"""The call flow of one correlation group as a ladder: rich text, SVG and HTML.

One column per endpoint (``address:port``, or a name: ``--alias`` or the capture agent's
node name), SIP messages as arrows labelled with their method or status, and every other
kind of message (xlog and log lines, REST queries and replies, connection events, MI
commands and replies, correlate() packets, RTCP and QoS reports) as a marked row in time
order; each row has its time and the delta from the row before.

:func:`build_flow` makes the model (pure); :func:`render_text` draws it with rich,
:func:`render_svg` and :func:`render_html` write self-contained files (hand-written SVG,
no dependency).  Payload-derived text goes through :func:`heptool.sip.summary.printable`
(terminal) and is XML-escaped (SVG/HTML).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from heptool.analysis.extract import KINDS
from heptool.sip.summary import printable, summary

from ..core.record import format_time

__all__ = ["HIDE_KINDS", "Flow", "FlowRow", "build_flow", "hidden", "render_html", "render_svg",
           "render_text", "unknown_kinds"]

_KIND_STYLE = {"sip": "cyan", "xlog": "yellow", "log": "yellow", "rest": "blue", "net": "green",
               "mi": "magenta", "control": "bright_black", "rtcp": "bright_magenta",
               "qos": "bright_magenta"}
_KIND_COLOR = {"sip": "#0b6e99", "xlog": "#9a6700", "log": "#9a6700", "rest": "#1f4fbf",
               "net": "#1a7f37", "mi": "#8250df", "control": "#57606a", "rtcp": "#bf3989",
               "qos": "#bf3989"}


def family(kind: str) -> str:
    """``rest_request`` -> ``rest``, ``net_tls`` -> ``net``, ``xlog`` -> ``xlog``."""
    return kind.split("_", 1)[0]


def hidden(kind: str, hide: Iterable[str]) -> bool:
    """Whether ``--hide`` hides this kind: a kind (``rest_reply``), a family (``rest``,
    ``net``, ``mi``) or ``log`` (xlog and log lines)."""
    fam = family(kind)
    for h in hide:
        h = h.strip().lower()
        if h in (kind, fam) or (h == "log" and fam in ("xlog", "log")):
            return True
    return False


#: What ``--hide`` knows: every kind, every family (``rest``, ``net``) and ``log``.
HIDE_KINDS = frozenset(KINDS | {family(k) for k in KINDS} | {"log"})


def unknown_kinds(hide: Iterable[str]) -> list[str]:
    """The ``--hide`` entries that name no kind (numbers, unregistered types, are kinds)."""
    return [h.strip() for h in hide
            if h.strip() and not h.strip().isdigit() and h.strip().lower() not in HIDE_KINDS]


class FlowRow:
    """One message of the flow."""

    __slots__ = ("arrow", "delta", "dst", "index", "kind", "src", "text", "time")

    def __init__(self, index: int, time: int | None, kind: str, src: int | None,
                 dst: int | None, text: str, arrow: bool) -> None:
        self.index = index
        self.time = time  # microseconds since the epoch
        self.delta: int | None = None
        self.kind = kind
        self.src = src  # column numbers (None: not a column)
        self.dst = dst
        self.text = text
        self.arrow = arrow


class Flow:
    """Columns (endpoint labels) and rows, in time order."""

    def __init__(self, title: str, columns: list[str], rows: list[FlowRow]) -> None:
        self.title = title
        self.columns = columns
        self.rows = rows


def _endpoint(ip: Any, port: Any) -> str | None:
    if ip is None:
        return None
    text = f"[{ip}]" if ":" in str(ip) else str(ip)
    return text if port is None else f"{text}:{port}"


def _sip_text(m: Any) -> str:
    line = summary(m, 200)
    if line.startswith("SIP/2.0 "):
        return line[8:]
    parts = line.split(" ")
    if len(parts) == 3 and parts[2] == "SIP/2.0":
        return parts[0]
    return line


def _node_addresses(messages: Sequence[tuple[int, Any, str]]) -> dict[str, str]:
    """ip -> node name, where a capture agent's (0x13) SIP messages all share exactly one
    address: that address is the agent's own."""
    seen: dict[str, set[str] | None] = {}
    for _i, m, kind in messages:
        name = m.node_name
        if not name or kind != "sip":
            continue
        ips = {x for x in (m.src_ip, m.dst_ip) if x}
        prev = seen.get(name)
        seen[name] = ips if prev is None else prev & ips
    out: dict[str, str] = {}
    for name, ips in seen.items():
        if ips and len(ips) == 1:
            out.setdefault(next(iter(ips)), name)
    return out


def build_flow(title: str, messages: Sequence[tuple[int, Any, str]], *,
               aliases: Mapping[str, str] | None = None, hide: Iterable[str] = ()) -> Flow:
    """The flow of ``messages`` — ``(index, HepMessage, kind)`` — in time order (input order
    for equal or missing times).  ``aliases``: ``ip`` or ``ip:port`` -> name."""
    aliases = dict(aliases or {})
    hide = [h for h in hide if h.strip()]
    names = _node_addresses(messages)
    shown = [(i, m, k) for i, m, k in messages if not hidden(k, hide)]
    order = sorted(range(len(shown)), key=lambda n: (
        shown[n][1].ts_sec is None, shown[n][1].ts_sec or 0, shown[n][1].ts_usec or 0, n))
    columns: list[str] = []
    col_of: dict[str, int] = {}

    def column(ep: str | None, create: bool) -> int | None:
        if ep is None:
            return None
        c = col_of.get(ep)
        if c is None and create:
            c = col_of[ep] = len(columns)
            columns.append(ep)
        return c

    for n in order:  # columns first, in the order the SIP arrows use them
        _i, m, kind = shown[n]
        if kind == "sip":
            src_ep = _endpoint(m.src_ip, m.src_port)
            dst_ep = _endpoint(m.dst_ip, m.dst_port)
            if src_ep and dst_ep:
                column(src_ep, True)
                column(dst_ep, True)
    rows: list[FlowRow] = []
    prev_t = None
    for n in order:
        index, m, kind = shown[n]
        t = None if m.ts_sec is None else m.ts_sec * 1_000_000 + (m.ts_usec or 0)
        src_ep = _endpoint(m.src_ip, m.src_port)
        dst_ep = _endpoint(m.dst_ip, m.dst_port)
        if kind == "sip" and src_ep and dst_ep:
            row = FlowRow(index, t, kind, column(src_ep, True), column(dst_ep, True),
                          _sip_text(m), True)
        else:
            text = summary(m, 300)
            while text.endswith(("\\n", "\\r")):  # a log line's own line break, escaped
                text = text[:-2]
            row = FlowRow(index, t, kind, column(src_ep, False), column(dst_ep, False),
                          text, False)
        if t is not None and prev_t is not None:
            row.delta = t - prev_t
        if t is not None:
            prev_t = t
        rows.append(row)
    labels = []
    for ep in columns:
        ip, _, port = ep.rpartition(":")
        ip_plain = ip.strip("[]")
        name = aliases.get(ep) or aliases.get(ip_plain)
        if name is None:
            name = names.get(ip_plain)
        if name is not None and ep not in aliases:
            same_ip = [c for c in columns if c.rpartition(":")[0] == ip]
            if len(same_ip) > 1:
                name = f"{name}:{port}"
        labels.append(name or ep)
    return Flow(title, labels, rows)


def _hms(us: int | None) -> str:
    if us is None:
        return "-".rjust(15)
    t = format_time(us // 1_000_000, us % 1_000_000) or "-"
    return t[11:-1]


def _delta(us: int | None) -> str:
    if us is None:
        return ""
    return f"+{us / 1e6:.6f}"


# ---------------------------------------------------------------------------------------
# rich text
# ---------------------------------------------------------------------------------------

def render_text(flow: Flow, console: Any, *, col_width: int | None = None) -> None:
    """The ladder on a rich Console (colour when the console has it)."""
    from rich.text import Text

    ncol = max(1, len(flow.columns))
    left = 15 + 1 + 10 + 2  # time, delta
    if col_width is None:
        room = max(40, console.width - left - 2)
        col_width = max(14, min(28, room // ncol))
    width = col_width * ncol
    centers = [col_width * c + col_width // 2 for c in range(ncol)]

    def lifelines() -> list[str]:
        cells = [" "] * width
        for x in centers:
            cells[x] = "│"
        return cells

    console.print(Text(printable(flow.title, 200), style="bold"))
    head = Text(" " * left)
    for label in flow.columns:
        head.append(printable(label, col_width - 1)[:col_width - 1].center(col_width),
                    style="bold")
    console.print(head, no_wrap=True, overflow="crop")
    for row in flow.rows:
        line = Text(f"{_hms(row.time):>15} {_delta(row.delta):>10}  ", style="dim")
        cells = lifelines()
        fam = family(row.kind)
        style = _KIND_STYLE.get(fam, "white")
        if row.arrow and row.src is not None and row.dst is not None:
            a, b = centers[row.src], centers[row.dst]
            label = printable(row.text, 60)
            if a == b:
                seg = f"↺ {label}"
                start = a + 1
                for i, ch in enumerate(seg[:width - start]):
                    cells[start + i] = ch
                lo = hi = a
            else:
                lo, hi = min(a, b), max(a, b)
                for x in range(lo + 1, hi):
                    cells[x] = "─"
                cells[hi if b > a else lo] = "▶" if b > a else "◀"
                room = hi - lo - 3
                if room > 0:
                    text = f" {label[:room]} "
                    start = lo + 1 + (hi - lo - 1 - len(text)) // 2
                    for i, ch in enumerate(text):
                        cells[start + i] = ch
            line.append("".join(cells[:lo]))
            line.append("".join(cells[lo:hi + 1]), style=style)
            line.append("".join(cells[hi + 1:]))
        else:
            start = centers[row.src] + 2 if row.src is not None else 0
            tag = f"[{row.kind}] {printable(row.text, 200)}"
            start = min(start, max(0, width - 20))
            line.append("".join(cells[:start]))
            line.append(tag, style=style)  # may run past the ladder: the console crops it
        console.print(line, no_wrap=True, overflow="crop")


# ---------------------------------------------------------------------------------------
# SVG and HTML
# ---------------------------------------------------------------------------------------

_ROW_H = 24
_COL_W = 190
_LEFT = 190
_TOP = 56


def _x(text: str) -> str:
    return escape(printable(text, 300), quote=True)


def render_svg(flow: Flow) -> str:
    """A standalone SVG document of the ladder (opens in any browser)."""
    ncol = max(1, len(flow.columns))
    width = _LEFT + ncol * _COL_W + 40
    for row in flow.rows:  # room for the longest marked row (monospace 12 px: ~7.3 px/char)
        if not row.arrow:
            x = (_LEFT + row.src * _COL_W + _COL_W // 2 + 10) if row.src is not None else _LEFT + 10
            width = max(width, int(x + 7.3 * (len(printable(row.text, 300)) + len(row.kind) + 3))
                        + 20)
    width = max(width, int(10 + 8.5 * len(printable(flow.title, 300))))
    height = _TOP + (len(flow.rows) + 1) * _ROW_H + 20
    cx = [_LEFT + c * _COL_W + _COL_W // 2 for c in range(ncol)]
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
    out.append(f'<text x="10" y="20" font-size="14" font-weight="bold">{_x(flow.title)}</text>')
    bottom = height - 10
    for c, label in enumerate(flow.columns):
        x = cx[c]
        out.append(f'<rect x="{x - _COL_W // 2 + 8}" y="{_TOP - 24}" width="{_COL_W - 16}" '
                   f'height="20" rx="4" fill="#f6f8fa" stroke="#8c959f"/>')
        out.append(f'<text x="{x}" y="{_TOP - 10}" text-anchor="middle" '
                   f'font-weight="bold">{_x(label)}</text>')
        out.append(f'<line x1="{x}" y1="{_TOP - 4}" x2="{x}" y2="{bottom}" stroke="#d0d7de" '
                   f'stroke-dasharray="4,3"/>')
    for n, row in enumerate(flow.rows):
        y = _TOP + (n + 1) * _ROW_H
        fam = family(row.kind)
        color = _KIND_COLOR.get(fam, "#24292f")
        out.append(f'<g class="row {escape(fam)}" data-index="{row.index}">')
        out.append(f'<text x="10" y="{y + 4}" fill="#57606a">{_hms(row.time)}</text>')
        out.append(f'<text x="{_LEFT - 8}" y="{y + 4}" text-anchor="end" fill="#8c959f">'
                   f"{_delta(row.delta)}</text>")
        if row.arrow and row.src is not None and row.dst is not None:
            a, b = cx[row.src], cx[row.dst]
            if a == b:
                out.append(f'<path d="M{a},{y - 6} h30 v10 h-30" fill="none" stroke="{color}" '
                           f'marker-end="url(#arrow-{fam if fam in _KIND_COLOR else "sip"})"/>')
                out.append(f'<text x="{a + 36}" y="{y + 2}" fill="{color}">{_x(row.text)}</text>')
            else:
                out.append(f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{color}" '
                           f'stroke-width="1.5" marker-end="url(#arrow-sip)"/>')
                out.append(f'<text x="{(a + b) // 2}" y="{y - 4}" text-anchor="middle" '
                           f'fill="{color}">{_x(row.text)}</text>')
        else:
            x = cx[row.src] + 6 if row.src is not None else _LEFT + 12
            tag = f"[{row.kind}]"
            out.append(f'<circle cx="{x - 6}" cy="{y}" r="3" fill="{color}"/>')
            out.append(f'<text x="{x + 4}" y="{y + 4}" fill="{color}">'
                       f'<tspan font-weight="bold">{_x(tag)}</tspan> {_x(row.text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_html(flow: Flow) -> str:
    """A standalone HTML page: the SVG ladder, then a table of every row."""
    rows = []
    for row in flow.rows:
        src = flow.columns[row.src] if row.src is not None else ""
        dst = flow.columns[row.dst] if row.dst is not None else ""
        rows.append(
            f'<tr class="{escape(family(row.kind))}"><td>{row.index}</td><td>{_hms(row.time)}</td>'
            f"<td>{_delta(row.delta)}</td><td>{escape(row.kind)}</td><td>{_x(src)}</td>"
            f"<td>{_x(dst)}</td><td>{_x(row.text)}</td></tr>")
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
             "font-family:monospace;font-size:12px}td,th{border-bottom:1px solid #d0d7de;"
             "padding:2px 8px;text-align:left}th{background:#f6f8fa}"
             + "".join(f"tr.{k} td:nth-child(4){{color:{c}}}" for k, c in _KIND_COLOR.items()))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_x(flow.title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        f"<h1>{_x(flow.title)}</h1>\n<div class=\"ladder\">\n{render_svg(flow)}</div>\n"
        "<table>\n<thead><tr><th>#</th><th>time</th><th>delta</th><th>kind</th><th>from</th>"
        "<th>to</th><th>message</th></tr></thead>\n<tbody>\n" + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
        "<p>Made by heptool flow.</p>\n</body>\n</html>\n")
