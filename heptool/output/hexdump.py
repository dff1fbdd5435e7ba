"""Annotated hex dump of one HEP packet: one field per line (``decode -f hex``, ``encode -f hex``).

::

    0000  48 45 50 33                                       magic = "HEP3"
    0004  00 dc                                             length = 220
    0006  00 00 00 01 00 07 02                              0x0000:0x0001 family = 2 (IPv4)
    0083  00 00 00 0f 00 59 53 59 53 4c 4f 47 3a 20 50 72   0x0000:0x000f payload = 83 bytes: "SYSL…"
    0099  6f 63 65 73 73 69 6e 67 20 4f 50 54 49 4f 4e 53   | ocessing OPTIONS

A field longer than 16 bytes continues on more lines, each showing its bytes as text after
``|``.  Offsets are decimal, as in HEP-SPEC and in heptool's error messages.  Damage is
marked with ``!!`` where decoding stopped.  The walking is :mod:`heptool.output.annotate`.
"""

from __future__ import annotations

from heptool.sip.summary import printable

from .annotate import DAMAGE, annotate

__all__ = ["WIDTH", "render"]

#: Bytes per dump line.
WIDTH = 16
_HEX_COLUMN = WIDTH * 3 - 1


def _printable(b: bytes) -> str:
    return "".join(chr(c) if 0x20 <= c < 0x7F else "." for c in b)


def render(data: bytes) -> str:
    """The annotated dump of one HEP packet (any version, damaged or not), lines joined by
    newlines, without a trailing newline."""
    data = bytes(data)
    width = max(4, len(str(len(data))))
    lines: list[str] = []
    for off, length, label, value in annotate(data):
        field = data[off : off + length]
        # a value is packet data: no control, format or BiDi character reaches the terminal
        text = printable(f"!! {label}: {value}" if label == DAMAGE else f"{label} = {value}")
        if not field:
            lines.append(f"{off:0{width}d}  {'':<{_HEX_COLUMN}}  {text}")
            continue
        for i in range(0, len(field), WIDTH):
            row = field[i : i + WIDTH]
            hexed = row.hex(" ")
            note = text if i == 0 else f"| {_printable(row)}"
            lines.append(f"{off + i:0{width}d}  {hexed:<{_HEX_COLUMN}}  {note}")
    return "\n".join(lines)
