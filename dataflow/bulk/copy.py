"""PostgreSQL: rows or columns encoded by ``_native.copybin`` and streamed with
``COPY ... FROM STDIN (FORMAT binary)`` through an async iterator of chunks, so the next chunk is
encoded while the server ingests the previous one, in constant memory.

"skip"/"update" go through a TEMP staging table and one ``INSERT ... SELECT ... ON CONFLICT``;
"update" sets a savepoint before it, so a key repeated within the load can be located in the
staging table after the server refuses the statement.
The COPY runs inside ``driver.transaction()``: its own transaction, or a savepoint when the
caller is already inside ``async with db.transaction()``.
"""

from __future__ import annotations

import re
import uuid

from dataflow import _native

from ..drivers.postgresql import translate
from ..errors import BulkLoadError

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

PATH = "copy"
_copybin = _native.load("copybin")
PG_TYPES = {K.INT: "int8", K.FLOAT: "float8", K.BOOL: "bool", K.STR: "text", K.BYTES: "bytea",
            K.DATETIME: "timestamptz", K.DATE: "date", K.DECIMAL: "numeric", K.UUID: "uuid", K.JSON: "jsonb"}
_LINE = re.compile(r"\bCOPY [^,]+, line (\d+)")


def _pg_type(table, kind) -> str | None:
    """The COPY type of a column: vectors need pgvector's ``vector`` column (known once the
    database is initialized); a BYTEA vector column keeps the INSERT path."""
    if kind == K.VECTOR:
        return "vector" if table.db.vector_backend == "pgvector" else None
    return PG_TYPES.get(kind)


def supports(table) -> bool:
    """COPY BINARY needs an encoder for every column type."""
    return all(_pg_type(table, k) is not None for k in table.model.kinds)


async def run(ctx):
    table = ctx.table
    if not supports(table):
        from . import sqlite as generic
        inserted, skipped, _ = await generic.run(ctx)
        return inserted, skipped, "insert"
    drv = table.db.driver
    types = [_pg_type(table, k) for k in ctx.plan.kinds]
    ctx.plan.serialize_json = True
    inserted = skipped = 0
    if ctx.atomic:
        async with drv.transaction():
            con = drv.current().con
            inserted, skipped = await _load(ctx, con, ctx.batches(), types, 0)
        return inserted, skipped, PATH
    async for start, rows, cols, n in ctx.batches():
        async with drv.transaction():
            con = drv.current().con
            ins, sk = await _load(ctx, con, _one(start, rows, cols, n), types, start)
        inserted += ins
        skipped += sk
        ctx.written += n
    return inserted, skipped, PATH


async def _one(*batch):
    yield batch


async def _load(ctx, con, batches, types, base):
    """One COPY (into the table, or into a staging table then INSERT ... SELECT)."""
    table, plan = ctx.table, ctx.plan
    q = table.q
    counted = [0]
    source = _chunks(plan, batches, types, counted)
    if ctx.conflict == "error":
        await _copy(con, table.model.table, plan, source, base)
        return counted[0], 0
    stage = f"df_stage_{uuid.uuid4().hex[:16]}"
    cols = ", ".join(q(c) for c in plan.all_names)
    await _exec(con, f"CREATE TEMP TABLE {q(stage)} AS SELECT {cols} FROM {table.qtable} WITH NO DATA")
    try:
        await _copy(con, stage, plan, source, base)
        target = ", ".join(q(c) for c in ctx.conflict_on)
        if ctx.conflict == "skip":
            action = "DO NOTHING"
        else:
            action = "DO UPDATE SET " + ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in ctx.update_cols)
        on_conflict = f"ON CONFLICT ({target})" if target else "ON CONFLICT"  # no target: any unique key
        sql = (f"WITH ins AS (INSERT INTO {table.qtable} ({cols}) SELECT {cols} FROM {q(stage)} "
               f"{on_conflict} {action} RETURNING (xmax = 0) AS fresh) "
               f"SELECT count(*) FILTER (WHERE fresh), count(*) FROM ins")
        # "update" only: a savepoint to come back to if the load repeats a key (SQLSTATE 21000),
        # so the staging table can still be read to name the row. "skip" never raises it.
        savepoint = f"{stage}_sp" if ctx.conflict == "update" else None
        if savepoint is not None:
            await _exec(con, f"SAVEPOINT {q(savepoint)}")
        try:
            fresh, affected = await con.fetchrow(sql)
        except Exception as exc:
            err = translate(exc)
            if savepoint is not None and getattr(exc, "sqlstate", None) == "21000":
                dup = await _repeated_key(ctx, con, stage, savepoint, base, err)
                if dup is not None:
                    raise dup from exc
            raise BulkLoadError(f"{plan.label}: merging the staged rows failed: {err}", cause=err) from exc
    finally:
        try:
            await con.execute(f"DROP TABLE IF EXISTS {q(stage)}")
        except Exception:  # the transaction is already aborted; its ROLLBACK drops the table
            pass
    n = counted[0]
    if ctx.conflict == "skip":
        return fresh, n - fresh
    return fresh, 0


