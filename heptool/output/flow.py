"""The call flow of one correlation group as a ladder: the model and the terminal text.

One column per endpoint (``address:port``, or a name: ``--alias`` or the capture agent's
node name; endpoints given one name share one column), SIP messages as arrows labelled
with their method or status (and ``(SDP)`` when they carry a body), and every other kind of
message (xlog and log lines, REST queries and replies, connection events, MI commands and
replies, correlate() packets, RTCP and QoS reports) as a marked row in time order, with its
endpoints.  Each row has the message's index (decode's), its time and the delta from the row
before, in separate columns; each row keeps its whole message (:attr:`FlowRow.body`) for
``--full`` and the HTML page.  TLS key material of OpenSIPS net events is replaced by
``[redacted]`` unless ``show_secrets`` (:mod:`heptool.analysis.redact`).

:func:`build_flow` makes the model (pure); :func:`render_text` draws it on a rich console
(:mod:`heptool.output.flow_html` writes SVG and HTML).  Payload-derived text goes through
:func:`heptool.sip.summary.printable` on a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from heptool.analysis.extract import KINDS
from heptool.analysis.redact import redact_secrets
from heptool.sip.headers import header_values
from heptool.sip.payload import decode_text, sip_payload
from heptool.sip.summary import printable, summary

from .timefmt import clock, zone_label

__all__ = ["HIDE_KINDS", "Flow", "FlowRow", "build_flow", "family", "hidden", "render_text",
           "row_endpoints", "unknown_kinds"]

_KIND_STYLE = {"sip": "cyan", "xlog": "yellow", "log": "yellow", "rest": "blue", "net": "green",
               "mi": "magenta", "control": "bright_black", "rtcp": "bright_magenta",
               "qos": "bright_magenta"}
#: OpenSIPS's "no socket" endpoint (MI over the FIFO, CLOSED events: HEP-SPEC 6)
_NO_SOCKET = "127.0.0.2:0"


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

    __slots__ = ("arrow", "body", "delta", "dst", "dst_name", "index", "kind", "marker",
                 "src", "src_name", "text", "time")

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
        self.marker = ""  # "(SDP)" or "(body)" on a SIP message with a body
        self.body = ""  # the whole message as text (key material redacted)
        self.src_name: str | None = None  # the endpoints' names (alias or address:port)
        self.dst_name: str | None = None


class Flow:
    """Columns (endpoint labels) and rows, in time order."""

    def __init__(self, title: str, columns: list[str], rows: list[FlowRow]) -> None:
        self.title = title
        self.columns = columns
        self.rows = rows


class _Redacted:
    """A message with its payload replaced (what :func:`summary` reads)."""

    __slots__ = ("extra_correlation", "payload", "proto_type")

    def __init__(self, m: Any, payload: bytes | None) -> None:
        self.payload = payload
        self.proto_type = m.proto_type
        self.extra_correlation = m.extra_correlation


def _endpoint(ip: Any, port: Any) -> str | None:
    if ip is None:
        return None
    text = f"[{ip}]" if ":" in str(ip) else str(ip)
    return text if port is None else f"{text}:{port}"


def _split(ep: str) -> tuple[str, str]:
    """(address, port) of an :func:`_endpoint` text (port ``""`` when it has none)."""
    if ep.startswith("["):
        ip, _, rest = ep[1:].partition("]")
        return ip, rest[1:]
    ip, _, port = ep.partition(":")
    return ip, port


def _sip_text(m: Any) -> str:
    line = summary(m, 200)
    if line.startswith("SIP/2.0 "):
        return line[8:]
    parts = line.split(" ")
    if len(parts) == 3 and parts[2] == "SIP/2.0":
        return parts[0]
    return line


def _marker(sip: bytes | None) -> str:
    """``(SDP)`` when a SIP message carries an SDP body, ``(body)`` for any other body."""
    if not sip:
        return ""
    cut = sip.find(b"\r\n\r\n")
    body = sip[cut + 4:] if cut >= 0 else sip[sip.find(b"\n\n") + 2:] if b"\n\n" in sip else b""
    if not body.strip():
        return ""
    ctype = " ".join(header_values(decode_text(sip[:cut if cut >= 0 else len(sip)]),
                                   "content-type")).lower()
    return "(SDP)" if "sdp" in ctype or body.lstrip()[:4] == b"v=0\n" \
        or body.lstrip()[:5] == b"v=0\r\n" else "(body)"


def _body(m: Any, payload: bytes | None, kind: str) -> str:
    """The whole message as text: SIP unwrapped from OpenSIPS's JSON, else the payload."""
    if kind == "sip":
        sip = sip_payload(payload)
        if sip is not None:
            return decode_text(sip)
    if not payload:
        ec = m.extra_correlation
        return f"correlate {ec}" if ec else ""
    return decode_text(payload)


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
               aliases: Mapping[str, str] | None = None, hide: Iterable[str] = (),
               show_secrets: bool = False) -> Flow:
    """The flow of ``messages`` — ``(index, HepMessage, kind)`` — in time order (input order
    for equal or missing times).  ``aliases``: ``ip`` or ``ip:port`` -> name; endpoints
    given the same name share one column (``ip:port`` names), an ``ip`` name is the
    address's (``name:port`` when the address has several ports).  ``show_secrets``: keep
    TLS key material of net events (redacted otherwise)."""
    aliases = dict(aliases or {})
    hide = [h for h in hide if h.strip()]
    names = _node_addresses(messages)
    shown = [(i, m, k) for i, m, k in messages if not hidden(k, hide)]
    order = sorted(range(len(shown)), key=lambda n: (
        shown[n][1].ts_sec is None, shown[n][1].ts_sec or 0, shown[n][1].ts_usec or 0, n))
    columns: list[str] = []  # column keys: an endpoint, or the name of aliased endpoints
    col_of: dict[str, int] = {}
    named: set[str] = set()  # the column keys that are names

    def key(ep: str | None) -> str | None:
        if ep is None or ep not in aliases:
            return ep
        named.add(aliases[ep])
        return aliases[ep]

    def column(ep: str | None, create: bool) -> int | None:
        k = key(ep)
        if k is None:
            return None
        c = col_of.get(k)
        if c is None and create:
            c = col_of[k] = len(columns)
            columns.append(k)
        return c

    for n in order:  # columns first, in the order the SIP arrows use them
        _i, m, kind = shown[n]
        if kind == "sip":
            src_ep = _endpoint(m.src_ip, m.src_port)
            dst_ep = _endpoint(m.dst_ip, m.dst_port)
            if src_ep and dst_ep:
                column(src_ep, True)
                column(dst_ep, True)

    def host_name(ep: str, several: bool) -> str | None:
        """The name of ``ep``'s address (--alias ip=NAME, or the node name), with the port
        when the address has several columns."""
        ip, port = _split(ep)
        name = aliases.get(ip) or names.get(ip)
        if name is None:
            return None
        return f"{name}:{port}" if several and port else name

    labels = []
    for k in columns:
        if k in named:
            labels.append(k)
            continue
        ip = _split(k)[0]
        several = sum(1 for c in columns if c not in named and _split(c)[0] == ip) > 1
        labels.append(host_name(k, several) or k)
    label_of = dict(zip(columns, labels))

    def name_of(ep: str | None) -> str | None:
        """What a row shows for an endpoint: its column's label, its name, or itself."""
        k = key(ep)
        if k is None or k == _NO_SOCKET:
            return None
        if k in label_of:
            return label_of[k]
        return k if k in named else host_name(k, True) or k

    rows: list[FlowRow] = []
    prev_t = None
    for n in order:
        index, m, kind = shown[n]
        t = None if m.ts_sec is None else m.ts_sec * 1_000_000 + (m.ts_usec or 0)
        src_ep = _endpoint(m.src_ip, m.src_port)
        dst_ep = _endpoint(m.dst_ip, m.dst_port)
        payload = m.payload
        if not show_secrets and family(kind) == "net":
            payload = redact_secrets(payload)
        if kind == "sip" and src_ep and dst_ep:
            row = FlowRow(index, t, kind, column(src_ep, True), column(dst_ep, True),
                          _sip_text(m), True)
            row.marker = _marker(sip_payload(payload))
        else:
            text = summary(m if payload is m.payload else _Redacted(m, payload), 4096)
            while text.endswith(("\\n", "\\r")):  # a log line's own line break, escaped
                text = text[:-2]
            row = FlowRow(index, t, kind, column(src_ep, False), column(dst_ep, False),
                          text, False)
        row.body = _body(m, payload, kind)
        row.src_name, row.dst_name = name_of(src_ep), name_of(dst_ep)
        if t is not None and prev_t is not None:
            row.delta = t - prev_t
        if t is not None:
            prev_t = t
        rows.append(row)
    return Flow(title, labels, rows)


