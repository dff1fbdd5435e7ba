"""Issue 14 #5: one progress-bar rule (cli.progress.progress_bars) for decode, convert,
correlate and flow: on stderr, only when stderr is a terminal, the output does not stream to
it, and the input is a file of known size (at least PROGRESS_MIN_BYTES)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from heptool.cli import main
from heptool.cli import progress as options
from heptool.cli.env import Environment
from heptool.pipeline.convert import Conversion, open_input
from heptool.pipeline.reader import MessageReader

ROOT = Path(__file__).resolve().parents[2]
HEP3 = ROOT / "tests" / "vectors" / "kamailio" / "kamailio-hep3-udp.hep.pcap"


class FakeBar:
    made: ClassVar[list[FakeBar]] = []

    def __init__(self, env, name, size):
        self.name, self.size, self.updates, self.stopped = name, size, [], False
        FakeBar.made.append(self)

    def update(self, done):
        self.updates.append(done)

    def stop(self):
        self.stopped = True


@pytest.fixture
def bars(monkeypatch):
    FakeBar.made = []
    monkeypatch.setattr(options, "ProgressBar", FakeBar)
    monkeypatch.setattr(options, "PROGRESS_MIN_BYTES", 0)
    return FakeBar.made


def invoke(*args, stderr_tty=True, stdout_tty=False, stdin=None) -> int:
    with CliRunner().isolation(input=stdin):
        env = Environment(stdout_isatty=stdout_tty, stderr_isatty=stderr_tty,
                          stdin_isatty=False)
        status = main([*map(str, args)], env=env)
        sys.stdout.flush()
    return status


@pytest.mark.parametrize("command", [
    ["decode", "-f", "jsonl"], ["correlate", "-f", "json"], ["flow", "--group", "0"],
    ["convert", "-f", "pcap"],
])
def test_each_command_shows_the_bar_on_a_terminal_stderr(bars, tmp_path, command):
    status = invoke(*command, HEP3, "-o", tmp_path / "out")
    assert status == 0
    assert bars and bars[0].name == str(HEP3) and bars[0].size == HEP3.stat().st_size
    assert all(b.stopped for b in bars)


@pytest.mark.parametrize("command", [
    ["decode", "-f", "jsonl"], ["correlate", "-f", "json"], ["flow", "--group", "0"],
    ["convert", "-f", "pcap"],
])
def test_never_when_stderr_is_not_a_terminal_or_input_is_stdin(bars, tmp_path, command):
    assert invoke(*command, HEP3, "-o", tmp_path / "out", stderr_tty=False) == 0
    assert invoke(*command, "-", "-o", tmp_path / "out2", stdin=HEP3.read_bytes()) == 0
    assert bars == []


def test_never_when_the_output_streams_to_the_terminal(bars):
    assert invoke("decode", "-f", "jsonl", HEP3, stdout_tty=True) == 0
    assert bars == []


def test_the_rule():
    tty = Environment(stderr_isatty=True, stdout_isatty=False, stdin_isatty=False)
    assert options.progress_bars(Environment(stderr_isatty=False)) is None
    assert options.progress_bars(tty, to_terminal=True) is None
    start = options.progress_bars(tty)
    assert start is not None and start("x", options.PROGRESS_MIN_BYTES - 1) is None


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, Path]:
    """A HEP stream of ~4,800 packets and the plain SIP capture they were made from."""
    d = tmp_path_factory.mktemp("big")
    hep, sip = d / "calls.hep", d / "calls.pcap"
    assert invoke("encode", "--scenario", "call", "--count", "300", "--time",
                  "2026-11-26T09:00:00Z", "-o", hep, stderr_tty=False) == 0
    assert invoke("convert", hep, "-o", sip, stderr_tty=False) == 0
    return hep, sip


def recorder(made):
    def start(name, size):
        bar = FakeBar(None, name, size)
        made.append(bar)
        return bar
    return start


def test_reader_reports_how_far_it_read(big):
    made: ClassVar[list[FakeBar]] = []
    n = sum(1 for _ in MessageReader([str(big[0])], progress=recorder(made)))
    assert n > 4096
    (bar,) = made
    assert bar.updates and all(0 < u <= bar.size for u in bar.updates) and bar.stopped


@pytest.mark.parametrize("which,direction", [(0, "hep"), (1, "sip")])
def test_conversion_reports_how_far_it_read(big, tmp_path, which, direction):
    made: ClassVar[list[FakeBar]] = []
    conv = Conversion(progress=recorder(made), name=str(big[which]))
    source = open_input(str(big[which]))
    with open(tmp_path / "out", "wb") as out:
        if direction == "hep":
            conv.hep_to_packets(source, out, "pcap", 1500)
        else:
            conv.sip_to_hep(source, out, "pcap")
    (bar,) = made
    assert bar.size == big[which].stat().st_size
    assert bar.updates and all(0 < u <= bar.size for u in bar.updates) and bar.stopped
