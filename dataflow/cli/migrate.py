"""``dataflow inspect URL`` (print the live schema) and ``dataflow migrate URL --module m
[--dry-run] [--allow-destructive]`` (plan or apply for the models a module defines)."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="print the live schema of a database")
    p.add_argument("url", help="database URL")
    p.add_argument("--table", action="append", help="only this table (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_inspect)
    m = subparsers.add_parser("migrate", help="bring a database to the models of a module")
    m.add_argument("url", help="database URL")
    m.add_argument("--module", required=True, help="module defining the models, e.g. app.models")
    m.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    m.add_argument("--allow-destructive", action="store_true",
                   help="also apply type changes, drops and NOT NULL changes")
    m.set_defaults(func=_migrate)


def _inspect(args) -> int:
    from ..engine import DataFlow

    with DataFlow(args.url, auto_migrate=False) as db:
        schema = db.discover_schema() if not args.table else _run(db.discover_schema_async(args.table))
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


def model_classes(module) -> list:
    """Model classes a module defines: those of its DataFlow instances, and decorated classes."""
    from ..engine import DataFlow

    out = []
    for obj in list(vars(module).values()):
        if isinstance(obj, DataFlow):
            out.extend(m.cls for m in obj._models.values())
        elif isinstance(obj, type) and getattr(obj, "__dataflow_model__", None) is not None:
            out.append(obj)
    return list(dict.fromkeys(out))


def _migrate(args) -> int:
    import importlib

    from ..engine import DataFlow

    module = importlib.import_module(args.module)
    classes = model_classes(module)
    if not classes:
        print(f"no DataFlow models found in {args.module}")
        return 1
    with DataFlow(args.url, auto_migrate=False) as db:
        for cls in classes:
            db.model(cls)
        plan = db.migration_plan()
        print(plan)
        if args.dry_run or not plan:
            return 0
        result = _run(db.migrate(allow_destructive=args.allow_destructive))
    if result["version"]:
        print(f"applied migration {result['version']}")
    if result["pending"]:
        print("not applied (use --allow-destructive):")
        for line in result["pending"]:
            print(f"  {line}")
    return 0
