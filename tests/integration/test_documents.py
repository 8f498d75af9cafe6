"""The document store and the MongoDB API beyond the store contract.

Runs on the in-process stand-in (mongomock behind pymongo's async API) always; the tests that
take ``mdb`` also run on a real server when DATAFLOW_TEST_MONGODB_URL is set.  What the stand-in
can and cannot do is the conformance table (test_documents_conformance.py); atomic writes,
transactions and SQL-only refusals are in test_documents_atomic.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from dataflow import AsyncLocalRuntime, DataFlow, WorkflowBuilder
from dataflow import errors as E

from .conftest import drop_all, mongodb_url

UTC = dt.timezone.utc


@pytest.fixture(params=["mongodb-standin", "mongodb"])
async def mdb(request):
    url, kw = mongodb_url(request.param)
    db = DataFlow(url, **kw)
    yield db
    await drop_all(db)


def _all_types(db):
    @db.model
    class Item:
        id: str
        n: int
        f: float
        ok: bool
        s: str
        b: bytes
        when: dt.datetime
        day: dt.date
        price: Decimal
        u: uuid.UUID
        meta: dict
        tags: list[str]
        nick: str | None = None
        __tablename__ = f"items_{uuid.uuid4().hex[:6]}"
        __dataflow__ = {"unique": ["nick"]}
    return Item


async def test_every_field_type_round_trips(mdb):
    Item = _all_types(mdb)
    rec = {"id": "k1", "n": -(2 ** 63), "f": 1e300, "ok": True, "s": "naïve 😀", "b": b"\x00\xff",
           "when": dt.datetime(2024, 1, 1, 1, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
           "day": dt.date(1000, 1, 1), "price": Decimal("12345678901234567890.123456789012"),
           "u": uuid.uuid4(), "meta": {"a": [1, {"b": None}], "c": 1.5}, "tags": ["x", ""]}
    made = await mdb.express.create(Item, rec)
    got = await mdb.express.read(Item, "k1")
    assert got == made
    for k, v in rec.items():
        assert got[k] == v and type(got[k]) is type(v), k
    assert got["when"].tzinfo is not None and got["when"].utcoffset() == dt.timedelta(0)
    with pytest.raises(E.ValidationError, match="34 significant digits"):
        await mdb.express.create(Item, dict(rec, id="k2", price=Decimal("1." + "1" * 40)))
    with pytest.raises(E.ValidationError, match="naive datetime"):
        await mdb.express.create(Item, dict(rec, id="k3", when=dt.datetime(2024, 1, 1)))


async def test_int_ids_from_the_counter_and_nullable_unique(mdb):
    @db_model(mdb)
    class Tag:
        name: str
        code: str | None = None
        __dataflow__ = {"unique": ["code"]}
    a = await mdb.express.create(Tag, {"name": "a"})
    b = await mdb.express.create(Tag, {"name": "b"})           # two NULL codes: allowed, as on SQL
    assert (a["id"], b["id"]) == (1, 2)
    await mdb.express.create(Tag, {"name": "x", "id": 10})      # explicit id moves the counter past it
    assert (await mdb.express.create(Tag, {"name": "c", "code": "C"}))["id"] == 11
    with pytest.raises(E.UniqueViolationError):
        await mdb.express.create(Tag, {"name": "d", "code": "C"})
    res = await mdb.express.bulk_create(Tag, [{"name": "e"}, {"name": "f"}], return_ids=True)
    first = res["ids"][0]                  # the refused insert used up 12, like a SQL sequence
    assert first > 11 and res["ids"] == [first, first + 1]


def db_model(db):
    def deco(cls):
        cls.__tablename__ = f"{cls.__name__.lower()}s_{uuid.uuid4().hex[:6]}"
        return db.model(cls)
    return deco


async def test_workflow_and_express_unchanged(mdb):
    @db_model(mdb)
    class Customer:
        name: str
        email: str
        tier: str = "free"
        __dataflow__ = {"unique": ["email"], "soft_delete": True}
    wf = WorkflowBuilder()
    wf.add_node("CustomerCreateNode", "create", {"name": "${name}", "email": "a@x.io"})
    wf.add_node("CustomerReadNode", "read", {})
    wf.add_connection("create", "id", "read", "id")
    wf.add_node("CustomerUpdateNode", "update", {"fields": {"tier": "pro"}})
    wf.add_connection("read", "id", "update", "filter.id")
    wf.add_node("CustomerBulkCreateNode", "bulk", {"data": [{"name": f"n{i}", "email": f"{i}@x"} for i in range(5)]})
    wf.add_node("CustomerListNode", "list", {"filter": {"name": {"$startswith": "n"}}, "order_by": ["-name"]})
    wf.add_connection("bulk", "inserted", "list", "limit")
    wf.add_node("CustomerCountNode", "count", {"filter": {"tier": "pro"}})
    wf.add_connection("update", "id", "count", "filter.id")
    res, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build(), inputs={"name": "Ada"})
    assert res["read"]["found"] and res["update"]["record"]["tier"] == "pro"
    assert [r["name"] for r in res["list"]["records"]] == ["n4", "n3", "n2", "n1", "n0"]
    assert res["count"]["count"] == 1
    wf = WorkflowBuilder()
    wf.add_node("CustomerUpsertNode", "ups", {"where": {"email": "a@x.io"}, "update": {"name": "Ada L"},
                                             "create": {"name": "never", "email": "a@x.io"}})
    wf.add_node("CustomerBulkUpdateNode", "bu", {"filter": {"tier": "free"}, "fields": {"tier": "basic"}})
    wf.add_node("CustomerBulkUpsertNode", "bups", {"data": [{"name": "z", "email": "0@x"}, {"name": "y", "email": "y@x"}],
                                                  "conflict_on": "email"})
    wf.add_node("CustomerBulkDeleteNode", "bd", {"filter": {"name": {"$in": ["n1", "n2"]}}})
    wf.add_node("CustomerDeleteNode", "del", {"id": 1})
    res, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build())
    assert res["ups"]["action"] == "updated" and res["ups"]["record"]["name"] == "Ada L"
    assert res["bu"]["updated"] == 5 and res["bups"]["inserted"] == 1 and res["bups"]["updated"] == 1
    assert res["bd"]["deleted"] == 2 and res["del"]["deleted"] is True
    assert await mdb.express.count(Customer) == 4
    assert (await mdb.express.upsert(Customer, {"email": "q@x", "name": "Q"}, conflict_on="email"))["name"] == "Q"
    assert (await mdb.express.find_one(Customer, {"email": {"$ilike": "Q@X"}}))["name"] == "Q"


async def test_load_and_export(mdb, tmp_path):
    @db_model(mdb)
    class Row:
        name: str
        n: int
        __dataflow__ = {"unique": ["name"]}
    src = tmp_path / "in.csv"
    src.write_text("name,n\n" + "".join(f"r{i},{i}\n" for i in range(50)))
    rep = await mdb.load(Row, str(src), progress=False)
    assert rep["rows"] == 50 and rep["inserted"] == 50 and rep["path"] == "documents"
    with pytest.raises(E.BulkLoadError) as exc:
        await mdb.load(Row, [{"name": "new", "n": 1}, {"name": "r3", "n": 2}], progress=False)
    assert exc.value.failed_index == 1 and exc.value.rows_written == 0
    with pytest.raises(E.BulkLoadError) as exc:
        await mdb.load(Row, [{"name": "new", "n": 1}, {"name": "r3", "n": 2}], atomic=False, progress=False)
    assert exc.value.failed_index == 1 and exc.value.rows_written == 1
    rep = await mdb.load(Row, [{"name": "r1", "n": 100}, {"name": "new2", "n": 1}], conflict_resolution="update",
                         conflict_on="name", progress=False)
    assert (rep["inserted"], rep["updated"]) == (1, 1)
    out = await mdb.export(Row, tmp_path / "out.jsonl", filter={"n": {"$gte": 48}})
    assert out["rows"] == 3


@pytest.mark.parametrize("where", ["filter", "update", "pipeline"])
async def test_server_side_code_is_refused_at_any_depth(mdb, where):
    from dataflow.adapters import MongoDBAdapter
    a = MongoDBAdapter("mongodb://standin/x", testing=True)
    deep = {"$where": "sleep(100)"}
    for _ in range(30):
        deep = {"$and": [{"a": 1}, deep]}
    calls = []
    a._coll = lambda name: calls.append(name)          # nothing may reach the collection
    with pytest.raises(E.ValidationError, match=r"\$where|\$function|\$accumulator"):
        if where == "filter":
            await a.find("c", deep)
        elif where == "update":
            await a.update_one("c", {}, {"$set": {"x": {"$function": {"body": "f", "args": [], "lang": "js"}}}})
        else:
            await a.aggregate("c", [{"$match": {}}, {"$group": {"_id": 1, "x": {"$accumulator": {}}}}])
    assert not calls
    @db_model(mdb)
    class M:
        a: int
    with pytest.raises(E.ValidationError):
        await mdb.express.list(M, deep)


async def test_transactions_say_why_they_cannot_run(mdb):
    if mdb.driver.standin:
        with pytest.raises(E.UnsupportedFeatureError, match="stand-in"):
            async with mdb.transaction():
                pass
    else:
        info = await mdb.driver.hello()
        if not info.get("setName"):
            with pytest.raises(E.UnsupportedFeatureError, match="replica set"):
                async with mdb.transaction():
                    pass


async def test_seed_mongodb_example_runs_as_written():
    # The seed README's MongoDB section, with the adapter's testing switch (no server here).
    from dataflow.adapters import MongoDBAdapter
    from dataflow.nodes.mongodb_nodes import AggregateNode, DocumentInsertNode  # noqa: F401
    runtime = AsyncLocalRuntime()

    adapter = MongoDBAdapter("mongodb://localhost:27017/ecommerce", testing=True)
    db = DataFlow(adapter=adapter)
    await db.initialize()

    user_id = await adapter.insert_one("users", {
        "name": "Alice",
        "email": "alice@example.com",
        "profile": {"age": 30, "city": "NYC"},
        "tags": ["developer", "python"],
    })
    users = await adapter.find(
        "users",
        filter={"age": {"$gte": 25}, "tags": {"$in": ["python"]}},
        sort=[("name", 1)],
        limit=10
    )
    assert user_id is not None and users == []     # age lives in profile: nothing matches, as on MongoDB
    assert len(await adapter.find("users", filter={"profile.age": {"$gte": 25}, "tags": {"$in": ["python"]}})) == 1

    await adapter.insert_many("orders", [{"status": "completed", "category": c, "amount": a}
                                         for c, a in [("books", 10), ("books", 5), ("toys", 7)]]
                              + [{"status": "open", "category": "toys", "amount": 100}])
    workflow = WorkflowBuilder()
    workflow.add_node("AggregateNode", "sales_by_category", {
        "collection": "orders",
        "pipeline": [
            {"$match": {"status": "completed"}},
            {"$group": {
                "_id": "$category",
                "total_sales": {"$sum": "$amount"},
                "order_count": {"$sum": 1}
            }},
            {"$sort": {"total_sales": -1}},
            {"$limit": 10}
        ]
    })
    results = await runtime.execute_workflow_async(workflow.build())
    assert results["sales_by_category"]["results"] == [
        {"_id": "books", "total_sales": 15, "order_count": 2}, {"_id": "toys", "total_sales": 7, "order_count": 1}]
    await db.close_async()


async def test_document_nodes_result_shapes():
    from dataflow.adapters import MongoDBAdapter
    db = DataFlow(adapter=MongoDBAdapter("mongodb://h/shop", testing=True), name="shop_docs")
    wf = WorkflowBuilder()
    wf.add_node("DocumentInsertNode", "ins", {"collection": "c", "document": {"k": 1}})
    wf.add_node("BulkDocumentInsertNode", "bulk", {"collection": "c", "documents": [{"k": 2}, {"k": 3}]})
    wf.add_node("CreateIndexNode", "ix", {"collection": "c", "keys": [("k", 1)], "unique": True})
    res, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build())
    assert res["ins"]["inserted_id"] is not None and res["bulk"]["inserted_count"] == 2 and res["ix"]["index_name"]
    wf = WorkflowBuilder()
    wf.add_node("DocumentFindNode", "find", {"collection": "c", "filter": {"k": {"$between": [2, 3]}}, "sort": [("k", -1)]})
    wf.add_node("DocumentUpdateNode", "upd", {"collection": "c", "filter": {"k": 1}, "update": {"$set": {"x": 1}}})
    wf.add_node("DocumentCountNode", "cnt", {"collection": "c", "filter": {"k": {"$gte": 2}}})
    wf.add_node("MongoAggregateNode", "agg", {"collection": "c", "pipeline": [{"$count": "n"}]})
    res, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build())
    assert [d["k"] for d in res["find"]["documents"]] == [3, 2] and res["find"]["count"] == 2
    assert (res["upd"]["matched_count"], res["upd"]["modified_count"]) == (1, 1)
    assert res["cnt"]["count"] == 2 and res["agg"]["results"] == [{"n": 3}]
    wf = WorkflowBuilder()
    wf.add_node("DocumentDeleteNode", "del", {"collection": "c", "filter": {"k": {"$gte": 2}}, "multi": True})
    res, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build())
    assert res["del"]["deleted_count"] == 2
    assert await db.adapter.list_collections() == ["c"]
    await db.close_async()


async def test_bulk_upsert_changes_only_the_given_fields(mdb):
    @db_model(mdb)
    class Acct:
        email: str
        name: str = ""
        tier: str = "free"
        __dataflow__ = {"unique": ["email"]}
    await mdb.express.create(Acct, {"email": "a@x", "name": "A", "tier": "pro"})
    res = await mdb.express.bulk_upsert(Acct, [{"email": "a@x", "name": "A2"}, {"email": "b@x"}], conflict_on="email")
    assert (res["inserted"], res["updated"]) == (1, 1)
    a = await mdb.express.find_one(Acct, {"email": "a@x"})
    assert (a["name"], a["tier"]) == ("A2", "pro")           # tier not given: kept
    assert (await mdb.express.find_one(Acct, {"email": "b@x"}))["tier"] == "free"


async def test_tenant_scope_on_documents(mdb):
    @db_model(mdb)
    class Note:
        text: str
        __dataflow__ = {"multi_tenant": True}
    with pytest.raises(E.TenantRequiredError):
        await mdb.express.list(Note)
    async with mdb.tenant("a"):
        n = await mdb.express.create(Note, {"text": "mine"})
        assert n["tenant_id"] == "a"
        assert await mdb.express.count(Note, {"$or": [{"text": "mine"}, {"text": {"$ne": "x"}}]}) == 1
    async with mdb.tenant("b"):
        assert await mdb.express.list(Note) == [] and await mdb.express.read(Note, n["id"]) is None
        assert await mdb.express.update(Note, n["id"], {"text": "theirs"}) is None
        with pytest.raises(E.ValidationError):
            await mdb.express.list(Note, {"tenant_id": "a"})
    async with mdb.all_tenants():
        assert [r["text"] for r in await mdb.express.list(Note)] == ["mine"]
