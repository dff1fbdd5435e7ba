"""README "The library": the heptool.pipeline example runs as printed (on loopback)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "vectors" / "kamailio" / "kamailio-hep3-udp.hep.pcap"


def _pipeline_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    (block,) = [b for b in blocks if "from heptool.pipeline import" in b]
    return block


def test_readme_pipeline_example_runs():
    code = _pipeline_example().replace('"capture.pcap"', repr(str(CAPTURE)))
    assert "udp://127.0.0.1:0" in code  # loopback only, a port the kernel picks
    out = io.StringIO()
    ns: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), ns)  # noqa: S102 - our own README
    n = sum(1 for _ in ns["MessageReader"]([str(CAPTURE)]))
    assert n > 0 and ns["problems"] == []
    assert ns["summary"].sent == n and ns["summary"].undelivered == 0
    # UDP on loopback: every datagram arrives unless the machine drops under load
    assert 0 < len(ns["got"]) <= n
    assert out.getvalue().count("\n") >= n
