"""Moved to :mod:`heptool.analysis.scenarios` (issue 12): this module only re-exports, until
every caller imports the new path."""

from __future__ import annotations

from ..analysis.scenarios import (
    OPENSIPS_LAYOUT,
    OPENSIPS_MODES,
    SCENARIOS,
    call_scenario,
    opensips_scenario,
    scenario,
)

__all__ = ["OPENSIPS_LAYOUT", "OPENSIPS_MODES", "SCENARIOS", "call_scenario",
           "opensips_scenario", "scenario"]
