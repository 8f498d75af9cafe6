"""Bulk update and bulk delete by filter (or per-row values), and bulk upsert.

An empty filter would touch every row: it is refused unless ``confirmed=True``.
"""

from __future__ import annotations

from dataflow import _native

from ..errors import BulkLoadError, DataFlowError, UnsupportedFeatureError, ValidationError
from . import validate as V
from .bulk import bulk_write
from .table import utcnow

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_params = _native.load("params")


def _need_confirm(filt, confirmed, label):
    if not filt and confirmed is not True:
        raise ValidationError(
            f"{label}: an empty filter would affect every row; pass confirmed=True if that is what you want")


async def bulk_update(table, filt=None, fields=None, *, data=None, confirmed=False, label="bulk_update") -> dict:
    m = table.model
    if m.append_only:
        raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be updated")
    if data is not None:
        return await _update_rows(table, data, label)
    if not isinstance(fields, dict) or not fields:
        raise ValidationError(f"{label}: pass 'filter' and a non-empty 'fields' dict, or 'data' with per-row values")
    V.check_record(m, fields, where=label, allow_id=False)
    filt = V.check_filter(filt)
    _need_confirm(filt, confirmed, label)
    names = tuple(fields) + ("updated_at",)
    values = table.coerce_values(names, [*fields.values(), utcnow()], label)
    d, q = table.dialect, table.q
    ph = d.placeholders(len(names))
    where, params = table.compile_filter(filt, start=len(names) + 1)
    sql = f"UPDATE {table.qtable} SET " + ", ".join(f"{q(n)} = {p}" for n, p in zip(names, ph))
    if where:
        sql += " WHERE " + where
    await table.ready()
    n = await table.db.driver.execute(sql, (*values, *params))
    return {"processed": n, "updated": n, "operation": "bulk_update", "success": True}


async def _update_rows(table, data, label):
    m = table.model
    if isinstance(data, (dict, str, bytes)):
        raise ValidationError(f"{label}: 'data' must be a list of dicts each with an 'id'")
    rows = list(data)
    prepared = []
    now = utcnow()
    for i, rec in enumerate(rows):
        if not isinstance(rec, dict) or "id" not in rec:
            raise BulkLoadError(f"{label} row {i}: each record needs an 'id'", failed_index=i)
        fields = {k: v for k, v in rec.items() if k != "id"}
        if not fields:
            raise BulkLoadError(f"{label} row {i}: nothing to update besides 'id'", failed_index=i)
        try:
            V.check_record(m, fields, where=f"{label} row {i}", allow_id=False)
            idv = table.coerce_id(rec["id"], f"row {i} id")
            names = tuple(fields) + ("updated_at",)
            vals = table.coerce_values(names, [*fields.values(), now], f"{label} row {i}")
        except ValidationError as exc:
            raise BulkLoadError(str(exc), failed_index=i, cause=exc) from exc
        prepared.append((i, names, vals, idv))
    await table.ready()
    d, q, drv = table.dialect, table.q, table.db.driver
    total = 0
    cache = {}
    async with drv.transaction():
        for i, names, vals, idv in prepared:
            sql = cache.get(names)
            if sql is None:
                ph = d.placeholders(len(names) + 1)
                sql = (f"UPDATE {table.qtable} SET " + ", ".join(f"{q(n)} = {p}" for n, p in zip(names, ph))
                       + f" WHERE {q('id')} = {ph[-1]}{table.alive}")
                cache[names] = sql
            try:
                total += await drv.execute(sql, (*vals, idv))
            except DataFlowError as exc:
                raise BulkLoadError(f"{label} row {i}: {exc}", failed_index=i, cause=exc) from exc
    return {"processed": len(prepared), "updated": total, "operation": "bulk_update", "success": True}


async def bulk_delete(table, filt=None, *, confirmed=False, label="bulk_delete") -> dict:
    m = table.model
    if m.append_only:
        raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be deleted")
    filt = V.check_filter(filt)
    _need_confirm(filt, confirmed, label)
    d, q = table.dialect, table.q
    if m.soft_delete:
        now = _params.coerce(utcnow(), K.DATETIME, table.code)
        where, params = table.compile_filter(filt, start=3)
        sql = (f"UPDATE {table.qtable} SET {q('deleted_at')} = {d.placeholder(1)}, "
               f"{q('updated_at')} = {d.placeholder(2)} WHERE {where}")
        params = [now, now, *params]
    else:
        where, params = table.compile_filter(filt)
        sql = f"DELETE FROM {table.qtable}" + (" WHERE " + where if where else "")
    await table.ready()
    n = await table.db.driver.execute(sql, params)
    return {"processed": n, "deleted": n, "operation": "bulk_delete", "success": True}


async def bulk_upsert(table, data, *, conflict_on=None, conflict_resolution="update", batch_size=1000,
                      atomic=True, label="bulk_upsert") -> dict:
    if conflict_resolution not in ("update", "skip"):
        raise ValidationError(f"{label}: conflict_resolution must be 'update' or 'skip', got {conflict_resolution!r}")
    res = await bulk_write(table, data, batch_size=batch_size, conflict_resolution=conflict_resolution,
                           conflict_on=conflict_on, atomic=atomic, label=label)
    return {"processed": res["processed"], "inserted": res["inserted"], "updated": res.get("updated", 0),
            "skipped": res["skipped"], "batch_size": batch_size, "operation": "bulk_upsert", "success": True}
