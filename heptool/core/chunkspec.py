"""``--chunk SPEC``: set any chunk of a HEP message from one line of text.

SPEC is ``CHUNK=VALUE`` where CHUNK is

* a registry name: ``correlation_id``, ``vlan``, ``mos``, ``node_name`` ... (also the
  aliases ``src_ip``/``dst_ip``, which take IPv4 or IPv6);
* a generic (vendor 0) type number: ``0x0011`` or ``17`` (decimal unless ``0x``);
* ``VENDOR:TYPE``: ``0x0003:0x0020`` (vendor 0 here means the generic type);

and VALUE is typed by the registry's kind for a known generic chunk (integers,
decimal or ``0x..``; IP addresses; MACs ``00:11:22:33:44:55``; text; the family,
``ip_proto`` and ``proto_type`` chunks also take names: ``ipv6``, ``tcp``, ``log``), or
given explicitly as bytes:

* ``hex:0a0b`` (spaces, ``:`` and ``-`` between bytes allowed), ``b64:CgsM``;
* ``@FILE``: the file's bytes.  The core does no I/O, so :func:`parse_chunk_spec`
  only records the name (``ChunkSetting.file``); the caller reads the file and calls
  :meth:`ChunkSetting.with_body`;
* ``text:...``: the text as is (to send a value that starts with ``hex:``, ``@`` ...).

Vendor and unknown chunks take text (UTF-8) unless a VALUE says otherwise.

:func:`apply_chunks` puts settings into a :class:`HepMessage`: a known generic chunk
sets its field (so the chunk lands where the message's layout or the canonical order
puts it, and a later setting of the same chunk wins); any other chunk, and a known one
whose explicit bytes the field could not reproduce (a 1-byte VLAN, invalid UTF-8), is
added to the layout as a raw chunk, in the order given: after everything else in a
decoded message's layout (kept byte for byte), before the payload in a message built from
fields (the payload last, as every capture agent writes it; Wireshark's dissector shows
chunks after the payload as "trailing stray characters").

Errors are :class:`ChunkSpecError` (a :class:`HepValueError`) with a one-line message
that says what was expected.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

from .errors import HepValueError
from .message import FIELDS, NOVALUE, HepMessage
from .registry import (
    CHUNKS,
    ChunkSpec,
    family_from_text,
    parse_chunk_id,
    parse_int,
    proto_from_text,
)
from .values import decode_value, mac_to_bytes

__all__ = [
    "SPEC_HELP",
    "ChunkSetting",
    "ChunkSpecError",
    "apply_chunks",
    "chunk_names",
    "parse_chunk_spec",
]

SPEC_HELP = (
    "CHUNK=VALUE, where CHUNK is a name (correlation_id), a type (0x0011 or 17) or "
    "VENDOR:TYPE (0x0003:0x0020), and VALUE is typed by the chunk or given as "
    "hex:0a0b, b64:..., @FILE or text:..."
)

#: Names that take either IP version (the registry maps them to the IPv4 type).
_EITHER_IP = frozenset({"src_ip", "dst_ip"})
_IP_PROTO_NAMES = {"udp": 17, "tcp": 6, "sctp": 132, "tls": 22, "ws": 50, "wss": 50}
_LIMITS = {"u8": 0xFF, "u16": 0xFFFF, "u32": 0xFFFFFFFF, "u64": 0xFFFFFFFFFFFFFFFF}


class ChunkSpecError(HepValueError):
    """bad --chunk SPEC"""


class ChunkSetting(NamedTuple):
    """One parsed ``--chunk``: which chunk, and either a typed value or raw body bytes."""

    vendor: int
    type: int
    #: Registry entry of a known generic chunk, else None (vendor/unknown chunks).
    spec: ChunkSpec | None
    #: Typed value for the message field (int, str...) or None when ``body`` is given.
    value: Any
    #: Raw chunk body: explicit ``hex:``/``b64:``/``@FILE`` bytes, or a vendor chunk's text.
    body: bytes | None
    #: ``@FILE`` still to be read by the caller (then :meth:`with_body`); else None.
    file: str | None
    #: The SPEC as given, for messages.
    text: str

    @property
    def label(self) -> str:
        name = f" ({self.spec.name})" if self.spec is not None else ""
        return f"0x{self.vendor:04x}:0x{self.type:04x}{name}"

    def with_body(self, data: bytes) -> ChunkSetting:
        """This setting with the contents of its ``@FILE`` as the body."""
        return self._replace(body=bytes(data), file=None, value=None)


def chunk_names() -> list[str]:
    """Every chunk name ``--chunk`` accepts (for shell completion), registry order."""
    return [s.name for s in CHUNKS.values()] + sorted(_EITHER_IP)


def _err(spec_text: str, message: str) -> ChunkSpecError:
    return ChunkSpecError(f"--chunk {spec_text!r}: {message}")


def parse_chunk_spec(text: str) -> ChunkSetting:
    """Parse one SPEC (see the module docstring); raises :class:`ChunkSpecError`."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise _err(text, f"expected {SPEC_HELP}")
    name = name.strip()
    try:
        vendor, ctype = parse_chunk_id(name)
    except ValueError as e:
        raise _err(text, f"{e}") from None
    spec = CHUNKS.get(ctype) if vendor == 0 else None
    setting = ChunkSetting(vendor, ctype, spec, None, None, None, text)
    # explicit byte forms
    if raw.startswith("hex:"):
        digits = "".join(raw[4:].replace(":", " ").replace("-", " ").split())
        if digits.lower().startswith("0x"):
            digits = digits[2:]
        try:
            return setting._replace(body=bytes.fromhex(digits))
        except ValueError:
            raise _err(
                text, "expected hex digits after 'hex:', e.g. hex:0a0b or hex:0a:0b"
            ) from None
    if raw.startswith("b64:"):
        try:
            return setting._replace(body=base64.b64decode(raw[4:].strip(), validate=True))
        except (binascii.Error, ValueError):
            raise _err(text, "expected base64 after 'b64:', e.g. b64:CgsM") from None
    if raw.startswith("@"):
        if len(raw) < 2:
            raise _err(text, "expected a file name after '@'")
        return setting._replace(file=raw[1:])
    if raw.startswith("text:"):
        raw = raw[5:]
        if spec is None or spec.kind in ("text", "bytes"):
            return _typed(setting, raw, name)
    if spec is None:
        return setting._replace(body=raw.encode("utf-8"))
    return _typed(setting, raw, name)


