"""Size and privacy rules of the tree that import-linter and ruff cannot check (issue 12).

Each rule has a ratchet: the modules that break it today are listed with their current size or
import, and the lists may only shrink. A module that grows past its entry, a new module over
the limit, or a new private import across modules fails; an entry that is no longer needed
fails too, so that the lists are lowered as the redesign goes on (empty when it is done, but
for the C extension's loader).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "heptool"
MAX_LINES = 600

#: modules over MAX_LINES today, with their size: only lower these, or drop them
OVERSIZE = {
}

#: (importer, module, name): a ``_name`` taken from another heptool module
PRIVATE_OK = {
    ("core/accel.py", "heptool.core", "_speedups"),  # the loader: the one permanent entry
}

#: the modules that generate code with exec (from the registry, never from packet data)
EXEC_OK = {"core/message.py", "core/templates.py"}


def modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(PKG).as_posix()


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_module_is_at_most_600_lines(path):
    limit = OVERSIZE.get(rel(path), MAX_LINES)
    assert lines(path) <= limit, f"{rel(path)}: {lines(path)} lines (limit {limit}): split it by concern"


def test_oversize_list_names_only_oversize_modules():
    for name, limit in OVERSIZE.items():
        n = lines(PKG / name)
        assert MAX_LINES < n <= limit, f"{name} has {n} lines now: lower or drop its OVERSIZE entry"


def private_imports(path: Path, root: Path = PKG) -> set[tuple[str, str, str]]:
    """(importer, module, name) for every heptool ``_name`` imported from another module."""
    parts = ("heptool", *path.relative_to(root).with_suffix("").parts)
    mod = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    where = path.relative_to(root).as_posix()
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            for alias in node.names:
                if (target.startswith("heptool") and target != mod
                        and alias.name.startswith("_") and not alias.name.startswith("__")):
                    out.add((where, target, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("heptool.") and any(
                        p.startswith("_") and not p.startswith("__")
                        for p in alias.name.split(".")):
                    out.add((where, alias.name, ""))
    return out


def test_no_new_private_name_is_imported_across_modules():
    found = set().union(*(private_imports(p) for p in modules()))
    assert found <= PRIVATE_OK, f"private names imported across modules: {sorted(found - PRIVATE_OK)}"
    assert PRIVATE_OK <= found, f"stale PRIVATE_OK entries, remove them: {sorted(PRIVATE_OK - found)}"


def test_the_private_import_checker_catches_them(tmp_path):
    """Without this, a checker that finds nothing would pass the test above."""
    (tmp_path / "core").mkdir()
    bad = tmp_path / "core" / "m.py"
    bad.write_text("from .message import _x\nfrom heptool.core.codec import _y, ok\n"
                   "import heptool.core._z\nfrom . import wire\nfrom os import _exit\n",
                   encoding="utf-8")
    assert {(m, n) for _, m, n in private_imports(bad, tmp_path)} == {
        ("heptool.core.message", "_x"), ("heptool.core.codec", "_y"), ("heptool.core._z", "")}


def test_generated_code_only_where_listed():
    users = {rel(p) for p in modules() if "exec(" in p.read_text(encoding="utf-8")}
    assert users == EXEC_OK, f"exec() outside the listed generators: {sorted(users - EXEC_OK)}; " \
        f"stale entries: {sorted(EXEC_OK - users)}"


#: modules that put an InputPacket together themselves rather than through its named
#: constructors (InputPacket.capture/.stream/.json, in capture/inputs.py): only shrink
INPUT_PACKET_BUILT_OK: set[str] = set()  # only capture/inputs.py builds InputPackets


def input_packet_builds(path: Path) -> int:
    """Calls that build an InputPacket by hand: ``InputPacket(...)`` or
    ``tuple.__new__(InputPacket, ...)``-style calls taking the class itself."""
    n = 0
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name == "InputPacket" or (node.args and isinstance(node.args[0], ast.Name)
                                         and node.args[0].id == "InputPacket"):
                n += 1
    return n


def test_input_packet_built_only_by_its_named_constructors():
    users = {rel(p) for p in modules() if input_packet_builds(p)} - {"capture/inputs.py"}
    assert users <= INPUT_PACKET_BUILT_OK, f"InputPacket built by hand in {sorted(users)}"
    assert INPUT_PACKET_BUILT_OK <= users, f"stale entries: {sorted(INPUT_PACKET_BUILT_OK - users)}"


def test_the_input_packet_checker_catches_them(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("new = tuple.__new__\nnew(InputPacket, (1,))\ntuple.__new__(InputPacket, ())\n"
                   "InputPacket(index=1)\nInputPacket.capture(1, 2, 'udp', 'a', 'b', (0, 0), b'')\n",
                   encoding="utf-8")
    assert input_packet_builds(bad) == 3
