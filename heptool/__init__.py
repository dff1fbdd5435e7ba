"""heptool: decode, encode, send, receive and correlate HEP (Homer Encapsulation Protocol).

The library API (pure, no I/O)::

    import heptool
    msg = heptool.decode(packet_bytes)        # HEP v1, v2 or v3
    heptool.encode(msg) == packet_bytes       # byte-exact
    rec = heptool.to_record(msg)              # the JSON record
    heptool.from_record(rec)                  # and back
    dec = heptool.StreamDecoder(); dec.feed(b); list(dec)
"""

__version__ = "0.1.0"

from .core import registry
from .core.codec import decode, encode, sniff_version
from .core.errors import (
    HepDecodeError,
    HepEncodeError,
    HepError,
    HepValueError,
    StreamError,
)
from .core.message import HepMessage
from .core.record import from_record, to_record
from .core.stream import NEED_DATA, StreamDecoder

__all__ = [
    "NEED_DATA",
    "HepDecodeError",
    "HepEncodeError",
    "HepError",
    "HepMessage",
    "HepValueError",
    "StreamDecoder",
    "StreamError",
    "__version__",
    "decode",
    "encode",
    "from_record",
    "registry",
    "sniff_version",
    "to_record",
]
