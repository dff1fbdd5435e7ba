"""The ``heptool`` command line: a lazily loaded click group and the one error boundary.

Adding a command
----------------
Write ``heptool/cli/cmd_<verb>.py`` defining ``<verb>_command`` (a ``click.Command`` with a
docstring and an ``epilog`` of examples), then add one line to :data:`COMMANDS`::

    "decode": "heptool.cli.cmd_decode:decode_command",

The module is imported only when the command is invoked, completed or listed in ``--help``; keep
its own top-level imports light (no scapy, no rich) because every shell TAB press imports it.
Then run ``python scripts/gen_docs.py`` to regenerate ``man/`` and ``completions/``.

Errors
------
Commands raise; they do not print errors or call ``sys.exit``. :func:`main` maps what escapes to
an :class:`~heptool.cli.exit.ExitStatus` and one ``Error: ...`` line on stderr: click's
exceptions keep their ``exit_code`` (usage errors 2), every ``heptool.core.errors.HepError``
(bad HEP, ``InputError``, ``CaptureError``) is 3 except ``DeliveryError`` (1), OS errors 1,
Ctrl-C 130, a closed stdout 141. Library layers raise heptool's own errors and never choose
exit statuses; commands need not catch them. To exit with a
status without an exception (e.g. BAD_INPUT after a lenient run), call
``click.get_current_context().exit(ExitStatus.BAD_INPUT)``.

This module imports only click and ``heptool.cli.env``/``heptool.cli.exit``: see
``tests/test_architecture.py`` for why import weight matters here.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from heptool.cli.env import Environment
from heptool.cli.exit import ExitStatus

__all__ = ["COMMANDS", "Environment", "ExitStatus", "LazyGroup", "cli", "main"]

#: Subcommand name -> "module:attribute" of its click command, imported on first use.
#: This dict is the registry: add new commands here (kept sorted).
COMMANDS: dict[str, str] = {
    "convert": "heptool.cli.cmd_convert:convert_command",
    "correlate": "heptool.cli.cmd_correlate:correlate_command",
    "decode": "heptool.cli.cmd_decode:decode_command",
    "encode": "heptool.cli.cmd_encode:encode_command",
    "flow": "heptool.cli.cmd_flow:flow_command",
    "listen": "heptool.cli.cmd_listen:listen_command",
    "send": "heptool.cli.cmd_send:send_command",
}

EPILOG = """\
\b
Examples:
  heptool --version
  heptool --help
  eval "$(_HEPTOOL_COMPLETE=bash_source heptool)"   # enable bash completion
"""


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when needed.

    ``lazy_subcommands`` maps a command name to ``"package.module:attribute"``. The mapping is
    kept by reference, so entries added to it later (tests do this) are seen.
    After click ``docs/complex.md`` ("Lazily Loading Subcommands").
    """

    def __init__(
        self, *args: Any, lazy_subcommands: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands: Mapping[str, str] = (
            lazy_subcommands if lazy_subcommands is not None else {}
        )

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        target = self.lazy_subcommands[cmd_name]
        module_name, sep, attr = target.partition(":")
        if not sep or not module_name or not attr:
            raise ValueError(f"lazy command {cmd_name!r}: {target!r} is not 'module:attribute'")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"lazy command {cmd_name!r}: {target} is not a click.Command")
        return command


class _StdoutEpipe(Exception):
    """Carries an EPIPE ``OSError`` past click, which would otherwise swallow it.

    click's ``main`` turns *every* EPIPE into a silent ``sys.exit(1)``, including one from a
    socket; :func:`main` needs the original to tell "stdout reader went away" from a real error.
    """

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _HeptoolGroup(LazyGroup):
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:  # --help and --version write here, during parsing
            return super().make_context(*args, **kwargs)
        except OSError as e:
            if e.errno == errno.EPIPE:
                raise _StdoutEpipe(e) from e
            raise

    def invoke(self, ctx: click.Context) -> None:
        # Drop the subcommand's return value, so that what ``self.main(standalone_mode=False)``
        # returns is unambiguous: None on success, or the status given to ``ctx.exit()``.
        try:
            super().invoke(ctx)
        except OSError as e:
            if e.errno == errno.EPIPE:
                raise _StdoutEpipe(e) from e
            raise


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from heptool import __version__

    click.echo(f"heptool {__version__}")
    ctx.exit(ExitStatus.OK)


