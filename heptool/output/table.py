"""The rich table of ``heptool decode`` (one row per message), drawn as the messages come.

A rich ``Table`` measures all its rows before drawing, so one table for a whole capture
would print nothing until the capture is read to its end, and hold it all in memory.
Instead the rows go out in small batches, each batch a border-less table with the *same
fixed column widths* (computed once from the terminal width), and only the first with a
header: on screen it reads as one table, and memory stays flat.  Live input (a pipe) uses
batches of one row so each message shows as it arrives; ``-v`` also prints each message
on its own, followed by all its chunks.

Every text cell is a ``rich.text.Text`` (never markup), and payload-derived text is
escaped by :func:`heptool.sip.summary.printable`, so a payload cannot style or rewrite the
terminal.
"""

from __future__ import annotations

from typing import Any

from heptool.sip.summary import printable, summary

from ..core.registry import CHUNKS, chunk_name

__all__ = ["TableWriter", "column_widths"]

_PROTO_STYLE = {"sip": "cyan", "log": "yellow", "rtcp": "magenta", "rest": "blue", "mi": "blue",
                "net": "green", "control": "green"}


def column_widths(total: int) -> dict[str, int]:
    """Fixed column widths for a terminal ``total`` columns wide.

    Columns are separated by 2 spaces; on narrow terminals the capture column goes first,
    then the correlation column, so that the summary keeps some room."""
    fixed = {"#": 5, "time": 15, "proto": 7}
    names = ["src -> dst", "capture", "correlation", "summary"]

    def avail() -> int:
        # rich: 1 space of padding each side of a column (none at the outer edges) and a
        # 1-character separator between columns: 3 per column boundary
        return total - sum(fixed.values()) - 3 * (len(fixed) + len(names) - 1) - 1

    if avail() < 75:
        names.remove("capture")
    if avail() < 50:
        names.remove("correlation")
    room = max(avail(), 24)
    w: dict[str, int] = dict(fixed)
    w["src -> dst"] = max(16, min(47, int(room * 0.4)))
    if "capture" in names:
        w["capture"] = max(6, min(16, int(room * 0.1)))
    if "correlation" in names:
        w["correlation"] = max(8, min(30, int(room * 0.18)))
    w["summary"] = max(8, room - sum(v for k, v in w.items() if k not in fixed))
    return w


def _hms(time: str | None) -> str:
    # "2026-11-26T09:05:06.600381Z" -> "09:05:06.600381"
    return "-" if not time else time[11:-1]


def _addr(ip: Any, port: Any) -> str:
    if ip is None:
        return "?" if port is None else f"?:{port}"
    text = f"[{ip}]" if ":" in str(ip) else str(ip)
    return text if port is None else f"{text}:{port}"


class TableWriter:
    """Rows to a rich Console, in batches of ``batch`` rows (see the module docstring)."""

    def __init__(self, console: Any, *, verbose: int = 0, batch: int = 100) -> None:
        self.console = console
        self.verbose = verbose
        self.batch = 1 if verbose else max(1, batch)
        self.widths = column_widths(console.width)
        self.rows: list[tuple] = []
        self.count = 0
        self._header = True

    def write(self, record: dict[str, Any], message: Any) -> None:
        from rich.text import Text

        proto = record.get("proto") or "-"
        cap = record.get("capture_id")
        node = record.get("node_name")
        capture = "/".join(str(x) for x in (cap, node) if x is not None) or "-"
        corr = record.get("correlation_id")
        if corr is None:
            ec = record.get("extra_correlation")
            if ec:
                corr = ",".join(f"{k}={v}" for k, v in ec)
        cells = {
            "#": Text(str(record.get("index", self.count)), style="dim"),
            "time": Text(_hms(record.get("time"))),
            "proto": Text(str(proto), style=_PROTO_STYLE.get(str(proto), "")),
            "src -> dst": Text(printable(
                f"{_addr(record.get('src_ip'), record.get('src_port'))} -> "
                f"{_addr(record.get('dst_ip'), record.get('dst_port'))}")),
            "capture": Text(printable(capture)),
            "correlation": Text(printable(corr or "", 200)),
            "summary": Text(summary(message)),
        }
        row = tuple(cells[name] for name in self.widths)
        self.rows.append((row, record, message))
        self.count += 1
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, show_header=self._header, show_edge=False,
                      pad_edge=False, header_style="bold", expand=False)
        for name, width in self.widths.items():
            table.add_column(name, width=width, no_wrap=True, overflow="ellipsis",
                             justify="right" if name == "#" else "left")
        for row, _record, _message in self.rows:
            table.add_row(*row)
        self._header = False
        self.console.print(table)
        if self.verbose:
            for _row, record, message in self.rows:
                self.console.print(_details(record, message))
        self.rows.clear()

    def close(self) -> None:
        self.flush()


def _value_text(v: Any) -> str:
    if isinstance(v, dict) and "base64" in v:
        return f"base64:{v['base64']}"
    return str(v)


def _details(record: dict[str, Any], message: Any) -> Any:
    """All chunks of one message (``-v``), indented under its row."""
    from rich.padding import Padding
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")

    def add(cid: str, name: str, value: Any) -> None:
        grid.add_row(cid, name, printable(_value_text(value), 400))

    add("", "time", record.get("time"))
    if record.get("hep_transport"):
        add("", "hep", f"{record['hep_transport']} {record.get('hep_src')} -> {record.get('hep_dst')}"
            + (f" (frame {record['frame']})" if record.get("frame") is not None else ""))
    add("", "version", record.get("version"))
    layout = getattr(message, "layout", None)
    if record.get("version") == 3 and layout is not None:
        for e in layout:
            if type(e) is int:
                spec = CHUNKS[e]
                value = record.get(spec.field)
                if spec.field == "payload" and isinstance(value, str) and len(value) > 400:
                    value = value[:400] + "..."
                add(f"0x0000:0x{e:04x}", spec.name, value)
            else:
                vendor, ctype, body, _ = e
                add(f"0x{vendor:04x}:0x{ctype:04x}", chunk_name(vendor, ctype),
                    f"hex:{body[:200].hex()}" + ("..." if len(body) > 200 else ""))
    else:
        for key in ("family", "ip_proto", "src_ip", "src_port", "dst_ip", "dst_port", "ts_sec",
                    "ts_usec", "proto_type", "capture_id", "auth_key", "node_name",
                    "correlation_id", "extra_correlation_text", "payload"):
            if record.get(key) is not None:
                add("", key, record[key])
    sip = record.get("sip")
    if sip:
        add("", "sip", " ".join(f"{k}={v}" for k, v in sip.items()))
    for w in getattr(message, "_warnings", None) or ():
        add("", "warning", str(w))
    return Padding(grid, (0, 0, 1, 8), expand=False)
