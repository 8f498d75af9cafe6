"""``bulk_create`` / ``bulk_upsert`` of records: the one entry point of record bulk writes.

Options are checked once (``options.check``); inserts and upserts the loader does faster with
the same semantics (PostgreSQL COPY BINARY, the SQLite writer) go to ``load``; the rest run
here as batched multi-row statements from the statement layer.

Every record is validated and coerced before the first write, so a bad value fails with its
row index and nothing written.  Atomic by default (one transaction, a savepoint per batch so
the failing row can be located exactly); ``atomic=False`` commits batch by batch and reports
``rows_written``.  Upserts never overwrite ``id`` or ``created_at``.
"""

from __future__ import annotations

from .. import _native
from ..errors import BulkLoadError, DataFlowError, ValidationError
from ..models.managed import MANAGED_FIELDS, utcnow
import dataflow.bulk.ids as bulk_ids
import dataflow.bulk.options as O
from .insert import count_rows
from .rows import sections

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_params = K


def _records(data, label):
    if data is None:
        raise ValidationError(f"{label}: pass the records as 'data' (a list of dicts)")
    if isinstance(data, dict) or isinstance(data, (str, bytes)):
        raise ValidationError(f"{label}: 'data' must be a list of dicts, got {type(data).__name__}")
    return list(data)


def prepare(table, records, label, now=None, opts=None):
    """Validate records -> ``[(names, given, [(index, values)])]``: one part per statement shape.

    ``names`` are the columns of the full row (``build_row`` filled the defaults); ``given``,
    for an ``update`` only (else None), the fields the records give -- the only ones an
    existing row takes, as with ``upsert``.  Parts come in order of first appearance; when a
    conflict key occurs in two parts they are cut into runs instead, keeping the source order
    of the writes to that row (``rows.sections``)."""
    now = now or utcnow()
    update = opts is not None and opts.mode == "update"
    shapes, rows = [], []
    user: dict = {}
    for i, rec in enumerate(records):
        try:
            row = table.build_row(rec, f"{label} row {i}", now)
        except ValidationError as exc:
            raise BulkLoadError(str(exc), rows_written=0, failed_index=i, cause=exc) from exc
        names = tuple(row)
        given = None
        if update:
            full = user.get(names)
            if full is None:
                full = user[names] = tuple(n for n in names if n not in MANAGED_FIELDS)
            given = full if len(rec) >= len(full) else tuple(n for n in full if n in rec)
        shapes.append((names, given))
        rows.append(row)
    keys = None
    if update:
        conflict = opts.conflict
        keys = [None if None in k else k for k in (tuple(row.get(c) for c in conflict) for row in rows)]
    return [(names, given, [(i, [rows[i][n] for n in names]) for i in pos])
            for (names, given), pos in sections(shapes, keys)]


def _coerce(table, names, items, label):
    kinds = tuple(table.kind_of[n] for n in names)
    out = []
    for i, values in items:
        try:
            out.append((i, _params.coerce_row(values, kinds, table.code, names)))
        except (TypeError, ValueError) as exc:
            err = BulkLoadError(f"{label} row {i}: {exc}", rows_written=0, failed_index=i, cause=exc)
            raise err from None
    return out


def _batches(items, size):
    for s in range(0, len(items), size):
        yield items[s:s + size]


async def _run_batch(drv, sql_for, batch, label, writes, counter=None, runner=None):
    """Execute one multi-row statement in a savepoint; on failure find the exact bad row.

    Returns the driver's rowcount, or ``counter(rows)`` over the RETURNING rows when given;
    ``runner(sql, batch)`` replaces the plain execute (the auto-id INSERTs of ``return_ids``).
    """
    flat = [v for _, vals in batch for v in vals]
    try:
        async with drv.transaction():
            if runner is not None:
                return await runner(sql_for(len(batch)), batch)
            if counter is not None:
                return counter(await drv.fetch(sql_for(len(batch)), flat, writes=writes))
            return await drv.execute(sql_for(len(batch)), flat, writes=writes)
    except DataFlowError as exc:
        for i, vals in batch:
            try:
                async with drv.transaction():
                    await drv.execute(sql_for(1), vals)
                    raise _Probe()
            except _Probe:
                continue
            except DataFlowError as row_exc:
                raise BulkLoadError(f"{label} row {i}: {row_exc}", failed_index=i, cause=row_exc) from row_exc
        raise BulkLoadError(f"{label}: batch starting at row {batch[0][0]} failed: {exc}",
                            failed_index=batch[0][0], cause=exc) from exc


class _Probe(Exception):
    """Raised to roll back a probe insert that succeeded."""


