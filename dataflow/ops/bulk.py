"""Bulk create / update / delete / upsert with batched multi-row statements (PostgreSQL: COPY
BINARY through dataflow.bulk, unless ids are asked back).

Every record is validated and coerced before the first write, so a bad value fails with its
row index and nothing written.  Atomic by default (one transaction, a savepoint per batch so
the failing row can be located exactly); ``atomic=False`` commits batch by batch and reports
``rows_written``.  Upserts never overwrite ``id`` or ``created_at``.
"""

from __future__ import annotations

from dataflow import _native

from ..errors import BulkLoadError, DataFlowError, ValidationError
from . import bulk_ids
from . import validate as V
from .table import utcnow

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_params = _native.load("params")
CONFLICT_MODES = ("error", "skip", "update")
PROTECTED = ("id", "created_at", "tenant_id")


def _records(data, label):
    if data is None:
        raise ValidationError(f"{label}: pass the records as 'data' (a list of dicts)")
    if isinstance(data, dict) or isinstance(data, (str, bytes)):
        raise ValidationError(f"{label}: 'data' must be a list of dicts, got {type(data).__name__}")
    return list(data)


def _conflict_cols(table, conflict_on, label, mode=None):
    """The conflict target.  ``skip`` with no explicit ``conflict_on`` skips a conflict on any
    unique key (an empty target: ON CONFLICT DO NOTHING); ``update`` defaults to ``id``."""
    m = table.model
    if conflict_on is None and mode == "skip":
        return []
    if conflict_on is None:
        return ["id"]
    cols = [conflict_on] if isinstance(conflict_on, str) else list(conflict_on)
    if not cols:
        raise ValidationError(f"{label}: conflict_on must name at least one field")
    for c in cols:
        V.check_field(m, c, "conflict_on field")
    if cols != ["id"] and not any(ix.unique and list(ix.fields) == cols for ix in m.indexes):
        raise ValidationError(
            f"{label}: conflict_on {cols} is not a unique key of {m.name}; declare it in "
            f"__dataflow__['unique'] or use 'id'")
    return cols


def prepare(table, records, label, now=None):
    """Validate records; return (groups, total) where groups maps column tuple -> [(index, values)]."""
    now = now or utcnow()
    groups: dict[tuple, list] = {}
    for i, rec in enumerate(records):
        try:
            row = table.build_row(rec, f"{label} row {i}", now)
        except ValidationError as exc:
            raise BulkLoadError(str(exc), rows_written=0, failed_index=i, cause=exc) from exc
        names = tuple(row)
        groups.setdefault(names, []).append((i, [row[n] for n in names]))
    return groups


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


