"""The one place that knows whether the optional C extension is there (pure).

``heptool.core._speedups`` (``_speedups.c``) is built when a C compiler is present and skipped
when it is not (pyproject.toml ``optional = true``).  Every fast path in it returns ``None``
for anything but the plain common case, and the Python code next to it is the reference that
must give the same answer (tests/core/test_speedups.py).  The rest of heptool asks this module,
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

__all__ = ["BUILD", "PURE_REQUESTED", "c_function", "c_module"]

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

#: ``"c"`` when the extension is in use, ``"pure"`` otherwise.
BUILD = "pure" if _c is None else "c"


def c_module() -> ModuleType | None:
    """The extension module, or None in the pure-Python build."""
    return _c


def c_function(name: str) -> Any:
    """The extension's function ``name``, or None in the pure-Python build."""
    return None if _c is None else getattr(_c, name)
