"""Multi-tenancy on real SQLite, PostgreSQL and MariaDB: every operation of a tenant model is
scoped by the statement layer's one ``where`` (the predicate ANDed outside the caller's filter),
fails closed without a tenant, and never reads or writes another tenant's rows.

The same tests run on the document store (the MongoDB stand-in always, a real server with
DATAFLOW_TEST_MONGODB_URL): its scopes are ANDed outside the translated filter the same way.
The QueryBuilder steps are SQL-only (it is refused on MongoDB, tested in test_documents)."""

from __future__ import annotations

import asyncio

import pytest

from dataflow import DataFlow, LocalRuntime, WorkflowBuilder
from dataflow.errors import (BulkLoadError, TenantRequiredError, UniqueViolationError, ValidationError)
from dataflow.types import Vector

from .conftest import BACKENDS, drop_all


@pytest.fixture(params=BACKENDS + ["mongodb-standin", "mongodb"])
def backend(request):
    """The SQL backends and the document store (conftest's ``url``/``db`` map the mongodb names)."""
    return request.param


async def _define(db, tables):
    @db.model
    class Acct:
        email: str
        plan: str = "free"
        score: int = 0
        __tablename__ = tables("tn_acct")
        __dataflow__ = {"unique": ["email"], "soft_delete": True}

    @db.model
    class Doc:
        title: str
        embedding: Vector(3)
        __tablename__ = tables("tn_doc")

    @db.model
    class Shared:
        label: str
        __tablename__ = tables("tn_shared")
        __dataflow__ = {"multi_tenant": False}

    await db.initialize()
    return Acct, Doc, Shared


@pytest.fixture
def db_kwargs():
    return {"multi_tenant": True}


@pytest.fixture
async def models(db, tables):
    return await _define(db, tables)


async def _raw_rows(db, model):
    """(id, tenant_id, email) of every stored row, read behind DataFlow's scopes."""
    if db.documents:
        cur = db.driver.collection(model.__dataflow_model__.table).find({}).sort("_id")
        return [(d["_id"], d["tenant_id"], d["email"]) for d in await db.driver.fetch_all(cur)]
    q = db.dialect.quote
    rows = await db.execute_raw(f"SELECT {q('id')}, {q('tenant_id')}, {q('email')} FROM "
                                f"{q(model.__dataflow_model__.table)} ORDER BY {q('id')}")
    return [tuple(r) for r in rows]


async def test_every_operation_fails_closed_without_a_tenant(db, models, tmp_path):
    Acct, Doc, Shared = models
    x = db.express
    calls = [
        x.create(Acct, {"email": "a@x"}), x.read(Acct, 1), x.update(Acct, 1, {"score": 1}), x.delete(Acct, 1),
        x.list(Acct), x.count(Acct), x.find_one(Acct, {"email": "a@x"}), x.upsert(Acct, {"email": "a@x"}, "email"),
        x.bulk_create(Acct, [{"email": "b@x"}]), x.bulk_update(Acct, {"score": 0}, {"score": 1}),
        x.bulk_delete(Acct, {"score": 0}), x.bulk_upsert(Acct, [{"email": "c@x"}], conflict_on="email"),
        db.load(Acct, [{"email": "d@x"}], progress=False), db.export(Acct, tmp_path / "o.csv", progress=False),
        x.vector_search(Doc, [1, 0, 0], k=1),
    ]
    for c in calls:
        with pytest.raises(TenantRequiredError):
            await c
    if not db.documents:
        with pytest.raises(TenantRequiredError):
            Acct.query_builder().where("score", "$gt", 1).build_select()
    assert await _raw_rows(db, Acct) == []                       # nothing was written
    await x.create(Shared, {"label": "not a tenant model"})      # opted out: no tenant needed


