"""Files written in whole records, optionally rotated: the ``listen --write-*`` outputs.

:class:`RecordFile` buffers what a writer writes and commits it with one system call between
records, so the file on disk always ends at a record boundary (a pcap stays readable up to
its last record even after SIGKILL). :class:`RotatingFile` starts a new one by size and/or
time and names them ``NAME-00000.EXT``, ``NAME-00001.EXT``...

Captured data is never destroyed: a rotated output continues the numbering after the highest
``NAME-NNNNN.EXT`` already there (and never opens an existing one); an unrotated output
refuses a file that already holds data (:class:`OutputExistsError`) unless ``overwrite``.
:meth:`RotatingFile.reopen` (listen's SIGHUP, for logrotate) starts the next numbered file,
or reopens the name of an unrotated one after it was moved away.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["OutputExistsError", "RecordFile", "RotatingFile", "next_index"]


class OutputExistsError(FileExistsError):
    """An unrotated output file already holds data (``size`` bytes) and ``overwrite`` was
    not given."""

    def __init__(self, path: str, size: int) -> None:
        super().__init__(errno.EEXIST, f"already holds {size:,} bytes", path)
        self.path = path
        self.size = size


class RecordFile:
    """A file written in whole records: ``write`` only buffers; :meth:`commit` writes what
    was buffered with one system call, and is only called between records, so the file on
    disk always ends at a record boundary (readable after SIGKILL).

    ``mode``: ``"new"`` creates the file and fails (FileExistsError) when it exists;
    ``"append"`` creates it or writes after what it holds; ``"replace"`` truncates it."""

    def __init__(self, path: str, mode: str = "replace") -> None:
        flags = os.O_WRONLY | os.O_CREAT | {"new": os.O_EXCL, "append": os.O_APPEND,
                                            "replace": os.O_TRUNC}[mode]
        self.path = path
        self.fd = os.open(path, flags, 0o644)
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

    def same_file(self, path: str) -> bool:
        """Whether ``path`` still names this open file (False once it was moved away)."""
        try:
            a, b = os.stat(path), os.fstat(self.fd)
        except OSError:
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def close(self) -> None:
        try:
            self.commit()
        finally:
            os.close(self.fd)


def _size_of_data(path: str) -> int:
    """Bytes ``path`` holds when it is a regular file (0: absent, empty or not a regular
    file such as /dev/null or a FIFO)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def next_index(path: str) -> int:
    """The number after the highest ``NAME-NNNNN.EXT`` rotated file of ``path`` already in
    its directory (0 when there is none)."""
    directory, base = os.path.split(path)
    stem, ext = os.path.splitext(base)
    pattern = re.compile(re.escape(stem) + r"-(\d{5,})" + re.escape(ext) + r"\Z")
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return 0
    numbers = [int(m.group(1)) for m in map(pattern.match, names) if m]
    return max(numbers) + 1 if numbers else 0


class RotatingFile:
    """One output file, rotated by size and/or time (``listen --write-*``).

    ``make(file)`` builds the writer (e.g. :class:`heptool.capture.writer.PcapWriter`) on each
    new :class:`RecordFile`; the writer is ``.writer``, the file ``.file``. Without ``size``
    and ``every`` the one file is ``path`` (one already holding data is refused,
    :class:`OutputExistsError`, unless ``overwrite``); otherwise ``NAME-NNNNN.EXT``, numbered
    on after the highest already in the directory. ``files`` lists every file opened, in
    order. Callers call :meth:`after_record` after each record and :meth:`tick` now and then
    (commits the buffer; rotates when due).
    """

    def __init__(self, path: str, make: Callable[[IO[bytes]], Any], *, size: int | None,
                 every: float | None, overwrite: bool = False) -> None:
        self.base = path
        self.make = make
        self.size = size
        self.every = every
        self.overwrite = overwrite
        self.rotated = size is not None or every is not None
        self.n = next_index(path) if self.rotated else 0
        self.files: list[str] = []
        self.records = 0
        if not self.rotated and not overwrite:
            held = _size_of_data(path)
            if held:
                raise OutputExistsError(path, held)
        self._open()

    def _name(self) -> str:
        stem, ext = os.path.splitext(self.base)
        return f"{stem}-{self.n:05d}{ext}"

    def _open(self) -> None:
        if self.rotated:
            for _ in range(100_000):  # another process may be writing the same names
                name = self._name()
                try:
                    file = RecordFile(name, "new")
                    break
                except FileExistsError:
                    self.n += 1
            else:
                raise OutputExistsError(self._name(), _size_of_data(self._name()))
        else:
            name = self.base
            file = RecordFile(name, "replace" if self.overwrite and not self.files
                              else "append")
        self.file = file
        self.writer = self.make(file)  # type: ignore[arg-type]
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

    def reopen(self) -> str | None:
        """Between records: start the next file (logrotate moved the file away, listen got
        SIGHUP). Rotated: the next number. Unrotated: ``path`` again when it was moved away
        or is empty (a new file; what was written is in the moved one); when ``path`` is
        still this file, nothing changes. A file of that name holding other data is left
        alone (writing goes on in the moved one): the text of that warning is returned."""
        if not self.rotated:
            if self.file.same_file(self.base):
                self.file.commit()
                return None
            held = _size_of_data(self.base)
            if held:
                self.file.commit()
                return (f"{self.base} was replaced by a file holding {held:,} bytes: not "
                        "touched; still writing the file that was moved away")
        self.rotate()
        return None

    def close_writer(self) -> None:
        close = getattr(self.writer, "close", None)
        if close is not None:
            close()
        self.file.close()

    def close(self) -> None:
        self.close_writer()
