"""How the CLI commands find the models they work on, one way for all of them (``load``,
``export``, ``migrate``): ``--module`` imported with the current directory on ``sys.path``, or
``--table`` (a model made from an existing table); and the check that a URL's database exists.

What a ``--module`` may hold (first match wins):
1. ``define(db)``: called with the CLI's ``DataFlow(URL)``; it declares the models on it
   (``@db.model`` inside) -- the recommended shape, the URL stays the CLI's;
2. DataFlow instances (any name) and decorated model classes: their model classes are declared
   again on ``DataFlow(URL)``, so the module's own URL is never used.
"""

from __future__ import annotations

import importlib
import os
import sys

from ..errors import ConfigurationError


def import_user_module(name: str):
    """Import ``name`` as ``python -m`` would from the current directory."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise ConfigurationError(f"cannot import module {name!r} (looked in the current directory {cwd} "
                                     f"and on sys.path); pass it as a dotted name, e.g. --module app.models") from None
        raise


def declare_models(db, module_name: str) -> list[str]:
    """Declare the models of ``module_name`` on ``db``; -> their names (none found: an error)."""
    from ..engine import DataFlow

    mod = import_user_module(module_name)
    if callable(getattr(mod, "define", None)):
        mod.define(db)
    else:
        classes = []
        for obj in list(vars(mod).values()):
            if isinstance(obj, DataFlow) and obj is not db:
                classes.extend(m.cls for m in obj._models.values())
            elif isinstance(obj, type) and getattr(obj, "__dataflow_model__", None) is not None:
                classes.append(obj)
        for cls in dict.fromkeys(classes):
            db.model(cls)
    names = db.list_models()
    if not names:
        raise ConfigurationError(
            f"no DataFlow models found in module {module_name!r}: give it define(db) declaring them with "
            f"@db.model, a DataFlow with models, or @db.model classes")
    return names


def open_db(url: str, module_name: str, **kwargs):
    """``DataFlow(url, **kwargs)`` with the models of ``module_name`` declared on it."""
    from ..engine import DataFlow

    db = DataFlow(url, **kwargs)
    try:
        declare_models(db, module_name)
    except BaseException:
        db.close()
        raise
    return db


async def model_for_table(db, table: str) -> str:
    """Register the existing ``table`` as a model on ``db`` (its columns discovered); -> the
    model's name.  The table must exist and have DataFlow's ``id`` and timestamp columns."""
    from ..migrations.register import build_class
    from ..migrations.schema import from_dict

    schema = await db.discover_schema_async([table])
    if table not in schema:
        there = sorted(await db.discover_schema_async())
        raise ConfigurationError(f"no table {table!r} in {db.config.url.redacted()}; "
                                 f"tables there: {', '.join(t for t in there if t != 'dataflow_migrations') or '(none)'}")
    made = db.register_schema_as_models(tables=[table], schema=schema)
    if not made:
        _, why = build_class(db, from_dict(table, schema[table]))
        raise ConfigurationError(f"table {table!r} cannot be used as a model: {why}")
    name = next(iter(made))
    have = {c["name"] for c in schema[table]["columns"]}
    missing = [c for c in db._models[name].columns if c not in have]
    if missing:
        raise ConfigurationError(
            f"table {table!r} has no column(s) {', '.join(missing)} that DataFlow writes on every row; "
            f"load it with --module (models whose migration adds them) instead of --table")
    return name


def check_database_exists(url: str) -> None:
    """A URL naming a database file that does not exist is an error (never create it by reading)."""
    from ..config import parse_url

    u = parse_url(url)
    if u.path is not None and not u.is_memory and not os.path.exists(u.path):
        raise ConfigurationError(f"no database file {u.path!r} (from {url!r}); check the path -- "
                                 f"this command does not create databases")
