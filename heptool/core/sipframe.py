"""Moved to :mod:`heptool.sip.framing` (issue 12): this module only re-exports, until every
caller imports the new path (its Content-Length rule is :mod:`heptool.core.wire`'s)."""

from __future__ import annotations

from ..sip.framing import (
    CLEN_MAX_DIGITS,
    INVALID,
    SipSplitter,
    clen_value,
    content_length,
    looks_like_sip,
)

__all__ = ["CLEN_MAX_DIGITS", "INVALID", "SipSplitter", "clen_value", "content_length",
           "looks_like_sip"]
