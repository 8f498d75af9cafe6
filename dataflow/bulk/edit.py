"""Bulk update and bulk delete by filter (or per-row values), and bulk upsert.

An empty filter would touch every row: it is refused unless ``confirmed=True``.
"""

from __future__ import annotations

from .. import _native
from ..errors import BulkLoadError, DataFlowError, UnsupportedFeatureError, ValidationError
from ..models.managed import utcnow
from ..models import validate as V
from .write import bulk_write

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_params = K


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
    fields = table._no_tenant_move(fields, label)          # a row never moves between tenants
    filt = V.check_filter(filt)
    _need_confirm(filt, confirmed, label)
    names = tuple(fields) + ("updated_at",)
    values = table.coerce_values(names, [*fields.values(), utcnow()], label)
    sql, params = table.st.update_where(names, filt)
    await table.ready()
    n = await table.db.driver.execute(sql, (*values, *params), writes=table.writes)
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
            fields = table._no_tenant_move(fields, f"{label} row {i}")
            idv = table.coerce_id(rec["id"], f"row {i} id")
            names = tuple(fields) + ("updated_at",)
            vals = table.coerce_values(names, [*fields.values(), now], f"{label} row {i}")
        except ValidationError as exc:
            raise BulkLoadError(str(exc), failed_index=i, cause=exc) from exc
        prepared.append((i, names, vals, idv))
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


def _ids_filter(table, ids, label) -> dict:
    """A list of ids -> ``{"id": {"$in": ids}}`` (each checked as an id; an empty list matches
    no row, it never means "every row")."""
    ids = list(ids)
    for i, v in enumerate(ids):
        table.coerce_id(v, f"{label} ids[{i}]")
    return {"id": {"$in": ids}}


async def bulk_delete(table, filt=None, *, confirmed=False, label="bulk_delete") -> dict:
    m = table.model
    if m.append_only:
        raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be deleted")
    if isinstance(filt, (list, tuple, set, frozenset)):
        filt = _ids_filter(table, filt, label)
    filt = V.check_filter(filt)
    _need_confirm(filt, confirmed, label)
    sql, params = table.st.delete_where(filt)
    if m.soft_delete:
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
