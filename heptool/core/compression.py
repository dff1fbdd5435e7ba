"""Compressed payload (chunk 0x0010): gzip, zlib or raw deflate, inflated with a bound."""

from __future__ import annotations

import gzip
import zlib

from .errors import DecompressionError, HepValueError

__all__ = ["ALGORITHMS", "DEFAULT_MAX_INFLATE", "deflate", "inflate", "sniff"]

ALGORITHMS = ("gzip", "zlib", "deflate")

#: A HEP payload is at most 65,535 bytes on the wire; real compressed SIP inflates
#: 3-10x.  4 MiB leaves room for anything real and stops a zip bomb (1000:1 and more)
#: long before it costs memory.
DEFAULT_MAX_INFLATE = 4 * 1024 * 1024

_WBITS = {"gzip": 31, "zlib": 15, "deflate": -15}


def sniff(body: bytes) -> str:
    """Which algorithm produced ``body``: gzip (1f 8b), zlib (RFC 1950 header), else raw deflate."""
    if body[:2] == b"\x1f\x8b":
        return "gzip"
    if len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0:
        return "zlib"
    return "deflate"


def inflate(body: bytes, max_size: int = DEFAULT_MAX_INFLATE) -> tuple[bytes, str]:
    """Inflate ``body``; return (data, algorithm).  Never allocates much past ``max_size``."""
    algo = sniff(body)
    parts = []
    size = 0
    try:
        d = zlib.decompressobj(_WBITS[algo])
        data = body
        # inflate in 64 KiB steps so memory never runs far past max_size
        while not d.eof:
            out = d.decompress(data, 65536)
            if not out and not data:
                break  # input used up and nothing pending: truncated stream
            size += len(out)
            if size > max_size:
                raise DecompressionError(f"compressed payload inflates past {max_size} bytes (refused)")
            parts.append(out)
            data = d.unconsumed_tail
        if not d.eof:
            raise DecompressionError(f"{algo} payload is truncated")
    except zlib.error as e:
        raise DecompressionError(f"{algo} payload cannot be inflated: {e}") from None
    return b"".join(parts) if len(parts) != 1 else parts[0], algo


def deflate(data: bytes, algorithm: str = "gzip") -> bytes:
    """Compress deterministically (gzip with mtime 0, so the same input gives the same bytes)."""
    if algorithm == "gzip":
        return gzip.compress(data, mtime=0)
    if algorithm == "zlib":
        return zlib.compress(data)
    if algorithm == "deflate":
        c = zlib.compressobj(wbits=-15)
        return c.compress(data) + c.flush()
    raise HepValueError(f"unknown compression {algorithm!r} (use one of {', '.join(ALGORITHMS)})")
