"""``db.load`` and ``db.export``: open the source, plan the rows, pick the loading path of the
database (``postgresql``: COPY BINARY; ``mysql``: LOAD DATA / packet-sized INSERTs; ``insert``:
the SQLite writer and the generic INSERT path), time it and report.

Failure semantics are the same on every path: atomic by default (any bad row, a source that
raises, cancellation or ``timeout`` leaves zero rows and raises ``BulkLoadError`` with
``failed_index``); ``atomic=False`` commits each batch and reports ``rows_written`` exactly.
"""

from __future__ import annotations

import asyncio
import time

from ..errors import BulkLoadError, DataFlowError, ValidationError
import dataflow.bulk.options as O
from .progress import Progress
from .rows import RowPlan, sections
from .sources import Source, open_async_source, open_source

DEFAULT_BATCH = 10_000


class LoadContext:
    """Everything one load needs, passed to the backend's ``run(ctx)``."""

    def __init__(self, table, src: Source, plan: RowPlan, opts: "O.BulkOptions", progress: Progress,
                 options: dict):
        self.table = table
        self.src = src
        self.plan = plan
        self.batch_size = opts.batch_size or DEFAULT_BATCH
        self.conflict = opts.mode
        self.conflict_on = list(opts.conflict)
        self.atomic = opts.atomic
        self.progress = progress
        self.options = options
        self.consumed = 0      # items taken from the source so far
        self.written = 0       # rows committed (atomic=False)
        self.transform = options.get("transform")
        self._opts = opts
        self._updates: dict = {}
        self.update_cols = self.update_for(plan.given)

    def update_for(self, given) -> list:
        """The columns an ``update`` sets on an existing row for items giving ``given``: only
        those (never the protected fields or the key) and ``updated_at``; [] for the other modes.
        The fields an item leaves out keep their values, as with ``upsert``."""
        cols = self._updates.get(given)
        if cols is None:
            cols = self._updates[given] = self._opts.update_columns(given)
        return cols

    def split(self, start, items, vals) -> list:
        """One batch of coerced rows ``vals`` (from source ``items``, or None for columns) ->
        ``[(update columns, source indices, rows)]``: the whole batch as one part unless an
        ``update`` meets dict items giving different field sets (then one part per set, or per
        run of one set when a conflict key repeats across sets; see ``rows.sections``)."""
        given = self.plan.item_given(items) if self.conflict == "update" and items is not None else None
        if given is None:
            return [(self.update_cols, range(start, start + len(vals)), vals)]
        names = self.plan.all_names
        keys = None
        if self.conflict_on and all(k in names for k in self.conflict_on):
            at = [names.index(k) for k in self.conflict_on]
            if len(at) == 1:
                j = at[0]
                keys = [r[j] for r in vals]     # None (NULL) never conflicts: sections skips it
            else:
                keys = [None if None in k else k for k in (tuple(r[j] for j in at) for r in vals)]
        return [(self.update_for(g), [start + i for i in pos], [vals[i] for i in pos])
                for g, pos in sections(given, keys)]

    async def batches(self):
        """-> (start, items | None, cols | None, n), ``batch_size`` at a time: source items (after
        ``transform``) for the plan to encode/coerce, or full table columns."""
        plan, transform = self.plan, self.transform
        async for kind, payload, n in self.src.batches(self.batch_size):
            start = self.consumed
            if kind == "rows":
                if transform is not None:
                    payload = _transform(transform, payload, start, plan)
                rows, cols = payload, None
            else:
                rows, cols = None, plan.build_columns(payload, n, start)
            self.consumed = start + n
            yield start, rows, cols, n
            self.progress.update(n)


def _transform(fn, items, start, plan):
    out = []
    for i, it in enumerate(items):
        try:
            out.append(fn(it))
        except Exception as exc:
            raise BulkLoadError(f"{plan.label} row {start + i}: transform raised {type(exc).__name__}: {exc}",
                                failed_index=start + i, cause=exc) from exc
    return out


def _backend(dialect):
    # The loading path is data on the dialect (``bulk_path``), mapped to its module once, here.
    import dataflow.bulk.insert as insert
    import dataflow.bulk.mysql as mysql
    import dataflow.bulk.postgresql as postgresql
    if dialect.bulk_path == "documents":
        import dataflow.documents.load as documents
        return documents
    return {"copy": postgresql, "load_data": mysql, "sqlite": insert}[dialect.bulk_path]


async def load_table(table, source, *, batch_size=None, conflict_resolution="error", conflict_on=None,
                     columns=None, transform=None, progress=None, atomic=True, timeout=None, format=None,
                     delimiter=None, header=True, parse=None, update_fields=None, local_infile=None,
                     label=None) -> dict:
    """The body of ``db.load`` for one Table; see ``load``."""
    label = label or f"{table.model.name} load"
    opts = O.check(table, label, conflict_resolution=conflict_resolution, conflict_on=conflict_on,
                   batch_size=batch_size, atomic=atomic, update_fields=update_fields)
    return await load_checked(table, source, opts, columns=columns, transform=transform, progress=progress,
                              timeout=timeout, format=format, delimiter=delimiter, header=header, parse=parse,
                              local_infile=local_infile)


