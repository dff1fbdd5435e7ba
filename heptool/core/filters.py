"""Moved to :mod:`heptool.analysis.filters` (issue 12): this module only re-exports, until
every caller imports the new path."""

from __future__ import annotations

from ..analysis.filters import AddressFilter, build_filter, parse_address, parse_protos

__all__ = ["AddressFilter", "build_filter", "parse_address", "parse_protos"]
