"""Registries: HEP chunk types, vendor ids, protocol types (chunk 0x000b) and IP families.

Everything here is data.  Unknown values never raise: an unknown chunk is kept raw
(``0xVVVV:0xTTTT``), an unknown protocol type is shown as its number.  Sources for
every entry are in HEP-SPEC.md sections 3-6 (team's shared spec).
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "CHUNKS",
    "CHUNKS_BY_NAME",
    "FAMILY_NAMES",
    "PROTO_ALIASES",
    "PROTO_CLASHES",
    "PROTO_TYPES",
    "VENDORS",
    "ChunkSpec",
    "chunk_name",
    "chunk_spec",
    "family_from_text",
    "family_name",
    "parse_chunk_id",
    "parse_int",
    "proto_from_text",
    "proto_name",
    "register_chunk",
    "register_proto",
]


class ChunkSpec(NamedTuple):
    """How one generic (vendor 0) chunk type is read and written.

    ``kind`` is one of: u8, u16, u32, u64, ip4, ip6, text, bytes, mac.  ``field`` is the
    :class:`~heptool.core.message.HepMessage` attribute that holds the value (several
    chunk types can share one field: 0x03 and 0x05 both set ``src_ip``); fields that are
    not attributes live in ``HepMessage.extra`` under that name.  ``size`` is the fixed
    body size, or None for variable-length kinds.  ``lenient_sizes`` are other body sizes
    seen in the wild (1-byte VLAN of spec rev<=18, 8-byte MACs, 1-byte event type).
    """

    type: int
    name: str
    kind: str
    field: str
    size: int | None
    lenient_sizes: tuple[int, ...] = ()
    doc: str = ""


_SIZES: Final = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "ip4": 4, "ip6": 16}


def _spec(t: int, name: str, kind: str, field: str | None = None, lenient=(), doc="") -> ChunkSpec:
    return ChunkSpec(t, name, kind, field or name, _SIZES.get(kind), tuple(lenient), doc)


#: Generic chunk types (vendor 0x0000), spec rev37 plus OpenSIPS 0x0065.
CHUNKS: dict[int, ChunkSpec] = {
    s.type: s
    for s in (
        _spec(0x01, "family", "u8", doc="IP protocol family (2 IPv4, 10 IPv6)"),
        _spec(0x02, "ip_proto", "u8", doc="IP protocol (17 UDP, 6 TCP, 22 fake TLS, 50 fake WS)"),
        _spec(0x03, "src_ipv4", "ip4", "src_ip", doc="IPv4 source address"),
        _spec(0x04, "dst_ipv4", "ip4", "dst_ip", doc="IPv4 destination address"),
        _spec(0x05, "src_ipv6", "ip6", "src_ip", doc="IPv6 source address"),
        _spec(0x06, "dst_ipv6", "ip6", "dst_ip", doc="IPv6 destination address"),
        _spec(0x07, "src_port", "u16", doc="source port"),
        _spec(0x08, "dst_port", "u16", doc="destination port"),
        _spec(0x09, "ts_sec", "u32", doc="timestamp, seconds since the Unix epoch"),
        _spec(0x0A, "ts_usec", "u32", doc="timestamp, microseconds"),
        _spec(0x0B, "proto_type", "u8", doc="protocol type of the payload"),
        _spec(0x0C, "capture_id", "u32", doc="capture agent id"),
        _spec(0x0D, "keepalive", "u16", doc="keep-alive timer (s)"),
        _spec(0x0E, "auth_key", "text", doc="authentication key"),
        _spec(0x0F, "payload", "bytes", doc="captured payload"),
        _spec(0x10, "compressed_payload", "bytes", "payload", doc="compressed payload"),
        _spec(0x11, "correlation_id", "text", doc="internal correlation id"),
        _spec(0x12, "vlan", "u16", lenient=(1,), doc="VLAN id"),
        _spec(0x13, "node_name", "text", doc="capture agent name (Group ID before spec rev36)"),
        _spec(0x14, "src_mac", "mac", doc="source MAC"),
        _spec(0x15, "dst_mac", "mac", doc="destination MAC"),
        _spec(0x16, "eth_type", "u16", doc="Ethernet type"),
        _spec(0x17, "tcp_flags", "u8", doc="TCP flags"),
        _spec(0x18, "ip_tos", "u8", doc="IP TOS"),
        _spec(0x20, "mos", "u16", doc="MOS x100"),
        _spec(0x21, "rfactor", "u16", doc="R-factor"),
        _spec(0x22, "geo_location", "text", doc="geo location"),
        _spec(0x23, "jitter", "u32", doc="jitter"),
        _spec(0x24, "transaction_type", "text", doc="transaction type (call, registration)"),
        _spec(0x25, "payload_json_keys", "text", doc="payload JSON keys"),
        _spec(0x26, "tags_values", "text", doc="tags' values"),
        _spec(0x27, "tag_type", "u16", doc="type of tag"),
        _spec(0x28, "event_type", "u16", lenient=(1,), doc="event type (1 recording, 2 LI)"),
        _spec(0x29, "group_id", "text", doc="group id (spec rev36+)"),
        _spec(0x65, "extra_correlation", "text", doc="OpenSIPS extra correlation (JSON)"),
    )
}

CHUNKS_BY_NAME: dict[str, ChunkSpec] = {s.name: s for s in CHUNKS.values()}
# Friendly aliases accepted on input (CLI --chunk, records): the field names.
_CHUNK_ALIASES: Final = {"src_ip": 0x03, "dst_ip": 0x04, "correlation": 0x11, "cid": 0x11}

#: Vendor ids (chunk header bytes 0-1).
VENDORS: dict[int, str] = {
    0x0000: "generic",
    0x0001: "freeswitch",
    0x0002: "kamailio",
    0x0003: "opensips",
    0x0004: "asterisk",
    0x0005: "homer",
    0x0006: "sipxecs",
    0x0007: "yeti",
    0x0008: "genesys",
}

#: Protocol types (chunk 0x000b).  Names are unique; see PROTO_ALIASES for more spellings.
PROTO_TYPES: dict[int, str] = {
    0: "reserved",
    1: "sip",
    2: "xmpp",
    3: "sdp",
    4: "rtp",
    5: "rtcp",
    6: "mgcp",
    7: "megaco",
    8: "m2ua",
    9: "m3ua",
    10: "iax",
    11: "h322",
    12: "h321",
    13: "m2pa",
    20: "webrtc_json",
    32: "qos",
    34: "mos_full",
    35: "mos_short",
    38: "horaclifix",
    50: "sip_json",
    53: "dns",
    54: "m3ua_json",
    55: "rtsp",
    56: "diameter",
    57: "gsm_map",
    58: "rtcp_pion",
    60: "cdr",
    61: "verto",
    86: "xlog_old",
    87: "mi",
    88: "rest",
    89: "net",
    96: "control",
    99: "qos_report",
    100: "log",
}

PROTO_ALIASES: dict[str, int] = {
    "xlog": 100,
    "rtcp_json": 5,
    "h248": 7,
    "json_qos": 32,
    "rtpagent": 34,
    "rtcpxr": 35,
    "report": 99,
    "trans": 89,
    "http": 88,
}

#: Numbers that mean different things in hex and in decimal (HEP-SPEC section 5).
#: ``proto_from_text("58")`` is decimal 58 (RTCP PION); ``"0x58"`` is 88 (OpenSIPS REST).
PROTO_CLASHES: dict[int, tuple[int, int]] = {
    # written number -> (decimal meaning, hex meaning)
    20: (20, 32),
    56: (56, 86),
    57: (57, 87),
    58: (58, 88),
    59: (59, 89),
    60: (60, 96),
    64: (64, 100),
}

FAMILY_NAMES: dict[int, str] = {2: "ipv4", 10: "ipv6"}
_FAMILY_BY_NAME: Final = {"ipv4": 2, "ipv6": 10, "inet": 2, "inet6": 10}


def chunk_spec(vendor: int, ctype: int) -> ChunkSpec | None:
    """The spec of a generic chunk, or None (vendor chunks and unknown types)."""
    if vendor:
        return None
    return CHUNKS.get(ctype)


def chunk_name(vendor: int, ctype: int) -> str:
    """Registry name, or the generic ``0xVVVV:0xTTTT`` form for unknown chunks."""
    spec = chunk_spec(vendor, ctype)
    return spec.name if spec else f"0x{vendor:04x}:0x{ctype:04x}"


def parse_int(text: str) -> int:
    """Decimal or ``0x`` hex in ASCII; ValueError otherwise (``int`` alone also takes other
    scripts' digits, ``_`` separators and thousands of digits; records are input)."""
    text = text.strip()
    if not text.isascii() or "_" in text or len(text) > 24:
        raise ValueError(f"not a number: {text!r}")
    return int(text, 16) if text.lower().startswith("0x") else int(text, 10)


def parse_chunk_id(text: str) -> tuple[int, int]:
    """``"correlation_id"``, ``"0x0011"``, ``"17"`` or ``"0x0003:0x0020"`` -> (vendor, type)."""
    t = text.strip().lower()
    if t in CHUNKS_BY_NAME:
        return 0, CHUNKS_BY_NAME[t].type
    if t in _CHUNK_ALIASES:
        return 0, _CHUNK_ALIASES[t]
    try:
        if ":" in t:
            v, _, c = t.partition(":")
            vendor, ctype = parse_int(v), parse_int(c)
        else:
            vendor, ctype = 0, parse_int(t)
    except ValueError:
        raise ValueError(f"unknown chunk {text!r} (use a name such as correlation_id, "
                         "a number such as 0x0011, or vendor:type)") from None
    if not (0 <= vendor <= 0xFFFF and 0 <= ctype <= 0xFFFF):
        raise ValueError(f"chunk id {text!r} out of range 0..0xffff")
    return vendor, ctype


def proto_name(value: int | None) -> str | None:
    """Name of a protocol type; unknown types print as their number."""
    if value is None:
        return None
    return PROTO_TYPES.get(value, str(value))


_PROTO_BY_NAME: Final = {name: num for num, name in PROTO_TYPES.items()}


def proto_from_text(text: str) -> int:
    """``"sip"``, ``"log"``, ``"100"``, ``"0x64"`` -> int.  Decimal unless ``0x``."""
    t = text.strip().lower()
    if t in _PROTO_BY_NAME:
        return _PROTO_BY_NAME[t]
    if t in PROTO_ALIASES:
        return PROTO_ALIASES[t]
    try:
        n = parse_int(t)
    except ValueError:
        names = ", ".join(sorted(_PROTO_BY_NAME))
        raise ValueError(f"unknown protocol type {text!r}; use a number or one of: {names}") from None
    if not 0 <= n <= 255:
        raise ValueError(f"protocol type {text!r} out of range 0..255")
    return n


def family_name(value: int | None) -> str | int | None:
    if value is None:
        return None
    return FAMILY_NAMES.get(value, value)


def family_from_text(value: str | int) -> int:
    if isinstance(value, int):
        return value
    t = value.strip().lower()
    if t in _FAMILY_BY_NAME:
        return _FAMILY_BY_NAME[t]
    try:
        n = parse_int(t)
    except ValueError:
        raise ValueError(f"unknown address family {value!r} (use ipv4, ipv6 or a number)") from None
    if not 0 <= n <= 255:
        raise ValueError(f"address family {value!r} out of range 0..255")
    return n


def register_chunk(ctype: int, name: str, kind: str, doc: str = "") -> ChunkSpec:
    """Teach the registry a new generic chunk type (its value lands in ``HepMessage.extra``)."""
    if kind not in ("u8", "u16", "u32", "u64", "ip4", "ip6", "text", "bytes", "mac"):
        raise ValueError(f"unknown chunk value kind {kind!r}")
    if ctype in CHUNKS:
        raise ValueError(f"chunk type 0x{ctype:04x} is already registered as {CHUNKS[ctype].name}")
    spec = _spec(ctype, name, kind, doc=doc)
    CHUNKS[ctype] = spec
    CHUNKS_BY_NAME[name] = spec
    return spec


def register_proto(value: int, name: str) -> None:
    PROTO_TYPES[value] = name
    _PROTO_BY_NAME[name] = value