async def load_checked(table, source, opts: "O.BulkOptions", *, columns=None, transform=None, progress=None,
                       timeout=None, format=None, delimiter=None, header=True, parse=None,
                       local_infile=None) -> dict:
    """A load whose bulk options were already checked (``options.check``): ``load_table`` and
    the record bulk writes both end here."""
    label, atomic = opts.label, opts.atomic
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValidationError(f"{label}: timeout must be a positive number of seconds")
    t0 = time.perf_counter()
    if hasattr(source, "__aiter__") and not isinstance(source, Source):
        src = await open_async_source(source)
    else:
        src = open_source(source, format=format, delimiter=delimiter, header=header, columns=columns)
    try:
        if parse is None:
            parse = src.parse
        cols = columns if columns is not None else src.columns
        first = src.first
        include_id = None
        if src.kind == "cols":
            first = None
            include_id = "id" in (src.columns or ())
        elif isinstance(first, dict):
            cols = None
        plan = RowPlan(table, first if src.kind == "rows" else {}, columns=cols if src.kind == "rows" else None,
                       parse=parse, include_id=include_id)
        plan.label = label
        if src.kind == "cols":
            plan.check_columns(src.columns)
        if src.kind == "rows" and transform is not None and first is not None:
            plan = RowPlan(table, transform(first), columns=cols if not isinstance(first, dict) else None,
                           parse=parse)
            plan.label = label
        await table.ready()
        bar = Progress.for_source(label, src, progress)
        ctx = LoadContext(table, src, plan, opts, bar,
                          options={"transform": transform, "local_infile": local_infile,
                                   "batch_given": opts.batch_size is not None})
        backend = _backend(table.dialect)
        ok = False
        try:
            if first is None and src.kind == "rows":
                inserted, skipped, path = 0, 0, "insert" if backend.PATH != "copy" else "copy"
            elif timeout is not None:
                try:
                    async with asyncio.timeout(timeout):
                        inserted, skipped, path = await backend.run(ctx)
                except TimeoutError as exc:
                    raise BulkLoadError(f"{label} timed out after {timeout}s at row {ctx.consumed}; "
                                        f"{ctx.written if not atomic else 0} rows were committed",
                                        rows_written=ctx.written if not atomic else 0,
                                        failed_index=ctx.consumed, cause=exc) from exc
            else:
                inserted, skipped, path = await backend.run(ctx)
            ok = True
        except BulkLoadError as exc:
            _finish_error(exc, ctx, atomic)
            raise
        except DataFlowError as exc:
            err = BulkLoadError(f"{label} failed: {exc}", rows_written=0, failed_index=None, cause=exc)
            _finish_error(err, ctx, atomic)
            raise err from exc
        finally:
            bar.close(ok)
    finally:
        src.close()
    dt = time.perf_counter() - t0
    rows = ctx.consumed if first is not None or src.kind == "cols" else 0
    return {"rows": rows, "inserted": inserted, "skipped": skipped, "updated": rows - inserted - skipped
            if opts.mode == "update" else 0,
            "seconds": dt, "rows_per_second": rows / dt if dt > 0 else 0.0, "path": path}


def _finish_error(exc, ctx, atomic):
    exc.rows_written = ctx.written if not atomic else 0
    if not atomic and "committed" not in str(exc):
        exc.args = (f"{exc.args[0]} ({ctx.written} rows were committed before it)",)


async def load(db, model, source, **opts) -> dict:
    """Load ``source`` into ``model``'s table as fast as the database allows.

    ``source``: an iterable (sync or async) of dicts or tuples, a CSV/TSV/JSONL path (``.gz``
    too), a dict of columns, a numpy structured array, a pandas DataFrame or an Arrow table.
    Options: ``batch_size`` (rows per chunk; per committed batch when ``atomic=False``),
    ``conflict_resolution`` ("error", "skip", "update") with ``conflict_on``, ``columns`` (names
    of tuple positions / header-less files), ``transform`` (item -> item), ``progress``
    (None: on a terminal), ``atomic`` (default True), ``timeout`` (seconds), ``format``,
    ``delimiter``, ``header``, ``local_infile`` (MySQL: None uses LOAD DATA when allowed).

    Returns ``{"rows", "seconds", "rows_per_second", "skipped", "inserted", "updated", "path"}``.

    >>> report = await db.load("User", [{"name": "Ada"}, {"name": "Lin"}])  # doctest: +SKIP
    >>> report["rows"], report["path"]                                      # doctest: +SKIP
    (2, 'copy')
    """
    return await load_table(db._table(model), source, **opts)


async def export(db, model, path, **opts) -> dict:
    """Write ``model``'s rows to ``path`` (CSV, TSV, JSONL, optionally .gz; Parquet with pyarrow)."""
    from .export import export_table
    return await export_table(db._table(model), path, **opts)
