"""The document store: one model's operations on one MongoDB collection, implementing the
store protocol (``dataflow.store.Store``) with the parameters and result shapes of the SQL
store, so nodes, express and workflows run on it unchanged.

Models map to collections (the model's table name), ``id`` to ``_id`` (ints from
``ids.IdCounter``, str/UUID ids as given).  Every filter goes through ``filters.Translator``
and then ``scoped``, which ANDs the soft-delete and tenant scopes outside it (the statement
layer's scope objects, reused), so a ``$or`` cannot escape them.
"""

from __future__ import annotations

import hashlib

import bson

from ..errors import UniqueViolationError, UnsupportedFeatureError, ValidationError
from ..models import validate as V
from ..models.managed import utcnow
from ..ops.rules import ModelRules
from ..ops.table import Table
from ..statements.scope import SoftDelete, TenantScope
from . import codec
from .filters import Translator
from .ids import IdCounter

K = codec.K


class DocumentStore(ModelRules):
    """The document store (``dataflow.store.Store``) of one model.

    With ``cache_enabled=True`` read/list/count/find_one go through the same query cache as
    the SQL store (``dataflow.cache``), keyed by the collection, the operation and a digest of
    the exact query sent (filter with its scopes -- so the bound tenant --, sort, projection,
    skip, limit); every write reports its collection to the driver's after_commit hook before
    it returns (inside a transaction: at the commit), which bumps the generation; nothing is
    cached inside a transaction; callers get copies."""

    def __init__(self, db, model):
        self.db = db
        self.model = model
        self.driver = db.driver
        self.dialect = db.driver.dialect
        self.code = codec.NATIVE
        self.columns = model.columns
        self.kinds = model.kinds
        self.kind_of = {n: f.kind for n, f in model.fields.items()}
        self.key_of = {n: ("_id" if n == "id" else n) for n in model.fields}
        self.writes = frozenset((model.table,))
        self.translator = Translator(model, standin=db.driver.standin)
        self.scopes = [SoftDelete()] if model.soft_delete else []
        if model.multi_tenant:
            self.scopes.append(TenantScope(db.tenant_context, model.name))
        self.ids = IdCounter(db.driver, model.table) if model.id_auto else None
        self._decoders = tuple((n, self.key_of[n], f.kind) for n, f in model.fields.items())
        self._json_cols = tuple(n for n, f in model.fields.items() if f.kind in (K.JSON, K.VECTOR))

    # cached results are handed out as copies, exactly as by the SQL store
    _copy_row = Table._copy_row
    _copy_rows = Table._copy_rows
    _is_restore = Table._is_restore

    def _cached(self, op: str, parts: dict, compute, copy, cache: bool):
        """``compute()`` through the query cache (the SQL store's seam: ``cache.fetch(table,
        statement, params, compute, copy)``), the statement being ``op`` plus a digest of the
        BSON of the query parts; outside the cache when it is off, the call says ``cache=False``
        or a transaction is open."""
        c = self.db.cache
        if not cache or c is None or self.driver.current() is not None:
            return compute()
        try:
            key = f"{op}:{hashlib.sha256(bson.encode(parts)).hexdigest()}"
        except (bson.errors.InvalidDocument, OverflowError, TypeError):
            return compute()
        return c.fetch(self.model.table, key, (), compute, copy)

    @property
    def st(self):
        raise UnsupportedFeatureError(f"{self.model.name} is stored in MongoDB: there is no SQL statement layer "
                                      f"(QueryBuilder builds SQL); use filters with list/count instead")

    @property
    def coll(self):
        return self.driver.collection(self.model.table)

    def _kw(self) -> dict:
        return self.driver.session_kw()

    async def _call(self, awaitable, what=None):
        return await self.driver.guard(awaitable, what or self.model.name)

    # -- values ----------------------------------------------------------------------------------
    def encode_row(self, row: dict, where: str) -> dict:
        doc = {}
        for name, v in row.items():
            try:
                doc[self.key_of[name]] = codec.encode(v, self.kind_of[name])
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"{where}: field {name!r}: {exc}") from None
        return doc

    def decode_doc(self, doc: dict, names=None) -> dict:
        if names is None:
            return {n: codec.decode(doc.get(key), kind) for n, key, kind in self._decoders}
        return {n: codec.decode(doc.get(self.key_of[n]), self.kind_of[n]) for n in names}

    def encode_id(self, value, where="id"):
        if value is None:
            raise ValidationError(f"{self.model.name}: {where} is required")
        try:
            return codec.encode(value, self.model.id_kind)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{self.model.name}.{where}: {exc}") from None

    # -- filters and scopes ----------------------------------------------------------------------
    def scoped(self, filt=None, include_deleted=False, query=None) -> dict:
        """The caller's filter (or an already built ``query``) with the scopes ANDed outside it."""
        if query is None:
            for s in self.scopes:
                s.check(filt)
            query = self.translator.translate(V.check_filter(filt))
        parts = [query] if query else []
        for s in self.scopes:
            if s.applies(include_deleted):
                if isinstance(s, SoftDelete):
                    parts.append({"deleted_at": None})
                else:
                    parts.append({"tenant_id": s.params()[0]})
        if not parts:
            return {}
        return parts[0] if len(parts) == 1 else {"$and": parts}

    async def ready(self):
        if not self.db._ready:
            await self.db.initialize()

    async def missing_indexes(self) -> list[str]:
        """The model's indexes the collection lacks (by keys and uniqueness), as messages."""
        info = await self._call(self.coll.index_information(), f"{self.model.name} indexes")
        have = {(tuple(k for k, _ in ix["key"]), bool(ix.get("unique"))) for ix in info.values()}
        out = []
        for ix in self.model.indexes:
            keys = tuple(self.key_of[f] for f in ix.fields)
            if (keys, bool(ix.unique)) not in have:
                out.append(f"{self.model.table}: {'unique ' if ix.unique else ''}index on ({', '.join(ix.fields)})")
        return out

    async def create_indexes(self) -> None:
        """The model's indexes; a unique index over nullable fields skips documents where one is
        null (SQL's unique constraints ignore NULLs too)."""
        for ix in self.model.indexes:
            keys = [(self.key_of[f], 1) for f in ix.fields]
            opts = {"name": ix.name}
            if ix.unique:
                opts["unique"] = True
                partial = {}
                for f in ix.fields:
                    fi = self.model.fields[f]
                    t = codec.BSON_TYPE.get(fi.kind)
                    if fi.nullable and t:
                        partial[self.key_of[f]] = {"$type": t}
                if partial:
                    opts["partialFilterExpression"] = partial
            await self._call(self.coll.create_index(keys, **opts), f"{self.model.name} index {ix.name}")

    # -- single rows -----------------------------------------------------------------------------
    async def create(self, data, where=None) -> dict:
        where = where or f"{self.model.name} create"
        row = self.build_row(data, where)
        doc = self.encode_row(row, where)
        await self.ready()
        if "id" not in row:
            row = {"id": await self.ids.take(1), **row}
            doc["_id"] = row["id"]
        await self._call(self.coll.insert_one(doc, **self._kw()), where)
        if self.ids is not None and "id" in (data or {}):
            await self.ids.seen(row["id"])
        await self.driver.wrote(self.writes)
        return {c: row.get(c) for c in self.columns}

    async def read(self, id, include_deleted=False, cache=True) -> dict | None:
        q = self.scoped(query={"_id": self.encode_id(id)}, include_deleted=include_deleted)
        await self.ready()
        return await self._cached("read", {"q": q}, lambda: self._read(q, None), self._copy_row, cache)

    async def _read(self, q, _params=None):
        doc = await self._call(self.coll.find_one(q, **self._kw()))
        return None if doc is None else self.decode_doc(doc)

    async def update(self, id, fields, where=None) -> tuple[dict | None, int]:
        from pymongo import ReturnDocument
        m = self.model
        where = where or f"{m.name} update"
        if m.append_only:
            raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be updated")
        if not isinstance(fields, dict) or not fields:
            raise ValidationError(f"{where}: 'fields' must be a non-empty dict of values to change")
        restore = self._is_restore(fields, where)      # {"deleted_at": None}: undelete, as on SQL
        V.check_record(m, {k: v for k, v in fields.items() if k != "deleted_at"} if restore else fields,
                       where=where, allow_id=False)
        fields = self._no_tenant_move(fields, where)
        q = self.scoped(query={"_id": self.encode_id(id)}, include_deleted=restore)
        changes = self.encode_row({**fields, "updated_at": utcnow()}, where)
        await self.ready()
        doc = await self._call(self.coll.find_one_and_update(q, {"$set": changes}, return_document=ReturnDocument.AFTER,
                                                             **self._kw()), where)
        if doc is None:
            return None, 0
        await self.driver.wrote(self.writes)
        return self.decode_doc(doc), 1

    async def delete(self, id) -> int:
        m = self.model
        if m.append_only:
            raise UnsupportedFeatureError(f"{m.name} is append_only: rows cannot be deleted")
        q = self.scoped(query={"_id": self.encode_id(id)})
        await self.ready()
        if m.soft_delete:
            now = codec.encode(utcnow(), K.DATETIME)
            res = await self._call(self.coll.update_one(q, {"$set": {"deleted_at": now, "updated_at": now}},
                                                        **self._kw()))
            n = res.modified_count
        else:
            n = (await self._call(self.coll.delete_one(q, **self._kw()))).deleted_count
        if n:
            await self.driver.wrote(self.writes)
        return n

    async def upsert(self, where: dict, create: dict | None, update: dict | None, where_label=None) -> dict:
        """Find by ``where``, update that document or insert a new one.  In one session
        transaction where the server has them (a concurrent write is retried like a SQL
        deadlock, never inside the caller's transaction); elsewhere each step is atomic on its
        own and a concurrent insert of the same key is retried once as an update."""
        import asyncio
        import random
        from ..errors import TransactionConflictError
        label = where_label or f"{self.model.name} upsert"
        create, update, filt = self.upsert_args(where, create, update, label)
        await self.ready()
        own = self.driver.current() is None
        for attempt in range(4):
            try:
                async with self.driver.atomic():
                    return await self._upsert_once(filt, create, update, label)
            except UniqueViolationError:
                if attempt:            # a concurrent insert of the same key: update it instead
                    raise
            except TransactionConflictError:
                if not own or attempt == 3:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1) * (1 + random.random()))
        raise AssertionError("unreachable")

    async def _upsert_once(self, filt, create, update, label) -> dict:
        rows = await self.list(filt, limit=1, include_deleted=True, cache=False)
        if rows:
            if update:
                row, _ = await self.update(rows[0]["id"], update, where=f"{label} update")
            else:
                row = rows[0]
            return {"created": False, "action": "updated", "record": row}
        row = await self.create(create, where=f"{label} create")
        return {"created": True, "action": "created", "record": row}

    # -- queries ---------------------------------------------------------------------------------
    def _find_args(self, filt, limit, offset, order_by, sort, fields, include_deleted):
        names = V.check_fields_projection(self.model, fields)
        if limit is not None:
            V.check_int(limit, "limit")
        V.check_int(offset, "offset", maximum=2 ** 62)
        order = V.parse_order_by(self.model, order_by, sort)
        if not any(f == "id" for f, _ in order):
            order.append(("id", False))
        if self.driver.standin:
            for f, _ in order:
                if self.kind_of[f] == K.DECIMAL:
                    raise UnsupportedFeatureError(f"{self.model.name}: the MongoDB stand-in cannot order by a "
                                                  f"Decimal field ({f!r}); a real server can")
        q = self.scoped(filt, include_deleted)
        sort_spec = [(self.key_of[f], -1 if desc else 1) for f, desc in order]
        projection = None
        if names is not None:
            projection = {self.key_of[n]: 1 for n in names}
            if "id" not in names:
                projection["_id"] = 0
        return q, sort_spec, projection, names

    async def list(self, filt=None, limit=100, offset=0, order_by=None, sort=None, fields=None,
                   include_deleted=False, cache=True) -> list[dict]:
        q, sort_spec, projection, names = self._find_args(filt, limit, offset, order_by, sort, fields,
                                                          include_deleted)
        await self.ready()
        if limit == 0:
            return []
        parts = {"q": q, "s": sort_spec, "p": projection, "o": offset, "l": limit}
        return await self._cached("find", parts, lambda: self._list(q, sort_spec, projection, offset, limit, names),
                                  self._copy_rows, cache)

    async def _list(self, q, sort_spec, projection, offset, limit, names):
        cur = self.coll.find(q, projection, **self._kw()).sort(sort_spec)
        if offset:
            cur = cur.skip(offset)
        if limit is not None:
            cur = cur.limit(limit)
        docs = await self.driver.fetch_all(cur, self.model.name)
        return [self.decode_doc(d, names) for d in docs]

    async def count(self, filt=None, include_deleted=False, cache=True) -> int:
        q = self.scoped(filt, include_deleted)
        await self.ready()
        return await self._cached("count", {"q": q}, lambda: self._count(q), int, cache)

    async def _count(self, q) -> int:
        return int(await self._call(self.coll.count_documents(q, **self._kw())))

    async def find_one(self, filt, include_deleted=False, cache=True) -> dict | None:
        rows = await self.list(filt, limit=1, include_deleted=include_deleted, cache=cache)
        return rows[0] if rows else None

    # -- bulk and ETL (dataflow/documents/bulk.py, load.py) ---------------------------------------
    async def bulk_create(self, records, **opts) -> dict:
        from .bulk import bulk_create
        return await bulk_create(self, records, **opts)

    async def bulk_update(self, filt=None, fields=None, **opts) -> dict:
        from .bulk import bulk_update
        return await bulk_update(self, filt, fields, **opts)

    async def bulk_delete(self, filt=None, **opts) -> dict:
        from .bulk import bulk_delete
        return await bulk_delete(self, filt, **opts)

    async def bulk_upsert(self, records, **opts) -> dict:
        from .bulk import bulk_upsert
        return await bulk_upsert(self, records, **opts)

    async def vector_search(self, query_vector, k=10, distance="cosine", filter=None, **opts) -> dict:
        from .bulk import vector_search
        return await vector_search(self, query_vector, k, distance, filter, **opts)

    async def clear(self) -> None:
        """Remove every document (``db.test_reset``); the indexes and id counter stay."""
        await self._call(self.coll.delete_many({}, **self._kw()))
        await self.driver.wrote(self.writes)

    async def drop(self) -> None:
        """Drop the collection and its id counter (test teardown)."""
        await self._call(self.driver.database.drop_collection(self.model.table))
        if self.ids is not None:
            await self.ids.reset()
        await self.driver.wrote(self.writes)