def row_endpoints(row: FlowRow) -> str:
    """``from -> to`` of a row (either side may be missing), or ``""``."""
    if row.src_name == row.dst_name:  # none known, or a log line's own address twice
        return ""
    return f"{row.src_name or '?'} -> {row.dst_name or '?'}"


def _wrap(label: str, width: int) -> list[str]:
    """``label`` in pieces of at most ``width`` characters (never cut: the rest goes on the
    next line), broken after a ``:`` or ``.`` when one is near the end of a piece."""
    out = []
    while len(label) > width:
        cut = max(label.rfind(":", 0, width), label.rfind(".", 0, width))
        cut = cut + 1 if cut >= width // 2 else width
        out.append(label[:cut])
        label = label[cut:]
    out.append(label)
    return out


def _fit(text: str, room: int | None) -> str:
    if room is None or len(text) <= room:
        return text
    return text[:max(0, room - 1)] + "…"


def render_text(flow: Flow, console: Any, *, width: int | None = None, local: bool = False,
                full: bool | int = False) -> None:
    """The ladder on a rich console (colour when the console has it).

    ``width``: the text width (None: unlimited, nothing is ever cut); column labels are never
    cut: on a narrow width they wrap over several header lines.  ``local``: clock times in
    the local zone (else UTC; the header names the zone).  ``full``: True, every message in
    full under its row; an int, only the message with that index."""
    from rich.text import Text

    def emit(line: Any) -> None:
        console.print(line, soft_wrap=True)

    ncol = max(1, len(flow.columns))
    iw = max([1, *(len(str(r.index)) for r in flow.rows)])
    left = iw + 1 + 15 + 1 + 10 + 2  # index, time, delta
    labels = [printable(c) for c in flow.columns]
    need = max([0, *map(len, labels)]) + 2  # every label on one line
    if width is None:
        col_width = max(24, need)
    else:
        col_width = max(14, min(max(28, need), (width - left) // ncol))
    span = col_width * ncol
    centers = [col_width * c + col_width // 2 for c in range(ncol)]
    first = next((r.time for r in flow.rows if r.time is not None), None)

    def lifelines() -> list[str]:
        cells = [" "] * span
        for x in centers:
            cells[x] = "│"
        return cells

    emit(Text(printable(flow.title), style="bold"))
    pieces = [_wrap(label, col_width - 1) for label in labels]
    for n in range(max(map(len, pieces), default=1)):
        head = Text(f"{'#':>{iw}} {'time ' + zone_label(local, first):>15} {'delta':>10}  "
                    if n == 0 else " " * left, style="dim")
        for p in pieces:
            head.append((p[n] if n < len(p) else "").center(col_width), style="bold")
        head.rstrip()
        emit(head)
    for row in flow.rows:
        line = Text(f"{row.index:>{iw}} {clock(row.time, local=local):>15} "
                    f"{'' if row.delta is None else f'+{row.delta / 1e6:.6f}':>10}  ",
                    style="dim")
        cells = lifelines()
        style = _KIND_STYLE.get(family(row.kind), "white")
        if row.arrow and row.src is not None and row.dst is not None:
            a, b = centers[row.src], centers[row.dst]
            label = printable(row.text, 60)
            marker = f" {row.marker}" if row.marker else ""
            if a == b:
                seg = f"↺ {label}{marker}"
                cells.extend(" " * max(0, a + 1 + len(seg) - span))
                for i, ch in enumerate(seg):
                    cells[a + 1 + i] = ch
                lo, hi = a, len(cells) - 1
            else:
                lo, hi = min(a, b), max(a, b)
                for x in range(lo + 1, hi):
                    cells[x] = "─"
                cells[hi if b > a else lo] = "▶" if b > a else "◀"
                room = hi - lo - 3
                if room > 0:
                    if len(label + marker) <= room or len(label) > room > len(marker) + 4:
                        text = f" {_fit(label, room - len(marker))}{marker} "
                    else:  # the method or status first, the marker when it fits
                        text = f" {_fit(label, room)} "
                    start = lo + 1 + (hi - lo - 1 - len(text)) // 2
                    for i, ch in enumerate(text):
                        cells[start + i] = ch
            line.append("".join(cells[:lo]))
            line.append("".join(cells[lo:hi + 1]), style=style)
            line.append("".join(cells[hi + 1:]).rstrip())
        else:
            col = row.src if row.src is not None else row.dst
            start = centers[col] + 2 if col is not None else 0
            if width is not None:
                start = min(start, max(0, span - 30))
            ends = row_endpoints(row)
            tag = f"[{row.kind}] " + (f"{printable(ends)}  " if ends else "")
            room = None if width is None else max(10, width - left - start - len(tag))
            line.append("".join(cells[:start]))
            line.append(tag + _fit(printable(row.text), room), style=style)
        emit(line)
        if full is True or (full is not False and full == row.index):
            pad = " " * (iw + 1)
            for text in (row.body or "").split("\n"):
                text = text.removesuffix("\r")
                emit(Text(pad + "    " + printable(text.expandtabs(4)), style="dim"))
