"""The store protocol's contract (``dataflow.store.Store``), written once and run for every
store: the SQL store on SQLite, PostgreSQL and MariaDB (real servers) and the document store on
the in-process MongoDB stand-in (always) and on a real MongoDB server (when
``DATAFLOW_TEST_MONGODB_URL`` is set).  Every store passes the same tests unchanged.

Each test talks to the store only through the protocol's methods, and checks the result shapes
the nodes and the express API hand to users."""

from __future__ import annotations

import csv
import inspect

import pytest

from dataflow import DataFlow
from dataflow.errors import BulkLoadError, FilterError, UniqueViolationError, ValidationError
from dataflow.store import METHODS, Store
from dataflow.types import Vector

from .conftest import _backend_url, drop_all, mongodb_url

#: store name -> how to get a database URL (and DataFlow keywords) for it
STORES = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql",
          "mongodb-standin": "mongodb-standin", "mongodb": "mongodb"}


def _open(name, tmp_path) -> DataFlow:
    if name.startswith("mongodb"):
        url, kw = mongodb_url(name)
        return DataFlow(url, **kw)
    return DataFlow(_backend_url(STORES[name], tmp_path))


@pytest.fixture(params=list(STORES))
async def store(request, tmp_path, tables):
    db = _open(request.param, tmp_path)

    @db.model
    class Person:
        name: str
        email: str
        age: int = 0
        city: str | None = None
        __tablename__ = tables("sc_people")
        __dataflow__ = {"unique": ["email"], "soft_delete": True}

    s = db._table(Person)
    await s.ready()
    yield s
    await drop_all(db)


def test_the_store_has_every_method_of_the_protocol(store):
    assert isinstance(store, Store)
    for name in METHODS:
        assert inspect.iscoroutinefunction(getattr(store, name)), name


async def test_create_read_update_delete(store):
    row = await store.create({"name": "Ada", "email": "ada@x.io", "age": 36})
    assert set(row) >= {"id", "name", "email", "age", "city", "created_at", "updated_at"}
    assert row["city"] is None and row["created_at"].tzinfo is not None
    got = await store.read(row["id"])
    assert got == row
    after, n = await store.update(row["id"], {"age": 37})
    assert n == 1 and after["age"] == 37 and after["updated_at"] >= row["updated_at"]
    assert await store.delete(row["id"]) == 1
    assert await store.read(row["id"]) is None                       # soft-deleted: gone ...
    assert (await store.read(row["id"], include_deleted=True))["name"] == "Ada"  # ... unless asked
    assert await store.delete(row["id"]) == 0
    assert await store.update(row["id"], {"age": 1}) == (None, 0)


async def test_list_count_find_one(store):
    for i in range(12):
        await store.create({"name": f"p{i}", "email": f"p{i}@x.io", "age": i, "city": "Oslo" if i % 3 else None})
    rows = await store.list({"age": {"$gte": 5}}, limit=4, offset=1, order_by=["-age"])
    assert [r["age"] for r in rows] == [10, 9, 8, 7]
    assert await store.count({"city": None}) == 4
    assert await store.count({"$or": [{"age": 0}, {"city": {"$ne": None}}]}) == 9
    assert (await store.find_one({"email": "p3@x.io"}))["name"] == "p3"
    assert await store.find_one({"email": "none"}) is None
    proj = await store.list(None, limit=2, fields=["name"])
    assert proj == [{"name": "p0"}, {"name": "p1"}]
    with pytest.raises(FilterError):
        await store.list({"nope": 1})


async def test_upsert_creates_then_updates(store):
    res = await store.upsert({"email": "u@x.io"}, {"name": "U", "email": "u@x.io", "age": 1}, None)
    assert res["created"] is True and res["action"] == "created" and res["record"]["age"] == 1
    res2 = await store.upsert({"email": "u@x.io"}, {"name": "U2", "email": "u@x.io"}, {"age": 2})
    assert res2["created"] is False and res2["action"] == "updated"
    assert res2["record"]["id"] == res["record"]["id"] and res2["record"]["age"] == 2
    assert res2["record"]["name"] == "U"                             # only the update fields change


async def test_bulk_forms(store):
    recs = [{"name": f"b{i}", "email": f"b{i}@x.io", "age": i} for i in range(50)]
    out = await store.bulk_create(recs)
    assert out["processed"] == 50 and out["inserted"] == 50 and out["success"] is True
    with pytest.raises(BulkLoadError) as exc:
        await store.bulk_create([{"name": "n", "email": "new@x.io"}, {"name": "d", "email": "b1@x.io"}])
    assert exc.value.failed_index == 1 and exc.value.rows_written == 0
    assert await store.count({"email": "new@x.io"}) == 0               # atomic: nothing written
    upd = await store.bulk_update({"age": {"$lt": 10}}, {"city": "Rome"})
    assert upd["updated"] == 10
    ups = await store.bulk_upsert([{"name": "b1", "email": "b1@x.io", "age": 100},
                                   {"name": "z", "email": "z@x.io", "age": 7}], conflict_on="email")
    assert ups["processed"] == 2 and ups["inserted"] == 1 and ups["updated"] == 1
    dele = await store.bulk_delete({"age": {"$gte": 40}})
    assert dele["deleted"] == 11
    with pytest.raises(ValidationError):
        await store.bulk_delete({})                                     # every row: needs confirmed=True
    assert await store.count() == 40


async def test_load_and_export_round_trip(store, tmp_path):
    rep = await store.load(({"name": f"l{i}", "email": f"l{i}@x.io", "age": i} for i in range(300)), progress=False)
    assert rep["rows"] == 300 and rep["inserted"] == 300 and rep["path"]
    path = tmp_path / "out.csv"
    out = await store.export(path, filter={"age": {"$lt": 100}}, progress=False)
    assert out["rows"] == 100 and out["format"] == "csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 100 and rows[0]["name"] == "l0"


async def test_vector_search(tmp_path, tables):
    """Searches through the store of a model with a vector field (client-side ranking here;
    pgvector is covered in test_vector.py)."""
    db = DataFlow(f"sqlite:///{tmp_path}/v.db")

    @db.model
    class Doc:
        title: str
        embedding: Vector(3)
        __tablename__ = tables("sc_docs")
    s = db._table(Doc)
    for i, v in enumerate([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]]):
        await s.create({"title": f"d{i}", "embedding": v})
    res = await s.vector_search([1, 0, 0], k=2, distance="cosine")
    assert [r["title"] for r in res["results"]] == ["d0", "d2"] and res["count"] == 2
    assert res["distance_metric"] == "cosine" and res["results"][0]["distance"] == pytest.approx(0.0, abs=1e-6)
    await db.close_async()


async def test_unique_violation_is_typed(store):
    await store.create({"name": "a", "email": "same@x.io"})
    with pytest.raises(UniqueViolationError):
        await store.create({"name": "b", "email": "same@x.io"})
