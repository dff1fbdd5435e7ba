"""Realistic, correlated sets of HEP messages for ``heptool encode --scenario NAME``.

Pure and deterministic: the same ``seed`` and ``start`` time give the same messages, byte
for byte (random parts such as Call-IDs, tags, ports and timing come from
``random.Random(seed)``).  Scenarios are how a user checks a pipeline end to end, and how
tests and demos get data without a capture.

* ``call`` (:mod:`.call`) and ``opensips`` (:mod:`.opensips`), described in their modules;
  :mod:`.common` holds what both build messages with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...core.errors import HepValueError
from ...core.message import HepMessage
from .call import call_scenario
from .opensips import OPENSIPS_LAYOUT, OPENSIPS_MODES, opensips_scenario

__all__ = ["OPENSIPS_LAYOUT", "OPENSIPS_MODES", "SCENARIOS", "call_scenario",
           "opensips_scenario", "scenario"]


#: name -> function(seed=, start=, **options) -> list of messages
SCENARIOS: dict[str, Callable[..., list[HepMessage]]] = {
    "call": call_scenario,
    "opensips": opensips_scenario,
}


def scenario(
    name: str, *, seed: int = 0, start: tuple[int, int] = (1700000000, 0), **options: Any
) -> list[HepMessage]:
    """The messages of scenario ``name`` (``call`` or ``opensips``), in time order."""
    try:
        fn = SCENARIOS[name]
    except KeyError:
        raise HepValueError(
            f"unknown scenario {name!r} (use one of {', '.join(SCENARIOS)})"
        ) from None
    return fn(seed=seed, start=start, **options)
