"""``db.load``'s path for the document store (``bulk_path = "documents"``): the source is read
and its rows planned and coerced by ``dataflow.bulk`` exactly as for SQL, then each batch is
encoded to documents and written by ``bulk.Writer`` (ordered inserts or upserts, exact row on
failure), atomic as ``bulk.py`` describes (one transaction where the server has them, else
compensation).  An ``update`` rewrites on an existing document only the fields each item gives
(and only those of ``update_fields`` when given), as on SQL."""

from __future__ import annotations

from ..errors import BulkLoadError
from . import codec
from .bulk import Writer, atomic_scope, run_writer

PATH = "documents"


async def run(ctx):
    store = ctx.table
    async with atomic_scope(store, ctx.atomic) as how:
        w = Writer(store, ctx._opts, ctx.batch_size, how, update_for=ctx.update_for)
        try:
            await run_writer(w, _batches(ctx, w))
        except BulkLoadError as exc:
            ctx.written = exc.rows_written
            raise
    skipped = ctx.consumed - w.inserted if ctx.conflict == "skip" else 0
    return w.inserted, skipped, PATH


async def _batches(ctx, w: Writer) -> None:
    store, plan = ctx.table, ctx.plan
    names = list(plan.all_names)
    keys = [store.key_of[n] for n in names]
    kinds = [store.kind_of[n] for n in names]
    from dataflow.bulk.insert import coerce_batch
    update = ctx.conflict == "update"
    async for start, rows, cols, n in ctx.batches():
        values = coerce_batch(ctx, start, rows, cols)
        docs = []
        for i, row in enumerate(values):
            try:
                docs.append({k: codec.from_native(v, kind) for k, v, kind in zip(keys, row, kinds)})
            except (TypeError, ValueError) as exc:
                raise BulkLoadError(f"{plan.label} row {start + i}: {exc}", failed_index=start + i,
                                    cause=exc) from None
        given = None
        if update:
            # the fields each item gives (dict items may give fewer than the plan's names)
            given = (plan.item_given(rows) if rows is not None else None) or [plan.given] * len(docs)
        await w.write(docs, start, given)
        if not ctx.atomic:
            ctx.written = w.written