async def test_isolation_across_every_read_and_write(db, models):
    Acct, Doc, Shared = models
    x = db.express
    async with db.tenant("acme"):
        a = await x.create(Acct, {"email": "same@x", "score": 1})
        assert a["tenant_id"] == "acme"
    async with db.tenant("beta"):
        b = await x.create(Acct, {"email": "same@x", "score": 2})      # unique per tenant
        with pytest.raises(UniqueViolationError):
            await x.create(Acct, {"email": "same@x"})
        assert await x.read(Acct, a["id"]) is None
        assert await x.update(Acct, a["id"], {"score": 99}) is None
        assert await x.delete(Acct, a["id"]) is False
        assert [r["id"] for r in await x.list(Acct, {"$or": [{"score": 1}, {"score": {"$ne": 1}}]})] == [b["id"]]
        assert await x.count(Acct, {"$not": {"score": 2}}) == 0
        assert (await x.bulk_update(Acct, {"score": {"$gte": 0}}, {"plan": "pro"}))["updated"] == 1
        up = await x.upsert(Acct, {"email": "same@x", "score": 3}, conflict_on="email")
        assert up["id"] == b["id"] and up["score"] == 3
        if not db.documents:
            qb_sql, qb_params = Acct.query_builder().where("score", "$gte", 0).build_select()
            assert "beta" in qb_params
        assert await x.find_one(Acct, {"email": "same@x"}) == await x.read(Acct, b["id"])
        for bad in ({"tenant_id": "acme"}, {"$or": [{"score": 1}, {"tenant_id": "acme"}]},
                    {"tenant_id": {"$ne": "beta"}}):
            with pytest.raises(ValidationError):
                await x.list(Acct, bad)
        with pytest.raises(ValidationError):
            await x.create(Acct, {"email": "n@x", "tenant_id": "acme"})
        with pytest.raises(ValidationError):
            await x.update(Acct, b["id"], {"tenant_id": "acme"})
        # no write path may move a row to another tenant
        with pytest.raises(ValidationError):
            await x.bulk_update(Acct, {"score": {"$gte": 0}}, {"tenant_id": "acme"})
        with pytest.raises(BulkLoadError, match="tenant_id cannot be changed"):
            await x.bulk_update(Acct, data=[{"id": b["id"], "tenant_id": "acme"}])
        if not db.documents:
            with pytest.raises(ValidationError):
                Acct.query_builder().where("score", "$gte", 0).build_update({"tenant_id": "acme", "score": 1})
        assert (await x.bulk_delete(Acct, {"score": {"$gte": 0}}))["deleted"] == 1
    async with db.tenant("acme"):
        got = await x.read(Acct, a["id"])
        assert got["score"] == 1 and got["plan"] == "free"           # untouched by beta
    assert await _raw_rows(db, Acct) == [(a["id"], "acme", "same@x"), (b["id"], "beta", "same@x")]
    async with db.all_tenants():
        assert len(await x.list(Acct)) == 1                           # beta's row is soft-deleted
        with pytest.raises(TenantRequiredError):
            await x.create(Acct, {"email": "who@x"})                  # admin inserts name their tenant
        r = await x.create(Acct, {"email": "adm@x", "tenant_id": "gamma"})
        assert r["tenant_id"] == "gamma"


async def test_bulk_paths_and_loads_write_the_bound_tenant_only(db, models):
    Acct, Doc, Shared = models
    x = db.express
    async with db.tenant("acme"):
        await x.bulk_create(Acct, [{"email": f"u{i}@x", "score": i} for i in range(300)])
        await db.load(Acct, [{"email": f"l{i}@x"} for i in range(200)], progress=False)
    async with db.tenant("beta"):
        await x.bulk_create(Acct, [{"email": f"u{i}@x", "score": -i} for i in range(100)])
        rep = await x.bulk_upsert(Acct, [{"email": f"u{i}@x", "score": 1000} for i in range(150)],
                                  conflict_on="email")
        assert rep["inserted"] == 50 and rep["updated"] == 100
        await db.load(Acct, [{"email": f"l{i}@x", "plan": "b"} for i in range(10)],
                      conflict_resolution="update", conflict_on="email", progress=False)
        assert await x.count(Acct) == 160
    async with db.tenant("acme"):
        assert await x.count(Acct) == 500
        assert await x.count(Acct, {"score": 1000}) == 0
        assert await x.count(Acct, {"plan": "b"}) == 0
    rows = await _raw_rows(db, Acct)
    assert {t for _, t, _ in rows} == {"acme", "beta"} and len(rows) == 660


async def test_upsert_by_id_never_takes_another_tenants_row(db, models):
    Acct, Doc, Shared = models
    x = db.express
    async with db.tenant("acme"):
        a = await x.create(Acct, {"email": "a@x", "score": 5})
    async with db.tenant("beta"):
        try:
            rep = await x.bulk_upsert(Acct, [{"id": a["id"], "email": "evil@x", "score": 666}], conflict_on="id")
        except (BulkLoadError, UniqueViolationError):
            pass
        else:
            # the row met is another tenant's: left alone, and reported as such (not "updated")
            assert (rep["inserted"], rep["updated"], rep["skipped"]) == (0, 0, 1), rep
        assert await x.count(Acct) == 0
        try:
            rep = await db.load(Acct, [{"id": a["id"], "email": "evil2@x", "score": 667},
                                       {"id": a["id"] + 1000, "email": "mine@x", "score": 1}],
                                conflict_resolution="update", conflict_on="id", progress=False)
        except (BulkLoadError, UniqueViolationError):
            pass  # the document store refuses the id another tenant holds
        else:
            assert (rep["inserted"], rep["updated"], rep["skipped"]) == (1, 0, 1), rep
        assert await x.count(Acct) <= 1
    async with db.tenant("acme"):
        got = await x.read(Acct, a["id"])
        assert got["email"] == "a@x" and got["score"] == 5