@click.group(
    cls=_HeptoolGroup,
    lazy_subcommands=COMMANDS,
    short_help="command-line toolkit for HEP, the Homer Encapsulation Protocol",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print 'heptool <version>' and exit.",
)
@click.option(
    "--traceback",
    is_flag=True,
    expose_value=False,
    help="On error, show the full Python traceback instead of a one-line message.",
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Command-line toolkit for HEP, the Homer Encapsulation Protocol.

    HEP (v1, v2, v3) wraps a captured SIP, RTCP, log or other signalling message together
    with its addresses, ports and timestamps, so that capture agents can mirror traffic to a
    collector such as Homer.

    Data goes to standard output; messages and errors go to standard error.
    """
    # Commands get the Environment through @pass_env; tests inject one through ``obj``.
    ctx.ensure_object(Environment)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _error(message: str) -> None:
    click.echo(f"Error: {_one_line(message)}", err=True)


def _stdout_is_broken() -> bool:
    """True if stdout is a pipe or socket whose reader has gone away.

    Only then does an EPIPE mean "the reader of our output stopped reading" (``| head``); an
    EPIPE from anything else, e.g. a TCP peer closing during ``send``, is a real error.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # StringIO/CliRunner/closed: cannot EPIPE
        return False
    try:
        import select

        poller = select.poll()
    except (ImportError, AttributeError):  # no poll() (Windows): assume it was stdout
        return True
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush of stdout cannot fail noisily."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, ValueError, OSError):
        pass


def _pop_traceback(args: list[str]) -> bool:
    """Remove every ``--traceback`` before ``--`` from ``args``; return whether there was one.

    Handled here rather than by click so that it works anywhere on the command line
    (``heptool decode x.hep --traceback`` too) and for errors raised while click parses.
    The group's ``--traceback`` option exists to document it in --help and the man page.
    """
    end = args.index("--") if "--" in args else len(args)
    found = "--traceback" in args[:end]
    args[:end] = [arg for arg in args[:end] if arg != "--traceback"]
    return found


def main(args: Sequence[str] | None = None, *, env: Environment | None = None) -> int:
    """Run the ``heptool`` CLI and return its exit status; the single error boundary.

    ``args`` defaults to ``sys.argv[1:]``; ``env`` is passed to commands as click's ``obj``.
    With ``--traceback``, exceptions (other than click's own usage errors) propagate.
    """
    args = list(sys.argv[1:] if args is None else args)
    traceback = _pop_traceback(args)
    try:
        try:
            # Non-standalone: click returns the ctx.exit() status (--help, --version and
            # commands that call ctx.exit) and raises everything else to us.
            status = cli.main(args=args, prog_name="heptool", standalone_mode=False, obj=env)
            sys.stdout.flush()  # surface EPIPE here, not at interpreter shutdown
        except _StdoutEpipe as e:
            raise e.error from None
        return ExitStatus.OK if status is None else int(status)
    except click.ClickException as e:  # UsageError -> 2, BadParameter -> 2, ...
        e.show()
        return e.exit_code
    except click.Abort as e:  # click turns Ctrl-C and EOF into Abort
        if traceback:
            raise
        if isinstance(e.__cause__, KeyboardInterrupt):
            return ExitStatus.INTERRUPTED
        _error("aborted")
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        if traceback:
            raise
        click.echo(err=True)
        return ExitStatus.INTERRUPTED
    except OSError as e:
        if e.errno == errno.EPIPE and _stdout_is_broken():
            # Our reader went away (`heptool ... | head`). Nothing to report; exit like a process
            # killed by SIGPIPE, which Python ignores and turns into this exception.
            _silence_stdout()
            return ExitStatus.BROKEN_PIPE
        if traceback:
            raise
        if e.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT) and e.filename is None:
            _error(f"{e.strerror} while writing the output (disk full or file-size limit): "
                   "what was written is readable, its last record may be cut")
        elif e.strerror:  # "No such file or directory: x.pcap" rather than "[Errno 2] ..."
            _error(e.strerror if e.filename is None else f"{e.strerror}: {e.filename}")
        else:
            _error(str(e) or type(e).__name__)
        return ExitStatus.ERROR
    except Exception as e:
        if traceback:
            raise
        # A HepError can only have been raised if heptool.core.errors is loaded, so look there
        # rather than importing the core on this path.
        errors = sys.modules.get("heptool.core.errors")
        if errors is not None and isinstance(e, errors.HepError):
            # The whole tree: decode/value errors, InputError and CaptureError (bad input, 3);
            # DeliveryError (packets a target did not take: 1, like the OS errors).
            _error(str(e))
            if isinstance(e, errors.DeliveryError):
                return ExitStatus.ERROR
            return ExitStatus.BAD_INPUT
        _error(f"internal error: {type(e).__name__}: {e} (rerun with --traceback)")
        return ExitStatus.ERROR
