"""HEP messages as Parquet files for analysis (``convert --to parquet``, ``listen --write-parquet``).

The layout is HOMER 11's (its DuckLake storage: ``docs/STORAGE_LAYOUT.md`` and
``src/storage/ducklake/tables.go`` of sipcapture/homer, read for the names only): one table
(directory) per protocol type, SIP split by method as HOMER 11 splits it, each Hive-style
partitioned by the UTC date of the message::

    DIR/hep_proto_1_call/date=2026-11-26/data-00000.parquet    INVITE ACK PRACK UPDATE BYE
                                                               CANCEL INFO (replies: by CSeq)
    DIR/hep_proto_1_registration/date=.../...                  REGISTER
    DIR/hep_proto_1_default/date=.../...                       other SIP (OPTIONS, NOTIFY...)
    DIR/hep_proto_5_default/...  (RTCP JSON)   DIR/hep_proto_100_default/...  (logs)
    DIR/hep_proto_N_default/...  any other protocol type N (0: a message without one)

Every table has the same columns (:data:`COLUMNS`), so one glob reads them all::

    SELECT proto_type, count(*) FROM read_parquet('DIR/**/*.parquet', hive_partitioning=true)
    GROUP BY ALL

HOMER 11's names: ``timestamp`` (timestamp[us, UTC]), ``session_id`` (the SIP Call-ID; for
other protocols the correlation id, chunk 0x0011), ``caller``/``callee`` (user part of the
From/To URI), ``src_ip``, ``dst_ip``, ``src_port``, ``dst_port``, ``method``,
``response_code`` (text, as HOMER 11), ``cseq_method``, ``protocol`` (the IP protocol, chunk
0x0002), ``node_id`` (the capture id, chunk 0x000c, in decimal as HOMER 11 writes it),
``cid`` (chunk 0x0011), ``payload`` and ``data_extra`` (JSON text: the HEP version and the
SIP details HOMER 11 keeps there, ``from_tag``, ``to_tag``, ``request_uri``,
``response_reason``, ``cseq``, ``x_cid``, plus any rarer chunk such as ``vlan`` or ``mos``).
The ``date`` partition is the directory, not a column of the files (DuckDB adds it with
``hive_partitioning=true``).  heptool's additions, where HOMER 11 has no column:
``proto_type`` (chunk 0x000b), ``node_name`` (chunk 0x0013), ``extra_correlation`` (chunk
0x0065 as sent) and ``payload_raw``.

The payload is kept whole, byte for byte: ``payload`` (string) holds it when it is valid
UTF-8 (SIP, JSON, logs: searchable with SQL as text); a payload that is not (RTP, binary
RTCP, a body with binary parts) is ``payload_raw`` (binary) with ``payload`` NULL.
``coalesce(encode(payload), payload_raw)`` is the payload's bytes in every row.

Files being written are ``data-NNNNN.parquet.part`` and renamed to ``.parquet`` when closed
(a Parquet file is readable only once its footer is written), so ``*.parquet`` only ever
names complete files, and numbers go on after the highest there (nothing is overwritten).
pyarrow is imported only when a writer is built (:func:`require_pyarrow`).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import time
from typing import Any

from heptool.sip.info import sip_info
from heptool.sip.payload import sip_text

__all__ = ["COLUMNS", "INSTALL_HINT", "LISTEN_ROW_GROUP", "ParquetUnavailableError",
           "ParquetWriter", "require_pyarrow", "sip_table", "users"]

INSTALL_HINT = "pip install heptool[parquet]"

#: the columns of every table, in order
COLUMNS = ("timestamp", "session_id", "caller", "callee", "src_ip", "dst_ip", "src_port",
           "dst_port", "method", "response_code", "cseq_method", "protocol", "node_id", "cid",
           "proto_type", "node_name", "extra_correlation", "payload", "payload_raw",
           "data_extra")

#: HOMER 11's SIP tables by method (replies: their CSeq method)
_CALL_METHODS = frozenset(("INVITE", "ACK", "PRACK", "UPDATE", "BYE", "CANCEL", "INFO"))

#: rows buffered per partition before a row group is written
ROW_GROUP_ROWS = 65536
#: listen's row groups: smaller, so that building one (pyarrow holds the GIL while it converts
#: a column) never keeps the receive loop from its socket for long
LISTEN_ROW_GROUP = 4096
#: ... or this many payload bytes
ROW_GROUP_BYTES = 64 << 20

#: a From/To header line (full or compact name) and its value; the user of the first SIP URI
_FROM_TO_RE = re.compile(r"\n(?:(from|f)|to|t)[ \t]*:([^\n]*)", re.IGNORECASE)
_URI_USER_RE = re.compile(r"sips?:([^@;>\s:?]+)@", re.IGNORECASE)
#: the ``sip`` view's keys kept in data_extra, by HOMER 11's names
_EXTRA_NAMES = {"ruri": "request_uri", "reason": "response_reason", "cseq": "cseq",
                "from_tag": "from_tag", "to_tag": "to_tag", "x_cid": "x_cid"}
_NAME_RE = re.compile(r"data-(\d{5,})\.parquet(?:\.part)?\Z")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class ParquetUnavailableError(ImportError):
    """pyarrow is not installed: the one-line text names the extra to install."""

    def __init__(self, what: str = "Parquet output") -> None:
        super().__init__(f"{what} needs pyarrow, which is not installed: {INSTALL_HINT}")


def require_pyarrow(what: str = "Parquet output") -> Any:
    """``pyarrow.parquet``; :exc:`ParquetUnavailableError` when pyarrow cannot be imported."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ParquetUnavailableError(what) from None
    return pq


