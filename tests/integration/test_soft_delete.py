"""Soft delete through the express API and nodes on SQLite, PostgreSQL and MariaDB, and on the
document store (the MongoDB stand-in; a real server with DATAFLOW_TEST_MONGODB_URL): reading
deleted rows (count/find_one ``include_deleted``), deleting a list of ids, restoring a row."""

from __future__ import annotations

import pytest

from dataflow import WorkflowBuilder, AsyncLocalRuntime
from dataflow import errors as E

from .conftest import BACKENDS


@pytest.fixture(params=BACKENDS + ["mongodb-standin", "mongodb"])
def backend(request):
    return request.param


def define_post(db, tables):
    @db.model
    class Post:
        __tablename__ = tables("posts")
        title: str
        __dataflow__ = {"soft_delete": True}

    return Post


async def test_count_and_find_one_include_deleted(db, tables):
    Post = define_post(db, tables)
    a = await db.express.create(Post, {"title": "a"})
    await db.express.create(Post, {"title": "b"})
    await db.express.delete(Post, a["id"])
    assert await db.express.count(Post) == 1
    assert await db.express.count(Post, include_deleted=True) == 2
    assert await db.express.count(Post, {"title": "a"}, include_deleted=True) == 1
    assert await db.express.find_one(Post, {"title": "a"}) is None
    found = await db.express.find_one(Post, {"title": "a"}, include_deleted=True)
    assert found["id"] == a["id"] and found["deleted_at"] is not None


async def test_bulk_delete_a_list_of_ids(db, tables):
    Post = define_post(db, tables)
    rows = [await db.express.create(Post, {"title": t}) for t in "abcd"]
    res = await db.express.bulk_delete(Post, [rows[0]["id"], rows[2]["id"]])
    assert res["deleted"] == 2
    assert [r["title"] for r in await db.express.list(Post)] == ["b", "d"]
    # a tuple works too; an empty list deletes nothing (it never means "every row")
    assert (await db.express.bulk_delete(Post, (rows[1]["id"],)))["deleted"] == 1
    assert (await db.express.bulk_delete(Post, []))["deleted"] == 0
    assert await db.express.count(Post) == 1
    with pytest.raises(E.ValidationError):
        await db.express.bulk_delete(Post, [{"id": 1}])


async def test_bulk_delete_list_of_ids_hard_delete(db, tables):
    @db.model
    class Note:
        __tablename__ = tables("notes")
        body: str

    rows = [await db.express.create(Note, {"body": t}) for t in "abc"]
    res = await db.express.bulk_delete(Note, [rows[0]["id"], rows[1]["id"]])
    assert res["deleted"] == 2 and await db.express.count(Note) == 1


async def test_restore_with_deleted_at_none(db, tables):
    Post = define_post(db, tables)
    p = await db.express.create(Post, {"title": "x"})
    await db.express.delete(Post, p["id"])
    deleted = await db.express.read(Post, p["id"], include_deleted=True)
    restored = await db.express.update(Post, p["id"], {"deleted_at": None})
    assert restored is not None and restored["deleted_at"] is None
    assert restored["updated_at"] > deleted["updated_at"]
    assert (await db.express.read(Post, p["id"]))["title"] == "x"
    assert await db.express.count(Post) == 1
    # restore and change a field in one call
    await db.express.delete(Post, p["id"])
    again = await db.express.update(Post, p["id"], {"deleted_at": None, "title": "y"})
    assert again["title"] == "y" and again["deleted_at"] is None
    # an ordinary update still cannot reach a deleted row
    await db.express.delete(Post, p["id"])
    assert await db.express.update(Post, p["id"], {"title": "z"}) is None


async def test_restore_through_update_node(db, tables):
    Post = define_post(db, tables)
    p = await db.express.create(Post, {"title": "x"})
    await db.express.delete(Post, p["id"])
    wf = WorkflowBuilder()
    wf.add_node("PostUpdateNode", "restore", {"filter": {"id": p["id"]}, "fields": {"deleted_at": None}})
    results, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build(), inputs={})
    assert results["restore"]["updated"] is True
    assert (await db.express.read(Post, p["id"]))["deleted_at"] is None


async def test_restore_refusals(db, tables):
    Post = define_post(db, tables)

    @db.model
    class Plain:
        __tablename__ = tables("plain")
        title: str

    p = await db.express.create(Post, {"title": "x"})
    import datetime as dt
    with pytest.raises(E.ValidationError, match="deleted_at"):
        await db.express.update(Post, p["id"], {"deleted_at": dt.datetime.now(dt.timezone.utc)})
    with pytest.raises(E.ValidationError, match="updated_at"):
        await db.express.update(Post, p["id"], {"deleted_at": None, "updated_at": None})
    q = await db.express.create(Plain, {"title": "x"})
    with pytest.raises(E.ValidationError, match="deleted_at"):
        await db.express.update(Plain, q["id"], {"deleted_at": None})
