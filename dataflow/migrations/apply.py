"""What the engine calls: first-use auto-migration, ``migrate``, ``rollback_migration``,
``migration_plan`` and ``existing_schema_mode`` validation.

The pattern everywhere: discover without the lock (cheap, usually "nothing to do"), then take
the lock, discover again and apply only what is still missing -- so of N processes starting at
once exactly one runs the DDL and the others find the finished schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings

from ..errors import ConfigurationError, DatabaseError, IntegrityError, ValidationError
from . import history
from .diff import build_plan, desired_columns
from .discover import discover
from .lock import LockWaitTimeout, migration_lock

#: PostgreSQL DDL that hit lock_timeout is retried this many times (with backoff)
DDL_ATTEMPTS = 5


def _models(db) -> list:
    return list(db._models.values())


async def plan(db, allow_destructive: bool = False):
    models = _models(db)
    live = await discover(db, [m.table for m in models])
    return build_plan(models, live, db.dialect, allow_destructive)


async def initialize_schema(db) -> None:
    """First use: validate (existing_schema_mode) or apply the additive part of the plan."""
    models = _models(db)
    if db.config.existing_schema_mode:
        await validate(db, models)
        return
    if not db.config.auto_migrate or not models:
        return
    p = await plan(db)
    if p.automatic:
        p, _version = await run_migration(db, allow_destructive=False)
    if p.destructive:
        warnings.warn(f"DataFlow {db.name}: schema changes not applied automatically (see db.migration_plan(), "
                      f"apply with await db.migrate(allow_destructive=True)):\n{_lines(p.destructive)}",
                      stacklevel=4)


def _lines(ops) -> str:
    return "\n".join(f"  - {o}" for o in ops)


@contextlib.asynccontextmanager
async def _foreign_keys_off(db):
    # SQLite's rebuild-table procedure needs foreign keys off, and the pragma is a no-op inside
    # a transaction, so it is set around the locked transaction
    if db.dialect.alter_in_place:
        yield
        return
    await db.driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        await db.driver.execute("PRAGMA foreign_keys=ON")


async def _locked(db, body):
    """Run ``body()`` under the migration lock, retrying DDL lock timeouts (PostgreSQL)."""
    d = db.dialect
    for attempt in range(DDL_ATTEMPTS):
        try:
            async with _foreign_keys_off(db):
                async with migration_lock(db, db.config.migration_lock_timeout):
                    await history.ensure(db)
                    return await body()
        except LockWaitTimeout:
            raise
        except DatabaseError as exc:
            if d.is_lock_timeout(exc) and attempt < DDL_ATTEMPTS - 1:
                await asyncio.sleep(0.1 * 2 ** attempt)
                continue
            raise


async def execute_statements(db, statements) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MySQL notes for IF NOT EXISTS
        for sql, params in statements:
            if sql.startswith("PRAGMA foreign_key_check"):
                bad = await db.driver.fetch(sql)
                if bad:
                    raise IntegrityError(f"foreign key check failed after rebuilding a table: {list(map(tuple, bad))[:5]}")
                continue
            await db.driver.execute(sql, params)


async def run_migration(db, allow_destructive: bool):
    """Apply the plan under the lock; returns (plan as found under the lock, version or None)."""
    models = _models(db)
    tables = [m.table for m in models]

    async def body():
        live = await discover(db, tables)
        p = build_plan(models, live, db.dialect, allow_destructive)
        if allow_destructive and p.refused:
            raise ConfigurationError("refusing to migrate: ambiguous change(s) need explicit metadata "
                                     f"(a rename is never done as drop-plus-add):\n{_lines(p.refused)}")
        ops = p.to_apply(allow_destructive)
        if not ops:
            return p, None
        for op in ops:
            await execute_statements(db, op.statements)
        return p, await history.record(db, p.checksum, ops)

    try:
        p, version = await _locked(db, body)
    except LockWaitTimeout:
        # the holder is still busy: proceed only if the schema we need is already there
        p = await plan(db, allow_destructive)
        if p.to_apply(allow_destructive):
            raise
        return p, None
    if version is not None:
        p = await plan(db)
    return p, version


async def migrate(db, allow_destructive: bool = False) -> dict:
    before = await plan(db, allow_destructive)
    after, version = await run_migration(db, allow_destructive)
    applied = before.to_apply(allow_destructive) if version else []
    return {"version": version, "applied": [str(o) for o in applied],
            "pending": [str(o) for o in after.destructive]}


async def rollback(db, version: str) -> list:
    """Apply the reverse DDL of ``version``; returns the statements run."""
    async def body():
        found = await history.rows(db, version)
        if not found:
            raise ValidationError(f"no migration {version!r} in {history.HISTORY_TABLE}")
        row = found[0]
        if row["status"] == "rolled_back":
            raise ValidationError(f"migration {version} was already rolled back")
        blocked = [s for s in row["reverse_ddl"] if s.startswith(history.IRREVERSIBLE)]
        if blocked:
            raise ConfigurationError(f"migration {version} cannot be rolled back: "
                                     + "; ".join(s[len(history.IRREVERSIBLE):] for s in blocked))
        await execute_statements(db, [(s, ()) for s in row["reverse_ddl"]])
        await history.mark_rolled_back(db, version)
        return row["reverse_ddl"]

    return await _locked(db, body)


async def validate(db, models) -> None:
    """existing_schema_mode: compare, never change; ConfigurationError lists every mismatch."""
    d = db.dialect
    live = await discover(db, [m.table for m in models])
    problems = []
    for m in models:
        t = live.get(m.table)
        if t is None:
            problems.append(f"{m.name}: table {m.table} does not exist")
            continue
        want = desired_columns(m, d)
        for name, (f, typ) in want.items():
            c = t.columns.get(name)
            if c is None:
                problems.append(f"{m.name}.{name}: column {m.table}.{name} does not exist")
                continue
            if d.type_family(c.type) != d.type_family(typ):
                problems.append(f"{m.name}.{name}: column type is {c.type}, the model needs {typ}")
            if f.nullable and not c.nullable and not c.primary_key:
                problems.append(f"{m.name}.{name}: column is NOT NULL but the field is Optional")
        for name, c in t.columns.items():
            if name not in want and not c.nullable and c.default is None and not c.autoincrement:
                problems.append(f"{m.name}: column {m.table}.{name} is NOT NULL without a default and not in "
                                f"the model, so inserts will fail")
        for ix in m.indexes:
            if ix.unique and not t.find_index(ix.fields, True) and not any(i.name == ix.name for i in t.indexes):
                problems.append(f"{m.name}: unique index on ({', '.join(ix.fields)}) is missing")
    if problems:
        raise ConfigurationError("existing_schema_mode: the models do not match the live schema:\n"
                                 + "\n".join(f"  - {p}" for p in problems))
