"""The one switch between the compiled core and its pure-Python twins.

Decided once, at first import, all-or-nothing: either every module in ``MODULES`` is the
compiled extension, or every one is its twin from ``_native._pure``.  ``REASON`` says why.
``DATAFLOW_NO_NATIVE=1`` forces the twins; ``DATAFLOW_REQUIRE_NATIVE=1`` turns a missing or
broken extension into an ``ImportError`` so CI never tests the twin twice believing it tested
both.  Callers use ``load("filters")``; tests use ``load("filters", "python")`` to get both.
"""

from __future__ import annotations

import importlib
import os

#: Must agree with NATIVE_MODULES in setup.py, the .pyx files, _pure/ and the .pyi stubs
#: (tests/native/test_module_lists.py checks it).
MODULES = ("filters", "params", "copybin", "vector", "sqlitebulk")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _decide() -> tuple[str, str]:
    if _truthy("DATAFLOW_NO_NATIVE"):
        if _truthy("DATAFLOW_REQUIRE_NATIVE"):
            raise ImportError("DATAFLOW_NO_NATIVE=1 and DATAFLOW_REQUIRE_NATIVE=1 contradict each other; unset one")
        return "python", "DATAFLOW_NO_NATIVE=1 is set"
    missing = []
    for name in MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
            continue
        if not getattr(mod, "__file__", "").endswith((".so", ".pyd")):
            missing.append(f"{name} (not compiled: {getattr(mod, '__file__', '?')})")
    if missing:
        reason = "compiled extension not available: " + "; ".join(missing)
        if _truthy("DATAFLOW_REQUIRE_NATIVE"):
            raise ImportError(reason + " -- DATAFLOW_REQUIRE_NATIVE=1 demands it; build with `pip install -e .` or `python setup.py build_ext --inplace`")
        return "python", reason + "; using pure-Python twins"
    return "native", "all compiled modules imported"


IMPLEMENTATION, REASON = _decide()


def load(name: str, impl: str | None = None):
    """Return module ``name`` of implementation ``impl`` ("native" or "python"; default: active)."""
    if name not in MODULES:
        raise ValueError(f"unknown native module {name!r}; known: {', '.join(MODULES)}")
    impl = impl or IMPLEMENTATION
    if impl == "native":
        return importlib.import_module(f"{__name__}.{name}")
    if impl == "python":
        return importlib.import_module(f"{__name__}._pure.{name}")
    raise ValueError(f"impl must be 'native' or 'python', not {impl!r}")
