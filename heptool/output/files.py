"""Files written in whole records, optionally rotated: the ``listen --write-*`` outputs.

:class:`RecordFile` buffers what a writer writes and commits it with one system call between
records, so the file on disk always ends at a record boundary (a pcap stays readable up to
its last record even after SIGKILL). :class:`RotatingFile` starts a new one by size and/or
time and names them ``NAME-00000.EXT``, ``NAME-00001.EXT``...
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["RecordFile", "RotatingFile"]


class RecordFile:
    """A file written in whole records: ``write`` only buffers; :meth:`commit` writes what
    was buffered with one system call, and is only called between records, so the file on
    disk always ends at a record boundary (readable after SIGKILL)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.buf = bytearray()
        self.size = 0
        self.opened = time.monotonic()

    def write(self, b: bytes) -> int:
        self.buf += b
        return len(b)

    def flush(self) -> None:
        """Nothing: a writer's flush must not split a record (see :meth:`commit`)."""

    def commit(self) -> None:
        buf = self.buf
        if buf:
            view = memoryview(buf)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
            self.size += len(buf)
            del view
            buf.clear()

    def close(self) -> None:
        try:
            self.commit()
        finally:
            os.close(self.fd)


class RotatingFile:
    """One output file, rotated by size and/or time (``listen --write-*``).

    ``make(file)`` builds the writer (e.g. :class:`heptool.capture.writer.PcapWriter`) on each
    new :class:`RecordFile`; the writer is ``.writer``, the file ``.file``. Without ``size``
    and ``every`` the one file is ``path``; otherwise ``NAME-00000.EXT``, ``NAME-00001.EXT``...
    ``files`` lists every file opened, in order. Callers call :meth:`after_record` after
    each record and :meth:`tick` now and then (commits the buffer; rotates when due).
    """

    def __init__(self, path: str, make: Callable[[IO[bytes]], Any], *, size: int | None,
                 every: float | None) -> None:
        self.base = path
        self.make = make
        self.size = size
        self.every = every
        self.n = 0
        self.files: list[str] = []
        self.records = 0
        self._open()

    def _name(self) -> str:
        if self.size is None and self.every is None:
            return self.base
        stem, ext = os.path.splitext(self.base)
        return f"{stem}-{self.n:05d}{ext}"

    def _open(self) -> None:
        name = self._name()
        self.file = RecordFile(name)
        self.writer = self.make(self.file)  # type: ignore[arg-type]
        self.file.commit()  # a pcap's file header: the file is valid from the start
        self.files.append(name)
        self.n += 1

    def after_record(self) -> None:
        f = self.file
        if len(f.buf) >= 1 << 20:
            f.commit()
        if self.size is not None and f.size + len(f.buf) >= self.size:
            self.rotate()

    def tick(self, now: float) -> None:
        self.file.commit()
        if self.every is not None and now - self.file.opened >= self.every:
            self.rotate()

    def rotate(self) -> None:
        self.close_writer()
        self._open()

    def close_writer(self) -> None:
        close = getattr(self.writer, "close", None)
        if close is not None:
            close()
        self.file.close()

    def close(self) -> None:
        self.close_writer()
