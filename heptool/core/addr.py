"""IP address text <-> bytes, cached.

The core may not import ``socket``, and ``ipaddress`` costs ~1-2 us per call; a capture
holds few distinct addresses, so small bounded caches make both directions ~50 ns.
"""

from __future__ import annotations

import ipaddress

from .errors import HepValueError

__all__ = ["canonical_ip", "ip4_text", "ip6_text", "ip_pack", "ip_text", "port_number"]

_CACHE_MAX = 1 << 16
_text4: dict[bytes, str] = {}
_text6: dict[bytes, str] = {}
_packed: dict[str, bytes] = {}


def port_number(text: str) -> int | None:
    """``"5060"`` -> 5060: 1-5 ASCII digits up to 65535, else None.  Not ``str.isdigit`` +
    ``int``: ``isdigit`` accepts ``'²'`` (then ``int`` raises) and ``int`` takes other
    scripts' digits and refuses more than 4,300 of them with a ValueError of its own."""
    if 0 < len(text) <= 5 and text.isascii() and text.isdigit():
        n = int(text)
        if n <= 65535:
            return n
    return None


def ip4_text(b: bytes) -> str:
    s = _text4.get(b)
    if s is None:
        if len(_text4) > _CACHE_MAX:
            _text4.clear()
        s = _text4[b] = "%d.%d.%d.%d" % tuple(b)  # noqa: UP031 - fastest form here
    return s


def ip6_text(b: bytes) -> str:
    s = _text6.get(b)
    if s is None:
        if len(_text6) > _CACHE_MAX:
            _text6.clear()
        s = _text6[b] = ipaddress.IPv6Address(b).compressed
    return s


def ip_text(b: bytes) -> str:
    return ip4_text(b) if len(b) == 4 else ip6_text(b)


def ip_pack(s: str) -> bytes:
    """Address text -> 4 or 16 bytes; HepValueError if it is not an address."""
    b = _packed.get(s)
    if b is None:
        try:
            b = ipaddress.ip_address(s).packed
        except (ValueError, TypeError):
            raise HepValueError(f"not an IP address: {s!r}") from None
        if len(_packed) > _CACHE_MAX:
            _packed.clear()
        _packed[s] = b
    return b


def canonical_ip(s: str) -> str:
    """Normalise address text (``::0001`` -> ``::1``)."""
    return ip_text(ip_pack(s))
