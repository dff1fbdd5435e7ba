"""pcapng files: every section, every interface, enhanced, simple and obsolete packet blocks.

:func:`iter_pcapng` yields :class:`~.pcapfile.Frame` tuples with each interface's link
type and timestamp resolution/offset applied; blocks that carry no frames (statistics, name
resolution, custom) are skipped.  Interface description blocks are parsed with
:mod:`dpkt.pcapng`, imported only when the first one is met (dpkt costs ~25 ms to import).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

from .pcapfile import MAX_BLOCK, MAX_CAPLEN, PCAPNG_SHB, CaptureError, Frame, read_exact

__all__ = ["iter_pcapng"]

_new_tuple = tuple.__new__  # builds NamedTuples without the Python-level __new__ (hot loop)


class _Interface:
    __slots__ = ("linktype", "snaplen", "tsoffset", "units")

    def __init__(self, linktype: int, snaplen: int, units: int, tsoffset: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.units = units  # timestamp units per second
        self.tsoffset = tsoffset  # seconds added to every timestamp


_PCAPNG_OPT_TSRESOL = 9
_PCAPNG_OPT_TSOFFSET = 14


def _parse_idb(block: bytes, le: bool) -> _Interface:
    # dpkt costs ~25 ms to import: only pcapng input needs it (every command starts faster)
    import dpkt.pcapng

    cls = dpkt.pcapng.InterfaceDescriptionBlockLE if le else dpkt.pcapng.InterfaceDescriptionBlock
    try:
        idb = cls(block)
    except dpkt.UnpackError as e:
        raise ValueError(str(e)) from None
    units, tsoffset = 1_000_000, 0
    for opt in idb.opts:
        if opt.code == _PCAPNG_OPT_TSRESOL and opt.data:
            v = opt.data[0]
            units = 2 ** (v & 0x7F) if v & 0x80 else 10 ** (v & 0x7F)
        elif opt.code == _PCAPNG_OPT_TSOFFSET and len(opt.data) >= 8:
            tsoffset = struct.unpack(("<" if le else ">") + "q", opt.data[:8])[0]
    return _Interface(idb.linktype, idb.snaplen, units, tsoffset)


def iter_pcapng(f: IO[bytes], head: bytes) -> Iterator[Frame]:
    read = f.read
    offset = 0
    frame = 0
    order = "<"
    ifaces: list[_Interface] = []
    new = _new_tuple
    first = True
    while True:
        if first:
            hdr = head + read_exact(read, 4)
            first = False
        else:
            hdr = read_exact(read, 8)
        if not hdr:
            return
        if len(hdr) < 8:
            raise CaptureError(
                f"truncated pcapng block header ({len(hdr)} of 8 bytes)",
                frame=frame + 1,
                offset=offset,
            )
        btype = hdr[:4]
        if btype == PCAPNG_SHB:
            bom = read_exact(read, 4)
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise CaptureError(
                    "pcapng section header has no valid byte-order magic",
                    frame=frame + 1,
                    offset=offset,
                )
            blen = struct.unpack(order + "I", hdr[4:])[0]
            if blen < 28 or blen % 4 or blen > MAX_BLOCK:
                raise CaptureError(
                    f"bad pcapng section header length {blen}", frame=frame + 1, offset=offset
                )
            body = read_exact(read, blen - 12)
            if len(body) < blen - 12:
                raise CaptureError(
                    "truncated pcapng section header", frame=frame + 1, offset=offset
                )
            ifaces = []  # interface ids are per section
            offset += blen
            continue
        btype_n, blen = struct.unpack(order + "II", hdr)
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            raise CaptureError(
                f"bad pcapng block length {blen} (block type 0x{btype_n:08x})",
                frame=frame + 1,
                offset=offset,
            )
        body = read_exact(read, blen - 8)
        if len(body) < blen - 8:
            raise CaptureError(
                f"truncated pcapng block: {len(body) + 8} of {blen} bytes present",
                frame=frame + 1,
                offset=offset,
            )
        if btype_n == 6 or btype_n == 2:  # enhanced packet block / obsolete packet block
            frame += 1
            if len(body) < 24:  # 20 bytes of fields, the trailing length: struct.error before
                raise CaptureError(
                    f"packet block length {blen} is less than the 32 bytes of its fields",
                    frame=frame,
                    offset=offset,
                )
            if btype_n == 6:
                iface_id, tsh, tsl, caplen, _orig = struct.unpack_from(order + "IIIII", body)
            else:
                iface_id, _drops, tsh, tsl, caplen, _orig = struct.unpack_from(
                    order + "HHIIII", body
                )
            if caplen > MAX_CAPLEN:
                raise CaptureError(
                    f"packet length {caplen} exceeds the {MAX_CAPLEN}-byte limit",
                    frame=frame,
                    offset=offset,
                )
            if 20 + caplen > len(body) - 4:
                raise CaptureError(
                    f"packet length {caplen} runs past its {blen}-byte block",
                    frame=frame,
                    offset=offset,
                )
            if iface_id >= len(ifaces):
                raise CaptureError(
                    f"packet refers to undefined interface {iface_id}", frame=frame, offset=offset
                )
            iface = ifaces[iface_id]
            sec, rem = divmod((tsh << 32) | tsl, iface.units)
            usec = rem * 1_000_000 // iface.units
            yield new(
                Frame, (frame, sec + iface.tsoffset, usec, iface.linktype, body[20 : 20 + caplen])
            )
        elif btype_n == 3:  # simple packet block: no timestamp, interface 0
            frame += 1
            if not ifaces:
                raise CaptureError(
                    "simple packet block before any interface", frame=frame, offset=offset
                )
            iface = ifaces[0]
            (orig,) = struct.unpack_from(order + "I", body)
            caplen = min(orig, len(body) - 8)
            if iface.snaplen:
                caplen = min(caplen, iface.snaplen)
            yield new(Frame, (frame, 0, 0, iface.linktype, body[4 : 4 + caplen]))
        elif btype_n == 1:  # interface description block
            try:
                ifaces.append(_parse_idb(hdr + body, order == "<"))
            except (struct.error, ValueError, IndexError) as e:
                raise CaptureError(
                    f"bad pcapng interface block: {e}", frame=frame + 1, offset=offset
                ) from None
        # other block types (statistics, name resolution, custom...) carry no frames
        offset += blen
