"""Bulk writes of the document store: ``bulk_create``/``bulk_upsert`` (and ``db.load``'s
batches, through ``Writer``), ``bulk_update``/``bulk_delete`` by filter, vector search.

Every record is validated and encoded before the first write, so a bad value fails with its
row index and nothing written.  Inserts are ordered ``insert_many`` calls: a failure names the
exact row (the server reports its index) and how many rows before it were written.

``atomic=True`` (the default) is kept in one of three ways (``DocumentDriver.atomic``):

- **own transaction** (replica set or mongos): the whole call is one session transaction; a
  failure aborts it, so no reader ever sees a row of it and ``rows_written`` is 0.  A
  transaction is bounded by the server's ``transactionLifetimeLimitSeconds`` (60 s by
  default): load more than that in one go with ``atomic=False``.
- **joined** (inside the caller's ``db.transaction()``): the call's writes join it; on failure
  the rows it inserted are deleted again inside the transaction (or the server has aborted the
  transaction already), so committing after catching the error keeps none of them.
- **compensation** (standalone server, the in-process stand-in): MongoDB cannot roll a batch
  back, so the documents this call inserted are deleted again before ``BulkLoadError
  (rows_written=0)`` is raised.  Weaker than a transaction: readers may glimpse the rows
  meanwhile, and rows an upsert *updated* are not restored (``rows_written`` counts them).

``atomic=False`` keeps what was written and reports ``rows_written``: every row before the
failing one.  In a transaction ``skip`` never provokes a duplicate-key error (that would abort
the transaction): the rows whose keys exist are found first and left out.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from ..errors import BulkLoadError, DataFlowError, ValidationError
from ..models.managed import utcnow
import dataflow.bulk.options as O
from . import codec
from .client import driver_errors, translate

K = codec.K


def _records(data, label):
    if data is None:
        raise ValidationError(f"{label}: pass the records as 'data' (a list of dicts)")
    if isinstance(data, (dict, str, bytes)):
        raise ValidationError(f"{label}: 'data' must be a list of dicts, got {type(data).__name__}")
    return list(data)


class Writer:
    """Writes encoded documents for one bulk call or load, in order, counting exactly."""

    def __init__(self, store, opts: "O.BulkOptions", batch_size: int, how=None, update_for=None):
        self.s = store
        self.opts = opts
        self.batch = batch_size
        #: how atomicity is kept: "transaction" / "joined" (atomic=True in a transaction), "off"
        #: (atomic=False inside the caller's transaction), None (compensation, or not atomic)
        self.how = how
        #: the fields named by a record -> the fields an ``update`` rewrites (update_fields applied)
        self.update_for = update_for or opts.update_columns
        self.inserted_ids: list = []       # documents this call inserted (for atomic compensation)
        self.written = 0                   # rows written so far (inserted or updated)
        self.inserted = 0
        self.updated = 0
        self.max_explicit = None

    async def write(self, docs: list, start: int, given: list | None = None) -> None:
        """``docs[i]`` is source row ``start + i``; ids are assigned here when the model's are
        automatic.  ``given[i]``: the fields record i named (an upsert changes only those)."""
        s = self.s
        if s.ids is not None:
            missing = [d for d in docs if "_id" not in d]
            explicit = [d["_id"] for d in docs if "_id" in d]
            if explicit:
                top = max(explicit)
                self.max_explicit = top if self.max_explicit is None else max(self.max_explicit, top)
            if missing:
                first = await s.ids.take(len(missing))
                for j, d in enumerate(missing):
                    d["_id"] = first + j
        for b in range(0, len(docs), self.batch):
            chunk = docs[b:b + self.batch]
            if self.opts.mode == "update":
                await self._upsert(chunk, start + b, given[b:b + self.batch] if given is not None else None)
            else:
                await self._insert(chunk, start + b)

    async def _insert(self, chunk, start):
        s, skip = self.s, self.opts.mode == "skip"
        if skip and self.how is not None:
            # a duplicate-key error would abort the transaction: leave out the existing keys
            kept = await self._not_existing(chunk)
            if kept:
                await self._insert_ordered(kept, start)
            return
        try:
            await s.coll.insert_many(chunk, ordered=not skip, **s._kw())
            self.inserted_ids += [d["_id"] for d in chunk]
            self.inserted += len(chunk)
            self.written += len(chunk)
            return
        except driver_errors() as exc:
            details = getattr(exc, "details", None) or {}
            errors = details.get("writeErrors") or []
            if skip and errors and all(self._skippable(e) for e in errors):
                bad = {e["index"] for e in errors}
                ok = [d["_id"] for i, d in enumerate(chunk) if i not in bad]
                self.inserted_ids += ok
                self.inserted += len(ok)
                self.written += len(ok)
                return
            n = int(details.get("nInserted", 0))
            if not skip:
                self.inserted_ids += [d["_id"] for d in chunk[:n]]
                self.written += n
            else:
                bad = {e["index"] for e in errors}
                ok = [d["_id"] for i, d in enumerate(chunk) if i not in bad]
                self.inserted_ids += ok
                self.written += len(ok)
            idx = start + errors[0]["index"] if errors else None
            err = translate(exc, f"{s.model.name} {self.opts.label}")
            where = f"row {idx}" if idx is not None else f"batch starting at row {start}"
            raise BulkLoadError(f"{self.opts.label} {where}: {err}", failed_index=idx, cause=err) from exc

    async def _insert_ordered(self, docs, start):
        s = self.s
        try:
            await s.coll.insert_many(docs, ordered=True, **s._kw())
        except driver_errors() as exc:
            err = translate(exc, f"{s.model.name} {self.opts.label}")
            raise BulkLoadError(f"{self.opts.label} batch starting at row {start}: {err}", failed_index=start,
                                cause=err) from exc
        self.inserted_ids += [d["_id"] for d in docs]
        self.inserted += len(docs)
        self.written += len(docs)

    def _skip_keys(self) -> list:
        """The unique keys a ``skip`` skips on: the conflict target, or every unique key."""
        s = self.s
        if self.opts.conflict:
            return [tuple(s.key_of[c] for c in self.opts.conflict)]
        return [("_id",)] + [tuple(s.key_of[f] for f in ix.fields) for ix in s.model.indexes if ix.unique]

    async def _not_existing(self, chunk) -> list:
        """The documents of ``chunk`` whose unique keys neither exist nor repeat an earlier
        document of the chunk (a key with a null part never conflicts, as in SQL)."""
        s = self.s
        keysets = self._skip_keys()
        taken = set()
        for keys in keysets:
            probes = [{k: d.get(k) for k in keys} for d in chunk if all(d.get(k) is not None for k in keys)]
            for b in range(0, len(probes), 1000):
                cur = s.coll.find({"$or": probes[b:b + 1000]}, {k: 1 for k in keys}, **s._kw())
                for row in await s.driver.fetch_all(cur, s.model.name):
                    taken.add((keys, tuple(repr(row.get(k)) for k in keys)))
        kept = []
        for d in chunk:
            mine = [(keys, tuple(repr(d.get(k)) for k in keys)) for keys in keysets
                    if all(d.get(k) is not None for k in keys)]
            if any(m in taken for m in mine):
                continue
            taken.update(mine)
            kept.append(d)
        return kept

    def _skippable(self, e) -> bool:
        if e.get("code") != 11000:
            return False
        if not self.opts.conflict:
            return True                         # skip a conflict on any unique key
        pattern = e.get("keyPattern")
        if not pattern:
            return True
        return tuple("id" if k == "_id" else k for k in pattern) == tuple(self.opts.conflict)

    async def _upsert(self, chunk, start, given=None):
        from pymongo import UpdateOne
        s, conflict = self.s, self.opts.conflict
        keys = [s.key_of[c] for c in conflict]
        names_of = {s.key_of[n]: n for n in s.model.fields}
        ops = []
        # a tenant model's key holds per tenant: an id (or key) of another tenant's document
        # never matches, so the upsert cannot reach into it (the insert then conflicts on _id)
        tenant = s.model.multi_tenant and "tenant_id" not in keys
        for j, d in enumerate(chunk):
            filt = {k: d.get(k) for k in keys}
            if tenant:
                filt["tenant_id"] = d.get("tenant_id")
            named = given[j] if given is not None else tuple(names_of[k] for k in d)
            upd = set(s.key_of[c] for c in self.update_for(named))
            set_ = {k: v for k, v in d.items() if k in upd}
            on_insert = {k: v for k, v in d.items() if k not in upd and k not in filt}
            change = {}
            if set_:
                change["$set"] = set_
            if on_insert:
                change["$setOnInsert"] = on_insert
            ops.append(UpdateOne(filt, change, upsert=True))
        try:
            res = await s.coll.bulk_write(ops, ordered=True, **s._kw())
        except driver_errors() as exc:
            details = getattr(exc, "details", None) or {}
            errors = details.get("writeErrors") or []
            idx = start + errors[0]["index"] if errors else None
            up = details.get("upserted") or []
            self.inserted_ids += [u["_id"] for u in up]
            self.written += int(details.get("nUpserted", 0)) + int(details.get("nMatched", 0))
            err = translate(exc, f"{s.model.name} {self.opts.label}")
            where = f"row {idx}" if idx is not None else f"batch starting at row {start}"
            raise BulkLoadError(f"{self.opts.label} {where}: {err}", failed_index=idx, cause=err) from exc
        ins = res.upserted_count
        self.inserted_ids += list((res.upserted_ids or {}).values())
        self.inserted += ins
        self.updated += len(chunk) - ins
        self.written += len(chunk)

    async def finish(self) -> None:
        if self.max_explicit is not None and self.s.ids is not None:
            await self.s.ids.seen(self.max_explicit)
        await self.s.driver.wrote(self.s.writes)

    async def fail(self, exc: BulkLoadError) -> None:
        """Atomic: undo what this call wrote (its own transaction is aborted by the caller's
        ``atomic()`` scope; otherwise the documents it inserted are deleted again); report
        what stays written."""
        if self.opts.atomic:
            if self.how == "transaction":
                self.written = 0
            else:
                await self.compensate()
        exc.rows_written = self.written
        if self.written:
            exc.args = (f"{exc.args[0]} ({self.written} rows were committed before it)",)

    async def compensate(self) -> None:
        """Delete the documents this call inserted (the fallback without a transaction, and
        inside the caller's transaction, where the server may have aborted it already)."""
        s, ids = self.s, self.inserted_ids
        try:
            for b in range(0, len(ids), 10_000):
                await s.driver.guard(s.coll.delete_many({"_id": {"$in": ids[b:b + 10_000]}}, **s._kw()),
                                     s.model.name)
        except DataFlowError:
            if self.how != "joined":       # joined: the server aborted the transaction, nothing commits
                raise
        self.written -= len(ids)
        self.inserted_ids = []


@asynccontextmanager
async def atomic_scope(store, atomic: bool):
    """``atomic=True``: the driver's atomic scope (own transaction / joined / None for
    compensation); ``atomic=False``: no scope (yields ``"off"`` inside a transaction, so skips
    still avoid duplicate-key errors there, else None)."""
    if atomic:
        async with store.driver.atomic() as how:
            yield how
    else:
        yield "off" if store.driver.current() is not None else None


async def run_writer(w: Writer, writing) -> None:
    """Await ``writing`` (the writer's batches) and finish inside the atomic scope, so the
    collections written reach the after_commit hooks once: at the write or at the commit.  On
    failure the writer undoes what it wrote (``fail``); a cancellation (timeout) compensates
    too when there is no transaction to abort."""
    try:
        await writing
    except BulkLoadError as exc:
        await w.fail(exc)
        raise
    except BaseException:
        if w.opts.atomic and w.how is None and w.inserted_ids:
            await asyncio.shield(w.compensate())
        raise
    await w.finish()


async def bulk_create(store, records, *, batch_size=1000, conflict_resolution="error", conflict_on=None,
                      update_cols=None, atomic=True, return_ids=False, label="bulk_create") -> dict:
    opts = O.check(store, label, conflict_resolution=conflict_resolution, conflict_on=conflict_on,
                   batch_size=batch_size, atomic=atomic, update_fields=update_cols)
    records = _records(records, label)
    if return_ids:
        from ..bulk.ids import check
        check(opts.mode, opts.conflict, label)       # the same refusals as on SQL
    batch_size = 1000 if batch_size is None else batch_size
    now = utcnow()
    docs = []
    given = [tuple(rec) if isinstance(rec, dict) else () for rec in records] if opts.mode == "update" else None
    for i, rec in enumerate(records):
        try:
            docs.append(store.encode_row(store.build_row(rec, f"{label} row {i}", now), f"{label} row {i}"))
        except ValidationError as exc:
            raise BulkLoadError(str(exc), rows_written=0, failed_index=i, cause=exc) from exc
    await store.ready()
    if docs:
        async with atomic_scope(store, opts.atomic) as how:
            w = Writer(store, opts, batch_size, how)
            await run_writer(w, w.write(docs, 0, given))
    else:
        w = Writer(store, opts, batch_size)
    total = len(records)
    mode = opts.mode
    out = {"processed": total, "inserted": w.inserted, "skipped": total - w.inserted if mode == "skip" else 0,
           "batch_size": batch_size, "operation": label, "success": True}
    if mode == "update":
        out["updated"] = w.updated
    if return_ids:
        out["ids"] = await _ids(store, docs, opts)
    return out


async def _ids(store, docs, opts):
    """Each record's id in input order (for skip/update: the id of the row its key matched)."""
    dec = lambda v: codec.decode(v, store.model.id_kind)  # noqa: E731
    if opts.mode == "error" or opts.conflict == ("id",):
        return [dec(d["_id"]) for d in docs]
    keys = [store.key_of[c] for c in opts.conflict]
    found = {}
    keyed = [d for d in docs if all(d.get(k) is not None for k in keys)]   # a NULL key matches nothing
    for b in range(0, len(keyed), 1000):
        q = {"$or": [{k: d[k] for k in keys} for d in keyed[b:b + 1000]]}
        cur = store.coll.find(q, {k: 1 for k in keys}, **store._kw())
        for row in await store.driver.fetch_all(cur):
            found[tuple(repr(row.get(k)) for k in keys)] = row["_id"]
    return [dec(found.get(tuple(repr(d.get(k)) for k in keys))) for d in docs]


async def bulk_update(store, filt=None, fields=None, *, data=None, confirmed=False, label="bulk_update") -> dict:
    if data is not None:
        return await _update_rows(store, data, label)
    fields, filt = store.bulk_update_args(filt, fields, confirmed, label)
    q = store.scoped(filt)
    changes = store.encode_row({**fields, "updated_at": utcnow()}, label)
    await store.ready()
    async with store.driver.atomic():   # one transaction where there are; else update_many's own guarantee
        res = await store._call(store.coll.update_many(q, {"$set": changes}, **store._kw()), label)
        n = res.matched_count
        await store.driver.wrote(store.writes)
    return {"processed": n, "updated": n, "operation": "bulk_update", "success": True}


async def _update_rows(store, data, label):
    now = utcnow()

    def prepare(i, id_, fields):
        return (i, store.scoped(query={"_id": store.encode_id(id_, f"row {i} id")}),
                store.encode_row({**fields, "updated_at": now}, f"{label} row {i}"))
    prepared = store.bulk_update_rows(data, label, prepare)
    await store.ready()
    total = 0
    async with store.driver.atomic() as how:
        for i, q, changes in prepared:
            try:
                res = await store._call(store.coll.update_one(q, {"$set": changes}, **store._kw()), label)
            except DataFlowError as exc:
                # its own transaction is aborted: nothing of it commits; otherwise (standalone,
                # or the caller's transaction, which it cannot roll back to a savepoint) the rows
                # before it stay written (and are reported)
                done = 0 if how == "transaction" else total
                await store.driver.wrote(store.writes)
                raise BulkLoadError(f"{label} row {i}: {exc}", failed_index=i, rows_written=done,
                                    cause=exc) from exc
            total += res.matched_count
        await store.driver.wrote(store.writes)
    return {"processed": len(prepared), "updated": total, "operation": "bulk_update", "success": True}


async def bulk_delete(store, filt=None, *, confirmed=False, label="bulk_delete") -> dict:
    filt = store.bulk_delete_filter(filt, confirmed, label)
    q = store.scoped(filt)
    await store.ready()
    async with store.driver.atomic():
        if store.model.soft_delete:
            now = codec.encode(utcnow(), K.DATETIME)
            res = await store._call(store.coll.update_many(q, {"$set": {"deleted_at": now, "updated_at": now}},
                                                           **store._kw()), label)
            n = res.modified_count
        else:
            n = (await store._call(store.coll.delete_many(q, **store._kw()), label)).deleted_count
        await store.driver.wrote(store.writes)
    return {"processed": n, "deleted": n, "operation": "bulk_delete", "success": True}


async def bulk_upsert(store, data, *, conflict_on=None, conflict_resolution="update", batch_size=1000,
                      atomic=True, label="bulk_upsert") -> dict:
    if conflict_resolution not in ("update", "skip"):
        raise ValidationError(f"{label}: conflict_resolution must be 'update' or 'skip', got {conflict_resolution!r}")
    res = await bulk_create(store, data, batch_size=batch_size, conflict_resolution=conflict_resolution,
                            conflict_on=conflict_on, atomic=atomic, label=label)
    return {"processed": res["processed"], "inserted": res["inserted"], "updated": res.get("updated", 0),
            "skipped": res["skipped"], "batch_size": batch_size, "operation": "bulk_upsert", "success": True}


async def vector_search(store, query_vector, k=10, distance="cosine", filter=None, *, column_name=None,
                        return_distance=True, **opts) -> dict:
    """Rank the rows matching ``filter`` exactly by ``_native.vector`` (client side, as on
    databases without pgvector)."""
    from .. import _native
    from ..vector.search import check_k, check_metric, check_query, resolve_column
    m = store.model
    column, dim = resolve_column(m, column_name)
    metric = check_metric(distance)
    k = check_k(k)
    blob = check_query(m, column, dim, query_vector, metric)
    rows = [r for r in await store.list(filter, limit=None) if r.get(column) is not None]
    if not rows:
        return {"results": [], "count": 0, "distance_metric": metric}
    vec = _native.load("vector")
    idx, dists = vec.topk([vec.pack(r[column]) for r in rows], vec.unpack(blob), min(k, len(rows)), metric, dim)
    out = []
    for i, d in zip(idx, dists):
        r = dict(rows[i])
        if return_distance:
            r["distance"] = d
        out.append(r)
    return {"results": out, "count": len(out), "distance_metric": metric}
