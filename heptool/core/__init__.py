"""heptool.core: the pure HEP codec (stdlib only: no sockets, files, printing).

Bytes in, objects out: :func:`decode`/:func:`encode` for single packets,
:class:`StreamDecoder` for streams, :func:`to_record`/:func:`from_record` for the JSON
record, the registries in :mod:`heptool.core.registry`, the errors in
:mod:`heptool.core.errors`.
"""

from .codec import decode, encode, sniff_version
from .errors import (
    BadChunkValueError,
    BadMagicError,
    DecompressionError,
    HepDecodeError,
    HepEncodeError,
    HepError,
    HepValueError,
    LengthMismatchError,
    ShortHeaderError,
    StreamError,
    TrailingDataError,
    TruncatedChunkError,
)
from .message import HepMessage
from .record import from_record, to_record
from .stream import NEED_DATA, StreamDecoder

__all__ = [
    "NEED_DATA",
    "BadChunkValueError",
    "BadMagicError",
    "DecompressionError",
    "HepDecodeError",
    "HepEncodeError",
    "HepError",
    "HepMessage",
    "HepValueError",
    "LengthMismatchError",
    "ShortHeaderError",
    "StreamDecoder",
    "StreamError",
    "TrailingDataError",
    "TruncatedChunkError",
    "decode",
    "encode",
    "from_record",
    "sniff_version",
    "to_record",
]
