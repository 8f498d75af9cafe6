"""An upsert's update changes only the fields a record gives (issue 14, item 5), like
``express.upsert``: omitted fields of an existing row keep their values, ``updated_at`` changes,
``created_at``/``id`` never do, and an inserted row still gets its defaults -- on every database
and every bulk path (bulk_upsert, bulk_create update mode, db.load from records, columns and
CSV, the BulkUpsert node), with records giving different field sets in one call."""

from __future__ import annotations

import asyncio
import random

import pytest

from dataflow import AsyncLocalRuntime, WorkflowBuilder
from dataflow.errors import BulkLoadError

SEED = [{"id": "a", "name": "A", "age": 41, "city": "Oslo"},
        {"id": "b", "name": "B", "age": 42, "city": "Rome"}]


def _person(db, tables):
    @db.model
    class Person:
        __tablename__ = tables("people")
        id: str
        name: str = "nobody"
        age: int = 30
        city: str | None = "Paris"
    return Person


def _tagged(db, tables):
    """Auto ids; upserts on the unique ``email``."""
    @db.model
    class Member:
        __tablename__ = tables("members")
        email: str
        name: str = "anon"
        score: int = 0
        note: str | None = None
        __dataflow__ = {"unique": ["email"]}
    return Member


async def _rows(db, model, key="id"):
    return {r[key]: r for r in await db.express.list(model, limit=100_000)}


async def _seeded(db, tables):
    Person = _person(db, tables)
    await db.express.bulk_create(Person, SEED)
    before = await _rows(db, Person)
    await asyncio.sleep(0.02)   # updated_at must visibly move
    return Person, before


def _check_b_kept(rows, before, name="B2", a_untouched=True):
    b = rows["b"]
    assert (b["name"], b["age"], b["city"]) == (name, 42, "Rome"), b
    assert b["created_at"] == before["b"]["created_at"]
    assert b["updated_at"] > before["b"]["updated_at"]
    if not a_untouched:
        return
    a = rows["a"]
    assert {k: a[k] for k in ("name", "age", "city")} == {"name": "A", "age": 41, "city": "Oslo"}
    assert a["updated_at"] == before["a"]["updated_at"]


def _check_new_c(rows):
    c = rows["c"]
    assert (c["name"], c["age"], c["city"]) == ("C", 30, "Paris"), c


async def test_bulk_upsert_keeps_omitted_fields(db, tables):
    Person, before = await _seeded(db, tables)
    res = await db.express.bulk_upsert(Person, [{"id": "b", "name": "B2"}, {"id": "c", "name": "C"}])
    assert (res["processed"], res["inserted"], res["updated"]) == (2, 1, 1)
    rows = await _rows(db, Person)
    _check_b_kept(rows, before)
    _check_new_c(rows)


async def test_bulk_create_update_mode_keeps_omitted_fields(db, tables):
    Person, before = await _seeded(db, tables)
    res = await db.express.bulk_create(Person, [{"id": "c", "name": "C"}, {"id": "b", "name": "B2"}],
                                       conflict_resolution="update")
    assert (res["inserted"], res["updated"]) == (1, 1)
    rows = await _rows(db, Person)
    _check_b_kept(rows, before)
    _check_new_c(rows)


async def test_bulk_create_update_mode_return_ids_keeps_omitted_fields(db, tables):
    Person, before = await _seeded(db, tables)
    res = await db.express.bulk_create(Person, [{"id": "b", "name": "B2"}, {"id": "c", "name": "C"}],
                                       conflict_resolution="update", return_ids=True)
    assert res["ids"] == ["b", "c"] and (res["inserted"], res["updated"]) == (1, 1)
    rows = await _rows(db, Person)
    _check_b_kept(rows, before)
    _check_new_c(rows)


@pytest.mark.parametrize("atomic", [True, False])
async def test_load_update_records_keeps_omitted_fields(db, tables, atomic):
    Person, before = await _seeded(db, tables)
    rep = await db.load(Person, [{"id": "b", "name": "B2"}, {"id": "c", "name": "C"}],
                        conflict_resolution="update", atomic=atomic, progress=False)
    assert (rep["rows"], rep["inserted"], rep["updated"]) == (2, 1, 1)
    rows = await _rows(db, Person)
    _check_b_kept(rows, before)
    _check_new_c(rows)


async def test_load_update_columns_source_gives_its_columns(db, tables):
    Person, before = await _seeded(db, tables)
    rep = await db.load(Person, {"id": ["b", "c"], "name": ["B2", "C"]}, conflict_resolution="update",
                        progress=False)
    assert (rep["inserted"], rep["updated"]) == (1, 1)
    rows = await _rows(db, Person)
    _check_b_kept(rows, before)
    _check_new_c(rows)


async def test_load_update_csv_gives_its_header(db, tables, tmp_path):
    Person, before = await _seeded(db, tables)
    path = tmp_path / "people.csv"
    path.write_text("id,name\nb,B2\nc,C\n")
    rep = await db.load(Person, str(path), conflict_resolution="update", progress=False)
    assert (rep["inserted"], rep["updated"]) == (1, 1)
    rows = await _rows(db, Person)
    _check_b_kept(rows, before)
    _check_new_c(rows)


async def test_load_update_tuples_give_their_columns(db, tables):
    Person, before = await _seeded(db, tables)
    rep = await db.load(Person, [("b", "B2"), ("c", "C")], columns=["id", "name"], conflict_resolution="update",
                        progress=False)
    assert (rep["inserted"], rep["updated"]) == (1, 1)
    rows = await _rows(db, Person)
    _check_b_kept(rows, before)
    _check_new_c(rows)


