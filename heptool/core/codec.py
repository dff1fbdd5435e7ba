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
from .decode import decode_fast as _decode_fast  # noqa: F401 - tests/core/test_speedups.py (until Z)
from .decode import decode_fast_c as _decode_fast_c  # noqa: F401 - tests/fuzz/cfuzz (until Z)
from .encode import encode, encode_v3, encode_v12
from .layout import canonical_layout as _canonical_layout  # noqa: F401 - cli/cmd_convert.py (until D6)
from .layout import plan_v3
from .templates import build_encoder as _build_encoder  # noqa: F401 - cli/cmd_convert.py (until D6)
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