def _typed(setting: ChunkSetting, raw: str, name: str) -> ChunkSetting:
    spec = setting.spec
    text = setting.text
    if spec is None:
        return setting._replace(body=raw.encode("utf-8"))
    kind = spec.kind
    label = setting.label
    if kind in _LIMITS:
        v = raw.strip()
        try:
            if spec.type == 0x01 and not v[:1].isdigit():
                value = family_from_text(v)
            elif spec.type == 0x02 and v.lower() in _IP_PROTO_NAMES:
                value = _IP_PROTO_NAMES[v.lower()]
            elif spec.type == 0x0B and not v[:1].isdigit():
                value = proto_from_text(v)
            else:
                value = parse_int(v)  # ASCII only, bounded: never int()'s own ValueError
        except ValueError:
            extra = {
                0x01: " or ipv4/ipv6",
                0x02: " or udp/tcp/sctp/tls/ws",
                0x0B: " or a protocol name (sip, log, rtcp...)",
            }.get(spec.type, "")
            raise _err(
                text, f"chunk {label} expects an integer (decimal or 0x..){extra}, not {raw!r}"
            ) from None
        limit = _LIMITS[kind]
        if not 0 <= value <= limit:
            raise _err(text, f"chunk {label} is a {kind}: expected 0..{limit}, not {value}")
        return setting._replace(value=value)
    if kind in ("ip4", "ip6"):
        try:
            addr = ipaddress.ip_address(raw.strip())
        except ValueError:
            raise _err(text, f"chunk {label} expects an IP address, not {raw!r}") from None
        want = 4 if kind == "ip4" else 6
        if addr.version != want and name.lower() not in _EITHER_IP:
            other = spec.name.replace(f"ipv{want}", f"ipv{addr.version}")
            raise _err(
                text,
                f"chunk {label} expects an IPv{want} address, not {raw!r} "
                f"(use {other} or {spec.field})",
            )
        return setting._replace(value=addr.compressed)
    if kind == "mac":
        try:
            n = len(mac_to_bytes(raw.strip()))
        except ValueError:
            n = -1
        if n not in (6, 8):
            raise _err(
                text,
                f"chunk {label} expects a MAC address like 00:11:22:33:44:55 "
                f"(6 or 8 bytes), not {raw!r}",
            )
        return setting._replace(value=":".join(f"{b:02x}" for b in mac_to_bytes(raw.strip())))
    if spec.type == 0x10:  # compressed payload: the bytes as given are the chunk
        return setting._replace(body=raw.encode("utf-8"))
    if kind == "bytes":
        return setting._replace(value=raw.encode("utf-8"))
    return setting._replace(value=raw)  # text


def _field_value(setting: ChunkSetting) -> Any:
    """The field value a setting stands for, or NOVALUE when it must be a raw chunk."""
    spec = setting.spec
    if spec is None or spec.type == 0x10:
        return NOVALUE
    if setting.body is None:
        return setting.value
    try:
        value, canonical = decode_value(spec, setting.body)
    except HepValueError:
        return NOVALUE
    if not canonical:
        return NOVALUE
    if spec.kind == "bytes":
        return setting.body
    return value


def _set_field(m: HepMessage, spec: ChunkSpec, value: Any) -> None:
    if spec.field in FIELDS:
        setattr(m, spec.field, value)
        if spec.field == "payload":
            m.compression = None
    else:
        m.extra[spec.field] = value


def apply_chunks(m: HepMessage, settings: Iterable[ChunkSetting]) -> HepMessage:
    """Apply parsed settings to ``m`` (in place; also returned).  See the module docstring.

    Raises :class:`ChunkSpecError` for an ``@FILE`` setting whose file was not read, and
    for raw chunks on a v1/v2 message (which has no chunks).
    """
    raws: list[ChunkSetting] = []
    for s in settings:
        if s.file is not None:
            raise _err(s.text, f"the file {s.file!r} was not read (caller: use with_body)")
        value = _field_value(s)
        if value is NOVALUE:
            raws.append(s)
        else:
            _set_field(m, s.spec, value)  # type: ignore[arg-type]
    if raws:
        if m.version != 3:
            raise _err(
                raws[0].text,
                f"HEPv{m.version} has no chunks; only HEPv3 can carry chunk {raws[0].label}",
            )
        built = m.layout is None
        layout = list(m.layout) if m.layout is not None else [t for _v, t in m.chunk_ids()]
        at = len(layout)
        if built and layout and layout[-1] in (0x0F, 0x10):
            at -= 1  # a packet built from fields keeps its payload last, as every agent does
        for s in raws:
            layout.insert(at, (s.vendor, s.type, s.body if s.body is not None else b"", NOVALUE))
            at += 1
        m.layout = tuple(layout)
    m.validate()
    return m
