"""Where HEP goes or comes from: ``udp://host:port``, ``tcp://host:port``, ``tls://host:port``,
and (where the caller allows it) a Kafka topic, ``kafka://host:port/topic``.

    parse_target("udp://127.0.0.1:9060")     -> Target("udp", "127.0.0.1", 9060)
    parse_target("tcp://[::1]:9061")         -> Target("tcp", "::1", 9061)
    parse_target("tls://collector.example:9060")
    parse_target("kafka://broker:9092/hep", kafka=True) -> KafkaTarget("broker", 9092, "hep")

The host is an IPv4 address, an IPv6 address in brackets, or a name (resolved when a socket
is opened, not here). Port 0 is allowed for listening ("pick a free port"). Errors are
``ValueError`` with a one-line message naming the text.

A Kafka URL names one bootstrap broker (the client learns the others from it; port 9092
when left out) and the topic.  Only commands that read or write Kafka accept it (``kafka=True``);
the client itself is the optional extra (:mod:`heptool.net.kafka`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal, overload

from ..core.addr import port_number

__all__ = ["KAFKA_PORT", "SCHEMES", "STREAM_SCHEMES", "KafkaTarget", "Target", "format_addr",
           "is_kafka_url", "parse_target"]

SCHEMES = ("udp", "tcp", "tls")
STREAM_SCHEMES = frozenset({"tcp", "tls"})
DEFAULT_PORT = 9060
#: Kafka's port when a kafka:// URL leaves it out
KAFKA_PORT = 9092


@dataclass(frozen=True, slots=True)
class Target:
    """One HEP endpoint: transport, host and port."""

    scheme: str
    host: str
    port: int

    @property
    def is_stream(self) -> bool:
        """TCP or TLS (HEP framed in a byte stream) rather than UDP datagrams."""
        return self.scheme in STREAM_SCHEMES

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def __str__(self) -> str:
        return f"{self.scheme}://{format_addr(self.host, self.port)}"

    def with_port(self, port: int) -> Target:
        return Target(self.scheme, self.host, port)


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    """A Kafka topic: one bootstrap broker (``host``, ``port``) and the ``topic``."""

    host: str
    port: int
    topic: str
    scheme: str = "kafka"

    @property
    def is_stream(self) -> bool:
        """Not a TCP/TLS HEP stream: the packets go as they are, one Kafka message each."""
        return False

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def bootstrap(self) -> str:
        """``host:port`` for the client's ``bootstrap.servers``."""
        return format_addr(self.host, self.port)

    def __str__(self) -> str:
        return f"kafka://{self.bootstrap}/{self.topic}"


def is_kafka_url(text: str) -> bool:
    """Whether ``text`` is meant as a Kafka URL (``kafka://...``, any case)."""
    return text[:8].lower() == "kafka://"


_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _parse_kafka(text: str, rest: str) -> KafkaTarget:
    where, slash, topic = rest.partition("/")
    if not slash or not topic:
        raise ValueError(f"{text!r}: missing the topic: kafka://HOST:PORT/TOPIC")
    if len(topic) > 249 or topic in (".", "..") or not set(topic) <= _TOPIC_CHARS:
        raise ValueError(f"{text!r}: {topic!r} is not a Kafka topic name (letters, digits, "
                         "'.', '_', '-'; at most 249)")
    t = parse_target(f"tcp://{where}", default_port=KAFKA_PORT)
    return KafkaTarget(t.host, t.port, topic)


def format_addr(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _valid_name(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    labels = host.rstrip(".").split(".")
    return all(
        label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)
        and not label.startswith("-") for label in labels
    )


@overload
def parse_target(text: str, *, default_port: int | None = None,
                 kafka: Literal[False] = False) -> Target: ...
@overload
def parse_target(text: str, *, default_port: int | None = None,
                 kafka: bool) -> Target | KafkaTarget: ...
def parse_target(text: str, *, default_port: int | None = None,
                 kafka: bool = False) -> Target | KafkaTarget:
    """Parse ``SCHEME://HOST:PORT`` (``SCHEME`` one of udp, tcp, tls): a :class:`Target`.

    ``default_port`` is used when ``:PORT`` is left out; without it the port is required.
    With ``kafka``, ``kafka://HOST[:PORT]/TOPIC`` is accepted too (a :class:`KafkaTarget`).
    """
    t = text.strip()
    scheme, sep, rest = t.partition("://")
    if not sep:
        raise ValueError(f"{text!r}: expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT"
                         + (" or kafka://HOST:PORT/TOPIC" if kafka else ""))
    scheme = scheme.lower()
    if scheme == "kafka" and kafka:
        return _parse_kafka(text, rest)
    if scheme not in SCHEMES:
        if scheme == "kafka":
            raise ValueError(f"{text!r}: a Kafka topic cannot be used here")
        raise ValueError(f"{text!r}: unknown transport {scheme!r} (use udp, tcp or tls"
                         + (", or kafka" if kafka else "") + ")")
    rest = rest.rstrip("/")
    port_text: str | None = None
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: missing ']' after the IPv6 address")
        host, tail = rest[1:end], rest[end + 1:]
        if tail:
            if not tail.startswith(":"):
                raise ValueError(f"{text!r}: expected ':PORT' after ']'")
            port_text = tail[1:]
        try:
            host = ipaddress.IPv6Address(host.split("%")[0]).compressed + (
                "%" + host.split("%", 1)[1] if "%" in host else "")
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    else:
        if rest.count(":") > 1:
            raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. {scheme}://[::1]:9060")
        host, colon, port_text_ = rest.partition(":")
        port_text = port_text_ if colon else None
        if not host:
            raise ValueError(f"{text!r}: missing host")
        try:
            host = ipaddress.IPv4Address(host).compressed
        except ValueError:
            if not _valid_name(host):
                raise ValueError(f"{text!r}: {host!r} is not an address or host name") from None
    if port_text is None:
        if default_port is None:
            raise ValueError(f"{text!r}: missing :PORT")
        port = default_port
    else:
        port_n = port_number(port_text)
        if port_n is None:
            raise ValueError(f"{text!r}: port must be a number 0..65535")
        port = port_n
    return Target(scheme, host, port)
