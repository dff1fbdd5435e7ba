"""Every click parameter type of heptool, and the small parsers of option values.

One module for them (httpie's ``cli/argtypes.py``), so no command module imports another
to reuse a type: ``encode`` and ``send`` share the packet types, ``listen`` and ``send`` the
URL type.  Kept light at import time (every shell TAB press imports it): click only; what a
conversion needs is imported inside it.
"""

from __future__ import annotations

import re
from typing import Any

import click

__all__ = [
    "IP_PROTOS",
    "ChunkParam",
    "EndpointParam",
    "IpProtoParam",
    "ProtoParam",
    "SizeParam",
    "TargetParam",
    "TimeParam",
    "parse_alias",
    "parse_hep_endpoint",
    "parse_ports",
    "parse_proto_type",
]

#: ``--ip-proto`` names.
IP_PROTOS = {"udp": 17, "tcp": 6, "sctp": 132, "tls": 22, "ws": 50}


class ProtoParam(click.ParamType):
    """A protocol type (chunk 0x000b): a name (sip, log, rtcp...) or a number (0x.. = hex)."""

    name = "proto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from heptool.core.registry import proto_from_text

        try:
            return proto_from_text(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        from heptool.core.registry import PROTO_ALIASES, PROTO_TYPES

        names = sorted({*PROTO_TYPES.values(), *PROTO_ALIASES})
        return [CompletionItem(n) for n in names if n.startswith(incomplete.lower())]


class ChunkParam(click.ParamType):
    """``--chunk SPEC`` (see heptool.core.chunkspec); completes chunk names."""

    name = "spec"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from heptool.core.chunkspec import ChunkSetting, ChunkSpecError, parse_chunk_spec

        if isinstance(value, ChunkSetting):
            return value
        try:
            setting = parse_chunk_spec(str(value))
        except ChunkSpecError as e:
            self.fail(str(e).removeprefix("--chunk "), param, ctx)
        if setting.file is not None:
            try:
                with open(setting.file, "rb") as f:
                    setting = setting.with_body(f.read())
            except OSError as e:
                self.fail(f"{value!r}: cannot read {setting.file}: {e.strerror or e}", param, ctx)
        return setting

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        from heptool.core.chunkspec import chunk_names
        from heptool.core.registry import CHUNKS_BY_NAME

        if "=" in incomplete:
            return []
        return [
            CompletionItem(n, help=CHUNKS_BY_NAME[n].doc if n in CHUNKS_BY_NAME else None)
            for n in chunk_names()
            if n.startswith(incomplete.lower())
        ]


class EndpointParam(click.ParamType):
    """``ADDR:PORT`` or ``[IPv6]:PORT``."""

    name = "addr:port"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        from heptool.capture.writer import parse_endpoint

        try:
            return parse_endpoint(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


class IpProtoParam(click.ParamType):
    """``udp``, ``tcp``, ``sctp``, ``tls`` (22), ``ws`` (50) or a number 0..255."""

    name = "ip-proto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        t = str(value).strip().lower()
        if t in IP_PROTOS:
            return IP_PROTOS[t]
        try:
            n = int(t, 0)
        except ValueError:
            self.fail(f"{value!r}: use udp, tcp, sctp, tls, ws or a number 0..255", param, ctx)
        if not 0 <= n <= 255:
            self.fail(f"{value!r}: out of range 0..255", param, ctx)
        return n

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(n) for n in IP_PROTOS if n.startswith(incomplete.lower())]


class TimeParam(click.ParamType):
    """ISO 8601 (``2026-11-26T09:00:00.5Z``; no zone = UTC) or epoch seconds."""

    name = "time"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        from heptool.core.errors import HepValueError
        from heptool.core.record import parse_time

        try:
            ts = parse_time(str(value))
        except HepValueError as e:
            self.fail(str(e), param, ctx)
        if not 0 <= ts[0] <= 0xFFFFFFFF:
            self.fail(f"{value!r} does not fit in HEP's 32-bit seconds", param, ctx)
        return ts


class TargetParam(click.ParamType):
    """``udp://HOST:PORT``, ``tcp://HOST:PORT``, ``tls://HOST:PORT`` (IPv6 as ``[::1]``);
    with ``kafka=True`` also ``kafka://HOST:PORT/TOPIC`` (the client must be installed)."""

    name = "url"

    def __init__(self, *, kafka: bool = False) -> None:
        self.kafka = kafka

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from heptool.net.target import KafkaTarget, Target, parse_target

        if isinstance(value, (Target, KafkaTarget)):
            return value
        try:
            t = parse_target(str(value), kafka=self.kafka)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if isinstance(t, KafkaTarget):
            from heptool.cli.kafka_options import require_client

            require_client(str(value))
        return t

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        schemes = ("udp://", "tcp://", "tls://") + (("kafka://",) if self.kafka else ())
        return [CompletionItem(s) for s in schemes if s.startswith(incomplete)]


class SizeParam(click.ParamType):
    """A byte count: ``1000000``, ``100K``, ``100M``, ``2G``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)i?[bB]?\s*", str(value))
        if not m or int(m.group(1)) == 0:
            self.fail(f"{value!r}: use a size like 1000000, 100K, 100M or 2G", param, ctx)
        return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[
            m.group(2).lower()]


def parse_ports(text: str) -> frozenset[int]:
    """``5060``, ``5060-5090``, ``5060,5080-5081`` -> the set of ports; ValueError."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        lo, hi = lo.strip(), hi.strip()
        try:
            if (not (lo + hi).isascii() or not lo.isdigit() or (sep and not hi.isdigit())
                    or len(lo) > 5 or len(hi) > 5):
                raise ValueError(part)  # int() alone takes '٣' and '1_0'
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"--ports: {part!r} is not a port or a range A-B") from None
        if not (0 <= a <= 65535 and 0 <= b <= 65535) or a > b:
            raise ValueError(f"--ports: {part!r} is not within 0-65535 (A-B with A <= B)")
        out.update(range(a, b + 1))
    if not out:
        raise ValueError("--ports: no port given")
    return frozenset(out)


