"""The table of ``heptool decode`` (one line per message): plain aligned text, as tshark prints.

::

        #  time (UTC)        proto  src -> dst                          capture  correlation  summary
        0  09:05:06.262373   sip    127.0.0.1:33417 -> 127.0.0.1:25060  2001                  OPTIONS sip:...
        1  09:05:06.300000~  sip    127.0.0.1:25060 -> 127.0.0.1:33417  -                     SIP/2.0 200 OK

* Lines are written as the messages come (in batches of 100 rows, or one by one for live
  input and ``-v``), so memory stays flat and a live capture shows each message at once.
* Each column is as wide as its widest cell so far (from a starting width, up to a cap: a
  longer cell, an IPv6 pair or a long id, pushes the rest of its own row): nothing is cut.
* With a width (``--width N``, ``$COLUMNS``, the terminal's) the capture column, then the
  correlation column, are left out when the first rows leave the summary less than
  :data:`WANT_SUMMARY` columns, then the protocol column below :data:`WANT_SUMMARY_PROTO`;
  the summary wraps at spaces within what is left, or goes on lines of its own under the
  row when less than :data:`MIN_SUMMARY` is left or one of its words is wider than that. An address or a port is never cut: a
  line is longer than the width rather than that. Without a width (a pipe, a file) lines
  are as long as their contents.
* Times are clock times in UTC, or the local zone with ``--localtime``; the time column's
  header says which. A message without a HEP time (HEPv1) shows its capture frame's time
  (the record's ``frame_time``) marked with a trailing :data:`FRAME_TIME_MARK`.
* ``-v`` prints every chunk of each message under its row, a text payload line by line.

Colour is plain ANSI (:func:`heptool.output.text.paint`), only when asked for; every text that
comes from a packet is escaped by :func:`heptool.sip.summary.printable` first, so a payload
cannot style or rewrite the terminal.
"""

from __future__ import annotations

from typing import Any

from heptool.sip.summary import payload_lines, printable, record_summary, summary

from ..core.registry import CHUNKS, chunk_name
from .text import paint, wrap
from .timefmt import clock_of_record, zone_label

__all__ = ["FRAME_TIME_MARK", "MIN_SUMMARY", "WANT_SUMMARY", "WANT_SUMMARY_PROTO", "TableWriter"]

#: Ends the time of a message that has no HEP time, shown with its capture frame's time.
FRAME_TIME_MARK = "~"
#: With a width, the capture column, then the correlation column, are left out while the
#: first rows leave the summary less room than this ...
WANT_SUMMARY = 40
#: ... and then the protocol column while they leave it less than this.
WANT_SUMMARY_PROTO = 30
#: Less room than this for the summary at the end of a row: it goes on lines of its own.
MIN_SUMMARY = 20
#: A summary (a payload's first line) is cut after this many characters, with "...".
SUMMARY_LIMIT = 1000
#: The payload lines ``-v`` shows at most per message.
MAX_PAYLOAD_LINES = 500

_GAP = "  "
#: Starting widths; each column grows to its longest cell so far, up to its cap in _CAP: a
#: longer cell (an IPv6 pair, a long id) is not cut but pushes the rest of its own row.
_START = {"#": 1, "time": 15, "proto": 5, "src -> dst": 31, "capture": 7, "correlation": 11}
_CAP = {"#": 12, "time": 24, "proto": 8, "src -> dst": 47, "capture": 16, "correlation": 36}
_PROTO_STYLE = {"sip": "cyan", "log": "yellow", "rtcp": "magenta", "rest": "blue", "mi": "blue",
                "net": "green", "control": "green"}
_ALL = ("#", "time", "proto", "src -> dst", "capture", "correlation", "summary")


def _addr(ip: Any, port: Any) -> str:
    if ip is None:
        return "?" if port is None else f"?:{port}"
    text = f"[{ip}]" if ":" in str(ip) else str(ip)
    return text if port is None else f"{text}:{port}"


