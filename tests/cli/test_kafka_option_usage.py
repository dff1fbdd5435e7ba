"""The Kafka options are usage errors (exit status 2, the error on one line) where nothing
is kafka://: ``--kafka-key`` without a kafka:// ``--forward`` (listen) or ``--to`` (send),
``--group``/``--kafka-group``, ``--from-beginning`` and ``--until-idle`` without a kafka://
input (decode, correlate, convert, send).  None of these needs the Kafka client."""

from __future__ import annotations

import pytest

from heptool.cli import main


@pytest.fixture
def hep_file(tmp_path):
    from heptool.core.codec import encode
    from heptool.core.message import HepMessage

    f = tmp_path / "in.hep"
    f.write_bytes(encode(HepMessage(src_ip="192.0.2.1", src_port=5060, dst_ip="192.0.2.2",
                                    dst_port=5060, ts_sec=1_700_000_000, ts_usec=0,
                                    proto_type=1, capture_id=1, payload=b"x")))
    return f


def _usage_error(capsys, args: list[str], message: str) -> None:
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    errors = [ln for ln in err.splitlines() if ln.startswith("Error: ")]
    assert errors == [f"Error: {message}"], err


# each would run (and end: --duration, one packet) if the option were ignored
@pytest.mark.parametrize("args, where", [
    (["listen", "--bind", "udp://127.0.0.1:0", "--duration", "0.1", "-q"], "--forward"),
    (["listen", "--bind", "udp://127.0.0.1:0", "--duration", "0.1", "-q",
      "--forward", "udp://127.0.0.1:9"], "--forward"),
    (["listen", "--bind", "udp://127.0.0.1:0", "--duration", "0.1", "-q", "--workers", "2",
      "--forward", "udp://127.0.0.1:9"], "--forward"),
    (["send", "--payload", "x", "--to", "udp://127.0.0.1:9"], "--to"),
    (["send", "--payload", "x", "--to", "udp://127.0.0.1:9", "--to", "tcp://127.0.0.1:9"],
     "--to"),
])
@pytest.mark.parametrize("key", ["call-id", "auto", "none"])
def test_kafka_key_without_a_kafka_target(capsys, args, where, key):
    _usage_error(capsys, [*args, "--kafka-key", key], f"--kafka-key needs a kafka:// {where}")


def test_a_bad_kafka_key_is_said_first(capsys):
    _usage_error(capsys, ["listen", "--bind", "udp://127.0.0.1:0", "--duration", "0.1",
                          "--kafka-key", "x-cid"],
                 "Invalid value for '--kafka-key': 'x-cid' is not a key source (use "
                 "extra-sip, correlation-id, call-id, a comma-separated order of them, auto "
                 "or none)")


@pytest.mark.parametrize("option", [["--group", "g"], ["--kafka-group", "g"],
                                    ["--from-beginning"], ["--until-idle", "2"]])
@pytest.mark.parametrize("command", ["decode", "convert", "send"])
def test_consumer_options_without_a_kafka_input(capsys, tmp_path, hep_file, command, option):
    args = {"decode": ["decode", str(hep_file)],
            "convert": ["convert", str(hep_file), "-o", str(tmp_path / "o.pcap")],
            "send": ["send", str(hep_file), "--to", "udp://127.0.0.1:9"]}[command]
    name = "--group" if option[0] == "--kafka-group" else option[0]
    _usage_error(capsys, [*args, *option], f"{name} needs a kafka://HOST:PORT/TOPIC input")
    assert not (tmp_path / "o.pcap").exists()


@pytest.mark.parametrize("option, name", [
    (["--kafka-group", "g"], "--kafka-group"),  # correlate's --group picks a correlation group
    (["--from-beginning"], "--from-beginning"), (["--until-idle", "2"], "--until-idle")])
def test_correlate_consumer_options_without_a_kafka_input(capsys, hep_file, option, name):
    _usage_error(capsys, ["correlate", str(hep_file), *option],
                 f"{name} needs a kafka://HOST:PORT/TOPIC input")


def test_send_built_or_scenario_without_input_and_a_consumer_option(capsys):
    _usage_error(capsys, ["send", "--payload", "x", "--to", "udp://127.0.0.1:9", "--group", "g"],
                 "--group needs a kafka://HOST:PORT/TOPIC input")
    _usage_error(capsys, ["send", "--scenario", "call", "--to", "udp://127.0.0.1:9",
                          "--from-beginning"],
                 "--from-beginning needs a kafka://HOST:PORT/TOPIC input")
