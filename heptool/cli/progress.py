"""Progress bars on stderr: ONE rule for every command that reads files (decode, convert,
correlate, flow).  The commands pass :func:`progress_bars`'s result to the library
(:class:`heptool.pipeline.reader.MessageReader`, :class:`heptool.pipeline.convert.Conversion`),
which calls it per input file with its size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heptool.cli.env import Environment

__all__ = ["PROGRESS_MIN_BYTES", "ProgressBar", "progress_bars"]

#: Show a progress bar for input files at least this big (decode, convert, correlate, flow).
PROGRESS_MIN_BYTES = 16 * 1024 * 1024


class ProgressBar:
    """A rich progress bar on stderr for one big input file (bytes read of its size);
    transient: it is gone when :meth:`stop` is called."""

    def __init__(self, env: Environment, name: str, size: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), console=env.error_console, transient=True)
        self.task = self.progress.add_task(name, total=size)
        self.progress.start()

    def update(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def stop(self) -> None:
        self.progress.stop()


def progress_bars(env: Environment, *, to_terminal: bool = False) -> Callable[[str, int], Any] | None:
    """THE rule for progress bars, one for every command that reads files (decode, convert,
    correlate, flow): ``start(name, size)`` giving a :class:`ProgressBar` for an input file
    of at least :data:`PROGRESS_MIN_BYTES` (None for a smaller one), or None (no bars at
    all) unless stderr is a terminal and the output does not stream to it (``to_terminal``):
    never in pipes, files or CI.  Standard input (no known size) never has one: the
    callers ask only for files."""
    if not env.stderr_isatty or to_terminal:
        return None

    def start(name: str, size: int) -> ProgressBar | None:
        return ProgressBar(env, name, size) if size >= PROGRESS_MIN_BYTES else None

    return start
