"""The Environment: everything a command needs from the process, in one injectable object.

Commands never touch ``sys.stdin``/``sys.stdout``/``sys.stderr`` or call ``isatty()`` themselves;
they ask the Environment. Tests inject one through click's ``obj`` (httpie's ``MockEnvironment``
idea)::

    env = Environment(stdout_isatty=True)
    CliRunner().invoke(cli, ["decode", "x.hep"], obj=env)

and commands receive it with ``@pass_env``. The rich consoles are built on first use, so rich is
only imported by commands that actually render something with it.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:  # pragma: no cover - typing only; rich is imported lazily at runtime
    from rich.console import Console

ColorMode = Literal["auto", "always", "never"]


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or closed
        return False


@dataclass
class Environment:
    """Streams and terminal facts for one command invocation.

    Streams default to the ``sys`` streams *at construction time* (so click's ``CliRunner``,
    which swaps them during ``invoke``, is honoured). The ``*_isatty`` flags default to the
    streams' own ``isatty()``; pass them explicitly to pretend to be (or not be) a terminal.
    """

    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool | None = None
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None
    #: ``--color``: "auto" colours terminals only; rich also honours NO_COLOR and FORCE_COLOR.
    color: ColorMode = "auto"
    #: Number of ``-v`` flags; commands print extra diagnostics to stderr when > 0.
    verbosity: int = 0
    #: ``--width N``: the width of text views (tables, trees, the flow ladder); see :attr:`text_width`.
    width: int | None = None
    #: ``--localtime``: text views show clock times in the local zone instead of UTC.
    localtime: bool = False

    def __post_init__(self) -> None:
        if self.stdin_isatty is None:
            self.stdin_isatty = _isatty(self.stdin)
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)
        if self.stderr_isatty is None:
            self.stderr_isatty = _isatty(self.stderr)

    @property
    def text_width(self) -> int | None:
        """How wide text views may be, in columns; None: no limit (never cut, never wrap).

        ``--width N`` first, then the ``COLUMNS`` environment variable, then the terminal's
        width when stdout is a terminal. Outside a terminal (a pipe, a file, ``-o``) there is
        no limit: lines are as long as their contents, so no address or port is ever cut.
        """
        if self.width:
            return self.width
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        if self.stdout_isatty:
            try:
                return os.get_terminal_size(self.stdout.fileno()).columns
            except (AttributeError, ValueError, OSError):
                return 80
        return None

    def use_color(self, terminal: bool) -> bool:
        """Whether a plain-text view (not drawn by rich) colours what it writes to a terminal
        (``terminal`` true) or elsewhere, by rich's rules: ``--color always``/``never``;
        with auto, NO_COLOR (set, not empty) says no, then FORCE_COLOR yes, then only a
        terminal (not TERM=dumb) gets colour."""
        if self.color == "always":
            return True
        if self.color == "never" or os.environ.get("NO_COLOR"):
            return False
        if os.environ.get("FORCE_COLOR"):
            return True
        return terminal and os.environ.get("TERM", "") not in ("dumb", "unknown")

    @property
    def stdin_binary(self) -> IO[bytes]:
        """The byte stream under ``stdin`` (HEP and pcap input are binary)."""
        return getattr(self.stdin, "buffer", self.stdin)  # type: ignore[no-any-return]

    @property
    def stdout_binary(self) -> IO[bytes]:
        """The byte stream under ``stdout``; flush ``stdout`` first if you mixed text into it."""
        return getattr(self.stdout, "buffer", self.stdout)  # type: ignore[no-any-return]

    @cached_property
    def console(self) -> Console:
        """A rich Console on stdout (data: tables, trees). Built, and rich imported, on first use."""
        return self.make_console(self.stdout, bool(self.stdout_isatty))

    @cached_property
    def error_console(self) -> Console:
        """A rich Console on stderr (diagnostics, progress, the ``listen`` banner)."""
        return self.make_console(self.stderr, bool(self.stderr_isatty))

    def make_console(self, file: IO[str], isatty: bool) -> Console:
        from rich.console import Console

        # rich meets a reader gone away (``| head``) with its own exit 1; on stdout, let the
        # EPIPE reach heptool.cli.main instead, which exits 141 as for every other output
        make = _stdout_console_class() if file is self.stdout else Console
        if self.color == "always":
            return make(file=file, force_terminal=True)
        if self.color == "never":
            return make(file=file, no_color=True, color_system=None)
        # auto: trust our (possibly injected) isatty flag when it says "terminal"; otherwise let
        # rich decide, which keeps FORCE_COLOR working for pipes.
        return make(file=file, force_terminal=True if isatty else None)


@functools.cache
def _stdout_console_class() -> type[Console]:
    """A rich Console whose broken pipe is an ``OSError(EPIPE)`` (rich's default: exit 1)."""
    from rich.console import Console

    class StdoutConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True  # nothing more to write (rich's default does the same)
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    return StdoutConsole


#: Decorator passing the current Environment as the first argument of a command callback,
#: creating a default one if the invocation did not inject one through ``obj``.
pass_env = click.make_pass_decorator(Environment, ensure=True)
