"""Build the optional Cython core.

NATIVE_MODULES is the one list of compiled modules (tests check it against _native/).
The sources stay in the top-level ``_native/`` folder but install as ``dataflow._native``
(a package-dir mapping): a generic top-level name could clash with another library's, and a
source checkout's uncompiled ``_native/`` folder could shadow the installed compiled one.
The build is optional for users (a failed compile leaves the pure-Python twins) and mandatory
when DATAFLOW_REQUIRE_NATIVE=1, so CI cannot silently test the twins twice.
"""

import os
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

NATIVE_MODULES = ["filters", "params", "copybin", "vector", "sqlitebulk"]
REQUIRE = os.environ.get("DATAFLOW_REQUIRE_NATIVE", "").lower() in ("1", "true", "yes", "on")


def _extensions():
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        if REQUIRE:
            raise
        print("Cython not installed: building without the native core", file=sys.stderr)
        return []
    exts = [Extension(f"dataflow._native.{m}", [f"_native/{m}.pyx"], optional=not REQUIRE,
                      extra_compile_args=["-O3"]) for m in NATIVE_MODULES
            if os.path.exists(f"_native/{m}.pyx")]
    return cythonize(exts, language_level=3, quiet=True,
                     compiler_directives={"boundscheck": False, "wraparound": False,
                                          "cdivision": True, "initializedcheck": False})


class OptionalBuildExt(build_ext):
    """Compile failures are warnings unless DATAFLOW_REQUIRE_NATIVE=1."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # pragma: no cover - depends on the machine
            if REQUIRE:
                raise
            print(f"native build failed ({exc}); the pure-Python twins will be used", file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # pragma: no cover
            if REQUIRE:
                raise
            print(f"native module {ext.name} failed to build ({exc})", file=sys.stderr)


PACKAGES = find_packages(include=["dataflow", "dataflow.*"]) + ["dataflow._native", "dataflow._native._pure"]

setup(packages=PACKAGES,
      package_dir={"dataflow._native": "_native", "dataflow._native._pure": "_native/_pure"},
      package_data={"dataflow._native": ["*.pyx", "*.pyi", "*.pxd", "*.pxi"]},
      ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
