"""The records of ``listen --workers``' workers on one output, whole chunks at a time.

Each worker gathers the records it formats into chunks that end between records
(:class:`ChunkStream`) and writes each chunk whole, under a lock all workers share, to the
descriptor they all inherited (:class:`SharedOutput`), so no record passes through a third
process and lines never interleave.  Linux/POSIX (``fcntl``); no click, no rich.
"""

from __future__ import annotations

import fcntl
import os
import select
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ChunkStream", "SharedOutput", "output_descriptor"]


class ChunkStream:
    """A binary stream for a worker's records: whole writes are gathered and handed to
    ``deliver`` as one chunk, so a chunk always ends between records (the writers write one
    record per ``write``): past ``limit`` bytes, at a :meth:`flush` once the oldest byte
    waited ``delay`` seconds (few chunks when packets come one by one), and at :meth:`send`
    (the worker's 0.1 s tick, and its end).  ``prefix`` starts every chunk (a pipe
    message's tag)."""

    def __init__(self, deliver: Callable[[bytearray], None], prefix: bytes = b"",
                 limit: int = 1 << 16, delay: float = 0.02) -> None:
        self.deliver = deliver
        self.limit = limit
        self.delay = delay
        self.base = len(prefix)
        self.buf = bytearray(prefix)
        self.since = 0.0

    def write(self, data: bytes) -> int:
        if len(self.buf) == self.base:
            self.since = time.monotonic()
        self.buf += data
        if len(self.buf) >= self.limit:
            self.send()
        return len(data)

    def flush(self) -> None:
        if len(self.buf) > self.base and time.monotonic() - self.since >= self.delay:
            self.send()

    def send(self) -> None:
        if len(self.buf) > self.base:
            try:
                self.deliver(self.buf)
            finally:
                del self.buf[self.base:]

    def isatty(self) -> bool:
        return False


class SharedOutput:
    """The workers' one output descriptor ``fd`` (inherited: they share its file offset)
    and the lock that lets one worker at a time write a chunk to it.

    The lock is ``lockf`` on ``lock_fd``, a file the supervisor opened before the fork: a
    POSIX record lock belongs to a process, so every worker takes it for itself, and the
    kernel releases it when a holder dies (a worker killed while writing never blocks the
    others).  A chunk is written whole while the lock is held, however many ``write`` calls
    it takes (a pipe's reader may take it piece by piece)."""

    def __init__(self, fd: int, lock_fd: int) -> None:
        self.fd = fd
        self.lock_fd = lock_fd
        self.error: OSError | None = None

    def write_chunk(self, chunk: bytearray) -> None:
        """Write ``chunk`` whole, or raise the OSError that stopped it (kept in ``error``:
        nothing is written after it)."""
        if self.error is not None:
            return
        view = memoryview(chunk)
        try:
            fcntl.lockf(self.lock_fd, fcntl.LOCK_EX)
            try:
                off = 0
                while off < len(view):
                    try:
                        off += os.write(self.fd, view[off:])
                    except BlockingIOError:  # a non-blocking descriptor (given us so)
                        select.select([], [self.fd], [], 1.0)
            finally:
                fcntl.lockf(self.lock_fd, fcntl.LOCK_UN)
        except OSError as e:
            self.error = e
            raise
        finally:
            view.release()


def output_descriptor(sink: Any) -> int | None:
    """``sink``'s descriptor when the workers can write to it themselves (None: an
    in-memory stream, which only the supervisor holds)."""
    try:
        fd = sink.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None
