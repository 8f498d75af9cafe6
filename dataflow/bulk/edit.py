"""Bulk update and bulk delete by filter (or per-row values), and bulk upsert.

An empty filter would touch every row: it is refused unless ``confirmed=True``.
"""

from __future__ import annotations

from .. import _native
from ..errors import BulkLoadError, DataFlowError, ValidationError
from ..models.managed import utcnow
from .write import bulk_write

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_params = K


async def bulk_update(table, filt=None, fields=None, *, data=None, confirmed=False, label="bulk_update") -> dict:
    if data is not None:
        return await _update_rows(table, data, label)
    fields, filt = table.bulk_update_args(filt, fields, confirmed, label)
    names = tuple(fields) + ("updated_at",)
    values = table.coerce_values(names, [*fields.values(), utcnow()], label)
    sql, params = table.st.update_where(names, filt)
    await table.ready()
    n = await table.db.driver.execute(sql, (*values, *params), writes=table.writes)
    return {"processed": n, "updated": n, "operation": "bulk_update", "success": True}


async def _update_rows(table, data, label):
    now = utcnow()

    def prepare(i, id_, fields):
        names = tuple(fields) + ("updated_at",)
        return (i, names, table.coerce_values(names, [*fields.values(), now], f"{label} row {i}"),
                table.coerce_id(id_, f"row {i} id"))
    prepared = table.bulk_update_rows(data, label, prepare)
    await table.ready()
    drv, st = table.db.driver, table.st
    total = 0
    async with drv.transaction():
        for i, names, vals, idv in prepared:
            sql, params = st.update_by_id(names, idv)
            try:
                total += await drv.execute(sql, (*vals, *params), writes=table.writes)
            except DataFlowError as exc:
                raise BulkLoadError(f"{label} row {i}: {exc}", failed_index=i, cause=exc) from exc
    return {"processed": len(prepared), "updated": total, "operation": "bulk_update", "success": True}


async def bulk_delete(table, filt=None, *, confirmed=False, label="bulk_delete") -> dict:
    filt = table.bulk_delete_filter(filt, confirmed, label)
    sql, params = table.st.delete_where(filt)
    if table.model.soft_delete:
        now = _params.coerce(utcnow(), K.DATETIME, table.code)
        params = [now, now, *params]
    await table.ready()
    n = await table.db.driver.execute(sql, params, writes=table.writes)
    return {"processed": n, "deleted": n, "operation": "bulk_delete", "success": True}


async def bulk_upsert(table, data, *, conflict_on=None, conflict_resolution="update", batch_size=1000,
                      atomic=True, label="bulk_upsert") -> dict:
    if conflict_resolution not in ("update", "skip"):
        raise ValidationError(f"{label}: conflict_resolution must be 'update' or 'skip', got {conflict_resolution!r}")
    res = await bulk_write(table, data, batch_size=batch_size, conflict_resolution=conflict_resolution,
                           conflict_on=conflict_on, atomic=atomic, label=label)
    return {"processed": res["processed"], "inserted": res["inserted"], "updated": res.get("updated", 0),
            "skipped": res["skipped"], "batch_size": batch_size, "operation": "bulk_upsert", "success": True}