async def _run_batch(drv, sql_for, batch, label, counter=None, runner=None):
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
                return counter(await drv.fetch(sql_for(len(batch)), flat))
            return await drv.execute(sql_for(len(batch)), flat)
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
    if conflict_resolution not in CONFLICT_MODES:
        raise ValidationError(f"{label}: conflict_resolution must be one of {CONFLICT_MODES}, got {conflict_resolution!r}")
    V.check_int(batch_size, "batch_size", minimum=1, maximum=1_000_000)
    records = _records(records, label)
    conflict = _conflict_cols(table, conflict_on, label, conflict_resolution)
    if not return_ids and _loader_path(table, conflict_resolution):
        return await _copy_write(table, records, batch_size, conflict_resolution, conflict_on, update_cols,
                                 atomic, label)
    if return_ids:
        bulk_ids.check(conflict_resolution, conflict, label)
    now = utcnow()
    groups = prepare(table, records, label, now)
    prepared = {names: _coerce(table, names, items, label) for names, items in groups.items()}
    await table.ready()
    d, drv = table.dialect, table.db.driver
    total = len(records)
    inserted = 0
    written = 0
    ids = bulk_ids.IdCollector(table, total, conflict_resolution, conflict) if return_ids else None
    raw = {i: vals for items in groups.values() for i, vals in items} if return_ids else None
    counter = None
    if conflict_resolution != "error" and d.supports_returning:
        # Rows come back only when inserted or updated; an inserted row carries our `now`
        # as created_at (updates never touch it), so inserted/updated are exact.
        now_db = _params.coerce(now, K.DATETIME, table.code)
        if conflict_resolution == "skip":
            counter = len
        else:
            counter = lambda rows: sum(1 for r in rows if r[0] == now_db)  # noqa: E731
    for names, items in prepared.items():
        width = len(names)
        per = max(1, min(batch_size, d.max_params // width))
        # Auto ids asked back: they come from the INSERT itself.  Without ids in the records an
        # upsert on ``id`` cannot conflict on it, so it is that same plain INSERT.
        auto_ids = ids is not None and "id" not in names and (conflict_resolution == "error" or conflict == ["id"])
        if conflict_resolution == "error" or auto_ids:
            cache = {}

            def sql_for(n, names=names, cache=cache):
                if n not in cache:
                    cache[n] = d.insert(m.table, names, n)
                return cache[n]
        else:
            upd = []
            if conflict_resolution == "update":
                upd = [c for c in names if c not in PROTECTED and c not in conflict
                       and (update_cols is None or c in update_cols or c == "updated_at")]
            cache = {}

            def sql_for(n, names=names, upd=upd, cache=cache):
                if n not in cache:
                    sql = d.upsert(m.table, names, conflict, upd, n)
                    if counter is not None:
                        sql += " RETURNING " + d.quote("created_at")
                    cache[n] = sql
                return cache[n]

        async def one(batch, sql_for=sql_for, names=names, auto_ids=auto_ids):
            if auto_ids:
                await _run_batch(drv, sql_for, batch, label, None,
                                 lambda sql, b: ids.inserted(drv, ids.insert_sql(sql), b, sql_for(1)))
                return len(batch)
            n = await _run_batch(drv, sql_for, batch, label, counter)
            if ids is not None and not ids.known(names, batch, raw):
                await ids.lookup(drv, names, batch)
            return _inserted(d, n, len(batch), conflict_resolution, counter)
        try:
            if atomic:
                async with drv.transaction():
                    for batch in _batches(items, per):
                        inserted += await one(batch)
            else:
                for batch in _batches(items, per):
                    async with drv.transaction():
                        inserted += await one(batch)
                    written += len(batch)
        except BulkLoadError as exc:
            exc.rows_written = 0 if atomic else written
            if not atomic:
                exc.args = (f"{exc.args[0]} ({written} rows were committed before it)",)
            raise
        except DataFlowError as exc:
            raise BulkLoadError(f"{label} failed: {exc}", rows_written=0 if atomic else written, cause=exc) from exc
    out = {"processed": total, "inserted": inserted, "skipped": total - inserted if conflict_resolution == "skip" else 0,
           "batch_size": batch_size, "operation": label, "success": True}
    if conflict_resolution == "update":
        out["updated"] = total - inserted
        out["skipped"] = 0
    if return_ids:
        out["ids"] = ids.ids()
    return out


def _loader_path(table, mode) -> bool:
    """Bulk writes that the ETL loader (dataflow.bulk) does faster with the same semantics:
    PostgreSQL without vector columns (COPY BINARY, every conflict mode), and inserts and
    ``skip`` upserts on SQLite (planned coercion, ``_native.sqlitebulk`` writing batch k while
    batch k+1 is coerced; a skipped row changes nothing, so the counts stay exact).  ``update``
    on SQLite stays here: RETURNING tells inserted from updated rows without counting the table."""
    from ..bulk import copy, sqlite
    from ..bulk.load import _backend
    backend = _backend(table.dialect)
    if backend is copy:
        return copy.supports(table)
    return backend is sqlite and mode in ("error", "skip")


async def _copy_write(table, records, batch_size, mode, conflict_on, update_cols, atomic, label):
    from ..bulk.load import load_table
    rep = await load_table(table, records, batch_size=None if atomic else batch_size, conflict_resolution=mode,
                           conflict_on=conflict_on, update_fields=update_cols, atomic=atomic, progress=False,
                           label=label)
    out = {"processed": rep["rows"], "inserted": rep["inserted"], "skipped": rep["skipped"],
           "batch_size": batch_size, "operation": label, "success": True}
    if mode == "update":
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
