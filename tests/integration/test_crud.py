"""CRUD, list/count, type round trips and model options on real SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from dataflow import errors as E

UTC = dt.timezone.utc


def define_all_types(db, tables):
    @db.model
    class Typed:
        __tablename__ = tables("typed")
        i: int
        f: float
        b: bool
        s: str
        by: bytes
        ts: dt.datetime
        day: dt.date
        dec: Decimal
        u: uuid.UUID
        j: dict
        tags: list[str]
        maybe: int | None = None
    return Typed


VALUES = [
    dict(i=0, f=0.0, b=False, s="", by=b"", ts=dt.datetime(1970, 1, 1, tzinfo=UTC), day=dt.date(1, 1, 1),
         dec=Decimal("0"), u=uuid.UUID(int=0), j={}, tags=[]),
    dict(i=2 ** 63 - 1, f=1.5e300, b=True, s="Robert'); DROP TABLE students;-- \\ % _ ü 日本 🎉", by=b"\x00\xff" * 50,
         ts=dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
         day=dt.date(9999, 12, 31), dec=Decimal("-12345678901234567890.123456789"),
         u=uuid.uuid4(), j={"nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}}, tags=["a", "b"], maybe=-(2 ** 63)),
]


@pytest.mark.parametrize("values", VALUES, ids=["zeros", "extremes"])
async def test_type_round_trip(db, tables, values):
    Typed = define_all_types(db, tables)
    row = await db.express.create(Typed, values)
    back = await db.express.read(Typed, row["id"])
    for k, v in values.items():
        got = back[k]
        assert got == v, (k, got, v)
        assert type(got) is type(v) or (k == "u" and isinstance(got, uuid.UUID)), (k, type(got))
    assert back["ts"].utcoffset() == dt.timedelta(0)  # stored as the same instant, read back in UTC
    assert back["maybe"] == values.get("maybe")
    assert isinstance(back["created_at"], dt.datetime) and back["created_at"].tzinfo is not None
    assert back == {**row, "ts": back["ts"]} or all(back[k] == row[k] for k in row)


async def test_crud_cycle(db, tables):
    @db.model
    class Person:
        __tablename__ = tables("people")
        name: str
        age: int = 0
        email: str | None = None

    e = db.express
    a = await e.create(Person, {"name": "Ada", "age": 36})
    assert a["id"] and a["created_at"] == a["updated_at"] and a["email"] is None
    b = await e.create("Person", {"name": "Bob", "age": 20})
    assert b["id"] != a["id"]
    upd = await e.update("Person", a["id"], {"age": 37})
    assert upd["age"] == 37 and upd["updated_at"] > a["updated_at"] and upd["created_at"] == a["created_at"]
    assert await e.update("Person", 999_999, {"age": 1}) is None
    assert await e.read("Person", 999_999) is None
    assert await e.count("Person") == 2
    assert await e.count("Person", {"age": {"$gt": 30}}) == 1
    assert (await e.find_one("Person", {"name": "Bob"}))["id"] == b["id"]
    assert await e.delete("Person", b["id"]) is True
    assert await e.delete("Person", b["id"]) is False
    assert [r["name"] for r in await e.list("Person")] == ["Ada"]


async def test_list_order_limit_offset_fields(db, tables):
    @db.model
    class Item:
        __tablename__ = tables("items")
        name: str
        rank: int

    rows = [{"name": n, "rank": r} for n, r in [("c", 2), ("a", 2), ("b", 1), ("d", 3)]]
    await db.express.bulk_create(Item, rows)
    e = db.express
    assert [r["name"] for r in await e.list(Item, order_by=["-rank", "name"])] == ["d", "a", "c", "b"]
    assert [r["name"] for r in await e.list(Item, order_by=[{"rank": 1}, {"name": -1}])] == ["b", "c", "a", "d"]
    assert [r["name"] for r in await e.list(Item, order_by="name desc", limit=2, offset=1)] == ["c", "b"]
    assert [r["name"] for r in await e.list(Item)] == ["c", "a", "b", "d"]  # default: id ascending
    proj = await e.list(Item, fields=["name"], order_by="name", limit=1)
    assert proj == [{"name": "a"}]
    for bad in ({"order_by": "rank; DROP TABLE x"}, {"order_by": "1"}, {"fields": ["name", "nope"]},
                {"limit": -1}, {"limit": True}, {"offset": "2"}, {"order_by": [{"rank": 2}]}):
        with pytest.raises(E.ValidationError):
            await e.list(Item, **bad)


async def test_string_and_uuid_ids(db, tables):
    @db.model
    class Session:
        __tablename__ = tables("sessions")
        id: str
        token: str

    @db.model
    class Doc:
        __tablename__ = tables("docs")
        id: uuid.UUID
        title: str

    s = await db.express.create(Session, {"id": "sess-001", "token": "t"})
    assert s["id"] == "sess-001" and (await db.express.read(Session, "sess-001"))["token"] == "t"
    with pytest.raises(E.ValidationError, match="str id"):
        await db.express.create(Session, {"token": "x"})
    d = await db.express.create(Doc, {"title": "x"})
    assert isinstance(d["id"], uuid.UUID)
    assert (await db.express.read(Doc, d["id"]))["title"] == "x"
    assert (await db.express.read(Doc, str(d["id"])))["title"] == "x"


async def test_unique_violation_is_typed_and_table_unchanged(db, tables):
    @db.model
    class Acct:
        __tablename__ = tables("accts")
        email: str
        __dataflow__ = {"unique": ["email"]}

    await db.express.create(Acct, {"email": "a@x"})
    with pytest.raises(E.UniqueViolationError):
        await db.express.create(Acct, {"email": "a@x"})
    assert await db.express.count(Acct) == 1


async def test_managed_fields_and_create_shape_errors(db, tables):
    @db.model
    class Note:
        __tablename__ = tables("notes")
        body: str

    with pytest.raises(E.ValidationError, match="managed automatically"):
        await db.express.create(Note, {"body": "x", "created_at": dt.datetime.now(UTC)})
    with pytest.raises(E.ValidationError, match="flat fields"):
        await db.express.create(Note, {"data": {"body": "x"}})
    with pytest.raises(E.ValidationError, match="did you mean 'body'"):
        await db.express.create(Note, {"bodi": "x"})
    with pytest.raises(E.ValidationError, match="required"):
        await db.express.create(Note, {})
    row = await db.express.create(Note, {"body": "x"})
    with pytest.raises(E.ValidationError, match="managed automatically"):
        await db.express.update(Note, row["id"], {"updated_at": dt.datetime.now(UTC)})
    with pytest.raises(E.ValidationError, match="cannot be changed"):
        await db.express.update(Note, row["id"], {"id": 5})
    assert await db.express.count(Note) == 1


async def test_soft_delete(db, tables):
    @db.model
    class Post:
        __tablename__ = tables("posts")
        title: str
        __dataflow__ = {"soft_delete": True}

    p = await db.express.create(Post, {"title": "x"})
    await db.express.create(Post, {"title": "y"})
    assert await db.express.delete(Post, p["id"]) is True
    assert await db.express.read(Post, p["id"]) is None
    kept = await db.express.read(Post, p["id"], include_deleted=True)
    assert kept["deleted_at"] is not None
    assert await db.express.count(Post) == 1
    assert len(await db.express.list(Post, include_deleted=True)) == 2
    res = await db.express.bulk_delete(Post, {}, confirmed=True)
    assert res["deleted"] == 1 and await db.express.count(Post) == 0


async def test_append_only(db, tables):
    @db.model
    class Ledger:
        __tablename__ = tables("ledger")
        amount: int
        __dataflow__ = {"append_only": True}

    row = await db.express.create(Ledger, {"amount": 5})
    with pytest.raises(E.UnsupportedFeatureError):
        await db.express.update(Ledger, row["id"], {"amount": 6})
    with pytest.raises(E.UnsupportedFeatureError):
        await db.express.delete(Ledger, row["id"])


async def test_upsert_create_then_update_keeps_id_and_created_at(db, tables):
    @db.model
    class Member:
        __tablename__ = tables("members")
        email: str
        name: str
        __dataflow__ = {"unique": ["email"]}

    a = await db.express.upsert(Member, {"email": "m@x", "name": "A"}, conflict_on="email")
    b = await db.express.upsert(Member, {"email": "m@x", "name": "B"}, conflict_on="email")
    assert a["id"] == b["id"] and b["name"] == "B" and b["created_at"] == a["created_at"]
    assert await db.express.count(Member) == 1


async def test_pool_stats_and_health(db, tables):
    @db.model
    class Ping:
        __tablename__ = tables("ping")
        n: int

    await db.express.create(Ping, {"n": 1})
    stats = db.pool_stats()
    assert set(stats) >= {"active", "idle", "max", "overflow", "max_overflow", "utilization"}
    health = await db.health_check_async()
    assert health["status"] == "healthy"


async def test_query_builder(db, tables):
    @db.model
    class Emp:
        __tablename__ = tables("emps")
        name: str
        age: int
        status: str

    await db.express.bulk_create(Emp, [{"name": "ann", "age": 30, "status": "active"},
                                       {"name": "bob", "age": 17, "status": "premium"},
                                       {"name": "cy", "age": 40, "status": "gone"}])
    qb = Emp.query_builder().where("age", "$gte", 18).where("status", "$in", ["active", "premium"])
    qb.where("name", "$regex", "^[a-z]+$").order_by("age", "DESC").limit(10)
    sql, params = qb.build_select()
    assert "LIMIT 10" in sql and ">= 18" not in sql and 18 in params
    rows = await db.execute_raw(sql, *params)
    assert len(rows) == 1
    assert [r["name"] for r in await qb.fetch()] == ["ann"]
    with pytest.raises(E.FilterError):
        Emp.query_builder().where("nope", "$eq", 1)
    with pytest.raises(E.ValidationError):
        Emp.query_builder().order_by("age", "SIDEWAYS")


async def test_catastrophic_regex_fails_fast_on_sqlite(tmp_path):
    """A runaway pattern must not stall the connection: SQLite's REGEXP stops it (typed error);
    the next statement works at once.  (PostgreSQL and MariaDB bound their own engines.)"""
    import time

    from dataflow import DataFlow

    db = DataFlow(f"sqlite:///{tmp_path}/rx.db")

    @db.model
    class Txt:
        body: str

    try:
        await db.express.create(Txt, {"body": "a" * 40 + "b"})
        t0 = time.perf_counter()
        with pytest.raises(E.QueryError, match="regex"):
            await db.express.list(Txt, {"body": {"$regex": "^(a|a)*$"}})
        assert time.perf_counter() - t0 < 5
        assert await db.express.count(Txt, {"body": {"$regex": "^a+b$"}}) == 1
    finally:
        await db.close_async()


async def test_bulk_skip_without_conflict_on_skips_any_unique_key(db, tables):
    """conflict_resolution="skip" with no conflict_on skips rows that collide on any unique key
    (here email, also within one batch); with conflict_on it skips only that key."""
    @db.model
    class Sub:
        __tablename__ = tables("subs")
        email: str
        __dataflow__ = {"unique": ["email"]}

    await db.express.create(Sub, {"email": "a@x"})
    res = await db.express.bulk_create(Sub, [{"email": "a@x"}, {"email": "b@x"}, {"email": "b@x"}],
                                       conflict_resolution="skip")
    assert (res["inserted"], res["skipped"]) == (1, 2)
    assert await db.express.count(Sub) == 2
    res = await db.express.bulk_create(Sub, [{"email": "c@x"}, {"email": "a@x"}], conflict_resolution="skip",
                                       conflict_on=["email"])
    assert (res["inserted"], res["skipped"]) == (1, 1)
    rep = await db.load(Sub, [{"email": "d@x"}, {"email": "c@x"}], conflict_resolution="skip", progress=False)
    assert rep["skipped"] == 1 and await db.express.count(Sub) == 4
