"""``db.load``'s path for the document store (``bulk_path = "documents"``): the source is read
and its rows planned and coerced by ``dataflow.bulk`` exactly as for SQL, then each batch is
encoded to documents and written by ``bulk.Writer`` (ordered inserts or upserts, exact row on
failure, compensation when atomic)."""

from __future__ import annotations

from ..errors import BulkLoadError
from . import codec
from .bulk import Writer

PATH = "documents"


async def run(ctx):
    store, plan = ctx.table, ctx.plan
    names = list(plan.all_names)
    keys = [store.key_of[n] for n in names]
    kinds = [store.kind_of[n] for n in names]
    from dataflow.bulk.insert import coerce_batch
    import dataflow.bulk.options as O
    opts = O.BulkOptions(ctx.conflict, tuple(ctx.conflict_on), ctx.batch_size, ctx.atomic,
                         None, plan.label)
    w = Writer(store, opts, ctx.batch_size)
    try:
        async for start, rows, cols, n in ctx.batches():
            values = coerce_batch(ctx, start, rows, cols)
            docs = []
            for i, row in enumerate(values):
                try:
                    docs.append({k: codec.from_native(v, kind) for k, v, kind in zip(keys, row, kinds)})
                except (TypeError, ValueError) as exc:
                    raise BulkLoadError(f"{plan.label} row {start + i}: {exc}", failed_index=start + i,
                                        cause=exc) from None
            await w.write(docs, start)
            if not ctx.atomic:
                ctx.written = w.written
    except BulkLoadError as exc:
        await w.fail(exc)
        ctx.written = exc.rows_written
        raise
    await w.finish()
    skipped = ctx.consumed - w.inserted if ctx.conflict == "skip" else 0
    return w.inserted, skipped, PATH
