"""SIGKILL while writing, and a full disk (issue 7, "The listener under attack and load",
the parts that need no network).

* ``decode -o x.jsonl`` and ``convert -o y.pcap|y.pcapng`` are killed with SIGKILL (a real
  process, by its pid) while writing: every complete record in the file is valid and only the
  last one may be cut (heptool's readers read every complete record and then report the cut
  one, with its place).
* A full disk, as a file-size limit (RLIMIT_FSIZE in the child; Python ignores SIGXFSZ so the
  write fails with EFBIG): a one-line error, exit status 1, the file valid up to what was
  written.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heptool.capture.inputs import iter_input
from heptool.capture.pcap import CaptureError, iter_frames

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
FSIZE = 300_000


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """~31 MB of real HEP (the Kamailio capture's packets, 1,000 times): several seconds of work."""
    pk = [p.data for p in iter_input(VECTORS / "kamailio" / "kamailio-hep3-udp.hep.pcap")]
    path = tmp_path_factory.mktemp("big") / "big.hep"
    path.write_bytes(b"".join(pk) * 1000)
    return path


def check_jsonl(data: bytes) -> int:
    """Complete lines are JSON records; only a last line without its newline may be cut."""
    *lines, tail = data.split(b"\n")
    for line in lines:
        assert isinstance(json.loads(line), dict)
    with pytest.raises(ValueError):  # a cut line, or nothing
        if tail:
            json.loads(tail)
        else:
            raise ValueError("no tail")
    return len(lines)


def check_capture(data: bytes) -> int:
    """Every record before the end is whole; reading stops, if at all, at a cut last record."""
    n = 0
    try:
        for _fr in iter_frames(io.BytesIO(data)):
            n += 1
    except CaptureError as e:
        assert "truncated" in str(e) and e.frame == n + 1, str(e)
        if data[:4] == b"\x0a\x0d\x0d\x0a":
            assert len(data) - e.offset < struct.unpack_from("<I", data, e.offset + 4)[0]
        else:
            assert len(data) - e.offset < 16 + struct.unpack_from("<I", data, e.offset + 8)[0]
    return n


CASES = {
    "decode-jsonl": (["decode", "-f", "jsonl", "-o", "{out}"], "x.jsonl", check_jsonl),
    "convert-pcap": (["convert", "-o", "{out}"], "y.pcap", check_capture),
    "convert-pcapng": (["convert", "-o", "{out}"], "y.pcapng", check_capture),
}


def _argv(case: str, big: Path, out: Path) -> list[str]:
    args, _name, _check = CASES[case]
    return [sys.executable, "-m", "heptool", *(a.replace("{out}", str(out)) for a in args), str(big)]


@pytest.mark.parametrize("case", CASES)
def test_sigkill_while_writing(big, tmp_path, case):
    out = tmp_path / CASES[case][1]
    proc = subprocess.Popen(_argv(case, big, out), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while (not out.exists() or out.stat().st_size < 400_000) and proc.poll() is None:
            assert time.monotonic() < deadline, "no output written"
            time.sleep(0.005)
        assert proc.poll() is None, "finished before it could be killed: make the input bigger"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert CASES[case][2](out.read_bytes()) > 100


def _fsize_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE, FSIZE))


@pytest.mark.parametrize("case", CASES)
def test_disk_full(big, tmp_path, case):
    out = tmp_path / CASES[case][1]
    r = subprocess.run(_argv(case, big, out), check=False, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120, preexec_fn=_fsize_limit)
    err = r.stderr.decode().splitlines()
    assert r.returncode == 1, err
    assert len(err) == 1 and err[0].startswith("Error: ") and "File too large" in err[0], err
    assert r.stdout == b""
    data = out.read_bytes()
    assert 0 < len(data) <= FSIZE
    assert CASES[case][2](data) > 100
