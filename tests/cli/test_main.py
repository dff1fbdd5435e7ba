"""The CLI entry point: --version/--help, lazy command loading, Environment injection, and the
error boundary in ``heptool.cli.main`` (one row of the exit table per test, httpie-style).

Fake commands live in a module written to ``tmp_path`` and are registered through the real
``COMMANDS`` registry, so these tests exercise the same lazy path as production commands.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import heptool
import heptool.cli
from heptool.cli import COMMANDS, cli, main
from heptool.cli.env import Environment
from heptool.cli.exit import ExitStatus

ROOT = Path(__file__).resolve().parents[2]
FAKE_MODULE = "heptool_test_fake_commands"

FAKE_SOURCE = '''
import sys
import click
from heptool.cli.env import pass_env
from heptool.cli.exit import ExitStatus


@click.command("ok", epilog="heptool ok")
def ok_command():
    """Print ok."""
    click.echo("ok")
    return 42  # return values are ignored, not taken as exit statuses


@click.command("raise")
@click.argument("kind")
def raise_command(kind):
    """Raise the exception named by KIND."""
    if kind == "hep":
        from heptool.core.errors import HepDecodeError
        raise HepDecodeError("bad magic b'XXXX'\\nsecond line", offset=0)
    if kind == "internal":
        raise RuntimeError("boom\\nsecond line")
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "badparam":
        raise click.BadParameter("not a chunk", param_hint="'--chunk'")
    if kind == "clickexc3":
        exc = click.ClickException("not a pcap file")
        exc.exit_code = ExitStatus.BAD_INPUT
        raise exc
    if kind == "exit3":
        click.get_current_context().exit(ExitStatus.BAD_INPUT)
    if kind == "nofile":
        open("/nonexistent/heptool-test.pcap", "rb")
    if kind == "socket-epipe":  # EPIPE that is not about stdout, e.g. a TCP peer went away
        raise BrokenPipeError(32, "Broken pipe")
    if kind == "capture":  # a real library call on a damaged capture, not caught by the command
        import io
        from heptool.capture.pcap import iter_frames
        list(iter_frames(io.BytesIO(b"\\xd4\\xc3\\xb2\\xa1" + bytes(20) + b"\\x01\\x02")))
    if kind == "input":
        import io
        from heptool.capture.inputs import iter_input
        list(iter_input(io.BytesIO(b"this is no capture at all\\n" * 3)))
    if kind == "delivery":
        from heptool.core.errors import DeliveryError
        raise DeliveryError("3 packets NOT delivered to tcp://127.0.0.1:9")
    raise AssertionError(kind)


@click.command("spew")
def spew_command():
    """Write far more than a pipe buffer holds."""
    line = "x" * 1023 + "\\n"
    for _ in range(4096):
        sys.stdout.write(line)


@click.command("env")
@pass_env
def env_command(env):
    """Report what the Environment says."""
    click.echo(f"stdout_isatty={env.stdout_isatty} stdin_isatty={env.stdin_isatty}")
'''

FAKE_COMMANDS = {
    name: f"{FAKE_MODULE}:{name.replace('-', '_')}_command"
    for name in ("ok", "raise", "spew", "env")
}


@pytest.fixture
def fake_commands(tmp_path, monkeypatch):
    """Register the fake commands in the real lazy registry, for this test only."""
    (tmp_path / f"{FAKE_MODULE}.py").write_text(FAKE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, FAKE_MODULE, raising=False)
    for name, target in FAKE_COMMANDS.items():
        monkeypatch.setitem(COMMANDS, name, target)
    return tmp_path


def run_main(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def run_python(code_or_module, *args, stdout=subprocess.PIPE, extra_path=None, **kwargs):
    """Run a fresh interpreter (``-m module`` or ``-c code``) with the checkout importable."""
    env = dict(os.environ)
    paths = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *code_or_module, *args],
        check=False,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
        **kwargs,
    )


# A -c program that registers the fake commands, then runs the real main().
FAKE_MAIN = textwrap.dedent(
    f"""
    import sys
    import heptool.cli as c
    c.COMMANDS.update({FAKE_COMMANDS!r})
    sys.exit(c.main())
    """
)


# --- --version / --help ---------------------------------------------------------------------


def test_version(capsys):
    status, out, err = run_main(capsys, "--version")
    assert (status, out, err) == (0, f"heptool {heptool.__version__}\n", "")


def test_python_dash_m_version():
    proc = run_python(["-m", "heptool"], "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == f"heptool {heptool.__version__}\n"
    assert proc.stderr == b""


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(capsys, flag):
    status, out, err = run_main(capsys, flag)
    assert status == ExitStatus.OK
    assert out.startswith("Usage: heptool [OPTIONS] COMMAND [ARGS]...")
    assert "--traceback" in out and "--version" in out
    assert "Examples:" in out and "heptool --version" in out
    assert err == ""


def test_no_arguments_shows_help_as_usage_error(capsys):
    status, out, err = run_main(capsys)
    assert status == ExitStatus.USAGE
    assert out == ""
    assert "Usage: heptool" in err


# --- exit status mapping ----------------------------------------------------------------------


def test_unknown_option_is_usage(capsys):
    status, out, err = run_main(capsys, "--no-such-option")
    assert status == ExitStatus.USAGE == 2
    assert out == ""
    assert err.splitlines()[-1] == "Error: No such option '--no-such-option'."


def test_unknown_command_is_usage(capsys):
    status, _, err = run_main(capsys, "no-such-command")
    assert status == ExitStatus.USAGE
    assert err.splitlines()[-1] == "Error: No such command 'no-such-command'."


def test_success_ignores_return_value(fake_commands, capsys):
    assert run_main(capsys, "ok") == (ExitStatus.OK, "ok\n", "")


def test_hep_error_is_bad_input_one_line(fake_commands, capsys):
    status, out, err = run_main(capsys, "raise", "hep")
    assert status == ExitStatus.BAD_INPUT == 3
    assert out == ""
    assert err == "Error: offset 0: bad magic b'XXXX' second line\n"


@pytest.mark.parametrize("kind", ["capture", "input"])
def test_library_input_errors_reach_main_as_bad_input(fake_commands, capsys, kind):
    # issue 12: CaptureError and InputError are HepErrors, mapped once in main(); a command
    # that lets them escape gets status 3 and their one line, never "internal error"
    status, out, err = run_main(capsys, "raise", kind)
    assert status == ExitStatus.BAD_INPUT
    assert out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1 and "internal" not in err, err


def test_delivery_error_is_error_status(fake_commands, capsys):
    status, out, err = run_main(capsys, "raise", "delivery")
    assert out == ""
    assert status == ExitStatus.ERROR == 1
    assert err == "Error: 3 packets NOT delivered to tcp://127.0.0.1:9\n"


def test_error_tree():
    from heptool.capture.inputs import InputError as CaptureInputError
    from heptool.capture.pcap import CaptureError
    from heptool.core.errors import DeliveryError, HepError, InputError

    assert CaptureInputError is InputError
    assert issubclass(CaptureError, InputError) and issubclass(InputError, HepError)
    assert issubclass(DeliveryError, HepError)
    e = CaptureError("truncated record", frame=17, offset=58)
    assert str(e) == "frame 17, byte offset 58: truncated record"
    assert (e.frame, e.offset, e.message) == (17, 58, "truncated record")
    import pickle
    assert str(pickle.loads(pickle.dumps(e))) == str(e)


def test_unexpected_exception_is_internal_error_one_line(fake_commands, capsys):
    status, out, err = run_main(capsys, "raise", "internal")
    assert status == ExitStatus.ERROR == 1
    assert out == ""
    assert err == (
        "Error: internal error: RuntimeError: boom second line (rerun with --traceback)\n"
    )


def test_traceback_flag_reraises(fake_commands, capsys):
    with pytest.raises(RuntimeError, match="boom"):
        main(["--traceback", "raise", "internal"])
    with pytest.raises(RuntimeError):  # global: also after the subcommand's arguments
        main(["raise", "internal", "--traceback"])


def test_traceback_after_double_dash_is_an_argument():
    args = ["--traceback", "raise", "--traceback", "--", "--traceback"]
    assert heptool.cli._pop_traceback(args) is True
    assert args == ["raise", "--", "--traceback"]
    args = ["raise", "--", "--traceback"]
    assert heptool.cli._pop_traceback(args) is False
    assert args == ["raise", "--", "--traceback"]


def test_keyboard_interrupt_is_130(fake_commands, capsys):
    status, out, err = run_main(capsys, "raise", "interrupt")
    assert status == ExitStatus.INTERRUPTED == 130
    assert out == ""
    assert "Traceback" not in err and "Error" not in err


def test_bad_parameter_is_usage(fake_commands, capsys):
    status, _, err = run_main(capsys, "raise", "badparam")
    assert status == ExitStatus.USAGE
    assert err.splitlines()[-1] == "Error: Invalid value for '--chunk': not a chunk"


def test_click_exception_keeps_its_exit_code(fake_commands, capsys):
    assert run_main(capsys, "raise", "clickexc3") == (3, "", "Error: not a pcap file\n")


def test_ctx_exit_status(fake_commands, capsys):
    assert run_main(capsys, "raise", "exit3") == (ExitStatus.BAD_INPUT, "", "")


def test_os_error_is_error_without_internal(fake_commands, capsys):
    status, _, err = run_main(capsys, "raise", "nofile")
    assert status == ExitStatus.ERROR
    assert err == "Error: No such file or directory: /nonexistent/heptool-test.pcap\n"


def test_every_exit_status_has_a_one_line_description():
    for status in ExitStatus:
        assert status.description and "\n" not in status.description, status


# --- lazy loading and Environment injection ---------------------------------------------------


def test_commands_are_imported_only_when_used(fake_commands, capsys):
    assert FAKE_MODULE not in sys.modules
    assert "ok" in cli.list_commands(click.Context(cli, **cli.context_settings))
    assert FAKE_MODULE not in sys.modules  # listing names does not import
    assert run_main(capsys, "ok")[0] == 0
    assert FAKE_MODULE in sys.modules


def test_help_lists_registered_commands(fake_commands, capsys):
    _, out, _ = run_main(capsys, "--help")
    assert "Commands:" in out
    assert "ok " in out and "Print ok." in out


def test_bad_registry_entry_is_internal_error(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "broken", "no_colon_here")
    status, _, err = run_main(capsys, "broken")
    assert status == ExitStatus.ERROR
    assert err.startswith("Error: internal error: ValueError: lazy command 'broken'")


def test_environment_injected_through_obj(fake_commands):
    env = Environment(stdout_isatty=True, stdin_isatty=True)
    result = CliRunner().invoke(cli, ["env"], obj=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "stdout_isatty=True stdin_isatty=True\n"


def test_default_environment_follows_real_streams(fake_commands):
    result = CliRunner().invoke(cli, ["env"])
    assert result.stdout == "stdout_isatty=False stdin_isatty=False\n"


def test_main_passes_env(fake_commands, capsys):
    env = Environment(stdout_isatty=True, stdin_isatty=False)
    assert main(["env"], env=env) == 0
    assert capsys.readouterr().out == "stdout_isatty=True stdin_isatty=False\n"


def test_environment_streams_and_consoles():
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err)
    assert (env.stdin_isatty, env.stdout_isatty, env.stderr_isatty) == (False, False, False)
    assert env.stdout_binary is out  # no .buffer: the stream itself
    assert env.console is env.console  # built once
    assert env.console.file is out and env.error_console.file is err
    assert Environment(stdout=out, stdout_isatty=True).console.is_terminal
    assert Environment(stdout=out, color="always").console.is_terminal
    assert Environment(stdout=out, stdout_isatty=True, color="never").console.no_color


def test_environment_imports_rich_only_when_a_console_is_used():
    code = (
        "import sys, io\n"
        "from heptool.cli.env import Environment\n"
        "env = Environment(stdout=io.StringIO())\n"
        "assert 'rich' not in sys.modules, 'rich imported too early'\n"
        "env.console.print('hi')\n"
        "assert 'rich.console' in sys.modules\n"
    )
    proc = run_python(["-c", code])
    assert proc.returncode == 0, proc.stderr.decode()


# --- broken pipes -----------------------------------------------------------------------------


def _run_into_closed_pipe(argv, extra_path=None):
    """Run with stdout a pipe whose only reader is already closed: every write gets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return run_python(argv[:2], *argv[2:], stdout=write_end, extra_path=extra_path)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_broken_pipe_is_quiet(flag):
    proc = _run_into_closed_pipe(["-m", "heptool", flag])
    assert proc.stderr == b""
    assert proc.returncode == ExitStatus.BROKEN_PIPE == 141


