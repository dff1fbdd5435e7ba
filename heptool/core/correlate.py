"""Moved to :mod:`heptool.analysis.correlate` (issue 12): this module only re-exports, until
every caller imports the new path."""

from __future__ import annotations

from ..analysis.correlate import CorrelationGraph, Group, correlate

__all__ = ["CorrelationGraph", "Group", "correlate"]