@pytest.mark.parametrize("atomic", [True, False])
async def test_upsert_counts_rows_met_in_another_tenant_as_skipped(db, models, atomic):
    """An upsert by id that meets other tenants' rows: those are left alone and counted as
    skipped, the bound tenant's own as updated, new ids as inserted -- exactly, on every path
    (bulk_upsert, db.load) and every dialect, in one batch and in several."""
    Acct, Doc, Shared = models
    x = db.express
    async with db.tenant("acme"):
        theirs = [(await x.create(Acct, {"email": f"a{i}@x", "score": i}))["id"] for i in range(3)]
    async with db.tenant("beta"):
        mine = [(await x.create(Acct, {"email": f"b{i}@x", "score": i}))["id"] for i in range(2)]
    if not all(isinstance(i, int) for i in theirs + mine):
        pytest.skip("ids are not integers on this store: no free ids to invent")
    top = max(theirs + mine)
    for round_, via in enumerate(("bulk_upsert", "load")):
        fresh = [top + 100 * (round_ + 1) + k for k in range(3)]
        records = ([{"id": i, "email": f"r{round_}t{i}@x", "score": 666} for i in theirs[:2]]
                   + [{"id": i, "email": f"r{round_}m{i}@x", "score": 7} for i in mine]
                   + [{"id": i, "email": f"r{round_}n{i}@x", "score": 8} for i in fresh])
        async with db.tenant("beta"):
            try:
                if via == "bulk_upsert":
                    rep = await x.bulk_upsert(Acct, records, conflict_on="id", batch_size=2, atomic=atomic)
                else:
                    rep = await db.load(Acct, records, conflict_resolution="update", conflict_on="id",
                                        batch_size=2, atomic=atomic, progress=False)
            except (BulkLoadError, UniqueViolationError):
                if db.dialect.name != "mongodb":
                    raise
                continue  # the document store refuses ids another tenant holds
            assert (rep["inserted"], rep["updated"], rep["skipped"]) == (3, 2, 2), (via, rep)
            assert await x.count(Acct) == 2 + 3 * (round_ + 1)
            assert await x.count(Acct, {"score": 7}) == 2
    async with db.tenant("acme"):
        assert sorted(r["score"] for r in await x.list(Acct)) == [0, 1, 2]


async def test_vector_search_is_scoped(db, models):
    Acct, Doc, Shared = models
    async with db.tenant("acme"):
        await db.express.create(Doc, {"title": "acme-doc", "embedding": [1, 0, 0]})
    async with db.tenant("beta"):
        await db.express.create(Doc, {"title": "beta-doc", "embedding": [0.9, 0.1, 0]})
        res = await db.express.vector_search(Doc, [1, 0, 0], k=5)
        assert [r["title"] for r in res["results"]] == ["beta-doc"]


async def test_concurrent_tasks_keep_their_own_tenant(db, models):
    Acct, Doc, Shared = models

    async def worker(t, n):
        async with db.tenant(t):
            for i in range(n):
                await db.express.create(Acct, {"email": f"{i}@{t}"})
                await asyncio.sleep(0)
            return [r["tenant_id"] for r in await db.express.list(Acct, limit=1000)]
    results = await asyncio.gather(*[worker(f"t{k}", 20) for k in range(5)])
    for k, seen in enumerate(results):
        assert seen == [f"t{k}"] * 20


def test_sync_runtime_inside_a_bound_block_runs_in_that_tenant(url, tables):
    db = DataFlow(url, multi_tenant=True, testing=url.startswith("mongodb://standin/"))
    try:
        from dataflow._loop import run_sync
        Acct, _, _ = run_sync(_define(db, tables))
        wf = WorkflowBuilder()
        wf.add_node("AcctCreateNode", "c", {"email": "wf@x"})
        wf.add_node("AcctListNode", "l", {})
        wf.add_connection("c", "id", "l", "offset")  # any dependency: list after create
        with db.tenant("acme"):
            results, _ = LocalRuntime().execute(wf.build(), parameters={})
            assert results["c"]["tenant_id"] == "acme"
        with db.tenant("beta"):
            assert db.express_sync.count("Acct") == 0
        with pytest.raises(Exception) as exc:
            LocalRuntime().execute(wf.build())
        assert isinstance(exc.value, TenantRequiredError) or isinstance(exc.value.__cause__, TenantRequiredError)
    finally:
        from dataflow._loop import run_sync
        if db.documents:
            run_sync(drop_all(db))
        else:
            for t in db.list_tables():
                run_sync(db.execute_raw(db.dialect.drop_table_sql(t, if_exists=True)))
            db.close()