async def test_bulk_upsert_node_keeps_omitted_fields(db, tables):
    Person, before = await _seeded(db, tables)
    wf = WorkflowBuilder()
    wf.add_node(f"{Person.__name__}BulkUpsertNode", "ups",
                {"data": [{"id": "b", "name": "B2"}, {"id": "c", "name": "C"}], "db_instance": db.name})
    results, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build(), inputs={})
    assert (results["ups"]["inserted"], results["ups"]["updated"]) == (1, 1)
    rows = await _rows(db, Person)
    _check_b_kept(rows, before)
    _check_new_c(rows)


async def test_mixed_field_sets_in_one_call(db, tables):
    """A later record omitting a field an earlier one gave keeps it; an explicit None is given."""
    Person, before = await _seeded(db, tables)
    res = await db.express.bulk_upsert(Person, [
        {"id": "a", "name": "A2", "age": 1},        # gives age
        {"id": "b", "city": None},                  # omits name and age, gives city=None
        {"id": "c", "name": "C"},                   # new: defaults
        {"id": "d", "age": 7},                      # new: name and city defaults
    ])
    assert (res["inserted"], res["updated"]) == (2, 2)
    rows = await _rows(db, Person)
    assert (rows["a"]["name"], rows["a"]["age"], rows["a"]["city"]) == ("A2", 1, "Oslo")
    assert (rows["b"]["name"], rows["b"]["age"], rows["b"]["city"]) == ("B", 42, None)
    assert rows["b"]["updated_at"] > before["b"]["updated_at"]
    _check_new_c(rows)
    assert (rows["d"]["name"], rows["d"]["age"], rows["d"]["city"]) == ("nobody", 7, "Paris")


async def test_only_the_key_touches_updated_at_only(db, tables):
    Person, before = await _seeded(db, tables)
    res = await db.express.bulk_upsert(Person, [{"id": "b"}, {"id": "a", "age": 5}])
    assert (res["inserted"], res["updated"]) == (0, 2)
    rows = await _rows(db, Person)
    assert {k: rows["b"][k] for k in ("name", "age", "city")} == {"name": "B", "age": 42, "city": "Rome"}
    assert rows["b"]["updated_at"] > before["b"]["updated_at"]
    assert (rows["a"]["name"], rows["a"]["age"]) == ("A", 5)


async def test_a_required_field_is_still_required(db, tables):
    """The record must still be insertable: it cannot leave out a field without a default, even
    when its row exists (the database checks NOT NULL before it looks for the conflict)."""
    Member = _tagged(db, tables)
    await db.express.bulk_create(Member, [{"email": "e"}])
    with pytest.raises(BulkLoadError) as ei:
        await db.express.bulk_upsert(Member, [{"email": "e", "score": 1}, {"score": 2}], conflict_on="email")
    assert ei.value.failed_index == 1


@pytest.mark.parametrize("how", ["bulk_upsert", "load", "load_batches"])
async def test_many_random_field_sets_match_a_model(db, tables, how):
    """Thousands of records, each giving a random subset of the optional fields, over several
    batches: every row ends as applying each record's given fields in order would leave it."""
    Member = _tagged(db, tables)
    r = random.Random(14)
    n0 = 1500
    await db.load(Member, [{"email": f"m{i}", "name": f"n{i}", "score": i, "note": f"x{i}"} for i in range(n0)],
                  progress=False)
    before = await _rows(db, Member, "email")
    expect = {e: {k: v[k] for k in ("name", "score", "note")} for e, v in before.items()}
    recs = []
    for i in r.sample(range(n0 + 700), 2000):   # distinct keys: ~1300 updates, ~700 inserts
        rec = {"email": f"m{i}"}
        for k, v in (("name", f"N{i}"), ("score", -i), ("note", None if i % 3 else f"y{i}")):
            if r.random() < 0.5:
                rec[k] = v
        recs.append(rec)
        base = expect.get(rec["email"], {"name": "anon", "score": 0, "note": None})
        expect[rec["email"]] = {**base, **{k: v for k, v in rec.items() if k != "email"}}
    new = sum(1 for rec in recs if rec["email"] not in before)
    if how == "bulk_upsert":
        res = await db.express.bulk_upsert(Member, recs, conflict_on="email", batch_size=300)
        assert (res["inserted"], res["updated"]) == (new, len(recs) - new)
    else:
        rep = await db.load(Member, recs, conflict_resolution="update", conflict_on="email", progress=False,
                            batch_size=300 if how == "load_batches" else None)
        assert (rep["inserted"], rep["updated"]) == (new, len(recs) - new)
    rows = await _rows(db, Member, "email")
    assert {e: {k: v[k] for k in ("name", "score", "note")} for e, v in rows.items()} == expect
    for e, row in before.items():
        assert rows[e]["created_at"] == row["created_at"] and rows[e]["id"] == row["id"]


async def test_repeated_key_across_field_sets_keeps_source_order(db, tables):
    """A key given twice with different field sets: applied in source order (MySQL, SQLite), or
    refused like any repeated key of a PostgreSQL update load."""
    Person, before = await _seeded(db, tables)
    recs = [{"id": "a", "age": 5}, {"id": "b", "name": "B2"}, {"id": "a", "name": "Z"}]
    if db.dialect.bulk_path == "copy":
        with pytest.raises(BulkLoadError) as ei:
            await db.express.bulk_upsert(Person, recs)
        assert ei.value.failed_index == 2
        assert await _rows(db, Person) == before
        return
    await db.express.bulk_upsert(Person, recs)
    rows = await _rows(db, Person)
    assert (rows["a"]["name"], rows["a"]["age"], rows["a"]["city"]) == ("Z", 5, "Oslo")
    _check_b_kept(rows, before, a_untouched=False)
