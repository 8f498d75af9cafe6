"""The command line, one package: ``dataflow info`` (which native implementation is active and
why) and ``dataflow demo`` here; ``load``/``export`` in ``etl.py``; ``inspect``/``migrate`` in
``migrate.py``."""

from __future__ import annotations

import argparse
import sys


def _info(args) -> int:
    import platform

    from dataflow import _native

    print(f"dataflow {__import__('dataflow').__version__} on Python {platform.python_version()}")
    print(f"native core: {_native.IMPLEMENTATION} ({_native.REASON})")
    for name in _native.MODULES:
        try:
            mod = _native.load(name)
            where = getattr(mod, "__file__", "?")
        except ImportError as exc:
            where = f"unavailable: {exc}"
        print(f"  {name:8s} {where}")
    try:
        import uvloop  # noqa: F401
        import os
        off = os.environ.get("DATAFLOW_NO_UVLOOP", "").lower() in ("1", "true", "yes", "on")
        print(f"event loop: {'asyncio (DATAFLOW_NO_UVLOOP=1)' if off else 'uvloop'}")
    except ImportError:
        print("event loop: asyncio (uvloop not installed)")
    return 0


def _demo(args) -> int:
    from ..demo import main as demo_main

    return demo_main(args.url, args.rows)


#: Modules that add subcommands: each has ``register(subparsers)`` which adds parsers and
#: sets ``func`` (``args -> exit code``) via ``set_defaults``.
SUBCOMMANDS = ("dataflow.cli.etl", "dataflow.cli.migrate", "dataflow.cli.serve")


EPILOG = """examples:
  dataflow info
  dataflow demo --rows 10000
  dataflow load sqlite:///app.db Person people.csv --module app.models
  dataflow inspect sqlite:///app.db
run `dataflow COMMAND --help` for a command's options and examples"""


def main(argv=None) -> int:
    """Run the command line; -> the exit status (0 ok, 1 failed, 2 bad arguments)."""
    import importlib

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="dataflow", description="DataFlow command line", epilog=EPILOG,
                                     formatter_class=fmt)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="which native implementation is active, and why",
                   description="print which native implementation is active, and why",
                   epilog="example:\n  dataflow info", formatter_class=fmt).set_defaults(func=_info)
    d = sub.add_parser("demo", help="run the quick-start demo (embedded SQLite by default)",
                       description="run the quick-start demo (embedded SQLite by default)",
                       epilog="examples:\n  dataflow demo\n  dataflow demo --url postgresql://postgres@127.0.0.1/test "
                              "--rows 10000", formatter_class=fmt)
    d.add_argument("--url", default=None, help="database URL (default: a temporary SQLite file)")
    d.add_argument("--rows", type=int, default=100_000, help="rows for the bulk-create step")
    d.set_defaults(func=_demo)
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
