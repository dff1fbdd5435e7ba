"""Classic pcap files: the :class:`Frame` tuple, :class:`CaptureError`, the file magics,
and the record reader.

:func:`iter_records` is the one pcap record loop: it cuts records out of read blocks and
yields zero-copy spans of them, for :func:`iter_pcap` and for the fused convert loops.
:func:`iter_pcap` reads either byte order, micro- or nanosecond timestamps and the
"modified" 24-byte record headers, in ``read1`` blocks when the file object has ``read1``
(one call per 64 KiB, not two per record) and with plain ``read`` calls of just what each
record needs otherwise.  A damaged file yields every complete frame and then raises
:class:`CaptureError` naming the frame number and byte offset (:func:`caplen_error`,
:func:`truncated_record_error`).  Telling the format and unwrapping gzip is
:mod:`.source`'s job.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple

from ..core.errors import InputError

__all__ = [
    "GZIP_MAGIC",
    "MAX_BLOCK",
    "MAX_CAPLEN",
    "PCAPNG_SHB",
    "PCAP_LE_RECORD",
    "PCAP_LE_USEC",
    "PCAP_MAGICS",
    "CaptureError",
    "Frame",
    "caplen_error",
    "iter_pcap",
    "iter_records",
    "read_exact",
    "truncated_record_error",
]

#: Largest captured length accepted for one record.  Real snap lengths are <= 262144;
#: anything above is a corrupt length field, and reading it would swallow the file.
MAX_CAPLEN = 256 * 1024
#: Largest pcapng block accepted (a packet block of MAX_CAPLEN plus generous options).
MAX_BLOCK = MAX_CAPLEN + 64 * 1024


class CaptureError(InputError):
    """A capture file cannot be read (any further).

    ``frame`` is the 1-based number of the frame being read when it happened (``None``
    for a bad file header), ``offset`` the byte offset of that record or block in the
    (decompressed) file.  An :class:`~heptool.core.errors.InputError`, so a HepError:
    ``str(e)`` is ``frame 17, byte offset 58: message``.
    """

    def __init__(
        self, message: str, *, frame: int | None = None, offset: int | None = None
    ) -> None:
        super().__init__(message)
        self.frame = frame
        self.offset = offset

    def __str__(self) -> str:
        where = []
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        text = f"{', '.join(where)}: {self.message}" if where else self.message
        return f"{self.context}: {text}" if self.context else text

    def __reduce__(self):  # keep frame and offset through pickling (multiprocessing)
        return (_rebuild_capture_error, (self.message, self.frame, self.offset, self.context))


def _rebuild_capture_error(message, frame, offset, context):  # pragma: no cover - pickling
    e = CaptureError(message, frame=frame, offset=offset)
    e.context = context
    return e


class Frame(NamedTuple):
    """One captured frame."""

    frame_no: int  # 1-based, in file order (as Wireshark numbers them)
    ts_sec: int
    ts_usec: int
    linktype: int  # LINKTYPE_* value of the frame's interface
    data: bytes


_new_tuple = tuple.__new__  # builds NamedTuples without the Python-level __new__ (hot loop)

GZIP_MAGIC = b"\x1f\x8b"
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
# classic pcap magic as it appears in the file -> (struct byte order, nanosecond?, record header size)
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False, 16),
    b"\xa1\xb2\xc3\xd4": (">", False, 16),
    b"\x4d\x3c\xb2\xa1": ("<", True, 16),
    b"\xa1\xb2\x3c\x4d": (">", True, 16),
    # Alexey Kuznetzov's "modified" pcap: 8 more bytes per record header
    b"\x34\xcd\xb2\xa1": ("<", False, 24),
    b"\xa1\xb2\xcd\x34": (">", False, 24),
}

#: Classic pcap, little-endian, microseconds: what the fused convert loops read themselves
#: (heptool.capture.fused_sip, fused_hep) and what heptool's pcap writers write.
PCAP_LE_USEC = b"\xd4\xc3\xb2\xa1"
#: Its record header: seconds, microseconds, captured length, original length.
PCAP_LE_RECORD = struct.Struct("<IIII")


def caplen_error(caplen: int, frame: int, offset: int) -> CaptureError:
    """The error for a pcap record header whose captured length is beyond MAX_CAPLEN."""
    return CaptureError(f"record length {caplen} exceeds the {MAX_CAPLEN}-byte limit "
                        "(corrupt record header)", frame=frame, offset=offset)


def truncated_record_error(left: int, rec_size: int, caplen: int, frame: int,
                           offset: int) -> CaptureError:
    """The error for a pcap file that ends ``left`` bytes into a record (whose header, when
    whole, says ``caplen``)."""
    if left < rec_size:
        return CaptureError(f"truncated record header ({left} of {rec_size} bytes)",
                            frame=frame, offset=offset)
    return CaptureError(f"truncated record: {left - rec_size} of {caplen} captured bytes "
                        "present", frame=frame, offset=offset)


def read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    """Read ``n`` bytes, or fewer only at end of file (raw/unbuffered objects may return short)."""
    data = read(n)
    if data is None:
        data = b""
    while len(data) < n:
        more = read(n - len(data))
        if not more:
            break
        data += more
    return data


#: What one ``read1`` asks for: records are cut out of these blocks (one call per block,
#: not two per record; ``read1`` returns what a pipe has without waiting for the rest).
_BLOCK = 1 << 16

_unpack_le_record = PCAP_LE_RECORD.unpack_from


def iter_records(
    read: Callable[[int], bytes],
    unpack: Callable[[bytes, int], tuple[int, ...]] = _unpack_le_record,
    rec_size: int = 16,
    *,
    block: int = _BLOCK,
    offset: int = 24,
) -> Iterator[tuple[bytes, int, int, int, int]]:
    """The records of a classic pcap file, as zero-copy spans: ``(buf, start, stop, sec,
    frac)`` for each, its captured bytes being ``buf[start:stop]`` (``buf[start - rec_size:
    start]`` is its record header).  The one record loop: :func:`iter_pcap` and the fused
    convert loops (:mod:`.fused_sip`, :mod:`.fused_hep`) read their records with it.

    ``read(n)`` returns up to ``n`` bytes (``b""`` at the end); the file header is already
    read and ``offset`` is where the first record starts.  ``unpack`` reads a record
    header's seconds, fraction, captured and original length (the file's byte order).
    Records are cut out of ``block``-byte reads (or more, for a record that does not fit);
    ``block=0`` asks for just what the next record needs (a header, then its data), so
    that a reader that fails mid-way (a damaged gzip stream) fails at the same record.
    A damaged file yields every complete record and then raises :class:`CaptureError`
    (:func:`caplen_error`, :func:`truncated_record_error`) naming the frame number and
    byte offset of the record.
    """
    buf = b""
    pos = have = frame = 0
    base = offset  # file offset of buf[0]
    want = block or rec_size
    while True:
        more = read(want)
        if not more:
            break
        buf = buf[pos:] + more if pos < have else more
        base += pos
        pos = 0
        have = len(buf)
        want = block or rec_size
        while pos + rec_size <= have:
            sec, frac, caplen, _origlen = unpack(buf, pos)
            if caplen > MAX_CAPLEN:
                raise caplen_error(caplen, frame + 1, base + pos)
            start = pos + rec_size
            stop = start + caplen
            if stop > have:
                want = max(block, stop - have)
                break
            frame += 1
            yield buf, start, stop, sec, frac
            pos = stop
        else:
            if not block and pos < have:
                want = rec_size - (have - pos)  # the rest of a header read short
    left = have - pos
    if left:
        caplen = unpack(buf, pos)[2] if left >= rec_size else 0
        raise truncated_record_error(left, rec_size, caplen, frame + 1, base + pos)


def iter_pcap(f: IO[bytes], magic: bytes) -> Iterator[Frame]:
    """The frames of a classic pcap file whose 4-byte ``magic`` was read already."""
    order, nano, rec_size = PCAP_MAGICS[magic]
    rest = read_exact(f.read, 20)
    if len(rest) < 20:
        raise CaptureError(f"truncated pcap file header ({4 + len(rest)} of 24 bytes)", offset=0)
    _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(order + "HHiIII", rest)
    linktype = network & 0xFFFF  # upper bits carry FCS information, not the link type
    unpack = struct.Struct(order + "IIII").unpack_from
    read1 = getattr(f, "read1", None)
    if read1 is not None:
        records = iter_records(read1, unpack, rec_size)
    else:  # plain read: just what each record needs (see iter_records)
        records = iter_records(f.read, unpack, rec_size, block=0)
    new = _new_tuple
    frame = 0
    if nano:
        for buf, start, stop, sec, frac in records:
            frame += 1
            yield new(Frame, (frame, sec, frac // 1000, linktype, buf[start:stop]))
    else:
        for buf, start, stop, sec, frac in records:
            frame += 1
            yield new(Frame, (frame, sec, frac, linktype, buf[start:stop]))
