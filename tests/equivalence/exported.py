"""The fast paths heptool exports, each of which needs a row (test_every_fast_path_has_a_row).

``C_FUNCTIONS`` is :data:`heptool.core.accel.C_FUNCTIONS` (the C extension's surface);
``GENERATED`` is :data:`heptool.core.templates.GENERATED` (decode templates, encoders, the
record builder: the code generated with ``exec``) plus ``blank``, the other exec site
(:func:`heptool.core.message.blank`).
"""

from __future__ import annotations

from heptool.core.accel import C_FUNCTIONS
from heptool.core.templates import GENERATED as TEMPLATE_GENERATED

GENERATED = (*TEMPLATE_GENERATED, "blank")


def exported_names() -> set[str]:
    """Row names every exported fast path needs: ``c.<function>``, ``gen.<generator>``."""
    return {f"c.{n}" for n in C_FUNCTIONS} | {f"gen.{n}" for n in GENERATED}
