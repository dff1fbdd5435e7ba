"""Issue 14 #12 (encode): unknown record keys are an error naming the key and its line
(unless --ignore-unknown-keys); value errors name the key; --hep-version is encode's name
for the HEP version as it is convert's and send's (--version the same option)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from heptool.cli import main
from heptool.cli.env import Environment

ROOT = Path(__file__).resolve().parents[2]
KAM = ROOT / "tests" / "vectors" / "kamailio"


def run(*args: object, stdin: bytes | None = None) -> tuple[int, bytes, str]:
    with CliRunner().isolation(input=stdin) as streams:
        env = Environment(stdout_isatty=False, stderr_isatty=False, stdin_isatty=False)
        status = main([*map(str, args)], env=env)
        sys.stdout.flush()
        sys.stderr.flush()
        return status, streams[0].getvalue(), streams[1].getvalue().decode()


GOOD = b'{"payload": "a"}\n{"payload": "b", "src_port": 5080}\n'


def test_unknown_key_names_it_its_line_and_the_nearest():
    status, _, err = run("encode", stdin=GOOD + b'{"srcip": "10.0.0.1", "payload": "c"}\n')
    assert status == 3
    assert err == "Error: line 3: unknown key 'srcip' (did you mean 'src_ip'?)\n"
    status, _, err = run("encode", stdin=b'{"payload": "c", "zzzzzzzz": 1}\n')
    assert status == 3 and err == "Error: line 1: unknown key 'zzzzzzzz'\n"


def test_ignore_unknown_keys():
    data = GOOD + b'{"srcip": "10.0.0.1", "payload": "c"}\n'
    status, out, err = run("encode", "--ignore-unknown-keys", "-f", "jsonl", stdin=data)
    assert status == 0 and err == "" and len(out.splitlines()) == 3


@pytest.mark.parametrize("record,key", [
    (b'{"src_port": "abc"}', "src_port"), (b'{"ts_sec": "x"}', "ts_sec"),
    (b'{"family": "ipv9"}', "family"), (b'{"proto": "nope"}', "proto"),
    (b'{"time": "garbage"}', "time"), (b'{"src_ip": "nope"}', "src_ip"),
    (b'{"capture_id": -1}', "capture_id"),
])
def test_value_errors_name_the_key(record, key):
    status, _, err = run("encode", stdin=GOOD + record + b"\n")
    assert status == 3
    assert err.startswith((f"Error: line 3: bad record value: {key}: ",
                           f"Error: line 3: {key} ")), err


def test_every_key_decode_writes_is_known(tmp_path):
    """decode's records (HEPv1 with frame_time, several inputs with input, sip views)
    go back through encode to the same bytes."""
    for sources in ([KAM / "kamailio-hep1-udp.hep.pcap"],
                    [KAM / "kamailio-hep3-udp.hep.pcap", KAM / "kamailio-hep2-udp.hep.pcap"],
                    [ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.pcap"]):
        status, records, err = run("decode", "-f", "jsonl", *sources)
        assert status == 0, err
        status, raw, err = run("decode", "-f", "raw", *sources)
        assert status == 0, err
        status, again, err = run("encode", stdin=records)
        assert status == 0, err
        assert again == raw
    status, records, err = run("convert", KAM / "kamailio-hep3-udp.sip.pcap", "--to", "jsonl")
    assert status == 0 and run("encode", stdin=records)[0] == 0


def test_hep_version_is_the_name_and_version_the_same_option():
    a = run("encode", "--hep-version", "2", "--payload", "x", "-f", "pcap", "--time", "1")
    b = run("encode", "--version", "2", "--payload", "x", "-f", "pcap", "--time", "1")
    assert a[0] == 0 and a == b
    status, _, err = run("encode", "--hep-version", "1", "--chunk", "vlan=1")
    assert status == 2 and "--chunk needs --hep-version 3" in err
    status, out, _ = run("encode", "--help")
    assert "--hep-version, --version" in out.decode()
