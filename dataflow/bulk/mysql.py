"""MySQL/MariaDB: ``LOAD DATA LOCAL INFILE`` when the server allows it (and ``local_infile`` is
not False), else multi-row INSERT statements sized to the server's ``max_allowed_packet``,
built from rows coerced by ``_native.params``.

LOAD DATA LOCAL turns data and duplicate-key errors into warnings (the server cannot stop the
client mid-file), so the load runs in a transaction and any warning or short count rolls it
back and is reported with the row it names.  It needs a connection opened with
``local_infile=True``: the pool's are not, so the driver's ``load_data`` opens one dedicated
connection with the pool's settings (and this path is only taken outside the caller's own
transaction).
"""

from __future__ import annotations

import os
import re
import tempfile
import weakref

from .. import _native
from ..errors import BulkLoadError, DataFlowError
import dataflow.bulk.insert as generic

PATH = "insert"
_params = _native.load("params")
_packets: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_AT_ROW = re.compile(r"at row (\d+)")
_DUP = re.compile(r"Duplicate entry '(.*)' for key '([^']+)'", re.S)


async def server_settings(drv) -> tuple[int, bool]:
    s = _packets.get(drv)
    if s is None:
        row = await drv.fetchrow("SELECT @@max_allowed_packet, @@local_infile")
        s = _packets[drv] = (int(row[0]), bool(int(row[1])))
    return s


async def run(ctx):
    drv = ctx.table.db.driver
    packet, infile = await server_settings(drv)
    want = ctx.options.get("local_infile")
    if (want is not False and infile and ctx.conflict == "error" and ctx.atomic and drv.current() is None):
        return await _load_data(ctx)
    if want is True and not infile:
        raise BulkLoadError(f"{ctx.plan.label}: local_infile=True but the server has local_infile=OFF")
    return await _insert(ctx, packet)


# ----------------------------------------------------------------------------- INSERT path
def _size(v) -> int:
    t = type(v)
    if t is str:
        return 4 * len(v) + 3
    if t is bytes:
        return 2 * len(v) + 12
    return 32


def _split(rows, width, limit):
    """Rows -> groups whose INSERT text stays under ``limit`` bytes (escaping worst case)."""
    group, size = [], 64
    for r in rows:
        s = sum(map(_size, r)) + 2 * width + 4
        if group and size + s > limit:
            yield group
            group, size = [], 64
        group.append(r)
        size += s
    if group:
        yield group


async def _insert(ctx, packet):
    drv, plan = ctx.table.db.driver, ctx.plan
    width = len(plan.all_names)
    limit = max(65536, packet - 65536)
    counting = ctx.conflict == "update"

    writes = ctx.table.writes
    changed = 0  # affected rows of every statement (update mode: inserted + 2 x updated)

    async def one_batch(start, rows, cols, n, counting):
        nonlocal changed
        batch_parts = generic.parts(ctx, start, rows, generic.coerce_batch(ctx, start, rows, cols))
        before = await generic.count_rows(drv, ctx.table) if counting else 0
        affected = 0
        try:
            async with drv.transaction():
                for sql_for, _idx, vals in batch_parts:
                    for group in _split(vals, width, limit):
                        flat = [v for r in group for v in r]
                        affected += await drv.execute(sql_for(len(group)), flat, writes=writes)
        except DataFlowError as exc:
            raise await generic.locate(drv, batch_parts, plan, exc) from exc
        changed += affected
        if counting:
            return await generic.count_rows(drv, ctx.table) - before
        return affected if ctx.conflict == "skip" else n

    inserted = 0
    if ctx.atomic:
        # "update" counts the table once around the whole load, not around every batch
        async with drv.transaction():
            before = await generic.count_rows(drv, ctx.table) if counting else 0
            async for start, rows, cols, n in ctx.batches():
                inserted += await one_batch(start, rows, cols, n, False)
            if counting:
                inserted = await generic.count_rows(drv, ctx.table) - before
    else:
        async for start, rows, cols, n in ctx.batches():
            async with drv.transaction():
                inserted += await one_batch(start, rows, cols, n, counting)
            ctx.written += n
    return inserted, generic.skipped(ctx, inserted, changed), PATH


# ----------------------------------------------------------------------------- LOAD DATA path
# The file is written by ``_native.params.tsv_rows`` (escaping, hex for bytes, ISO datetimes)
# straight from the coerced rows: no Python string per value.

async def _load_data(ctx):
    table, plan = ctx.table, ctx.plan
    tsv, kinds = _params.tsv_rows, plan.kinds
    fd, path = tempfile.mkstemp(prefix="dataflow_load_", suffix=".tsv")
    try:
        with os.fdopen(fd, "wb") as fh:
            async for start, rows, cols, n in ctx.batches():
                fh.write(tsv(generic.coerce_batch(ctx, start, rows, cols), kinds))
        sql = table.st.load_data(plan.all_names, kinds)
        n = ctx.consumed
        try:
            loaded, warn = await table.db.driver.load_data(sql, path, n, writes=table.writes)
        except DataFlowError as err:
            # nothing was committed; the server may name the row ("at row N", 1-based)
            m = _AT_ROW.search(str(err))
            idx = int(m.group(1)) - 1 if m else None
            raise BulkLoadError(f"{plan.label}" + (f" row {idx}" if idx is not None else "") + f": {err}",
                                failed_index=idx, cause=err) from err
        if loaded != n or warn:
            raise _warning_error(plan, warn, path, n, loaded)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return n, 0, "load_data"


def _warning_error(plan, warn, path, n, loaded):
    msg = warn[2] if warn else f"the server loaded {loaded} of {n} rows"
    idx = None
    m = _AT_ROW.search(msg)
    if m:
        idx = int(m.group(1)) - 1
    else:
        d = _DUP.search(msg)
        if d:
            idx = _find_duplicate(plan, path, d.group(1), d.group(2))
    where = f" row {idx}" if idx is not None else ""
    return BulkLoadError(f"{plan.label}{where}: {msg} (LOAD DATA rolled back)", failed_index=idx)


def _find_duplicate(plan, path, value, key):
    """The first file line whose key column repeats ``value`` (a key seen before, or in the table)."""
    m = plan.model
    cols = ["id"] if key in ("PRIMARY", f"{m.table}.PRIMARY") else next(
        (list(ix.fields) for ix in m.indexes if key.endswith(ix.name)), None)
    if not cols or len(cols) != 1 or cols[0] not in plan.all_names:
        return None
    j = plan.all_names.index(cols[0])
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if line.rstrip("\n").split("\t")[j] == value:
                hits = i
                break
        else:
            return None
    # the duplicate is the second occurrence when the value repeats inside the file
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i > hits and line.rstrip("\n").split("\t")[j] == value:
                return i
    return hits