def sip_table(method: str | None, cseq_method: str | None, status: int | None) -> str:
    """HOMER 11's SIP table of a message: ``hep_proto_1_call``, ``_registration`` or
    ``_default`` (a reply goes by its CSeq method)."""
    key = cseq_method if status is not None and cseq_method else method
    if key in _CALL_METHODS:
        return "hep_proto_1_call"
    if key == "REGISTER":
        return "hep_proto_1_registration"
    return "hep_proto_1_default"


def users(text: str) -> tuple[str | None, str | None]:
    """(caller, callee): the user part of the first From / To header's SIP URI (the first
    header of each, full or compact form, in the header block; None when it has none)."""
    end = text.find("\r\n\r\n")
    caller = callee = None
    seen_from = seen_to = False
    for m in _FROM_TO_RE.finditer(text, 0, end if end >= 0 else len(text)):
        if m.group(1) is not None:
            if seen_from:
                continue
            seen_from = True
            u = _URI_USER_RE.search(m.group(2))
            caller = u.group(1) if u else None
        else:
            if seen_to:
                continue
            seen_to = True
            u = _URI_USER_RE.search(m.group(2))
            callee = u.group(1) if u else None
        if seen_from and seen_to:
            break
    return caller, callee


class _Part:
    """One (table, date) partition: its buffered columns and the file being written."""

    __slots__ = ("directory", "file", "final", "nbytes", "opened", "part", "rows", "writer")

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.rows: list[tuple] = []
        self.nbytes = 0
        self.writer: Any = None
        self.file: Any = None
        self.part = self.final = ""
        self.opened = 0.0


