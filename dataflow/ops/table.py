"""Single-row and query operations on one model's table: the code shared by the generated
nodes, the express API and the QueryBuilder.

SQL text is built once per shape and cached; values always travel as parameters, coerced by
``_native.params``; rows are decoded back to Python types in one pass.
"""

from __future__ import annotations

import datetime as _dt
import uuid as _uuid

import _native

from ..errors import FilterError, NotFoundError, UnsupportedFeatureError, ValidationError
from ..models.model import ModelInfo
from . import validate as V

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_params = _native.load("params")
_filters = _native.load("filters")
_UTC = _dt.timezone.utc


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_UTC)


class Table:
    """One model bound to one DataFlow instance's dialect and driver."""

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
        self.select_list = ", ".join(q(c) for c in model.columns)
        self.spec = d.filter_spec(model)
        self.alive = " AND " + q("deleted_at") + " IS NULL" if model.soft_delete else ""
        p1 = d.placeholder(1)
        self.read_sql = f"SELECT {self.select_list} FROM {self.qtable} WHERE {q('id')} = {p1}"
        self._insert_cache: dict = {}
        self._decode_all = self._decoder(model.columns)

    # -- helpers -------------------------------------------------------------------------------
    def _decoder(self, names):
        kinds = tuple(self.kind_of[n] for n in names)
        code = self.code
        decode_rows = _params.decode_rows
        return lambda rows: decode_rows(rows, names, kinds, code)

    def coerce_id(self, value, where="id"):
        if value is None:
            raise ValidationError(f"{self.model.name}: {where} is required")
        try:
            return _params.coerce(value, self.model.id_kind, self.code)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{self.model.name}.{where}: {exc}") from None

    def coerce_values(self, names, values, where):
        try:
            return _params.coerce_row(values, tuple(self.kind_of[n] for n in names), self.code, names)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{where}: {exc}") from None

    def compile_filter(self, filt, start=1, include_deleted=False):
        filt = V.check_filter(filt)
        try:
            sql, params = _filters.compile_filter(filt, self.spec, start)
        except (TypeError, ValueError) as exc:
            raise FilterError(f"{self.model.name}: {exc}") from None
        if self.dialect.max_filter_depth is not None and sql:
            sql, params, problem = self.dialect.fit_filter(filt, (sql, params), lambda f: _filters.compile_filter(f, self.spec, start))
            if problem:
                raise FilterError(f"{self.model.name}: filter: {problem}")
        if self.alive and not include_deleted:
            sql = (f"({sql}){self.alive}" if sql else self.alive[5:])
        return sql, params

    async def ready(self):
        if not self.db._ready:
            await self.db.initialize()

    # -- create --------------------------------------------------------------------------------
    def build_row(self, data, where, now=None) -> dict:
        """Flat fields -> full row dict (defaults filled, timestamps set), not yet coerced."""
        m = self.model
        if isinstance(data, dict) and set(data) == {"data"} and "data" not in m.fields:
            raise ValidationError(
                f"{where}: Create takes flat fields, e.g. {{'name': 'Alice'}}, not {{'data': {{...}}}}")
        V.check_record(m, data, where=where)
        row = {}
        for name in m.user_fields:
            if name in data:
                row[name] = data[name]
            elif name == "id":
                if m.id_auto:
                    continue
                if m.id_kind == K.UUID:
                    row["id"] = _uuid.uuid4()
                else:
                    raise ValidationError(f"{where}: {m.name} has a str id; pass 'id'")
            else:
                f = m.fields[name]
                if f.required:
                    raise ValidationError(f"{where}: {m.name}.{name} is required (no default)")
                row[name] = f.make_default()
        now = now or utcnow()
        row["created_at"] = now
        row["updated_at"] = now
        if m.soft_delete:
            row["deleted_at"] = None
        return row

    def insert_sql(self, names: tuple) -> str:
        sql = self._insert_cache.get(names)
        if sql is None:
            sql = self.dialect.insert(self.model.table, names, 1, returning="id")
            self._insert_cache[names] = sql
        return sql

    async def create(self, data, where=None) -> dict:
        where = where or f"{self.model.name} create"
        await self.ready()
        row = self.build_row(data, where)
        names = tuple(row)
        values = self.coerce_values(names, [row[n] for n in names], where)
        new_id = await self.db.driver.insert(self.insert_sql(names), values)
        if "id" not in row:
            row = {"id": new_id, **row}
        return {c: row.get(c) for c in self.columns}

    # -- read ----------------------------------------------------------------------------------
    async def read(self, id, include_deleted=False) -> dict | None:
        await self.ready()
        sql = self.read_sql if include_deleted or not self.alive else self.read_sql + self.alive
        rec = await self.db.driver.fetchrow(sql, (self.coerce_id(id),))
        if rec is None:
            return None
        return self._decode_all((rec,))[0]

    async def read_or_raise(self, id, include_deleted=False) -> dict:
        row = await self.read(id, include_deleted)
        if row is None:
            raise NotFoundError(f"{self.model.name} with id {id!r} not found")
        return row

    # -- update --------------------------------------------------------------------------------
    async def update(self, id, fields, where=None) -> tuple[dict | None, int]:
        m = self.model
        where = where or f"{m.name} update"
        if m.append_only:
            raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be updated")
        if not isinstance(fields, dict) or not fields:
            raise ValidationError(f"{where}: 'fields' must be a non-empty dict of values to change")
        V.check_record(m, fields, where=where, allow_id=False)
        await self.ready()
        idv = self.coerce_id(id)
        names = tuple(fields) + ("updated_at",)
        values = self.coerce_values(names, [*fields.values(), utcnow()], where)
        d, q = self.dialect, self.q
        ph = d.placeholders(len(names) + 1)
        sets = ", ".join(f"{q(n)} = {p}" for n, p in zip(names, ph))
        sql = f"UPDATE {self.qtable} SET {sets} WHERE {q('id')} = {ph[-1]}{self.alive}"
        drv = self.db.driver
        if d.supports_update_returning:
            rec = await drv.fetchrow(sql + f" RETURNING {self.select_list}", (*values, idv))
            if rec is None:
                return None, 0
            return self._decode_all((rec,))[0], 1
        async with drv.transaction():
            n = await drv.execute(sql, (*values, idv))
            rec = await drv.fetchrow(self.read_sql, (idv,)) if n else None
        if rec is None:
            return None, 0
        return self._decode_all((rec,))[0], 1

    # -- delete --------------------------------------------------------------------------------
    async def delete(self, id) -> int:
        m = self.model
        if m.append_only:
            raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be deleted")
        await self.ready()
        idv = self.coerce_id(id)
        d, q = self.dialect, self.q
        if m.soft_delete:
            now = _params.coerce(utcnow(), K.DATETIME, self.code)
            sql = (f"UPDATE {self.qtable} SET {q('deleted_at')} = {d.placeholder(1)}, {q('updated_at')} = "
                   f"{d.placeholder(2)} WHERE {q('id')} = {d.placeholder(3)}{self.alive}")
            return await self.db.driver.execute(sql, (now, now, idv))
        sql = f"DELETE FROM {self.qtable} WHERE {q('id')} = {d.placeholder(1)}"
        return await self.db.driver.execute(sql, (idv,))

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
        where, params = self.compile_filter(filt, 1, include_deleted)
        q = self.q
        sql = f"SELECT {', '.join(q(n) for n in names)} FROM {self.qtable}"
        if where:
            sql += " WHERE " + where
        sql += " ORDER BY " + ", ".join(f"{q(f)} {'DESC' if desc else 'ASC'}" for f, desc in order)
        sql += self.dialect.limit_offset(limit, offset)
        return sql, params, names

    async def list(self, filt=None, limit=100, offset=0, order_by=None, sort=None, fields=None,
                   include_deleted=False) -> list[dict]:
        sql, params, names = self.select_sql(filt, limit, offset, order_by, sort, fields, include_deleted)
        await self.ready()
        rows = await self.db.driver.fetch(sql, params)
        if names is self.columns:
            return self._decode_all(rows)
        kinds = tuple(self.kind_of[n] for n in names)
        return _params.decode_rows(rows, names, kinds, self.code)

    async def count(self, filt=None, include_deleted=False) -> int:
        where, params = self.compile_filter(filt, 1, include_deleted)
        sql = f"SELECT COUNT(*) FROM {self.qtable}" + (" WHERE " + where if where else "")
        await self.ready()
        rec = await self.db.driver.fetchrow(sql, params)
        return int(rec[0])

    async def find_one(self, filt, include_deleted=False) -> dict | None:
        rows = await self.list(filt, limit=1, include_deleted=include_deleted)
        return rows[0] if rows else None
