"""The C and the pure-Python builds agree byte for byte, end to end.

The real CLI (``python -m heptool``) runs as a subprocess twice per case, once with the C
extension and once with ``HEPTOOL_PURE=1``, and the two runs must give the same stdout,
stderr, exit status and output file, for

* ``decode -f jsonl``, ``decode -f json``, ``correlate -f json``, ``convert -o out.pcap``
  and the text views (``decode -f table`` with and without ``-v``, ``correlate -f table``),
* on every capture in tests/vectors, every capture among the fuzz seeds (tests/fuzz/), and a
  few deterministically mutated captures (flipped bytes, truncation, a duplicated record).

Skips when the extension is not built at all (no C compiler), except under CI=true, where a
build that silently fell back to pure Python would make this test vacuous: there it fails.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
VECTORS = TESTS / "vectors"
_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
           b"\x0a\x0d\x0d\x0a")
COMMANDS = {
    "decode-jsonl": ["decode", "-f", "jsonl"],
    "decode-json": ["decode", "-f", "json"],
    "correlate-json": ["correlate", "-f", "json"],
    "decode-table": ["decode", "-f", "table"],
    "decode-table-v": ["decode", "-f", "table", "-v"],
    "correlate-table": ["correlate", "-f", "table"],
    "convert-pcap": ["convert", "-o", "out.pcap"],
}
WORKERS = 2  # the CI machines have 2 cores
TIMEOUT = 60


def _captures() -> list[Path]:
    found = sorted(p for p in VECTORS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".bin"))
    for p in sorted((TESTS / "fuzz").rglob("*")):  # fuzz seeds that are whole captures
        if p.is_file() and "crashes" not in p.parts:
            with open(p, "rb") as f:
                if f.read(4) in _MAGICS:
                    found.append(p)
    return found


def _records(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each record of a little-endian microsecond pcap."""
    out, off = [], 24
    while off + 16 <= len(data):
        n = struct.unpack_from("<I", data, off + 8)[0]
        if off + 16 + n > len(data):
            break
        out.append((off, 16 + n))
        off += 16 + n
    return out


def _mutants() -> dict[str, bytes]:
    """A handful of damaged captures, the same every run (seeded)."""
    rng = random.Random(20261203)
    base = [p for p in _captures() if p.suffix == ".pcap"
            and p.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"]
    # the richest captures always among them: OpenSIPS (xlog, REST, JSON-wrapped SIP) and HEP
    # over TCP (stream reassembly)
    rich = [p for p in base if p.name.startswith(("opensips", "hepjs-hep3-tcp"))]
    out = {}
    for i in range(8):
        src = rich[i % len(rich)] if i >= 6 and rich else base[rng.randrange(len(base))]
        data = bytearray(src.read_bytes())
        recs = _records(bytes(data))
        kind = ("flip", "flip", "truncate", "duplicate", "flip-header", "flip", "flip",
                "flip")[i]
        if kind == "flip":  # bytes inside the packets (HEP chunks, SIP text, IP headers)
            for _ in range(rng.randint(3, 40)):
                data[rng.randrange(24, len(data))] = rng.randrange(256)
        elif kind == "truncate":
            del data[rng.randrange(24, len(data)):]
        elif kind == "duplicate" and recs:
            off, n = recs[rng.randrange(len(recs))]
            data[off:off] = data[off:off + n]
        elif kind == "flip-header" and recs:  # record headers: odd lengths and times
            for _ in range(3):
                off, _n = recs[rng.randrange(len(recs))]
                data[off + rng.randrange(16)] = rng.randrange(256)
        out[f"mutant{i}-{kind}-{src.stem}"] = bytes(data)
    return out


CAPTURES = _captures()
MUTANTS = _mutants()
INPUTS = [p.name for p in CAPTURES] + sorted(MUTANTS)


def _env(pure: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HEPTOOL_PURE"}
    env.update(COLUMNS="120", LC_ALL="C.UTF-8", PYTHONHASHSEED="0")
    if pure:
        env["HEPTOOL_PURE"] = "1"
    return env


def _build_of(pure: bool) -> str:
    code = "from heptool.core.accel import BUILD; print(BUILD)"
    return subprocess.run([sys.executable, "-c", code], env=_env(pure), capture_output=True,
                          text=True, check=True, timeout=TIMEOUT).stdout.strip()


@pytest.fixture(scope="module")
def builds():
    """Fails or skips unless the subprocesses really run one C and one pure build."""
    assert _build_of(True) == "pure", "HEPTOOL_PURE=1 did not select the pure-Python build"
    if _build_of(False) != "c":
        why = "the C extension is not built here (heptool.core.accel.c_module() is None)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {why}; the two builds cannot be compared")
        pytest.skip(why)


def _run(args: list[str], cwd: Path, pure: bool) -> tuple:
    r = subprocess.run([sys.executable, "-m", "heptool", *args], check=False, cwd=cwd,
                       env=_env(pure), capture_output=True, timeout=TIMEOUT)
    out = cwd / "out.pcap"
    return r.returncode, r.stdout, r.stderr, out.read_bytes() if out.exists() else None


@pytest.fixture(scope="module")
def results(builds, tmp_path_factory):
    """Every (input, command) run in both builds, WORKERS subprocesses at a time."""
    root = tmp_path_factory.mktemp("builds")
    paths = {p.name: p for p in CAPTURES}
    for name, data in MUTANTS.items():
        paths[name] = root / f"{name}.pcap"
        paths[name].write_bytes(data)
    jobs = {}
    for n, (name, path) in enumerate(paths.items()):
        for cmd, args in COMMANDS.items():
            for pure in (False, True):
                cwd = root / f"{n}-{cmd}-{'pure' if pure else 'c'}"
                cwd.mkdir()
                jobs[(name, cmd, pure)] = ([*args[:1], str(path), *args[1:]], cwd, pure)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {k: pool.submit(_run, *job) for k, job in jobs.items()}
        return {k: f.result() for k, f in futures.items()}


def _first_difference(a: bytes, b: bytes) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (f"first difference at byte {i} (lengths {len(a)}, {len(b)}):\n"
            f"  C:    {a[max(0, i - 80):i + 120]!r}\n  pure: {b[max(0, i - 80):i + 120]!r}")


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
@pytest.mark.parametrize("name", INPUTS)
def test_c_and_pure_python_builds_agree(results, name, cmd):
    c, pure = results[(name, cmd, False)], results[(name, cmd, True)]
    for what, a, b in zip(("exit status", "stdout", "stderr", "out.pcap"), c, pure):
        if a != b:
            detail = _first_difference(a, b) if isinstance(a, bytes) and isinstance(b, bytes) \
                else f"C: {a!r}, pure: {b!r}"
            pytest.fail(f"heptool {cmd} {name}: {what} differs between the C and the pure-Python "
                        f"build; {detail}")


def test_the_comparison_covers_captures_and_mutants():
    assert len(CAPTURES) >= 10 and len(MUTANTS) >= 5
