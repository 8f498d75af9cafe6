"""``dataflow inspect URL`` (print the live schema) and ``dataflow migrate URL --module m
[--dry-run] [--allow-destructive]`` (plan or apply for the models a module defines, read as
``load``/``export`` read it: ``dataflow.cli.modules``)."""

from __future__ import annotations

import argparse
import json
import sys

from .modules import check_database_exists, open_db

INSPECT_EPILOG = """examples:
  dataflow inspect sqlite:///app.db
  dataflow inspect postgresql://postgres@127.0.0.1/test --table users --json"""
MIGRATE_EPILOG = """examples:
  dataflow migrate sqlite:///app.db --module app.models --dry-run
  dataflow migrate postgresql://postgres@127.0.0.1/test --module app.models --allow-destructive
exit status: 0 when the database matches the models afterwards (or --dry-run), 1 when a change
was not applied (e.g. a destructive one without --allow-destructive) or an error occurred"""


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("inspect", help="print the live schema of a database",
                              description="print the live schema of a database", epilog=INSPECT_EPILOG,
                              formatter_class=fmt)
    p.add_argument("url", help="database URL")
    p.add_argument("--table", action="append", help="only this table (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_inspect)
    m = subparsers.add_parser("migrate", help="bring a database to the models of a module",
                              description="bring a database to the models of a module", epilog=MIGRATE_EPILOG,
                              formatter_class=fmt)
    m.add_argument("url", help="database URL")
    m.add_argument("--module", "-m", required=True,
                   help="module defining the models, e.g. app.models: define(db), a DataFlow, or model classes "
                        "(imported from the current directory)")
    m.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    m.add_argument("--allow-destructive", action="store_true",
                   help="also apply type changes, drops and NOT NULL changes")
    m.set_defaults(func=_migrate)


def _inspect(args) -> int:
    from ..engine import DataFlow
    from ..errors import DataFlowError

    try:
        check_database_exists(args.url)
        with DataFlow(args.url, auto_migrate=False) as db:
            schema = db.discover_schema() if not args.table else _run(db.discover_schema_async(args.table))
    except DataFlowError as exc:
        print(f"dataflow inspect: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(schema, indent=2, default=str))
        return 0
    for table, t in schema.items():
        print(f"{table}")
        for c in t["columns"]:
            flags = " PRIMARY KEY" if c["primary_key"] else ""
            flags += "" if c["nullable"] else " NOT NULL"
            flags += f" DEFAULT {c['default']}" if c["default"] is not None else ""
            print(f"  {c['name']} {c['type']}{flags}")
        for i in t["indexes"]:
            print(f"  {'unique ' if i['unique'] else ''}index {i['name']} ({', '.join(i['columns'])})")
        for f in t["foreign_keys"]:
            print(f"  foreign key {f['name']} ({', '.join(f['columns'])}) -> {f['ref_table']}"
                  f"({', '.join(c or '?' for c in f['ref_columns'])})")
    return 0


def _run(coro):
    from .._loop import run_sync
    return run_sync(coro)


def _migrate(args) -> int:
    from ..errors import DataFlowError

    try:
        db = open_db(args.url, args.module, auto_migrate=False)
    except DataFlowError as exc:
        print(f"dataflow migrate: {exc}", file=sys.stderr)
        return 1
    try:
        with db:
            plan = db.migration_plan()
            print(plan)
            if args.dry_run or not plan:
                return 0
            result = _run(db.migrate(allow_destructive=args.allow_destructive))
    except DataFlowError as exc:
        print(f"dataflow migrate: {exc}", file=sys.stderr)
        return 1
    if result["version"]:
        print(f"applied migration {result['version']}")
    if result["pending"]:
        hint = "" if args.allow_destructive else " (use --allow-destructive)"
        print(f"not applied{hint}:", file=sys.stderr)
        for line in result["pending"]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