def parse_proto_type(text: str) -> int:
    from heptool.core.registry import proto_from_text

    try:
        return proto_from_text(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--proto-type") from None


def parse_hep_endpoint(text: str, option: str, default_port: int) -> tuple[str, int]:
    from heptool.analysis.filters import parse_address

    t = text.strip()
    try:
        if t.startswith("[") or t.count(":") == 1:
            f = parse_address(t)
        else:
            f = parse_address(f"[{t}]" if ":" in t else t)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=option) from None
    if f.host is None:
        raise click.BadParameter(f"{text!r} is not ADDR:PORT ([V6]:PORT for IPv6)",
                                 param_hint=option)
    return f.host, default_port if f.port is None else f.port


def _endpoints(text: str) -> list[str] | None:
    """``text`` as a comma-separated list of endpoints (``ip``, ``ip:port``,
    ``[v6]:port``) in the form the flow's columns use, or None when it is not one."""
    import ipaddress

    out = []
    for part in text.split(","):
        part = part.strip()
        host, colon, port = part.rpartition(":")
        if colon and port.isascii() and port.isdigit() and int(port) <= 65535 \
                and (":" not in host or host.startswith("[")):
            ip, with_port = host, True
        else:
            ip, with_port = part, False
        ip = ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        text_ip = str(addr) if addr.version == 4 else f"[{addr}]"
        out.append(f"{text_ip}:{int(port)}" if with_port else str(addr))
    return out


def parse_alias(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
    """``NAME=ENDPOINT[,ENDPOINT...]`` or ``ENDPOINT[,ENDPOINT...]=NAME`` -> {endpoint: name}
    (an endpoint without a port is an address: any of its ports)."""
    out: dict[str, str] = {}
    for v in values:
        left, sep, right = (x.strip() for x in v.partition("="))
        eps_left, eps_right = _endpoints(left), _endpoints(right)
        if not sep or not left or not right or (eps_left is None) == (eps_right is None):
            raise click.BadParameter(
                f"{v!r}: use NAME=ENDPOINT[,ENDPOINT...] (or ENDPOINT=NAME), an endpoint being "
                "an address (10.0.0.1, 2001:db8::1) or address:port (10.0.0.1:5060, "
                "[2001:db8::1]:5060), the name not an address", ctx=ctx, param=param)
        name, eps = (right, eps_left) if eps_left is not None else (left, eps_right)
        if "," in name:
            raise click.BadParameter(f"{v!r}: a name cannot hold ',' (NAME=ENDPOINT[,ENDPOINT...])",
                                     ctx=ctx, param=param)
        for ep in eps or ():
            out[ep] = name
    return out
