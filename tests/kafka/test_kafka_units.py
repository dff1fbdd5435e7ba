"""Kafka pieces that need no broker: the URL, the key of a packet, its headers, the options,
and the one-line error (exit status 2) when the client is not installed."""

from __future__ import annotations

import sys

import pytest

from heptool.cli import main
from heptool.core.message import HepMessage
from heptool.core.record import format_extra_correlation
from heptool.net.kafka import (
    CONFIG_ENV,
    DEFAULT_KEY_ORDER,
    call_key,
    env_config,
    hep_headers,
    parse_key_order,
)
from heptool.net.target import KafkaTarget, parse_target


def test_kafka_url():
    t = parse_target("kafka://broker.example:9093/hep.calls", kafka=True)
    assert t == KafkaTarget("broker.example", 9093, "hep.calls")
    assert str(t) == "kafka://broker.example:9093/hep.calls"
    assert t.bootstrap == "broker.example:9093" and not t.is_stream
    assert parse_target("KAFKA://[::1]/t", kafka=True).bootstrap == "[::1]:9092"


@pytest.mark.parametrize("text, words", [
    ("kafka://b:9092", "missing the topic"),
    ("kafka://b:9092/", "missing the topic"),
    ("kafka://b:9092/a b", "not a Kafka topic name"),
    ("kafka://b:99999/t", "port must be a number"),
    ("kafka://:9092/t", "missing host"),
])
def test_bad_kafka_urls(text, words):
    with pytest.raises(ValueError, match=words):
        parse_target(text, kafka=True)


def test_kafka_url_only_where_allowed():
    with pytest.raises(ValueError, match="cannot be used here"):
        parse_target("kafka://b:9092/t")
    with pytest.raises(ValueError, match="unknown transport"):
        parse_target("http://b:9092/t", kafka=True)


def _sip(cid: str) -> bytes:
    return f"INVITE sip:b@y SIP/2.0\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\n\r\n".encode()


def _m(**kw) -> HepMessage:
    base = {"version": 3, "family": 2, "ip_proto": 17, "src_ip": "10.0.0.1",
            "dst_ip": "10.0.0.2", "src_port": 5060, "dst_port": 5060, "ts_sec": 1_700_000_000,
            "ts_usec": 42, "proto_type": 1, "capture_id": 2001}
    return HepMessage(**{**base, **kw})


def test_key_is_the_call():
    # the SIP Call-ID when nothing else says which call
    assert call_key(_m(payload=_sip("c1@x"))) == "c1@x"
    # chunk 0x0011 before the Call-ID: a B2BUA's B leg keyed by the A leg the agent names
    assert call_key(_m(payload=_sip("b-leg"), correlation_id="a-leg")) == "a-leg"
    # OpenSIPS's chunk 0x0065 'sip' names the call even when 0x0011 is a REST request id
    rest = _m(proto_type=0x58, payload=b"POST /x", correlation_id="RESTCORRabc",
              extra_correlation=format_extra_correlation([("sip", "c1@x")]))
    assert call_key(rest) == "c1@x"
    # the order asked for
    assert call_key(rest, ("correlation-id", "call-id", "extra-sip")) == "RESTCORRabc"
    assert call_key(_m(payload=_sip("b"), correlation_id="a"), ("call-id",)) == "b"
    # a net event's 0x0065 has no 'sip': its own 0x0011
    net = _m(proto_type=0x59, correlation_id="123",
             extra_correlation=format_extra_correlation([("net", "123")]))
    assert call_key(net) == "123"
    assert call_key(_m(payload=b"not sip")) is None


def test_key_order_option():
    assert parse_key_order("auto") == DEFAULT_KEY_ORDER
    assert parse_key_order("none") == ()
    assert parse_key_order("call-id, correlation-id") == ("call-id", "correlation-id")
    with pytest.raises(ValueError, match="not a key source"):
        parse_key_order("call-id,x-cid")


def test_headers():
    h = dict(hep_headers(_m(payload=b"x", node_name="edge-1")))
    assert h == {"hep_proto": b"1", "hep_capture_id": b"2001",
                 "hep_time": b"1700000000.000042", "hep_node": b"edge-1"}
    assert "hep_node" not in dict(hep_headers(_m(payload=b"x")))


def test_env_config():
    assert env_config({CONFIG_ENV: "security.protocol=SASL_SSL; sasl.mechanism=PLAIN;"}) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}
    assert env_config({}) == {}
    with pytest.raises(ValueError, match="not key=value"):
        env_config({CONFIG_ENV: "linger.ms"})


def test_kafka_options_need_a_kafka_input(tmp_path, capsys):
    f = tmp_path / "x.hep"
    f.write_bytes(b"")
    assert main(["decode", str(f), "--group", "g"]) == 2
    assert "--group needs a kafka://HOST:PORT/TOPIC input" in capsys.readouterr().err
    assert main(["decode", "kafka://b:9092/a b"]) == 2
    assert "not a Kafka topic name" in capsys.readouterr().err
    assert main(["listen", "--bind", "kafka://b:9092/t"]) == 2
    assert "cannot be used here" in capsys.readouterr().err
    assert main(["send", "--payload", "x", "--to", "udp://127.0.0.1:9", "--kafka-key",
                 "x-cid"]) == 2
    assert "not a key source" in capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["send", "--payload", "x", "--to", "kafka://127.0.0.1:9092/hep"],
    ["listen", "--bind", "udp://127.0.0.1:0", "--forward", "kafka://127.0.0.1:9092/hep"],
    ["decode", "kafka://127.0.0.1:9092/hep"],
    ["correlate", "kafka://127.0.0.1:9092/hep"],
    ["send", "kafka://127.0.0.1:9092/hep", "--to", "udp://127.0.0.1:9"],
])
def test_without_the_client_one_line_and_exit_2(monkeypatch, capsys, args):
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # import fails, as uninstalled
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("Error: ") and "pip install heptool[kafka]" in err
