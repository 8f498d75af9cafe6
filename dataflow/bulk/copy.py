"""PostgreSQL: rows or columns encoded by ``_native.copybin`` and streamed with
``COPY ... FROM STDIN (FORMAT binary)`` through an async iterator of chunks, so the next chunk is
encoded while the server ingests the previous one, in constant memory.

"skip"/"update" go through a TEMP staging table and one ``INSERT ... SELECT ... ON CONFLICT``.
The COPY runs inside ``driver.transaction()``: its own transaction, or a savepoint when the
caller is already inside ``async with db.transaction()``.
"""

from __future__ import annotations

import re
import uuid

import _native
from _native._pure import params as K

from ..drivers.postgresql import translate
from ..errors import BulkLoadError

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
        try:
            fresh, affected = await con.fetchrow(sql)
        except Exception as exc:
            err = translate(exc)
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
