"""PostgreSQL: rows or columns encoded by ``_native.copybin`` and streamed with
``COPY ... FROM STDIN (FORMAT binary)`` through an async iterator of chunks, so the next chunk is
encoded while the server ingests the previous one, in constant memory.

"skip"/"update" go through a TEMP staging table and one ``INSERT ... SELECT ... ON CONFLICT``;
"update" sets a savepoint before it, so a key repeated within the load can be located in the
staging table after the server refuses the statement.
The COPY runs inside ``driver.transaction()``: its own transaction, or a savepoint when the
caller is already inside ``async with db.transaction()``.  The driver owns the connection
(``copy_in``); the staging statements come from the statement layer.
"""

from __future__ import annotations

import uuid

from .. import _native
from ..errors import BulkLoadError, DataFlowError

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

PATH = "copy"
_copybin = _native.load("copybin")
PG_TYPES = {K.INT: "int8", K.FLOAT: "float8", K.BOOL: "bool", K.STR: "text", K.BYTES: "bytea",
            K.DATETIME: "timestamptz", K.DATE: "date", K.DECIMAL: "numeric", K.UUID: "uuid", K.JSON: "jsonb"}


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
        import dataflow.bulk.insert as generic
        inserted, skipped, _ = await generic.run(ctx)
        return inserted, skipped, "insert"
    drv = table.db.driver
    types = [_pg_type(table, k) for k in ctx.plan.kinds]
    ctx.plan.serialize_json = True
    inserted = skipped = 0
    if ctx.atomic:
        async with drv.transaction():
            inserted, skipped = await _load(ctx, drv, ctx.batches(), types, 0)
        return inserted, skipped, PATH
    async for start, rows, cols, n in ctx.batches():
        async with drv.transaction():
            ins, sk = await _load(ctx, drv, _one(start, rows, cols, n), types, start)
        inserted += ins
        skipped += sk
        ctx.written += n
    return inserted, skipped, PATH


async def _one(*batch):
    yield batch


class _Tags:
    """The field sets of an ``update`` of dict items, numbered: each staged row carries its
    item's number in the ``TAG`` column, and each set seen is merged with its own SET list."""

    def __init__(self, plan):
        self.plan = plan
        self.ids: dict = {}        # given -> number
        self.seen: set = set()     # the numbers staged in this COPY

    def number(self, given) -> int:
        n = self.ids.get(given)
        if n is None:
            n = self.ids[given] = len(self.ids)
        return n

    def of(self, items):
        """The tag of a batch: one int when every item gives the same fields, else one per item."""
        given = self.plan.item_given(items)
        if given is None:
            tag = self.number(self.plan.given)
            self.seen.add(tag)
            return tag
        number = self.number
        tags = [number(g) for g in given]
        self.seen.update(tags)
        return tags

    def given(self, tag):
        return next(g for g, n in self.ids.items() if n == tag)


TAG = "df_given"


