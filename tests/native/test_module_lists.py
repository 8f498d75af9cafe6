"""The module lists agree: setup.py NATIVE_MODULES, _native.MODULES, the .pyx files, the
pure-Python twins and the .pyi stubs -- and the twins expose every public name of the stubs."""

import ast
import pathlib

from dataflow import _native

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _setup_modules():
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "NATIVE_MODULES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("NATIVE_MODULES not found in setup.py")


def test_lists_agree():
    native = ROOT / "_native"
    pyx = tuple(sorted(p.stem for p in native.glob("*.pyx")))
    # ``_``-prefixed modules in _pure/ are private helpers shared by twins, not twins themselves.
    pure = tuple(sorted(p.stem for p in (native / "_pure").glob("*.py") if not p.stem.startswith("_")))
    stubs = tuple(sorted(p.stem for p in native.glob("*.pyi")))
    expected = tuple(sorted(_native.MODULES))
    assert not [m for m in expected if m.startswith("_")], "a compiled module name must not look like a private helper"
    assert tuple(sorted(_setup_modules())) == expected
    assert pyx == expected
    assert pure == expected
    assert stubs == expected


def test_twins_define_every_stub_name():
    for name in _native.MODULES:
        stub = ast.parse((ROOT / "_native" / f"{name}.pyi").read_text())
        public = {n.name for n in stub.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                  and not n.name.startswith("_")}
        # constants (not type aliases such as ``Coerce = Callable[...]``)
        public |= {t.id for n in stub.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                   and not isinstance(n.value, (ast.Subscript, ast.BinOp))
                   for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                   if isinstance(t, ast.Name) and not t.id.startswith("_")}
        twin = _native.load(name, "python")
        missing = sorted(n for n in public if not hasattr(twin, n))
        assert not missing, f"_native._pure.{name} lacks {missing} declared in {name}.pyi"


def test_switch_reports_a_reason():
    assert _native.IMPLEMENTATION in ("native", "python")
    assert _native.REASON


def test_core_is_installed_under_the_package():
    """The compiled core is ``dataflow._native`` (never a top-level ``_native`` that another
    library, or a source checkout's uncompiled folder, could shadow), and every module the
    switch loads comes from that package's directory."""
    import sys

    assert _native.__name__ == "dataflow._native"
    assert "_native" not in sys.modules, "something imported the source folder as a top-level package"
    pkg_dir = pathlib.Path(_native.__file__).resolve().parent
    for name in _native.MODULES:
        mod = _native.load(name)
        assert mod.__name__ in (f"dataflow._native.{name}", f"dataflow._native._pure.{name}")
        assert pathlib.Path(mod.__file__).resolve().is_relative_to(pkg_dir)
