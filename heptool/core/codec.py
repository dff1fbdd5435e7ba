"""Bytes <-> :class:`~heptool.core.message.HepMessage` for HEP v1, v2 and v3: the codec's stable path.

This module only re-exports.  The codec is split by concern:

* :mod:`.wire`: magics, sniffing, v1/v2 sizes, the bounded HEP3 chunk walk;
* :mod:`.decode`: :func:`decode` (lenient or strict; see its module for the modes),
  :func:`decode_v3`, :func:`decode_v12`, and ``decode_generic``, the reference decoder;
* :mod:`.encode`: :func:`encode`, :func:`encode_v3`, :func:`encode_v12`;
* :mod:`.layout`: :func:`plan_v3`, the chunks a message encodes to;
* :mod:`.values`: :func:`encode_value` and ``decode_value``, one chunk body <-> one value;
* :mod:`.templates`: the agent layouts and every generated (``exec``) function.
"""

from __future__ import annotations

from .decode import decode, decode_generic, decode_v3, decode_v12
from .encode import encode, encode_v3, encode_v12
from .layout import plan_v3
from .values import decode_value, encode_value
from .wire import MAGICS, MAX_HEP3_SIZE, V12_IPV6_FAMILIES, sniff_version

__all__ = [
    "MAGICS",
    "MAX_HEP3_SIZE",
    "V12_IPV6_FAMILIES",
    "decode",
    "decode_generic",
    "decode_v3",
    "decode_v12",
    "decode_value",
    "encode",
    "encode_v3",
    "encode_v12",
    "encode_value",
    "plan_v3",
    "sniff_version",
]
