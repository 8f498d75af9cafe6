"""Every native test runs against both implementations in the same process.

``impl`` is "native" or "python".  The native parameter is skipped (with the switch's reason)
when the extension is not built -- unless DATAFLOW_REQUIRE_NATIVE=1, where it fails.
"""

import os

import pytest

from dataflow import _native


def _native_available(name: str) -> tuple[bool, str]:
    try:
        mod = _native.load(name, "native")
    except ImportError as exc:
        return False, str(exc)
    if not str(getattr(mod, "__file__", "")).endswith((".so", ".pyd")):
        return False, "not compiled"
    return True, ""


@pytest.fixture(params=["native", "python"])
def impl(request):
    return request.param


def load_impl(name: str, impl: str):
    """Load module ``name`` in implementation ``impl``, skipping/failing native as configured."""
    if impl == "native":
        ok, why = _native_available(name)
        if not ok:
            if os.environ.get("DATAFLOW_REQUIRE_NATIVE") == "1":
                pytest.fail(f"_native.{name} not built but DATAFLOW_REQUIRE_NATIVE=1: {why}")
            pytest.skip(f"_native.{name} not built: {why}")
    return _native.load(name, impl)


def both(name: str):
    """Both implementations of ``name`` for parity tests (fails/skips like load_impl)."""
    return load_impl(name, "native"), load_impl(name, "python")
