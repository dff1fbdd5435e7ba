"""Help, man pages and completions stay in sync with the click CLI (ARCHITECTURE.md 1.7.5, 1.8).

If a test here fails after you changed the CLI, run ``python scripts/gen_docs.py`` and commit
``man/`` and ``completions/``.
"""

from __future__ import annotations

import filecmp
import os
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


@pytest.mark.parametrize("subdir", GENERATED)
def test_generated_files_are_up_to_date(regenerated, subdir):
    committed, fresh = ROOT / subdir, regenerated / subdir
    assert committed.is_dir(), f"{subdir}/ is missing; {REGENERATE}"
    committed_names = sorted(p.name for p in committed.iterdir())
    fresh_names = sorted(p.name for p in fresh.iterdir())
    assert committed_names == fresh_names, f"{subdir}/ has stale or missing files; {REGENERATE}"
    _, mismatch, errors = filecmp.cmpfiles(committed, fresh, fresh_names, shallow=False)
    assert (mismatch, errors) == ([], []), f"{subdir}/ is out of date; {REGENERATE}"


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


def test_completion_scripts_call_back_into_heptool():
    for shell in ("bash", "zsh", "fish"):
        text = (ROOT / "completions" / f"heptool.{shell}").read_text(encoding="utf-8")
        assert "_HEPTOOL_COMPLETE" in text, shell


def test_readme_exit_status_table_matches_exit_status():
    from heptool.cli.exit import ExitStatus

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for status in ExitStatus:
        row = f"| {int(status)} | `{status.name}` | {status.description} |"
        assert row in readme, f"README.md exit status table: expected the row {row!r}"
