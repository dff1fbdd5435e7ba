"""The one place that knows whether the optional C extension is there (pure).

``heptool.core._speedups`` (``_speedups.c``) is built when a C compiler is present and skipped
when it is not (pyproject.toml ``optional = true``).  Every fast path in it returns ``None``
for anything but the plain common case, and the Python code next to it is the reference that
must give the same answer (tests/equivalence/: one row per fast path).  The rest of heptool asks this module,
never ``_speedups`` itself::

    from .accel import c_function
    _c_sip_ids = c_function("sip_ids")      # None in the pure-Python build

``HEPTOOL_PURE=1`` in the environment selects the pure-Python build even where the extension
is installed: CI runs the whole suite both ways, and a user can rule the extension out when
reporting a bug.  :data:`BUILD` says which build is running.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

__all__ = ["BUILD", "C_FUNCTIONS", "PURE_REQUESTED", "c_function", "c_module", "exported"]

#: True when the environment asks for the pure-Python build (``HEPTOOL_PURE`` set, not "0").
PURE_REQUESTED = os.environ.get("HEPTOOL_PURE", "") not in ("", "0")

_c: ModuleType | None
if PURE_REQUESTED:
    _c = None
else:
    try:
        from . import _speedups as _c
    except ImportError:  # pragma: no cover - built wherever a C compiler is
        _c = None

#: The extension's fast paths: every public callable of ``_speedups`` but ``configure`` (which
#: only hands it Python's tables).  Each has a row in tests/equivalence/ and a fuzz target in
#: tests/fuzz/cfuzz/targets.py; tests/equivalence/test_rows.py checks this list against the
#: built extension.
C_FUNCTIONS = ("hep3_fields", "hep3_record", "hep3_jsonl", "sip_summary", "sip_ids", "udp4_hep")

#: ``"c"`` when the extension is in use, ``"pure"`` otherwise.
BUILD = "pure" if _c is None else "c"


def c_module() -> ModuleType | None:
    """The extension module, or None in the pure-Python build."""
    return _c


def c_function(name: str) -> Any:
    """The extension's function ``name``, or None in the pure-Python build."""
    return None if _c is None else getattr(_c, name)


def exported() -> dict[str, Any]:
    """``{name: function}`` of :data:`C_FUNCTIONS`; empty in the pure-Python build."""
    return {} if _c is None else {n: getattr(_c, n) for n in C_FUNCTIONS}
