"""The systemd units in contrib/ (README "Running as a service"): they parse, systemd accepts
them, their hardening is there, and their ExecStart is a command line heptool accepts.

``systemd-analyze verify`` runs when it is installed (on a copy whose ExecStart points at
this heptool: verify checks that the program exists); the command line is checked with
heptool's own click parsing either way (options, values and their types, without running).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from heptool.cli import cli
from heptool.cli.env import Environment

ROOT = Path(__file__).resolve().parents[2]
UNITS = {"listen": ROOT / "contrib" / "heptool-listen.service",
         "agent": ROOT / "contrib" / "heptool-agent.service"}


def _parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (keys may repeat; no continuation lines)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{path.name}: keep each setting on one line"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _argv(unit: dict[str, dict[str, list[str]]]) -> list[str]:
    (exec_start,) = unit["Service"]["ExecStart"]
    return shlex.split(exec_start.replace("%H", "host1"))  # %H: systemd's host name


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_runs_heptool_hardened_and_restarted(name):
    unit = _parse(UNITS[name])
    service = unit["Service"]
    argv = _argv(unit)
    assert argv[0].startswith("/") and argv[0].endswith("/heptool")  # systemd wants a path
    assert argv[1] == ("listen" if name == "listen" else "send")
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["RestartPreventExitStatus"] == ["2"]  # a bad command line: no restart loop
    assert service["DynamicUser"] == ["yes"] or "User" in service
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    families = service["RestrictAddressFamilies"][0].split()
    if name == "agent":
        assert "-i" in argv and "--filter" in argv and "--to" in argv
        assert service["AmbientCapabilities"] == ["CAP_NET_RAW"]
        assert service["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
        assert "AF_PACKET" in families  # the capture's packet socket
    else:
        assert service["AmbientCapabilities"] == [""]
        assert service["CapabilityBoundingSet"] == [""]
        assert "AF_PACKET" not in families
        assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # logrotate's reload
        assert service["StateDirectory"] == ["heptool"]
        write = argv[argv.index("--write-hep") + 1]
        assert write.startswith("/var/lib/heptool/")  # the only place it may write


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_command_line_parses_with_heptool(name):
    """ExecStart through heptool's own click parsing: every option exists, every value
    converts (targets, sizes, ranges), nothing is run."""
    argv = _argv(_parse(UNITS[name]))
    ctx = click.Context(cli, info_name="heptool", obj=Environment())
    cmd_name, cmd, rest = cli.resolve_command(ctx, argv[1:])
    assert cmd is not None
    sub = cmd.make_context(cmd_name, rest, parent=ctx)
    params = sub.params
    if name == "agent":
        assert params["iface"] == "eth0" and params["bpf"] == "port 5060 or port 5061"
        assert [str(t) for t in params["targets"]] == ["tcp://collector.example.net:9061"]
        assert params["node_name"] == "host1"
    else:
        assert params["quiet"] is True and params["stats_every"] == 60
        assert params["rotate_size"] == 100 << 20


def test_a_bad_command_line_is_caught():
    """The check above can fail: an option heptool does not have is refused."""
    ctx = click.Context(cli, info_name="heptool", obj=Environment())
    cmd_name, cmd, rest = cli.resolve_command(ctx, ["send", "-i", "eth0", "--fliter", "x",
                                                    "--to", "udp://h:9060"])
    with pytest.raises(click.UsageError):
        cmd.make_context(cmd_name, rest, parent=ctx)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", sorted(UNITS))
def test_systemd_analyze_verify_accepts_the_unit(tmp_path, name):
    heptool = Path(sys.executable).with_name("heptool")
    if not heptool.exists():
        pytest.skip(f"no heptool script next to {sys.executable}")
    text = UNITS[name].read_text(encoding="utf-8")
    copy = tmp_path / UNITS[name].name
    copy.write_text(text.replace("/usr/local/bin/heptool", str(heptool)), encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], check=False,
                       capture_output=True, text=True, timeout=60)
    # any warning ("Unknown key", "ignoring") is a unit that does not do what it says
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (
        r.stdout + r.stderr)