async def _load(ctx, drv, batches, types, base):
    """One COPY (into the table, or into a staging table then INSERT ... SELECT)."""
    table, plan = ctx.table, ctx.plan
    st, writes = table.st, table.writes
    counted = [0]
    if ctx.conflict == "error":
        await _copy(drv, table.model.table, plan.all_names, plan, _chunks(plan, batches, types, counted), base,
                    writes)
        return counted[0], 0
    # "update" of dict items: each may give its own fields, and only those are set on an
    # existing row, so every staged row carries the number of its field set (``_Tags``)
    tags = _Tags(plan) if ctx.conflict == "update" and plan.per_item else None
    names = plan.all_names + ((TAG,) if tags is not None else ())
    stage = f"df_stage_{uuid.uuid4().hex[:16]}"
    await drv.execute(st.stage_create(stage, plan.all_names, tag=TAG if tags is not None else None))
    try:
        await _copy(drv, stage, names, plan, _chunks(plan, batches, types + ["int4"] if tags else types, counted,
                                                     tags), base, None)
        # "update" only: a savepoint to come back to if the load repeats a key (SQLSTATE 21000),
        # so the staging table can still be read to name the row. "skip" never raises it.
        savepoint = f"{stage}_sp" if ctx.conflict == "update" else None
        if savepoint is not None:
            await drv.execute(table.dialect.savepoint_sql(savepoint))
        if tags is not None and len(tags.seen) > 1:
            # One merge per field set: a key staged under two sets would be updated twice
            # without the 21000 a single merge raises, so look for it first.
            keys = ctx.conflict_on
            if all(k in plan.all_names for k in keys) and \
                    (await drv.fetchrow(st.stage_key_repeats(stage, keys)))[0]:
                dup = await _repeated_key(ctx, drv, stage, None, base, None)
                if dup is not None:
                    raise dup
            merges = [(ctx.update_for(tags.given(t)), t) for t in sorted(tags.seen)]
        elif tags is not None:
            merges = [(ctx.update_for(tags.given(t)), None) for t in tags.seen]
        else:
            merges = [(ctx.update_cols if ctx.conflict == "update" else [], None)]
        fresh = affected = 0
        try:
            for update, tag in merges:
                sql = st.stage_merge(stage, plan.all_names, ctx.conflict_on, update,
                                     tag=TAG if tag is not None else None)
                got, back = await drv.fetchrow(sql, () if tag is None else (tag,), writes=writes)
                fresh += got
                affected += back
        except DataFlowError as err:
            if savepoint is not None and getattr(err, "sqlstate", None) == "21000":
                dup = await _repeated_key(ctx, drv, stage, savepoint, base, err)
                if dup is not None:
                    raise dup from err
            raise BulkLoadError(f"{plan.label}: merging the staged rows failed: {err}", cause=err) from err
    finally:
        try:
            await drv.execute(st.stage_drop(stage))
        except DataFlowError:  # the transaction is already aborted; its ROLLBACK drops the table
            pass
    n = counted[0]
    if ctx.conflict == "skip":
        return fresh, n - fresh
    # "update": a staged row comes back inserted or updated, unless the upsert's tenant guard
    # left the row it met alone (another tenant's): those are reported as skipped
    return fresh, n - affected


async def _repeated_key(ctx, drv, stage, savepoint, base, cause):
    """The BulkLoadError for the first staged row whose conflict key an earlier row already has,
    or None if it cannot be found (then the caller reports the server's error as it is).
    ``savepoint``: rolled back to first (the failed merge aborted the transaction), or None.

    Load order is ctid order: the staging table was created in this transaction, so COPY
    inserts with TABLE_INSERT_SKIP_FSM (copyfrom.c) -- every tuple goes to the current or a
    new last page, never back into free space -- and nothing updates or deletes its rows.
    Reading ctid costs nothing on loads that succeed, unlike an ordinal column filled per row.
    """
    keys = ctx.conflict_on
    if not all(k in ctx.plan.all_names for k in keys):
        return None  # a key the load does not supply (a generated id) cannot repeat
    try:
        if savepoint is not None:
            await drv.execute(ctx.table.dialect.rollback_to_sql(savepoint))
        row = await drv.fetchrow(ctx.table.st.stage_repeated_key(stage, keys))
    except DataFlowError:  # the diagnosis must never hide the original error
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


async def _chunks(plan, batches, types, counted, tags=None):
    enc_cols = _copybin.encode_columns
    first = True
    async for start, rows, cols, n in batches:
        try:
            if rows is not None:
                buf = plan.encode_copy(rows, start, types, first, tag=tags.of(rows) if tags is not None else None)
            else:
                buf = enc_cols(cols, types, header=first, trailer=False)
        except (ValueError, TypeError) as exc:
            raise plan.column_error(exc, start) from None
        first = False
        counted[0] += n
        yield buf
    yield (_copybin.HEADER if first else b"") + _copybin.TRAILER


async def _copy(drv, target, names, plan, source, base, writes):
    try:
        await drv.copy_in(target, names, source, writes=writes)
    except BulkLoadError:
        raise
    except DataFlowError as err:
        index = base + err.copy_row if getattr(err, "copy_row", None) is not None else None
        where = f" row {index}" if index is not None else ""
        raise BulkLoadError(f"{plan.label}{where}: {err}", failed_index=index, cause=err) from err
