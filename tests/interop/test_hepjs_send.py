"""hep-js (npm, the pinned 1.0.22 in .peers/) receives what ``heptool send`` sends, over UDP
and TCP, field for field.

``hepjs_listen.js`` is a small collector built on hep-js's ``decapsulate()``; the expected
fields are those of ``tests/interop/test_hepjs.py`` (what hep-js can read of a message).
In CI (``CI=true``) a missing node/hep-js fails; elsewhere the test skips with the reason.
Loopback only; the node process is stopped by its pid; every wait has a timeout.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from nethelpers import run_heptool
from test_hepjs import HEPJS, START, T0, _missing, compare, expected

from heptool.analysis.scenarios import scenario

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).with_name("hepjs_listen.js")


@pytest.fixture
def hepjs_collector():
    why = _missing()
    if why is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"hep-js interop: {why}")
        pytest.skip(why)
    proc = subprocess.Popen(["node", str(SCRIPT), str(HEPJS)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for raw in proc.stdout:  # type: ignore[union-attr]
            lines.put(raw.decode())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = lines.get(timeout=20)
        assert first and first.startswith("ports "), first
        udp, tcp = first.split()[1:]
        yield udp, tcp, lines
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_hepjs_receives_send_over_udp_and_tcp(hepjs_collector):
    udp, tcp, lines = hepjs_collector
    msgs = scenario("call", seed=3, start=START)
    r = run_heptool("send", "--scenario", "call", "--seed", "3", "--time", T0,
                    "--to", f"udp://127.0.0.1:{udp}", "--to", f"tcp://127.0.0.1:{tcp}")
    assert r.returncode == 0, r.stderr
    got: dict[str, list] = {"udp": [], "tcp": []}
    while len(got["udp"]) + len(got["tcp"]) < 2 * len(msgs):
        line = lines.get(timeout=20)
        assert line is not None
        rec = json.loads(line)
        got[rec.pop("_t")].append(rec)
    for transport in ("udp", "tcp"):
        assert len(got[transport]) == len(msgs)
        for g, m in zip(got[transport], msgs):
            assert "_false" not in g
            compare(g, expected(m))