async def bulk_write(table, records, *, batch_size=1000, conflict_resolution="error", conflict_on=None,
                     update_cols=None, atomic=True, return_ids=False, label="bulk_create") -> dict:
    m = table.model
    opts = O.check(table, label, conflict_resolution=conflict_resolution, conflict_on=conflict_on,
                   batch_size=batch_size, atomic=atomic, update_fields=update_cols)
    records = _records(records, label)
    batch_size = 1000 if batch_size is None else batch_size
    if not return_ids and _loader_path(table, opts.mode):
        return await _load_write(table, records, batch_size, opts)
    mode, conflict = opts.mode, list(opts.conflict)
    if return_ids:
        bulk_ids.check(mode, conflict, label)
    now = utcnow()
    parts = prepare(table, records, label, now, opts)
    prepared = [(names, given, _coerce(table, names, items, label)) for names, given, items in parts]
    await table.ready()
    d, drv, st, writes = table.dialect, table.db.driver, table.st, table.writes
    total = len(records)
    inserted = 0
    written = 0
    ids = bulk_ids.IdCollector(table, total, mode, conflict) if return_ids else None
    raw = {i: vals for _, _, items in parts for i, vals in items} if return_ids else None
    counter = None
    #: rows that met another tenant's row (the upsert's tenant guard left them alone): "skipped"
    blocked = 0
    if mode != "error" and d.supports_returning:
        # Rows come back only when inserted or updated; an inserted row carries our `now`
        # as created_at (updates never touch it), so inserted/updated are exact, and a row the
        # tenant guard left alone does not come back at all.
        now_db = _params.coerce(now, K.DATETIME, table.code)
        if mode == "skip":
            counter = len
        else:
            counter = lambda rows: (sum(1 for r in rows if r[0] == now_db), len(rows))  # noqa: E731
    # MySQL (no RETURNING) counts 1 per inserted row, 2 per updated one and 0 for a row the tenant
    # guard left alone, so with a guard the inserts are counted from the tenant's rows around the
    # batch (in its transaction: only this load's inserts show) and the rest follows.
    guarded = mode == "update" and counter is None and st.guard is not None
    for names, given, items in prepared:
        width = len(names)
        per = max(1, min(batch_size, d.max_params // width))
        # Auto ids asked back: they come from the INSERT itself.  Without ids in the records an
        # upsert on ``id`` cannot conflict on it, so it is that same plain INSERT.
        auto_ids = ids is not None and "id" not in names and (mode == "error" or conflict == ["id"])
        if mode == "error" or auto_ids:
            def sql_for(n, names=names):
                return st.insert(names, n)
        else:
            upd = opts.update_columns(given) if mode == "update" else []

            def sql_for(n, names=names, upd=upd):
                return st.upsert(names, conflict, upd, n, return_created=counter is not None)

        async def one(batch, sql_for=sql_for, names=names, auto_ids=auto_ids):
            if auto_ids:
                await _run_batch(drv, sql_for, batch, label, writes, None,
                                 lambda sql, b: ids.inserted(drv, st.insert_returning_ids(names, len(b)), b,
                                                             sql_for(1)))
                return len(batch)
            nonlocal blocked
            if guarded:
                before = await count_rows(drv, table)
            n = await _run_batch(drv, sql_for, batch, label, writes, counter)
            if ids is not None and not ids.known(names, batch, raw):
                await ids.lookup(drv, names, batch)
            if guarded:
                fresh = await count_rows(drv, table) - before
                blocked += len(batch) - fresh - (n - fresh) // 2
                return fresh
            if isinstance(n, tuple):  # (inserted, rows back): update mode with RETURNING
                fresh, back = n
                blocked += len(batch) - back
                return fresh
            return _inserted(d, n, len(batch), mode, counter)
        try:
            if opts.atomic:
                async with drv.transaction():
                    for batch in _batches(items, per):
                        inserted += await one(batch)
            else:
                for batch in _batches(items, per):
                    async with drv.transaction():
                        inserted += await one(batch)
                    written += len(batch)
        except BulkLoadError as exc:
            exc.rows_written = 0 if opts.atomic else written
            if not opts.atomic:
                exc.args = (f"{exc.args[0]} ({written} rows were committed before it)",)
            raise
        except DataFlowError as exc:
            raise BulkLoadError(f"{label} failed: {exc}", rows_written=0 if opts.atomic else written,
                                cause=exc) from exc
    out = {"processed": total, "inserted": inserted, "skipped": total - inserted if mode == "skip" else 0,
           "batch_size": batch_size, "operation": label, "success": True}
    if mode == "update":
        out["updated"] = total - inserted - blocked
        out["skipped"] = blocked
    if return_ids:
        out["ids"] = ids.ids()
    return out


def _loader_path(table, mode) -> bool:
    """Bulk writes that the ETL loader (dataflow.bulk) does faster with the same semantics:
    PostgreSQL without vector columns (COPY BINARY, every conflict mode), and inserts and
    ``skip`` upserts on SQLite (planned coercion, ``_native.sqlitebulk`` writing batch k while
    batch k+1 is coerced; a skipped row changes nothing, so the counts stay exact).  ``update``
    on SQLite stays here: RETURNING tells inserted from updated rows without counting the table."""
    path = table.dialect.bulk_path
    if path == "copy":
        import dataflow.bulk.postgresql as postgresql
        return postgresql.supports(table)
    return path == "sqlite" and mode in ("error", "skip")


async def _load_write(table, records, batch_size, opts):
    from dataclasses import replace

    from .load import load_checked
    # atomic: one COPY/transaction whatever the batch size; else commit every batch_size rows
    opts = replace(opts, batch_size=None if opts.atomic else batch_size)
    rep = await load_checked(table, records, opts, progress=False)
    out = {"processed": rep["rows"], "inserted": rep["inserted"], "skipped": rep["skipped"],
           "batch_size": batch_size, "operation": opts.label, "success": True}
    if opts.mode == "update":
        out["updated"] = rep["updated"]
    return out


def _inserted(d, rowcount, n, mode, counter):
    """Rows inserted by one batch of ``n``: exact from RETURNING when ``counter`` was used, else
    from the affected-rows count (MySQL's ON DUPLICATE KEY UPDATE counts 1 per inserted row,
    2 per updated row, 0 per row left unchanged)."""
    if mode == "error" or counter is not None:
        return n if mode == "error" else rowcount
    if mode == "skip":
        return rowcount
    return n - max(0, rowcount - n)
