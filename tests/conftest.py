"""Suite-wide test settings."""

from __future__ import annotations

import os

from hypothesis import settings

if os.environ.get("CI") == "true":
    # CI decides whether a submission lands, so there every property and fuzz test runs the
    # same examples each time (derandomized); exploring new examples is what development runs
    # and long local fuzz runs are for, and what they find is pinned with @example.
    settings.register_profile("heptool-ci-deterministic", derandomize=True, database=None)
    settings.load_profile("heptool-ci-deterministic")
