"""Streaming JSON writers: JSON Lines (one record per line) and one JSON array.

orjson when it is installed (it is a dependency; ~2.4x the stdlib, PERFORMANCE.md), the
stdlib otherwise; both write compact UTF-8 (no ``\\u`` escapes for non-ASCII text).

Flushing: with ``line_buffered=True`` every record is flushed as it is written, so
``heptool listen | jq`` or ``cat pipe | heptool decode | jq`` shows each message at once.
Without it (reading a file) lines go through the stream's buffer: a flush per line is a
``write`` system call per packet, which alone would cost a fifth of the time budget of a
200,000 packets/s decode; the output still streams (the first lines are out long before a
big input is read to its end) and is flushed when the writer is closed.

On a terminal (and only there: pipes and files get the encoder's bytes) the CLI wraps the
stream in :class:`TerminalJson`, which spells DEL, C1 and BiDi/format characters ``\\uXXXX``.
"""

from __future__ import annotations

import json
from typing import IO, Any

__all__ = ["JsonArrayWriter", "JsonlWriter", "TerminalJson", "dumps", "escape_for_terminal"]

try:
    import orjson

    _OPT = orjson.OPT_APPEND_NEWLINE
    _orjson_dumps = orjson.dumps

    def dumps(record: Any) -> bytes:
        """``record`` as one line of compact JSON, newline included."""
        try:
            return _orjson_dumps(record, option=_OPT)
        except TypeError:  # e.g. a str with lone surrogates, an int beyond 64 bits
            return _std_dumps(record)

except ImportError:  # pragma: no cover - orjson is a dependency
    _OPT = 0

    def dumps(record: Any) -> bytes:
        return _std_dumps(record)

    def _orjson_dumps(record: Any, option: int = 0) -> bytes:
        return _std_dumps(record)


def _std_dumps(record: Any) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            .encode("utf-8", "backslashreplace") + b"\n")


#: Lines a ``batch`` writer joins into one ``write`` call.
_BATCH = 64


class JsonlWriter:
    """One JSON object per line on a binary stream.

    ``batch=True`` (not with ``line_buffered``): lines are written 64 at a time, one
    ``write`` call each, whatever the stream's own buffering (``PYTHONUNBUFFERED=1`` makes
    stdout a raw file: a system call per line); :meth:`close` writes the rest."""

    def __init__(self, stream: IO[bytes], *, line_buffered: bool = False,
                 batch: bool = False) -> None:
        self.stream = stream
        self.line_buffered = line_buffered
        self.count = 0
        self._write = stream.write
        self._pending: list[bytes] | None = [] if batch and not line_buffered else None

    def write(self, record: Any) -> None:
        try:  # dumps() written out: this is once per record of a whole decode
            line = _orjson_dumps(record, option=_OPT)
        except TypeError:
            line = _std_dumps(record)
        pending = self._pending
        if pending is not None:
            pending.append(line)
            if len(pending) >= _BATCH:
                self._write(b"".join(pending))
                pending.clear()
        else:
            self._write(line)
            if self.line_buffered:
                self.stream.flush()
        self.count += 1

    def write_line(self, line: bytes) -> None:
        """A record already encoded as one JSON line, newline included (the C extension's
        hep3_jsonl writes exactly orjson's bytes)."""
        pending = self._pending
        if pending is not None:
            pending.append(line)
            if len(pending) >= _BATCH:
                self._write(b"".join(pending))
                pending.clear()
        else:
            self._write(line)
            if self.line_buffered:
                self.stream.flush()
        self.count += 1

    def drain(self) -> None:
        """Hand the batched lines to the stream (no flush): call it before writing anything
        else (a diagnostic on stderr) so the two interleave as they would without batching."""
        pending = self._pending
        if pending:
            self._write(b"".join(pending))
            pending.clear()

    def close(self) -> None:
        self.drain()
        self.stream.flush()


class JsonArrayWriter:
    """One JSON array, written as records come (``[`` first, ``]`` on close)."""

    def __init__(self, stream: IO[bytes], *, line_buffered: bool = False) -> None:
        self.stream = stream
        self.line_buffered = line_buffered
        self.count = 0
        self.closed = False

    def write(self, record: Any) -> None:
        self.stream.write((b"[\n" if self.count == 0 else b",\n") + dumps(record)[:-1])
        self.count += 1
        if self.line_buffered:
            self.stream.flush()

    def close(self) -> None:
        """End the array (valid JSON even after an error part way)."""
        if not self.closed:
            self.closed = True
            self.stream.write(b"\n]\n" if self.count else b"[]\n")
        self.stream.flush()


# -- JSON on a terminal ---------------------------------------------------------------------
#: Characters JSON may leave raw but a terminal must not get from packet data: DEL, the C1
#: controls (0x9b is an 8-bit CSI), format characters (BiDi overrides and isolates, zero
#: width), line/paragraph separators, private use, surrogates: the categories the table
#: renderers escape (heptool.sip.summary.printable).
_TERMINAL_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp", "Co"))


def _u_escape(ch: str) -> str:
    o = ord(ch)
    if o > 0xFFFF:  # JSON spells an astral character as its UTF-16 surrogate pair
        o -= 0x10000
        return f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}"
    return f"\\u{o:04x}"


def escape_for_terminal(text: str) -> str:
    """JSON text with DEL, C1, BiDi and the other invisible controls spelled ``\\uXXXX``: the
    same JSON value (they can only occur inside strings, where JSON allows any character
    escaped), safe to print on a terminal.  C0 controls are escaped by JSON already."""
    if text.isascii():
        return text.replace("\x7f", "\\u007f") if "\x7f" in text else text
    import unicodedata

    cat = unicodedata.category
    unsafe = _TERMINAL_UNSAFE
    return "".join(_u_escape(ch) if ch == "\x7f" or (ord(ch) > 0x7F and cat(ch) in unsafe)
                   else ch for ch in text)


class TerminalJson:
    """A stream wrapper for JSON going to a terminal: every ``write`` (bytes of UTF-8, or
    str) goes through :func:`escape_for_terminal`.  Writes must be whole UTF-8 sequences,
    as every JSON writer here makes them (whole records, whole pieces of a document).
    Pipes and files never get this: their JSON stays byte for byte what the encoder made."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: Any) -> int:
        if isinstance(data, str):
            self.stream.write(escape_for_terminal(data))
        else:
            self.stream.write(escape_for_terminal(bytes(data).decode("utf-8", "surrogateescape"))
                              .encode("utf-8", "surrogateescape"))
        return len(data)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
