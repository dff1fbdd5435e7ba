"""Everything heptool generates with ``exec``, and the one table of agent chunk layouts it is built from.

The only generated code of the codec lives here, and it is generated from the registry
(:mod:`.registry`), never from packet data:

* :data:`AGENT_LAYOUTS`: the fixed-chunk prefixes real agents send (HEP-SPEC section 10),
  read by the decoder's templates, the record builder and the fused HEP -> pcap loops of
  :mod:`heptool.capture.fused_hep`;
* decode templates (:data:`TEMPLATES`, :data:`BY_THIRD`): a packet whose first chunk headers
  are exactly one layout's is read with one struct call;
* :func:`build_encoder`: one packing function per layout of plain chunks (the encoder's
  fast path, :mod:`.encode`);
* :func:`record_builder`: bytes -> the decode record of a common packet, with no message.

:data:`GENERATED` names each kind (the equivalence table has a row per name).
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from .addr import ip4_text, ip6_text, ip_pack
from .errors import HepValueError
from .fields import BLANK_SLOTS, FIELDS
from .record import SECOND_PREFIXES, extra_correlation_pairs, format_time
from .registry import CHUNKS, FAMILY_NAMES, PROTO_TYPES
from .wire import CHUNK_HDR, HEP3

__all__ = ["AGENT_LAYOUTS", "BY_THIRD", "GENERATED", "HEADS", "TEMPLATES", "TEMPLATE_KINDS",
           "DecodeTemplate", "build_encoder", "record_builder"]

#: the kinds of generated code (one equivalence row each)
GENERATED = ("decode_templates", "encoder", "record_builder")

#: Fixed-chunk prefixes seen in the wild (HEP-SPEC section 10): a packet whose first ten chunk
#: headers are exactly one of these is read with one struct call.
AGENT_LAYOUTS = (
    (0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x03, 0x04),  # OpenSIPS, captagent, sngrep, Asterisk
    (0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C),  # Kamailio, heplify, hep-js, heptool
    (0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x05, 0x06),
    (0x01, 0x02, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C),
    (0x01, 0x02, 0x03, 0x04, 0x08, 0x07, 0x09, 0x0A, 0x0B, 0x0C),  # Kamailio hlog()
    (0x01, 0x02, 0x05, 0x06, 0x08, 0x07, 0x09, 0x0A, 0x0B, 0x0C),
)

#: struct code of each fixed-size value kind a template reads
TEMPLATE_KINDS = {"u8": "B", "u16": "H", "u32": "I", "ip4": "4s", "ip6": "16s"}


# ---------------------------------------------------------------------------
# decode templates
# ---------------------------------------------------------------------------
class DecodeTemplate(NamedTuple):
    """One agent layout, compiled: ``int.from_bytes(data[6:end], "big") & mask == signature``
    says a packet starts with it; ``fill(data, m)`` then sets the message's values (and every
    other value slot to None)."""

    signature: int
    mask: int
    end: int
    fill: Any
    order: tuple[int, ...]


def _build_template(order: tuple[int, ...]) -> DecodeTemplate:
    specs = [CHUNKS[t] for t in order]
    fmt = ">" + "".join("6x" + TEMPLATE_KINDS[s.kind] for s in specs)
    st = struct.Struct(fmt)
    sig = bytearray()
    mask = bytearray()
    for s in specs:
        sig += CHUNK_HDR.pack(0, s.type, 6 + s.size) + bytes(s.size)  # type: ignore[operator]
        mask += b"\xff" * 6 + bytes(s.size)  # type: ignore[arg-type]
    targets = []
    post = []
    for i, s in enumerate(specs):
        if s.kind in ("ip4", "ip6"):
            targets.append(f"_a{i}")
            fn = "_ip4" if s.kind == "ip4" else "_ip6"
            post.append(f"    m.{s.field} = {fn}(_a{i})")
        else:
            targets.append(f"m.{s.field}")
    covered = {s.field for s in specs}
    others = [n for n in BLANK_SLOTS if n not in covered]
    src = (
        "def _fast(data, m):\n"
        f"    {' = '.join('m.' + n for n in others)} = None\n"
        f"    {', '.join(targets)}, = _unpack(data, 6)\n" + "\n".join(post) + "\n"
    )
    ns: dict[str, Any] = {"_unpack": st.unpack_from, "_ip4": ip4_text, "_ip6": ip6_text}
    exec(compile(src, f"<heptool template {order}>", "exec"), ns)  # noqa: S102 - our own source, never packet data
    end = 6 + st.size
    return DecodeTemplate(int.from_bytes(sig, "big"), int.from_bytes(mask, "big"), end, ns["_fast"], order)


#: one decode template per agent layout
TEMPLATES = [_build_template(o) for o in AGENT_LAYOUTS]
#: the templates by the type byte of their third chunk header (offset 6 + 7 + 7 + 3 = 23), as
#: plain tuples in DecodeTemplate's order: the decoder's hot loop unpacks them, and unpacking
#: an exact tuple is faster than a NamedTuple's (~70 ns a packet in the pure build)
BY_THIRD: dict[int, list[tuple]] = {}
for _t in TEMPLATES:
    BY_THIRD.setdefault(_t.order[2], []).append(tuple(_t))
del _t



# ---------------------------------------------------------------------------
# encoders: one generated function per layout of plain generic chunks
# ---------------------------------------------------------------------------
_STRUCT_CODE = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}
_CHUNK_FIELDS = tuple(f for f in FIELDS if f not in ("version", "compression"))


def _ip4_pack(s: str) -> bytes:
    b = ip_pack(s)
    if len(b) != 4:
        raise HepValueError("not IPv4")
    return b


def _ip6_pack(s: str) -> bytes:
    b = ip_pack(s)
    if len(b) != 16:
        raise HepValueError("not IPv6")
    return b


def build_encoder(layout: tuple) -> Any:
    """Source for a function that encodes a message with this exact layout, or None.

    The function returns None whenever the message is not plain (a value missing or
    added, extra chunks, wire quirks): the general path handles that.
    """
    if len({CHUNKS[t].field for t in layout}) != len(layout) or 0x10 in layout:
        return None
    covered = {CHUNKS[t].field for t in layout}
    lines = ["def _enc(m):"]
    guard = ["m.wire is not None", "m._extra", "m.compression is not None"]
    guard += [f"m.{f} is not None" for f in _CHUNK_FIELDS if f not in covered]
    lines.append(f"    if {' or '.join(guard)}: return None")
    fmt = ">4sH"
    args = ["b'HEP3'", "_total"]
    fixed = 6
    var_lines = []
    for i, t in enumerate(layout):
        spec = CHUNKS[t]
        lines.append(f"    v{i} = m.{spec.field}")
        lines.append(f"    if v{i} is None: return None")
        if spec.kind in _STRUCT_CODE or spec.kind in ("ip4", "ip6"):
            size = spec.size
            fmt += "6s" + (_STRUCT_CODE.get(spec.kind) or f"{size}s")
            args.append(repr(CHUNK_HDR.pack(0, t, 6 + size)))  # type: ignore[operator]
            args.append(f"_ip4(v{i})" if spec.kind == "ip4" else f"_ip6(v{i})" if spec.kind == "ip6" else f"v{i}")
            fixed += 6 + size  # type: ignore[operator]
        elif spec.kind in ("text", "bytes"):
            if spec.kind == "text":
                lines.append(f"    b{i} = v{i}.encode() if v{i}.__class__ is str else None")
            else:
                lines.append(f"    b{i} = v{i} if v{i}.__class__ is bytes else None")
            lines.append(f"    if b{i} is None: return None")
            var_lines.append(i)
        else:
            return None
    tot = [str(fixed)] + [f"6 + len(b{i})" for i in var_lines]
    lines.append(f"    _total = {' + '.join(tot)}")
    lines.append("    if _total > 65535: return None")
    # fixed chunks are packed first into their positions by one struct call: only valid if
    # every fixed chunk precedes every variable one, else interleave in order
    pieces = []
    fixed_fmt = ">4sH"
    fixed_args = ["b'HEP3'", "_total"]
    structs: dict[str, struct.Struct] = {}
    run_fmt, run_args = fixed_fmt, fixed_args
    for i, t in enumerate(layout):
        spec = CHUNKS[t]
        if i in var_lines:
            if run_args:
                name = f"_S{len(structs)}"
                structs[name] = struct.Struct(run_fmt)
                pieces.append(f"{name}({', '.join(run_args)})")
                run_fmt, run_args = ">", []
            pieces.append(f"_hdr(0, {t}, 6 + len(b{i}))")
            pieces.append(f"b{i}")
        else:
            size = spec.size
            run_fmt += "6s" + (_STRUCT_CODE.get(spec.kind) or f"{size}s")
            run_args.append(repr(CHUNK_HDR.pack(0, t, 6 + size)))  # type: ignore[operator]
            run_args.append(f"_ip4(v{i})" if spec.kind == "ip4" else f"_ip6(v{i})" if spec.kind == "ip6" else f"v{i}")
    if run_args:
        name = f"_S{len(structs)}"
        structs[name] = struct.Struct(run_fmt)
        pieces.append(f"{name}({', '.join(run_args)})")
    lines.append(f"    return b''.join(({', '.join(pieces)},))")
    src = "\n".join(lines) + "\n"
    ns: dict[str, Any] = {"_ip4": _ip4_pack, "_ip6": _ip6_pack, "_hdr": CHUNK_HDR.pack}
    ns.update({k: v.pack for k, v in structs.items()})
    exec(compile(src, "<heptool encoder>", "exec"), ns)  # noqa: S102 - from the registry, never packet data
    return ns["_enc"]



# ---------------------------------------------------------------------------
# record builder: bytes -> the decode record, without a HepMessage
# ---------------------------------------------------------------------------
#: The keys a record can start with, before the message's own (``heptool decode`` adds where
#: the message came from).  A fast record builder is generated per template and head.
HEADS = {
    "index": ("index",),
    "capture": ("index", "frame", "hep_transport", "hep_src", "hep_dst"),
}

# chunk types the tail of a fast record may hold: type -> (record key, chunk name); all text
_FAST_TAIL = {0x0F: "payload", 0x0E: "auth_key", 0x11: "correlation_id", 0x13: "node_name",
              0x65: "extra_correlation"}


def _fast_record_source(order: tuple[int, ...], head: tuple[str, ...]) -> tuple[str, str]:
    """Python source of ``_build(data, n, <head...>)`` for one template (never packet data:
    the source comes from the registry).  Same values and key order as
    ``to_record(decode(data))``; None whenever the full path is needed."""
    specs = [CHUNKS[t] for t in order]
    fmt = ">" + "".join("6x" + TEMPLATE_KINDS[s.kind] for s in specs)
    names = tuple(s.name for s in specs)
    targets = []
    fields: dict[str, str] = {}
    for i, s in enumerate(specs):
        var = f"_v{i}"
        targets.append(var)
        if s.kind == "ip4":
            fields[s.field] = f"_ip4({var})"
        elif s.kind == "ip6":
            fields[s.field] = f"_ip6({var})"
        else:
            fields[s.field] = var
    for f in ("family", "ip_proto", "src_ip", "dst_ip", "src_port", "dst_port", "ts_sec",
              "ts_usec", "proto_type", "capture_id"):
        if f not in fields:
            raise ValueError(f"template {order} does not set {f}")
    size = struct.calcsize(fmt)
    params = ", ".join(f"h_{k}" for k in head)
    lines = [
        f"def _build(data, n, {params}):",
        f"    {', '.join(targets)}, = _unpack(data, 6)",
        "    payload = auth = corr = node = ec = None",
        f"    chunks = {list(names)!r}",
        f"    off = {6 + size}",
        "    try:",
        "        while off < n:",
        "            if n - off < 6:",  # 1-5 bytes left: no chunk header; full path warns
        "                return None",
        "            vendor, ctype, clen = _hdr(data, off)",
        "            nxt = off + clen",
        "            if vendor or clen < 6 or nxt > n:",
        "                return None",
        "            if ctype == 15:",
        "                if payload is not None:",
        "                    return None",
        "                payload = data[off + 6:nxt].decode()",
        "                chunks.append('payload')",
        "            elif ctype == 0x11:",
        "                if corr is not None:",
        "                    return None",
        "                corr = data[off + 6:nxt].decode()",
        "                chunks.append('correlation_id')",
        "            elif ctype == 0x13:",
        "                if node is not None:",
        "                    return None",
        "                node = data[off + 6:nxt].decode()",
        "                chunks.append('node_name')",
        "            elif ctype == 0x0E:",
        "                if auth is not None:",
        "                    return None",
        "                auth = data[off + 6:nxt].decode()",
        "                chunks.append('auth_key')",
        "            elif ctype == 0x65:",
        "                if ec is not None:",
        "                    return None",
        "                ec = data[off + 6:nxt].decode()",
        "                chunks.append('extra_correlation')",
        "            else:",
        "                return None",
        "            off = nxt",
        "    except UnicodeDecodeError:",
        "        return None",
        f"    ts = {fields['ts_sec']}",
        f"    us = {fields['ts_usec']}",
        "    pre = _seconds.get(ts)",
        "    if pre is None or us >= 1000000:",
        "        when = _format_time(ts, us)",
        "    else:",
        "        when = f'{pre}.{us:06d}Z'",
        f"    fam = {fields['family']}",
        f"    pt = {fields['proto_type']}",
        "    return {",
        *[f"        {k!r}: h_{k}," for k in head],
        "        'version': 3,",
        "        'ts_sec': ts,",
        "        'ts_usec': us,",
        "        'time': when,",
        "        'family': _families.get(fam, fam),",
        f"        'ip_proto': {fields['ip_proto']},",
        f"        'src_ip': {fields['src_ip']},",
        f"        'src_port': {fields['src_port']},",
        f"        'dst_ip': {fields['dst_ip']},",
        f"        'dst_port': {fields['dst_port']},",
        "        'proto_type': pt,",
        "        'proto': _protos.get(pt) or str(pt),",
        f"        'capture_id': {fields['capture_id']},",
        "        'node_name': node,",
        "        'auth_key': auth,",
        "        'correlation_id': corr,",
        "        'extra_correlation': None if ec is None else _pairs(ec),",
        "        'extra_correlation_text': ec,",
        "        'payload': payload,",
        "        'chunks': chunks,",
        "    }",
    ]
    return "\n".join(lines) + "\n", fmt


def record_builder(head: str = "index") -> Any:
    """``fast(data, <head values...>) -> dict | None``: the record of a common, strictly valid
    HEP3 packet (a known fixed-chunk layout, then only payload, auth key, correlation ids and
    node name, each once, as UTF-8) built straight from the bytes, with the ``head`` keys
    (:data:`HEADS`) first.  Equal to ``{**head, **to_record(decode(data))}``; None means
    "take the full path" (decode, then :func:`to_record`), never an error."""
    keys = HEADS[head]
    by_third: dict[int, list] = {}
    for sig, mask, end, _fast, order in TEMPLATES:
        src, fmt = _fast_record_source(order, keys)
        ns: dict[str, Any] = {
            "_unpack": struct.Struct(fmt).unpack_from, "_hdr": CHUNK_HDR.unpack_from,
            "_ip4": ip4_text, "_ip6": ip6_text, "_seconds": SECOND_PREFIXES, "_format_time": format_time,
            "_families": FAMILY_NAMES, "_protos": PROTO_TYPES, "_pairs": extra_correlation_pairs,
        }
        exec(compile(src, f"<heptool fast record {order}>", "exec"), ns)  # noqa: S102 - our own source
        by_third.setdefault(order[2], []).append((sig, mask, end, ns["_build"]))
    get = by_third.get
    params = ", ".join(f"h_{k}" for k in keys)
    src = (
        f"def fast(data, {params}):\n"
        "    n = len(data)\n"
        "    if n < 24 or data[:4] != _hep3 or (data[4] << 8 | data[5]) != n:\n"
        "        return None\n"
        "    for sig, mask, end, build in _get(data[23], ()):\n"
        "        if end <= n and int.from_bytes(data[6:end], 'big') & mask == sig:\n"
        f"            return build(data, n, {params})\n"
        "    return None\n"
    )
    ns = {"_get": get, "_hep3": HEP3}
    exec(compile(src, f"<heptool fast record dispatch {head}>", "exec"), ns)  # noqa: S102
    return ns["fast"]