async def _repeated_key(ctx, con, stage, savepoint, base, cause):
    """The BulkLoadError for the first staged row whose conflict key an earlier row already has,
    or None if it cannot be found (then the caller reports the server's error as it is).

    Load order is ctid order: the staging table was created in this transaction, so COPY
    inserts with TABLE_INSERT_SKIP_FSM (copyfrom.c) -- every tuple goes to the current or a
    new last page, never back into free space -- and nothing updates or deletes its rows.
    Reading ctid costs nothing on loads that succeed, unlike an ordinal column filled per row.
    """
    q, keys = ctx.table.q, ctx.conflict_on
    if not all(k in ctx.plan.all_names for k in keys):
        return None  # a key the load does not supply (a generated id) cannot repeat
    kcols = ", ".join(q(k) for k in keys)
    # NULLs never conflict in a unique index (unless NULLS NOT DISTINCT; then nothing is found)
    not_null = " AND ".join(f"{q(k)} IS NOT NULL" for k in keys)
    # number every row first (the index is the source position), then look at non-NULL keys only
    sql = (f"SELECT {kcols}, df_first, df_i FROM (SELECT {kcols}, df_i, min(df_i) OVER (PARTITION BY {kcols}) "
           f"AS df_first FROM (SELECT {kcols}, row_number() OVER (ORDER BY ctid) - 1 AS df_i FROM {q(stage)}) s "
           f"WHERE {not_null}) d WHERE df_i > df_first ORDER BY df_i LIMIT 1")
    try:
        await con.execute(f"ROLLBACK TO SAVEPOINT {q(savepoint)}")
        row = await con.fetchrow(sql)
    except Exception:  # the diagnosis must never hide the original error
        return None
    if row is None:
        return None
    n = len(keys)
    first, index = base + row[n], base + row[n + 1]
    values = ", ".join(_short(v) for v in tuple(row)[:n])
    key = f"({', '.join(keys)})=({values})"
    return BulkLoadError(
        f"{ctx.plan.label} row {index}: conflict key {key} was already given by row {first} of this "
        f"load, and one ON CONFLICT DO UPDATE cannot update a row twice -- remove the repeated keys "
        f"from the source (keep the row that should win), or load with conflict_resolution=\"skip\", "
        f"which keeps one row per key and leaves existing rows unchanged", failed_index=index, cause=cause)


def _short(value, limit=60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


async def _exec(con, sql):
    try:
        await con.execute(sql)
    except Exception as exc:
        raise translate(exc) from exc


async def _chunks(plan, batches, types, counted):
    enc_cols = _copybin.encode_columns
    first = True
    async for start, rows, cols, n in batches:
        try:
            if rows is not None:
                buf = plan.encode_copy(rows, start, types, first)
            else:
                buf = enc_cols(cols, types, header=first, trailer=False)
        except (ValueError, TypeError) as exc:
            raise plan.column_error(exc, start) from None
        first = False
        counted[0] += n
        yield buf
    yield (_copybin.HEADER if first else b"") + _copybin.TRAILER


async def _copy(con, target, plan, source, base):
    try:
        await con.copy_to_table(target, source=source, columns=list(plan.all_names), format="binary")
    except BulkLoadError:
        raise
    except Exception as exc:
        if not isinstance(exc, Exception):
            raise
        err = translate(exc)
        if err is exc:  # not a database error (e.g. raised by the source): let it through
            raise
        ctx_text = getattr(exc, "context", None) or ""
        m = _LINE.search(ctx_text) or _LINE.search(str(exc))
        index = base + int(m.group(1)) - 1 if m else None
        where = f" row {index}" if index is not None else ""
        raise BulkLoadError(f"{plan.label}{where}: {err}", failed_index=index, cause=err) from exc