def test_reader_that_stops_early_like_head(fake_commands):
    """`heptool spew | head -c 1`: 4 MiB of output, the reader takes one byte and leaves."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(fake_commands)]))
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE_MAIN, "spew"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout.read(1) == b"x"
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == ExitStatus.BROKEN_PIPE
    assert err == b""


def test_epipe_not_from_stdout_is_a_real_error(fake_commands):
    proc = run_python(["-c", FAKE_MAIN], "raise", "socket-epipe", extra_path=fake_commands)
    assert proc.returncode == ExitStatus.ERROR
    assert proc.stdout == b""
    assert proc.stderr.decode() == "Error: Broken pipe\n"


OPENSIPS = ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.pcap"
RICH_VIEWS = {
    "decode-table": ["decode", "-f", "table"],
    "flow": ["flow", "--call-id", "hc-tcp-call-c7ba77@heptool.test"],
    "correlate-tree": ["correlate", "-f", "table"],
}


@pytest.mark.parametrize("view", sorted(RICH_VIEWS))
def test_head_on_rich_views_exits_141(view):
    """issue 14 #8: `heptool decode -f table | head -1` (and flow, correlate's tree) exited 1:
    rich's own broken-pipe handling exits 1; it must be 141 like the JSON Lines path."""
    argv = [sys.executable, "-m", "heptool", *RICH_VIEWS[view], *[str(OPENSIPS)] * 60]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    writer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    head = subprocess.Popen(["head", "-1"], stdin=writer.stdout, stdout=subprocess.PIPE)
    writer.stdout.close()  # head is the pipe's only reader
    line, _ = head.communicate(timeout=60)
    err = writer.stderr.read()
    writer.stderr.close()
    assert writer.wait(timeout=60) == ExitStatus.BROKEN_PIPE == 141, err
    assert err == b"" and line.strip()
    # a reader gone before the first write: the same status, nothing on stderr
    proc = _run_into_closed_pipe(["-m", "heptool", *RICH_VIEWS[view], str(OPENSIPS)])
    assert (proc.returncode, proc.stderr) == (141, b"")
