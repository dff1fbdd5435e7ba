"""Help, man pages and completions stay in sync with the click CLI (ARCHITECTURE.md 1.7.5, 1.8).

If a test here fails after you changed the CLI, run ``python scripts/gen_docs.py`` and commit
``man/`` and ``completions/``.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from heptool.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("man", "completions")
REGENERATE = "run `python scripts/gen_docs.py` and commit man/ and completions/"


def all_commands():
    """(command path, command) for heptool and every subcommand, recursively."""
    found = []

    def walk(command: click.Command, ctx: click.Context) -> None:
        found.append((ctx.command_path, command))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{ctx.command_path} lists {name!r} but cannot load it"
                if not sub.hidden:
                    walk(
                        sub, click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
                    )

    walk(cli, click.Context(cli, info_name="heptool", **cli.context_settings))
    return found


COMMAND_PATHS = [path for path, _ in all_commands()]


def _command(path: str) -> click.Command:
    return dict(all_commands())[path]


@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_command_has_help(path):
    command = _command(path)
    assert (command.help or "").strip(), f"{path}: add a docstring (it becomes --help and man)"
    assert command.get_short_help_str(limit=80).strip()


@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_command_has_epilog_example(path):
    epilog = _command(path).epilog or ""
    examples = [line.strip() for line in epilog.splitlines() if line.strip().startswith(path)]
    assert examples, f"{path}: epilog needs at least one example line starting with {path!r}"


def test_registered_names_match_command_names():
    ctx = click.Context(cli, info_name="heptool", **cli.context_settings)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name, (
            f"COMMANDS[{name!r}] loads a command named {getattr(command, 'name', None)!r}; "
            f"use @click.command({name!r})"
        )


@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_command_has_man_page(path):
    page = ROOT / "man" / f"{path.replace(' ', '-')}.1"
    assert page.is_file(), f"missing {page.relative_to(ROOT)}; {REGENERATE}"
    text = page.read_text(encoding="utf-8")
    assert text.startswith('.\\" generated'), "man pages carry a 'generated, do not edit' line"
    assert '.SH "EXIT STATUS"' in text and ".SH EXAMPLES" in text


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    env = dict(os.environ)
    env.pop("SOURCE_DATE_EPOCH", None)  # the script must pin the date itself
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--out", str(out)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def _same_files(committed: Path, fresh: Path, what: str) -> None:
    assert committed.is_dir(), f"{what} is missing; {REGENERATE}"
    committed_names = sorted(p.name for p in committed.iterdir())
    fresh_names = sorted(p.name for p in fresh.iterdir())
    assert committed_names == fresh_names, f"{what} has stale or missing files; {REGENERATE}"
    _, mismatch, errors = filecmp.cmpfiles(committed, fresh, fresh_names, shallow=False)
    assert (mismatch, errors) == ([], []), f"{what} is out of date ({mismatch}); {REGENERATE}"


def test_completions_are_up_to_date(regenerated):
    """The completion files are our loaders (scripts/gen_docs.py): their text depends on
    nothing installed, so they must match whatever click is installed."""
    _same_files(ROOT / "completions", regenerated / "completions", "completions/")


def _man_tools(page: Path) -> str | None:
    first = page.read_text(encoding="utf-8").split("\n", 1)[0]
    return first[first.rfind("(") + 1:-1] if first.endswith(")") else None


def test_man_pages_are_up_to_date_byte_for_byte(regenerated):
    """Byte for byte, when the installed click and click-man are the ones that made man/:
    they format usage and option lists, and a new release may format them differently
    (that is not a defect of ours; test_man_pages_name_every_command_and_option still runs)."""
    made_with = _man_tools(ROOT / "man" / "heptool.1")
    installed = _man_tools(regenerated / "man" / "heptool.1")
    if made_with != installed:
        pytest.skip(f"man/ was made with {made_with}, this run has {installed}")
    _same_files(ROOT / "man", regenerated / "man", "man/")


def _roff(text: str) -> str:
    return text.replace("\\", "\\e").replace("-", "\\-")


@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_man_pages_name_every_command_and_option(path):
    """What a reader needs from man/, whatever click formats: every option and subcommand of
    the command, and its examples; nothing there that the command no longer has."""
    command = _command(path)
    page = (ROOT / "man" / f"{path.replace(' ', '-')}.1").read_text(encoding="utf-8")
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            for opt in param.opts + param.secondary_opts:
                assert _roff(opt) in page, f"{path}: man page lacks {opt}; {REGENERATE}"
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            assert f"\\fB{_roff(path + ' ' + name).replace(' ', '-')}\\fP(1)" in page or \
                _roff(name) in page, f"{path}: man page lacks subcommand {name}"
    for line in epilog_example_lines(command):
        assert _roff(line) in page, f"{path}: man page lacks the example {line!r}; {REGENERATE}"
    documented = {w.replace("\\-", "-") for w in re.findall(r"\\fB(\\-\\-(?:[a-z0-9]|\\-)+)", page)}
    known = {o for p in command.params for o in getattr(p, "opts", []) + getattr(
        p, "secondary_opts", [])}
    assert documented <= known, f"{path}: man page has options the command lacks: " \
        f"{sorted(documented - known)}; {REGENERATE}"


def epilog_example_lines(command: click.Command) -> list[str]:
    return [line.strip() for line in (command.epilog or "").splitlines()
            if line.strip().startswith("heptool")]


def test_generation_is_deterministic(regenerated, tmp_path):
    again = tmp_path / "again"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--out", str(again)],
        check=True,
        capture_output=True,
        env=dict(os.environ, SOURCE_DATE_EPOCH="0"),
    )
    for subdir in GENERATED:
        names = sorted(p.name for p in (regenerated / subdir).iterdir())
        assert filecmp.cmpfiles(regenerated / subdir, again / subdir, names, shallow=False)[1:] == (
            [],
            [],
        )


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_man_page_renders_without_warnings(path):
    page = ROOT / "man" / f"{path.replace(' ', '-')}.1"
    proc = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(page)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert (proc.returncode, proc.stderr) == (0, "")


def test_completion_files_call_back_into_heptool():
    for shell in ("bash", "zsh", "fish"):
        text = (ROOT / "completions" / f"heptool.{shell}").read_text(encoding="utf-8")
        assert "_HEPTOOL_COMPLETE" in text, shell


def test_readme_exit_status_table_matches_exit_status():
    from heptool.cli.exit import ExitStatus

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for status in ExitStatus:
        row = f"| {int(status)} | `{status.name}` | {status.description} |"
        assert row in readme, f"README.md exit status table: expected the row {row!r}"


# --- completion: what a user gets at <Tab>, through click's protocol and in the real shells ----

def _offered(args: list[str], incomplete: str) -> set[str]:
    from click.shell_completion import ShellComplete

    comp = ShellComplete(cli, {}, "heptool", "_HEPTOOL_COMPLETE")
    return {item.value for item in comp.get_completions(args, incomplete)}


def test_completion_offers_every_command():
    assert set(COMMANDS) <= _offered([], "")


@pytest.mark.parametrize("path", COMMAND_PATHS[1:])
def test_completion_offers_every_option_and_choice(path):
    command = _command(path)
    args = path.split()[1:]
    offered = _offered(args, "-")
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        for opt in param.opts + param.secondary_opts:
            if opt.startswith("--"):
                assert opt in offered, f"{path}: <Tab> does not offer {opt}"
        if isinstance(param.type, click.Choice) and not param.is_flag and param.opts[0][:2] == "--":
            choices = _offered(args + [param.opts[0]], "")
            assert {str(c) for c in param.type.choices} <= choices, (path, param.opts[0])


def _shell_env() -> dict[str, str]:
    # the heptool of this interpreter first on PATH, as an installed user's shell has it
    bindir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))


def _needs(shell: str):
    return pytest.mark.skipif(shutil.which(shell) is None,
                              reason=f"{shell} is not installed (scripts/setup-peers.sh shells)")


def _needs_heptool_on_path():
    if shutil.which("heptool", path=_shell_env()["PATH"]) is None:
        pytest.skip("no heptool script next to this python (install heptool first)")


@_needs("bash")
def test_bash_completion_file_completes_in_bash():
    _needs_heptool_on_path()
    script = f"""
