"""The SQL store: one model's operations on one DataFlow's SQL database (create, read, update,
delete, list, count and the rest of the store protocol in ``dataflow.store``), shared by the
generated nodes, the express API and the QueryBuilder.

Statement text comes from the statement layer (``dataflow.statements``, built once per model,
every predicate through its one ``where``); values travel as parameters coerced by
``_native.params``; rows are decoded back to Python types in one pass.
"""

from __future__ import annotations

from copy import deepcopy as _deepcopy

from .. import _native
from ..errors import UnsupportedFeatureError, ValidationError
from ..models.managed import utcnow
from ..models.model import ModelInfo
from ..statements import ModelStatements
from .rules import ModelRules
from ..models import validate as V

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_params = K


class Table(ModelRules):
    """The SQL store (``dataflow.store.Store``): one model bound to one DataFlow instance's
    dialect and driver."""

    def __init__(self, db, model: ModelInfo):
        self.db = db
        self.model = model
        self.dialect = d = db.dialect
        self.code = d.code
        self.q = q = d.quote
        self.qtable = q(model.table)
        self.columns = model.columns
        self.kinds = model.kinds
        self.kind_of = {n: f.kind for n, f in model.fields.items()}
        #: every statement of this model is built here (through its one ``where``)
        self.st = ModelStatements(d, model, db.tenant_context)
        #: what this model's writes report to the driver's after_commit hook
        self.writes = frozenset((model.table,))
        self._decode_all = self._decoder(model.columns)
        #: no column needs decoding on this dialect: a point read's row is a plain dict(zip())
        #: (decode_rows plans per call: twice the cost for one row)
        self._plain_row = not any(_params.needs_decode(k, self.code) for k in self.kinds)
        self._json_cols = tuple(n for n, f in model.fields.items() if f.kind in (K.JSON, K.VECTOR))

    # -- helpers -------------------------------------------------------------------------------
    def _decoder(self, names):
        kinds = tuple(self.kind_of[n] for n in names)
        code = self.code
        decode_rows = _params.decode_rows
        return lambda rows: decode_rows(rows, names, kinds, code)

    async def create(self, data, where=None) -> dict:
        where = where or f"{self.model.name} create"
        db = self.db
        if not db._ready:  # self.ready(), inlined (hot path)
            await db.initialize()
        row = self.build_row(data, where)
        names = tuple(row)
        values = self.coerce_values(names, [row[n] for n in names], where)
        new_id = await db.driver.insert(self.st.insert(names, 1, "id"), values, writes=self.writes)
        if "id" not in row:
            row["id"] = new_id
        return {c: row.get(c) for c in self.columns}

    # -- read ----------------------------------------------------------------------------------
    async def read(self, id, include_deleted=False, cache=True) -> dict | None:
        db = self.db
        if not db._ready:  # self.ready(), inlined: this is the hottest call of all
            await db.initialize()
        sql, params = self.st.read_by_id(self.coerce_id(id), include_deleted)
        if cache and db.cache is not None and db.driver.current() is None:
            return await db.cache.fetch(self.model.table, sql, params, lambda: self._read(sql, params),
                                        self._copy_row)
        rec = await db.driver.fetchrow(sql, params)
        if rec is None:
            return None
        return dict(zip(self.columns, rec)) if self._plain_row else self._decode_all((rec,))[0]

    async def _read(self, sql, params):
        rec = await self.db.driver.fetchrow(sql, params)
        if rec is None:
            return None
        return self._decode_all((rec,))[0]

    def _copy_row(self, row):
        """A cached row handed out: a copy (callers may change what they get), with JSON values
        copied deeply since they are mutable too."""
        if not self._json_cols:
            return dict(row)
        out = dict(row)
        for k in self._json_cols:
            v = out.get(k)
            if isinstance(v, (list, dict)):
                out[k] = _deepcopy(v)
        return out

    def _copy_rows(self, rows):
        cp = self._copy_row
        return [cp(r) for r in rows]

    # -- update --------------------------------------------------------------------------------
    async def update(self, id, fields, where=None) -> tuple[dict | None, int]:
        m = self.model
        where = where or f"{m.name} update"
        if m.append_only:
            raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be updated")
        if not isinstance(fields, dict) or not fields:
            raise ValidationError(f"{where}: 'fields' must be a non-empty dict of values to change")
        restore = self._is_restore(fields, where)
        V.check_record(m, {k: v for k, v in fields.items() if k != "deleted_at"} if restore else fields,
                       where=where, allow_id=False)
        fields = self._no_tenant_move(fields, where)
        await self.ready()
        idv = self.coerce_id(id)
        names = tuple(fields) + ("updated_at",)
        values = self.coerce_values(names, [*fields.values(), utcnow()], where)
        drv = self.db.driver
        returning = self.dialect.supports_update_returning
        sql, params = self.st.update_by_id(names, idv, returning=returning, include_deleted=restore)
        if returning:
            rec = await drv.fetchrow(sql, (*values, *params), writes=self.writes)
        else:
            async with drv.transaction():
                n = await drv.execute(sql, (*values, *params), writes=self.writes)
                rec = None
                if n:
                    rsql, rparams = self.st.read_by_id(idv, include_deleted=True)
                    rec = await drv.fetchrow(rsql, rparams)
        if rec is None:
            return None, 0
        return self._decode_all((rec,))[0], 1

    def _is_restore(self, fields, where) -> bool:
        """``{"deleted_at": None}`` on a soft-delete model restores the row: the one managed
        field a caller may set, and only to None (the update then reaches deleted rows)."""
        if "deleted_at" not in fields or not self.model.soft_delete:
            return False
        if fields["deleted_at"] is not None:
            raise ValidationError(
                f"{where}: 'deleted_at' is managed automatically; it can only be set to None (to restore "
                f"a deleted row) -- delete the row to soft-delete it")
        return True

    # -- delete --------------------------------------------------------------------------------
    async def delete(self, id) -> int:
        m = self.model
        if m.append_only:
            raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be deleted")
        await self.ready()
        sql, params = self.st.delete_by_id(self.coerce_id(id))
        if m.soft_delete:
            now = _params.coerce(utcnow(), K.DATETIME, self.code)
            params = [now, now, *params]
        return await self.db.driver.execute(sql, params, writes=self.writes)

    # -- list / count --------------------------------------------------------------------------
    def select_sql(self, filt=None, limit=None, offset=0, order_by=None, sort=None, fields=None,
                   include_deleted=False) -> tuple[str, list, tuple]:
        names = V.check_fields_projection(self.model, fields) or self.columns
        if limit is not None:
            V.check_int(limit, "limit")
        V.check_int(offset, "offset", maximum=2 ** 62)
        order = V.parse_order_by(self.model, order_by, sort)
        if not any(f == "id" for f, _ in order):
            order.append(("id", False))
        sql, params = self.st.select(filt, names, order, limit, offset, include_deleted)
        return sql, params, names

    async def list(self, filt=None, limit=100, offset=0, order_by=None, sort=None, fields=None,
                   include_deleted=False, cache=True) -> list[dict]:
        sql, params, names = self.select_sql(filt, limit, offset, order_by, sort, fields, include_deleted)
        await self.ready()
        if cache and self.db.cache is not None and self.db.driver.current() is None:
            return await self.db.cache.fetch(self.model.table, sql, params,
                                             lambda: self._list(sql, params, names), self._copy_rows)
        return await self._list(sql, params, names)

    async def _list(self, sql, params, names):
        rows = await self.db.driver.fetch(sql, params)
        if names is self.columns:
            return self._decode_all(rows)
        kinds = tuple(self.kind_of[n] for n in names)
        return _params.decode_rows(rows, names, kinds, self.code)

    async def count(self, filt=None, include_deleted=False, cache=True) -> int:
        sql, params = self.st.count(filt, include_deleted)
        await self.ready()
        if cache and self.db.cache is not None and self.db.driver.current() is None:
            return await self.db.cache.fetch(self.model.table, sql, params, lambda: self._count(sql, params), int)
        return await self._count(sql, params)

    async def _count(self, sql, params):
        rec = await self.db.driver.fetchrow(sql, params)
        return int(rec[0])

    async def find_one(self, filt, include_deleted=False, cache=True) -> dict | None:
        rows = await self.list(filt, limit=1, include_deleted=include_deleted, cache=cache)
        return rows[0] if rows else None

    # -- upsert, bulk, ETL, vectors: the rest of the store protocol ------------------------------
    async def upsert(self, where: dict, create: dict | None, update: dict | None, where_label=None) -> dict:
        from .upsert import upsert
        return await upsert(self, where, create, update, where_label)

    async def bulk_create(self, records, **opts) -> dict:
        from ..bulk.write import bulk_write
        return await bulk_write(self, records, **opts)

    async def bulk_update(self, filt=None, fields=None, **opts) -> dict:
        from ..bulk.edit import bulk_update
        return await bulk_update(self, filt, fields, **opts)

    async def bulk_delete(self, filt=None, **opts) -> dict:
        from ..bulk.edit import bulk_delete
        return await bulk_delete(self, filt, **opts)

    async def bulk_upsert(self, records, **opts) -> dict:
        from ..bulk.edit import bulk_upsert
        return await bulk_upsert(self, records, **opts)

    async def vector_search(self, query_vector, k=10, distance="cosine", filter=None, **opts) -> dict:
        from ..vector.search import search
        return await search(self, query_vector, k, distance, filter, **opts)
