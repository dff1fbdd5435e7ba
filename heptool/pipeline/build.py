"""Messages built from fields: the defaults and small rewrites ``encode`` and ``send`` share.

No click: a library user builds packets the same way the commands do.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from typing import Any

__all__ = ["apply_chunks", "loopback_like", "now"]


def now() -> tuple[int, int]:
    """The current time as (ts_sec, ts_usec)."""
    ns = _time.time_ns()
    return ns // 1_000_000_000, (ns // 1000) % 1_000_000


def loopback_like(addr: str) -> str:
    """The loopback address of ``addr``'s family (``::1`` or ``127.0.0.1``)."""
    return "::1" if ":" in addr else "127.0.0.1"


def apply_chunks(m: Any, chunks: Sequence[Any] | None) -> None:
    """Apply ``--chunk`` settings (:class:`heptool.core.chunkspec.ChunkSetting`) to ``m``."""
    if chunks:
        from heptool.core.chunkspec import apply_chunks as apply

        apply(m, chunks)