source {ROOT / 'completions' / 'heptool.bash'}
complete -p heptool
COMP_WORDS=(heptool dec); COMP_CWORD=1; COMPREPLY=()
_heptool_completion heptool
printf 'reply %s\\n' "${{COMPREPLY[@]}}"
COMP_WORDS=(heptool decode --for); COMP_CWORD=2; COMPREPLY=()
_heptool_completion heptool
printf 'reply %s\\n' "${{COMPREPLY[@]}}"
"""
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                          text=True, env=_shell_env(), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "complete -o nosort -F _heptool_completion heptool" in proc.stdout
    assert "reply decode" in proc.stdout.splitlines()
    assert "reply --format" in proc.stdout.splitlines()


@_needs("fish")
def test_fish_completion_file_completes_in_fish():
    _needs_heptool_on_path()
    script = (f"source {ROOT / 'completions' / 'heptool.fish'}; "
              "complete -C 'heptool dec'; complete -C 'heptool decode --for'")
    proc = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True,
                          env=_shell_env(), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    words = [line.split("\t")[0] for line in proc.stdout.splitlines()]
    assert "decode" in words and "--format" in words, proc.stdout


@_needs("zsh")
def test_zsh_completion_file_registers_in_zsh():
    _needs_heptool_on_path()
    script = (f"autoload -U compinit; compinit -u -D; source {ROOT / 'completions' / 'heptool.zsh'}; "
              "print -r -- ${+functions[_heptool_completion]} ${_comps[heptool]}")
    proc = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True,
                          env=_shell_env(), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "_heptool_completion"], proc.stdout + proc.stderr
    # and click's side of the zsh protocol answers
    reply = subprocess.run(["heptool"], capture_output=True, text=True, timeout=60, check=False,
                           env=dict(_shell_env(), _HEPTOOL_COMPLETE="zsh_complete",
                                    COMP_WORDS="heptool dec", COMP_CWORD="1"))
    assert "decode" in reply.stdout.split("\n"), reply.stdout + reply.stderr
