"""SQLite (and the generic INSERT path): one transaction, prepared ``executemany`` per batch of
rows coerced by ``_native.params``; a savepoint per batch so a failing batch can be replayed row
by row to name the exact bad row.  MySQL's INSERT path reuses this with multi-row statements.
"""

from __future__ import annotations

import _native

from ..errors import BulkLoadError, DataFlowError

PATH = "insert"
_params = _native.load("params")


def coerce_batch(ctx, start, rows, cols):
    """Full rows -> list of tuples of driver values (errors name row and column)."""
    plan = ctx.plan
    if rows is not None:
        return plan.coerce_items(rows, start, ctx.table.code)
    cols = [c.tolist() if hasattr(c, "tolist") else list(c) for c in cols]
    rows = list(zip(*cols))
    width = len(plan.all_names)
    try:
        flat = _params.coerce_rows(rows, plan.kinds, ctx.table.code, plan.all_names, start)
    except (ValueError, TypeError) as exc:
        raise _coerce_error(plan, exc) from None
    return list(zip(*[iter(flat)] * width)) if width else [() for _ in rows]


def _coerce_error(plan, exc):
    ri = getattr(exc, "row_index", None)
    return BulkLoadError(f"{plan.label} {exc}", failed_index=ri, cause=exc)


def statements(ctx):
    """-> sql_for(k): the INSERT (or upsert) of k rows for this load."""
    t, d, plan = ctx.table, ctx.table.dialect, ctx.plan
    cache = {}

    def sql_for(k):
        sql = cache.get(k)
        if sql is None:
            if ctx.conflict == "error":
                sql = d.insert(t.model.table, plan.all_names, k)
            else:
                upd = ctx.update_cols if ctx.conflict == "update" else []
                sql = d.upsert(t.model.table, plan.all_names, ctx.conflict_on, upd, k)
            cache[k] = sql
        return sql
    return sql_for


async def locate(conn, sql1, rows, start, plan, exc):
    """Replay a failed batch row by row (its savepoint was rolled back) to find the bad row."""
    for i, r in enumerate(rows):
        try:
            await conn.execute(sql1, r)
        except DataFlowError as row_exc:
            return BulkLoadError(f"{plan.label} row {start + i}: {row_exc}", failed_index=start + i,
                                 cause=row_exc)
    return BulkLoadError(f"{plan.label}: batch starting at row {start} failed: {exc}", failed_index=start,
                         cause=exc)


async def _count(conn, table):
    row = await conn.fetchrow(f"SELECT COUNT(*) FROM {table.qtable}")
    return int(row[0])


async def run(ctx):
    drv = ctx.table.db.driver
    sql_for = statements(ctx)
    sql1 = sql_for(1)
    plan = ctx.plan
    counting = ctx.conflict != "error"

    async def one_batch(conn, start, rows, cols, n):
        vals = coerce_batch(ctx, start, rows, cols)
        before = await _count(conn, ctx.table) if counting else 0
        try:
            async with drv.transaction():
                await conn.executemany(sql1, vals)
        except DataFlowError as exc:
            raise await locate(conn, sql1, vals, start, plan, exc) from exc
        return (await _count(conn, ctx.table) - before) if counting else n

    inserted = 0
    if ctx.atomic:
        async with drv.transaction():
            conn = drv.current()
            async for start, rows, cols, n in ctx.batches():
                inserted += await one_batch(conn, start, rows, cols, n)
    else:
        async for start, rows, cols, n in ctx.batches():
            async with drv.transaction():
                inserted += await one_batch(drv.current(), start, rows, cols, n)
            ctx.written += n
    skipped = ctx.consumed - inserted if ctx.conflict == "skip" else 0
    return inserted, skipped, PATH
