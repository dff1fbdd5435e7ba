"""Moved to :mod:`heptool.analysis.extract` (issue 12): this module only re-exports, until
every caller imports the new path."""

from __future__ import annotations

from ..analysis.extract import (
    NULL_IDS,
    TCP_FAMILY,
    Extract,
    LinkHeader,
    Rules,
    extra_pairs,
    extract,
    header_values,
    opensips_fields,
    parse_b2b_pattern,
    parse_link_header,
)

__all__ = ["NULL_IDS", "TCP_FAMILY", "Extract", "LinkHeader", "Rules", "extra_pairs", "extract",
           "header_values", "opensips_fields", "parse_b2b_pattern", "parse_link_header"]
