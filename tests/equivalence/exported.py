"""The fast paths heptool exports, each of which needs a row (test_every_fast_path_has_a_row).

``C_FUNCTIONS`` is :data:`heptool.core.accel.C_FUNCTIONS`.  ``GENERATED`` names the code
heptool generates with ``exec`` (heptool/core/codec.py ``_build_template`` and
``_build_encoder``, heptool/core/record.py ``make_fast_record_py``, heptool/core/message.py
``_blank``); it belongs next to those generators, and lives here until the codec split
(plan12 step A1) gives it a home in heptool.core.templates.
"""

from __future__ import annotations

from heptool.core.accel import C_FUNCTIONS

GENERATED = ("decode_templates", "encoder", "record_builder", "blank")


def exported_names() -> set[str]:
    """Row names every exported fast path needs: ``c.<function>``, ``gen.<generator>``."""
    return {f"c.{n}" for n in C_FUNCTIONS} | {f"gen.{n}" for n in GENERATED}