class TableWriter:
    """Table lines to a text stream (see the module docstring).

    ``out``: a text stream, or a rich Console (its file; its width when it is a terminal,
    its colour). ``width`` None: no limit. ``write(record, message=None)`` takes a decode
    record, and the message it was made from when there is one (``-v`` needs it for the
    chunk ids); without it the summary is made from the record (the same text)."""

    def __init__(self, out: Any, *, width: int | None = None, color: bool | None = None,
                 localtime: bool = False, verbose: int = 0, batch: int = 100) -> None:
        if hasattr(out, "color_system") and hasattr(out, "file"):  # a rich Console
            if width is None and out.is_terminal:
                width = out.width
            if color is None:
                color = out.color_system is not None and not out.no_color
            out = out.file
        self.out = out
        self.width = width
        self.color = bool(color)
        self.localtime = localtime
        self.verbose = verbose
        self.batch = 1 if verbose else max(1, batch)
        self.columns = list(_ALL)
        self.widths = {name: _START[name] for name in self.columns if name != "summary"}
        if width is None:  # room to spare: indices up to 99999 keep the columns in place
            self.widths["#"] = 5
        self.count = 0
        #: rows not written yet: (cells, summary, -v lines or None)
        self.pending: list[tuple[dict[str, str], str, list[str] | None]] = []
        self._first: str | None = None  # the first row's time (the zone's offset, local)
        self._header = True

    # -- rows -------------------------------------------------------------------------
    def write(self, record: dict[str, Any], message: Any = None) -> None:
        time = record.get("time")
        local = self.localtime
        if time:
            tcell = clock_of_record(time, local=True) if local else time[11:-1]
        else:
            time = record.get("frame_time")
            tcell = clock_of_record(time, local=local) + FRAME_TIME_MARK if time else "-"
        cells = {"#": str(record.get("index", self.count)), "time": tcell}
        if "proto" in self.widths:
            cells["proto"] = printable(str(record.get("proto") or "-"))
        cells["src -> dst"] = printable(
            f"{_addr(record.get('src_ip'), record.get('src_port'))} -> "
            f"{_addr(record.get('dst_ip'), record.get('dst_port'))}")
        if "capture" in self.widths:
            cap = record.get("capture_id")
            node = record.get("node_name")
            cells["capture"] = printable("/".join(str(x) for x in (cap, node) if x is not None)
                                         or "-")
        if "correlation" in self.widths:
            corr = record.get("correlation_id")
            if corr is None:
                ec = record.get("extra_correlation")
                if ec:
                    corr = ",".join(f"{k}={v}" for k, v in ec)
            cells["correlation"] = printable(str(corr or ""), 200)
        if self._first is None:
            self._first = time or ""
        details = self._details(record, message) if self.verbose else None
        self.pending.append((cells, summary(message, SUMMARY_LIMIT) if message is not None
                             else record_summary(record, SUMMARY_LIMIT), details))
        self.count += 1
        if len(self.pending) >= self.batch:
            self.flush()

    def _fit(self) -> None:
        """With a width: leave out the capture column, then the correlation column, while the
        first rows leave the summary less than :data:`WANT_SUMMARY` columns, then the
        protocol column while they leave it less than :data:`WANT_SUMMARY_PROTO`."""
        if self.width is None:
            return
        widths = self.widths
        for name, want in (("capture", WANT_SUMMARY), ("correlation", WANT_SUMMARY),
                           ("proto", WANT_SUMMARY_PROTO)):
            used = sum(widths.values()) + len(_GAP) * len(widths)
            if self.width - used >= want:
                break
            del widths[name]
            self.columns.remove(name)
            for cells, _s, _d in self.pending:
                cells.pop(name, None)

    def _head(self, time: str | None) -> dict[str, str]:
        """The header's cells (the time column's says the zone, at the first row's time)."""
        at = None
        if self.localtime and time:
            import datetime as dt

            try:
                at = int(dt.datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()
                         * 1_000_000)
            except ValueError:
                at = None
        names = {name: name for name in self.columns if name != "summary"}
        names["time"] = f"time ({zone_label(self.localtime, at)})"
        return names

    def _row(self, cells: dict[str, str], summ: str, style: str | None = None) -> list[str]:
        """The line(s) of one row: cells padded to the column widths, then the summary."""
        widths = self.widths
        color = self.color
        parts = []
        over = 0  # how far this row's cells so far went past their columns
        for name, cell in cells.items():
            room = widths[name] - over
            n = len(cell)
            over = n - room if n > room else 0
            if color:
                pad = " " * (room - n)
                st = style or ("dim" if name == "#" else
                               _PROTO_STYLE.get(cell) if name == "proto" else None)
                cell = paint(cell, st, True)
                parts.append(pad + cell if name == "#" else cell + pad)
            else:
                parts.append(cell.rjust(room) if name == "#" else cell.ljust(room))
        head = _GAP.join(parts)
        summ = summ.rstrip(" ")
        shown = paint(summ, style, color)
        width = self.width
        if width is None or not summ:
            return [head + _GAP + shown if summ else head.rstrip()]
        col = sum(widths[name] for name in cells) + len(_GAP) * len(cells) + over
        room = width - col
        if room >= MIN_SUMMARY:
            lines = wrap(summ, room) if style is None else [shown]
            if style is not None or max(map(len, lines)) <= room:
                return [head + _GAP + lines[0], *(" " * col + line for line in lines[1:])]
            # a word (a long URI) wider than the column: the summary goes under the row
        indent = widths["#"] + len(_GAP)
        lines = wrap(summ, max(width - indent, 1)) if style is None else [shown]
        return [head.rstrip(), *(" " * indent + line for line in lines)]

    def flush(self) -> None:
        """Write the pending rows, their columns as wide as their widest cell so far."""
        if not self.pending:
            return
        widths = self.widths
        for cells, _s, _d in self.pending:
            for name, cell in cells.items():
                if len(cell) > widths[name]:
                    widths[name] = min(len(cell), max(widths[name], _CAP[name]))
        lines: list[str] = []
        if self._header:
            self._header = False
            self._fit()
            names = self._head(self._first)
            for name, cell in names.items():
                widths[name] = max(widths[name], len(cell))
            lines.extend(self._row(names, "summary", style="bold"))
        row = self._row
        for cells, summ, details in self.pending:
            lines.extend(row(cells, summ))
            if details is not None:
                lines.extend(details)
        self.pending.clear()
        lines.append("")
        self.out.write("\n".join(lines))
        if self.batch == 1:
            self.out.flush()

    def close(self) -> None:
        self.flush()
        self.out.flush()

    # -- -v ---------------------------------------------------------------------------
    def _details(self, record: dict[str, Any], message: Any) -> list[str]:
        """All chunks of one message (``-v``), indented under its row, then a blank line."""
        rows: list[tuple[str, str, list[str]]] = []

        def add(cid: str, name: str, value: Any) -> None:
            if name == "payload" and isinstance(value, str):
                what, lines = payload_lines(value)
                if len(lines) > MAX_PAYLOAD_LINES:
                    more = len(lines) - MAX_PAYLOAD_LINES
                    lines = [*lines[:MAX_PAYLOAD_LINES], f"... {more} more lines"]
                rows.append((cid, name, [f"({what})", *lines] if what else lines or [""]))
                return
            if isinstance(value, dict) and "base64" in value:
                text = f"base64:{value['base64']}"
                rows.append((cid, name, [printable(text, 400)]))
                return
            rows.append((cid, name, [printable(str(value))]))

        add("", "time", record.get("time") or (
            f"{record['frame_time']} (capture frame)" if record.get("frame_time") else None))
        if record.get("hep_transport"):
            add("", "hep", f"{record['hep_transport']} {record.get('hep_src')} -> "
                f"{record.get('hep_dst')}"
                + (f" (frame {record['frame']})" if record.get("frame") is not None else ""))
        add("", "version", record.get("version"))
        layout = getattr(message, "layout", None)
        if record.get("version") == 3 and layout is not None:
            for e in layout:
                if type(e) is int:
                    spec = CHUNKS[e]
                    add(f"0x0000:0x{e:04x}", spec.name, record.get(spec.field))
                else:
                    vendor, ctype, body, _ = e
                    add(f"0x{vendor:04x}:0x{ctype:04x}", chunk_name(vendor, ctype),
                        f"hex:{body[:200].hex()}" + ("..." if len(body) > 200 else ""))
        else:
            for key in ("family", "ip_proto", "src_ip", "src_port", "dst_ip", "dst_port",
                        "ts_sec", "ts_usec", "proto_type", "capture_id", "auth_key",
                        "node_name", "correlation_id", "extra_correlation_text", "payload"):
                if record.get(key) is not None:
                    add("", key, record[key])
        sip = record.get("sip")
        if sip:
            add("", "sip", " ".join(f"{k}={v}" for k, v in sip.items()))
        for w in getattr(message, "_warnings", None) or ():
            add("", "warning", str(w))
        id_w = max(len(r[0]) for r in rows)
        name_w = max(len(r[1]) for r in rows)
        pad = " " * (8 + id_w + name_w + 2 * len(_GAP))
        out: list[str] = []
        for cid, name, values in rows:
            shown_id = paint(cid.ljust(id_w), "dim", self.color) if cid else " " * id_w
            out.append(f"        {shown_id}{_GAP}{name.ljust(name_w)}{_GAP}{values[0]}".rstrip())
            out.extend((pad + v).rstrip() for v in values[1:])
        out.append("")
        return out
