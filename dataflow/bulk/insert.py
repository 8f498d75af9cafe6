"""The INSERT path: SQLite (and any table COPY cannot take): one transaction; each batch of
rows coerced by ``_native.params`` is written by the driver's ``insert_rows`` (SQLite:
``_native.sqlitebulk``, one prepared INSERT, GIL released) while the next batch is coerced, and
a failure names its exact row.  MySQL's INSERT path reuses the statements, the coercion and
``locate`` (savepoint + row-by-row replay) from here.
"""

from __future__ import annotations

import asyncio

from .. import _native
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


def statements(ctx, update=None):
    """-> sql_for(k): the INSERT (or upsert) of k rows for this load; ``update``: the columns an
    ``update`` sets on an existing row (default: those of items giving every field)."""
    st, names = ctx.table.st, tuple(ctx.plan.all_names)
    if ctx.conflict == "error":
        return lambda k: st.insert(names, k)
    upd = (ctx.update_cols if update is None else update) if ctx.conflict == "update" else []
    return lambda k: st.upsert(names, ctx.conflict_on, upd, k)


def parts(ctx, start, items, vals) -> list:
    """A coerced batch -> ``[(sql_for, source indices, rows)]``: one statement shape per field set
    its items give (``LoadContext.split``); a single part, the whole batch, as a rule."""
    return [(statements(ctx, upd), idx, rows) for upd, idx, rows in ctx.split(start, items, vals)]


async def locate(drv, batch_parts, plan, exc):
    """Replay a failed batch row by row (its savepoint was rolled back) to find the bad row."""
    for sql_for, idx, rows in batch_parts:
        sql1 = sql_for(1)
        for i, r in zip(idx, rows):
            try:
                await drv.execute(sql1, r)
            except DataFlowError as row_exc:
                return BulkLoadError(f"{plan.label} row {i}: {row_exc}", failed_index=i, cause=row_exc)
    start = min(idx[0] for _, idx, rows in batch_parts if rows)
    return BulkLoadError(f"{plan.label}: batch starting at row {start} failed: {exc}", failed_index=start,
                         cause=exc)


async def count_rows(drv, table):
    """Rows of the table (the delta around an ``update`` load tells inserted from updated)."""
    row = await drv.fetchrow(*table.st.count_all())
    return int(row[0])


async def _write(drv, batch_parts, plan, writes, on_release=None):
    """One batch, each part in one worker-thread hop; a failure names its exact row (no replay
    needed).  ``on_release`` goes with the first part: the next batch may be coerced from then."""
    changes = 0
    for sql_for, idx, vals in batch_parts:
        contiguous = type(idx) is range
        try:
            changes += await drv.insert_rows(sql_for(1), vals, idx.start if contiguous else 0, on_release,
                                             writes=writes)
        except DataFlowError as exc:
            ri = getattr(exc, "row_index", None)
            if ri is None:
                start = idx[0] if len(idx) else 0
                raise BulkLoadError(f"{plan.label}: batch starting at row {start} failed: {exc}",
                                    failed_index=start, cause=exc) from exc
            ri = ri if contiguous else idx[ri]
            raise BulkLoadError(f"{plan.label} row {ri}: {exc}", failed_index=ri, cause=exc) from exc
        on_release = None
    return changes


def _signal(loop, fut):
    def on_release():   # runs in the connection's thread
        loop.call_soon_threadsafe(_resolve, fut)
    return on_release


def _resolve(fut):
    if not fut.done():
        fut.set_result(None)


async def _pipelined(drv, ctx):
    """Write every batch, coercing batch k+1 on the event loop while batch k is written in the
    connection's thread (the compiled writer holds no GIL while SQLite works).  On any error the
    batch in flight is waited for first: its failure, being earlier in the source, wins."""
    plan, pending, changes = ctx.plan, None, 0
    loop = asyncio.get_running_loop()
    try:
        async for start, rows, cols, _n in ctx.batches():
            batch_parts = parts(ctx, start, rows, coerce_batch(ctx, start, rows, cols))
            if pending is not None:
                p, pending = pending, None
                changes += await p
            # Coercing the next batch must wait until the writer thread has let go of the GIL:
            # compiled code holds the GIL for its whole call, so starting earlier would stall
            # the writer behind it and serialise the two again.
            released = loop.create_future()
            pending = asyncio.ensure_future(_write(drv, batch_parts, plan, ctx.table.writes,
                                                   _signal(loop, released)))
            await asyncio.wait((released, pending), return_when=asyncio.FIRST_COMPLETED)
        if pending is not None:
            p, pending = pending, None
            changes += await p
    except BaseException as exc:
        if pending is not None:
            await asyncio.wait([pending])
            first = pending.exception() if not pending.cancelled() else None
            if first is not None and not isinstance(exc, asyncio.CancelledError):
                raise first from None
        raise
    return changes


async def run(ctx):
    drv = ctx.table.db.driver
    plan = ctx.plan
    # "update" cannot tell inserted from updated rows by changes(); count the table instead
    counting = ctx.conflict == "update"
    inserted = 0
    changed = 0  # update mode: the statements' changes (inserted + updated x affected_per_update)
    if ctx.atomic:
        async with drv.transaction():
            before = await count_rows(drv, ctx.table) if counting else 0
            changes = await _pipelined(drv, ctx)
            inserted = (await count_rows(drv, ctx.table) - before) if counting else changes
            changed = changes
    else:
        async for start, rows, cols, n in ctx.batches():
            batch_parts = parts(ctx, start, rows, coerce_batch(ctx, start, rows, cols))
            async with drv.transaction():
                before = await count_rows(drv, ctx.table) if counting else 0
                changes = await _write(drv, batch_parts, plan, ctx.table.writes)
                inserted += (await count_rows(drv, ctx.table) - before) if counting else changes
                changed += changes
            ctx.written += n
    return inserted, skipped(ctx, inserted, changed), PATH


def skipped(ctx, inserted: int, changed: int) -> int:
    """The rows of a finished INSERT-path load that changed nothing: in ``skip`` mode the
    conflicting ones; in ``update`` mode on a tenant model the ones that met another tenant's
    row (its guard left them alone), told from updated rows by ``changed``, the statements'
    affected rows (each updated row counts ``dialect.affected_per_update``)."""
    if ctx.conflict == "skip":
        return ctx.consumed - inserted
    if ctx.conflict == "update" and ctx.table.st.guard is not None:
        updated = (changed - inserted) // ctx.table.dialect.affected_per_update
        return max(0, ctx.consumed - inserted - updated)
    return 0