class ParquetWriter:
    """HEP messages into ``directory`` (see the module's text), one row per :meth:`write`.

    ``size``: a file is closed (and the next one numbered) once it holds that many bytes;
    ``every``: once it has been open that many seconds (:meth:`tick`, with a monotonic
    clock); :meth:`reopen` closes every open file now (listen's SIGHUP).  Rows are buffered
    per partition and written as row groups of up to ``row_group`` rows (or 64 MiB of
    payload, or ``size``); :meth:`close` writes what is buffered and closes every file.
    ``files``: every complete file, in the order closed; ``rows``: rows written or
    buffered.  ``background``: row groups are built, compressed and written by a thread, in
    order (``listen``: its receive loop does not stop for a row group); an error there is
    raised by the next call, or by :meth:`close`."""

    def __init__(self, directory: str, *, size: int | None = None, every: float | None = None,
                 row_group: int = ROW_GROUP_ROWS, compression: str = "zstd",
                 background: bool = False) -> None:
        pq = require_pyarrow()
        import pyarrow as pa
        from orjson import dumps

        self.pa = pa
        self.pq = pq
        self.dumps = dumps
        self.base = directory
        self.size = size
        self.every = every
        self.row_group = row_group
        self.group_bytes = min(ROW_GROUP_BYTES, size) if size else ROW_GROUP_BYTES
        self.compression = compression
        self.files: list[str] = []
        self.rows = 0
        self.parts: dict[tuple[str, str], _Part] = {}
        self.dates: dict[int, str] = {}
        ts = pa.timestamp("us", tz="UTC")
        s, u32, b = pa.string(), pa.uint32(), pa.binary()
        types = {"timestamp": ts, "src_port": u32, "dst_port": u32, "protocol": u32,
                 "proto_type": u32, "payload_raw": b}
        self.schema = pa.schema([(c, types.get(c, s)) for c in COLUMNS])
        os.makedirs(directory, exist_ok=True)
        self.error: BaseException | None = None
        self.queue: Any = None
        self.thread: Any = None
        if background:
            import queue
            import threading

            self.queue = queue.Queue(maxsize=8)
            self.thread = threading.Thread(target=self._work, name="write-parquet", daemon=True)
            self.thread.start()

    def _work(self) -> None:
        q = self.queue
        while True:
            item = q.get()
            if item is None:
                return
            if self.error is None:
                fn, args = item
                try:
                    fn(*args)
                except Exception as e:  # noqa: BLE001 - a thread boundary: _run/close raise it
                    self.error = e

    def _run(self, fn: Any, *args: Any) -> None:
        """``fn(*args)`` now, or in the writing thread after what is queued."""
        if self.error is not None:
            raise self.error
        if self.queue is None:
            fn(*args)
        else:
            self.queue.put((fn, args))

    # -- rows ----------------------------------------------------------------------------
    def _date(self, sec: int) -> str:
        day = sec // 86400
        d = self.dates.get(day)
        if d is None:
            d = self.dates[day] = (_EPOCH + _dt.timedelta(days=day)).strftime("%Y-%m-%d")
        return d

    def write(self, m: Any, when: float | tuple[int, int] | None = None) -> None:
        """One message (a :class:`heptool.core.message.HepMessage`); ``when`` (epoch seconds,
        or (seconds, microseconds)) times a message that carries no time of its own (HEPv1): the capture's or arrival
        time, else 1970-01-01."""
        sec = m.ts_sec
        if sec is None:
            if isinstance(when, tuple):
                sec, usec = when
            else:
                w = when or 0.0
                sec = int(w)
                usec = int((w - sec) * 1e6)
        else:
            usec = m.ts_usec or 0
        pt = m.proto_type
        payload = m.payload
        caller = callee = method = code = cseq_method = None
        session = m.correlation_id
        extra: dict[str, Any] = {"version": m.version}
        # the SIP columns for any payload that is SIP (as decode's record), whatever its
        # protocol type; the table goes by the protocol type (HOMER 11)
        info = sip_info(payload) if payload else None
        table = f"hep_proto_{pt or 0}_default"
        if info is not None:
            method = info.get("method")
            status = info.get("status")
            cseq_method = info.get("cseq_method")
            session = info.get("call_id") or session
            code = None if status is None else str(status)
            if pt == 1:
                table = sip_table(method, cseq_method, status)
            text = sip_text(payload)
            if text is not None:
                caller, callee = users(text)
            for k, v in info.items():
                name = _EXTRA_NAMES.get(k)
                if name is not None:
                    extra[name] = v
        ex = m.extra
        if ex:
            for k, v in ex.items():
                extra[k] = v if isinstance(v, (int, float, str)) or v is None else str(v)
        text_payload = raw = None
        if payload is not None:
            try:
                text_payload = payload.decode("utf-8")
            except UnicodeDecodeError:
                raw = payload
        date = self._date(sec)
        key = (table, date)
        part = self.parts.get(key)
        if part is None:
            part = self.parts[key] = _Part(os.path.join(self.base, table, f"date={date}"))
        if not part.opened:  # the first row of this partition's next file
            part.opened = time.monotonic()
        cid = m.correlation_id
        cap = m.capture_id
        row = (sec * 1_000_000 + usec, session, caller, callee, m.src_ip, m.dst_ip, m.src_port,
               m.dst_port, method, code, cseq_method, m.ip_proto,
               None if cap is None else str(cap), cid, pt, m.node_name, m.extra_correlation,
               text_payload, raw, self.dumps(extra).decode())
        rows = part.rows
        rows.append(row)
        part.nbytes += 100 + (len(payload) if payload is not None else 0)
        self.rows += 1
        if len(rows) >= self.row_group or part.nbytes >= self.group_bytes:
            self._flush(part)

    # -- files ---------------------------------------------------------------------------
    def _open(self, part: _Part) -> None:
        os.makedirs(part.directory, exist_ok=True)
        try:
            names = os.listdir(part.directory)
        except OSError:
            names = []
        numbers = [int(mm.group(1)) for mm in map(_NAME_RE.match, names) if mm]
        n = max(numbers) + 1 if numbers else 0
        for _ in range(100_000):  # another process may be writing the same names
            final = os.path.join(part.directory, f"data-{n:05d}.parquet")
            try:
                f = open(final + ".part", "xb")  # noqa: SIM115 - closed in _close_file
            except FileExistsError:
                n += 1
                continue
            if os.path.exists(final):
                f.close()
                os.unlink(final + ".part")
                n += 1
                continue
            break
        else:
            raise FileExistsError(part.directory)
        part.file = f
        part.part = final + ".part"
        part.final = final
        part.writer = self.pq.ParquetWriter(f, self.schema, compression=self.compression)

    def _flush(self, part: _Part) -> None:
        """Write the buffered rows of ``part`` as one row group (opening its file first)."""
        rows = part.rows
        if not rows:
            return
        part.rows = []
        part.nbytes = 0
        self._run(self._write_group, part, rows)

    def _write_group(self, part: _Part, rows: list[tuple]) -> None:
        if part.writer is None:
            self._open(part)
        pa = self.pa
        arrays = [pa.array(col, type=field.type) for col, field in zip(zip(*rows), self.schema)]
        part.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        if self.size is not None and part.file.tell() >= self.size:
            self._close(part)

    def _close_file(self, part: _Part) -> None:
        part.opened = 0.0
        self._run(self._close, part)

    def _close(self, part: _Part) -> None:
        if part.writer is None:
            return
        writer, f = part.writer, part.file
        part.writer = part.file = None
        try:
            writer.close()
        finally:
            f.close()
        os.rename(part.part, part.final)
        self.files.append(part.final)

    def tick(self, now: float) -> None:
        """Close the files open ``every`` seconds or more (``now``: time.monotonic())."""
        if self.every is None:
            return
        for part in self.parts.values():
            if part.opened and now - part.opened >= self.every:
                self._flush(part)
                self._close_file(part)

    def reopen(self) -> None:
        """Write what is buffered and close every file: the next rows start new files (listen's
        SIGHUP). Returns None (nothing to warn about: names are never reused)."""
        for part in self.parts.values():
            self._flush(part)
            self._close_file(part)

    def close(self) -> None:
        """Write everything buffered and close every file (each partition is tried even when
        one fails; the first error is raised)."""
        error: BaseException | None = None
        for part in self.parts.values():
            try:
                self._flush(part)
                self._close_file(part)
            except Exception as e:  # noqa: BLE001 - every partition is closed, then raised
                error = error or e
        self.parts.clear()
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join(120)
            self.thread = None
            self.queue = None
            error = error or self.error
        if error is not None:
            raise error
