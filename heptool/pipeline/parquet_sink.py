"""``listen --write-parquet``: the collector's Parquet output (:mod:`heptool.output.parquet`).

:func:`open_parquet` opens the writer as listen wants it (row groups of
:data:`~heptool.output.parquet.LISTEN_ROW_GROUP` rows built and written by a thread, so the
receive loop never waits for one; rotated by size and time); :func:`with_rows` wraps the
collector's ``emit(record, message, data)`` so that every accepted message also becomes a row
(a HEPv1 message, which carries no time, is timed by its arrival).  The writer has the
``tick``/``reopen``/``close``/``files``/``base`` of a :class:`heptool.output.files.RotatingFile`,
so the collector rotates, reopens (SIGHUP) and closes it with its other files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["open_parquet", "with_rows"]

Emit = Callable[[Any, Any, bytes], None]


def open_parquet(directory: str, *, size: int | None, every: float | None) -> Any:
    """The :class:`heptool.output.parquet.ParquetWriter` of ``listen --write-parquet DIR``
    (OSError when DIR cannot be made; ParquetUnavailableError without pyarrow)."""
    from heptool.output.parquet import LISTEN_ROW_GROUP, ParquetWriter

    return ParquetWriter(directory, size=size, every=every, background=True,
                         row_group=LISTEN_ROW_GROUP)


def with_rows(writer: Any, emit: Emit | None) -> Emit:
    """``emit`` (None: nothing else) followed by the message's row in ``writer``."""
    add = writer.write
    now = time.time
    if emit is None:
        return lambda rec, m, data: add(m, now())
    user = emit

    def both(rec: Any, m: Any, data: bytes) -> None:
        user(rec, m, data)
        add(m, now())

    return both
