"""Architecture rules that review alone would not keep (ARCHITECTURE.md 1.1 and 1.3).

* ``heptool.core`` is pure: no I/O modules, no outer ring, no printing. Checked with ``ast``
  here, and again by import-linter's contracts in pyproject.toml.
* ``import heptool.cli`` stays light, because every shell TAB press imports it (0.04 s lean vs
  0.67 s once scapy is loaded).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "heptool" / "core"

FORBIDDEN_IN_CORE = frozenset(
    {
        "socket", "asyncio", "selectors", "ssl", "subprocess",
        "click", "rich", "scapy", "dpkt",
        "heptool.cli", "heptool.output", "heptool.capture", "heptool.net",
    }
)  # fmt: skip
FORBIDDEN_CALLS = frozenset({"print", "input", "open"})
FORBIDDEN_SYS_ATTRS = frozenset({"stdin", "stdout", "stderr"})
HEAVY = ("scapy", "rich", "dpkt")


def _forbidden(module: str) -> str | None:
    for banned in FORBIDDEN_IN_CORE:
        if module == banned or module.startswith(banned + "."):
            return banned
    return None


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def core_violations(path: Path, package: str = "heptool.core") -> list[str]:
    """Every import, call or attribute in ``path`` that breaks the purity of the core."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{path.name}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if banned := _forbidden(alias.name):
                    report(node, f"imports {alias.name} ({banned} is not allowed in core)")
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, package)
            candidates = [module] + [f"{module}.{alias.name}" for alias in node.names]
            for name in candidates:
                if banned := _forbidden(name):
                    report(node, f"imports {name} ({banned} is not allowed in core)")
                    break
            if module == "sys":
                for alias in node.names:
                    if alias.name in FORBIDDEN_SYS_ATTRS:
                        report(node, f"imports sys.{alias.name} (core does no I/O)")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                report(node, f"calls {func.id}() (core does no I/O)")
            dynamic = (isinstance(func, ast.Name) and func.id == "__import__") or (
                isinstance(func, ast.Attribute) and func.attr == "import_module"
            )
            if dynamic and node.args and isinstance(node.args[0], ast.Constant):
                name = str(node.args[0].value)
                if banned := _forbidden(name):
                    report(node, f"imports {name} dynamically ({banned} is not allowed)")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in FORBIDDEN_SYS_ATTRS
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            report(node, f"uses sys.{node.attr} (core does no I/O)")
    return found


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_exists():
    assert core_files(), f"no Python modules under {CORE}"


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_is_pure(path):
    package = ".".join(("heptool", "core", *path.relative_to(CORE).parent.parts))
    assert core_violations(path, package) == []


def test_checker_catches_violations(tmp_path):
    """The checker must be able to fail, or the test above proves nothing."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import socket\n"
        "import asyncio.events\n"
        "from selectors import DefaultSelector\n"
        "import scapy.all as scapy\n"
        "from rich.console import Console\n"
        "from ..cli import main\n"
        "from heptool import capture\n"
        "from heptool.net.client import send\n"
        "from . import wire\n"  # fine: sibling core module
        "import struct, json\n"  # fine: stdlib
        "import sys\n"
        "from sys import stdout\n"
        "print('x')\n"
        "sys.stdout.write('x')\n"
        "sys.stderr.write('x')\n"
        "open('f')\n"
        "import importlib; importlib.import_module('dpkt')\n"
    )
    lines = {int(v.split(":")[1]) for v in core_violations(bad)}
    assert lines == {1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 17}, core_violations(bad)
    good = tmp_path / "good.py"
    good.write_text("import struct\nfrom dataclasses import dataclass\nfrom . import errors\n")
    assert core_violations(good) == []


def _modules_after(code: str) -> set[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def _loaded(modules: set[str], roots) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots)


def test_importing_cli_is_light():
    modules = _modules_after("import heptool.cli")
    assert _loaded(modules, HEAVY) == []
    outer = [
        m for m in modules if m.startswith(("heptool.capture", "heptool.net", "heptool.output"))
    ]
    assert outer == [], "heptool.cli must load adapters and renderers lazily, in commands"


def test_loading_every_command_stays_free_of_scapy_and_rich():
    """`heptool <TAB>` and `heptool --help` import every registered command module."""
    modules = _modules_after(
        "import click\n"
        "from heptool.cli import cli\n"
        "ctx = click.Context(cli, **cli.context_settings)\n"
        "for name in cli.list_commands(ctx):\n"
        "    assert cli.get_command(ctx, name) is not None, name\n"
    )
    assert _loaded(modules, ("scapy", "rich")) == []


def test_import_linter_contracts():
    exe = shutil.which("lint-imports")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("lint-imports (import-linter) is not installed; pip install -e '.[test]'")
        pytest.skip("lint-imports (import-linter) is not installed")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [exe, "--no-cache"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
