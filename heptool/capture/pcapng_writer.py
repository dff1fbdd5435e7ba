"""Streaming capture writers for ``convert``: classic pcap, and pcapng with packet comments.

Both take already built Ethernet frames (:mod:`heptool.capture.frames`) through one
method, ``write(ts_sec, ts_usec, frame, comment=None)``, write each record as it comes
(nothing is held; a partial output is valid up to its last record) and count them in
``count``.

* :class:`PcapFrameWriter`: classic pcap, microsecond timestamps, link type Ethernet.
  Comments are ignored (the format has no place for them).
* :class:`PcapngWriter`: pcapng (one section, one Ethernet interface with microsecond
  resolution, one Enhanced Packet Block per frame); a comment becomes the EPB's
  ``opt_comment`` option, which Wireshark shows as "Packet comments" and tshark as the
  field ``frame.comment`` (4.0; ``frame.comment`` / ``pkt_comment`` in older releases).

Nothing here builds frames or opens files: the caller passes a binary file object.
"""

from __future__ import annotations

import struct
from typing import IO

from .writer import LINKTYPE_ETHERNET, PCAP_MAGIC_US, SNAPLEN

__all__ = ["LINKTYPE_ETHERNET", "PcapFrameWriter", "PcapngWriter"]

# the classic pcap file header heptool.capture.writer.PcapWriter writes, byte for byte
_PCAP_HEADER = struct.Struct("<IHHiIII").pack(PCAP_MAGIC_US, 2, 4, 0, 0, SNAPLEN,
                                              LINKTYPE_ETHERNET)
_PCAP_REC = struct.Struct("<IIII")
_EPB = struct.Struct("<IIIIIII")
_OPT = struct.Struct("<HH")
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


class PcapFrameWriter:
    """Classic pcap (Ethernet, microseconds): one ``write`` call per record.

    The same file as :class:`heptool.capture.writer.PcapWriter` writes (same header, same
    records), taking ``(sec, usec, frame, comment)`` like :class:`PcapngWriter` so the two
    are interchangeable, and writing each record in one call."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.count = 0
        self._write = f.write
        self._rec = _PCAP_REC.pack
        f.write(_PCAP_HEADER)

    def write(self, ts_sec: int, ts_usec: int, frame: bytes, comment: str | None = None) -> None:
        n = len(frame)
        self._write(self._rec(ts_sec & 0xFFFFFFFF, ts_usec, n, n) + frame)
        self.count += 1

    def close(self) -> None:
        self.f.flush()


def _option(code: int, value: bytes) -> bytes:
    return _OPT.pack(code, len(value)) + value + _PAD[len(value) & 3]


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


class PcapngWriter:
    """pcapng with per-packet comments (little-endian, one section, one interface)."""

    def __init__(self, f: IO[bytes], *, application: str = "heptool") -> None:
        self.f = f
        self.count = 0
        self._write = f.write
        shb_opts = _option(4, application.encode("utf-8")) + _OPT.pack(0, 0)  # shb_userappl
        f.write(_block(0x0A0D0D0A,
                       struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts))
        # if_tsresol 6 (microseconds, the default, written for clarity)
        idb_opts = _option(9, b"\x06") + _OPT.pack(0, 0)
        f.write(_block(1, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, SNAPLEN) + idb_opts))

    def write(self, ts_sec: int, ts_usec: int, frame: bytes, comment: str | None = None) -> None:
        n = len(frame)
        opts = b""
        if comment:
            opts = _option(1, comment.encode("utf-8", "backslashreplace")) + _OPT.pack(0, 0)
        total = 32 + n + (-n & 3) + len(opts)
        ts = ts_sec * 1_000_000 + ts_usec
        self._write(b"".join((
            _EPB.pack(6, total, 0, (ts >> 32) & 0xFFFFFFFF, ts & 0xFFFFFFFF, n, n),
            frame, _PAD[n & 3], opts, struct.pack("<I", total))))
        self.count += 1

    def close(self) -> None:
        self.f.flush()
