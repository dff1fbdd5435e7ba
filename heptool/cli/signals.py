"""Signals in the commands: SIGINT and SIGTERM end a run cleanly (with its summary, the
outputs complete) instead of killing the process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["stopping_on_signals"]


@contextlib.contextmanager
def stopping_on_signals(handler: Any) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM while the block runs, the previous ones restored
    after (where signals can be set: not outside the main thread, as in tests).  send,
    listen, live captures and the kafka:// consumers use it to end their run cleanly."""
    import signal

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, h in previous.items():
            try:
                signal.signal(sig, h)
            except (ValueError, OSError):
                pass
