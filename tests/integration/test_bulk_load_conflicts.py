"""db.load with conflict_resolution="update" when the load itself repeats a conflict key
(PostgreSQL: ON CONFLICT DO UPDATE refuses to touch a row twice, SQLSTATE 21000): the error
names the first repeating row exactly, the table is unchanged and the connection goes on."""

from __future__ import annotations

import random
import re

import pytest

from dataflow.errors import BulkLoadError


pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

N = 50_000


@pytest.fixture
def db_kwargs():
    """One pooled connection, so "usable after the failure" is about the connection that failed."""
    return {"pool_size": 1}


def _item(db, tables):
    @db.model
    class Item:
        __tablename__ = tables("upd")
        name: str
        qty: int = 0
        note: str | None = None
        __dataflow__ = {"unique": ["name"]}
    return Item


def _pair(db, tables):
    @db.model
    class Pair:
        __tablename__ = tables("pair")
        a: str
        b: int | None = None
        qty: int = 0
        __dataflow__ = {"unique": [["a", "b"]]}
    return Pair


async def _snapshot(db, model):
    return await db.express.list(model, limit=1_000_000, order_by="id")


def _positions(where, n, seed):
    """(earlier, repeat): the row whose key is repeated and the first row repeating it."""
    if where == "first":
        return 0, 1
    r = random.Random(seed)
    repeat = r.randrange(1, n)
    return r.randrange(repeat), repeat


def _assert_names_rows(exc, earlier, repeat, key_text):
    msg = str(exc)
    assert exc.failed_index == repeat and exc.rows_written == 0, msg
    assert re.search(rf"\brow {repeat}\b", msg) and re.search(rf"\brow {earlier}\b", msg), msg
    assert key_text in msg and 'conflict_resolution="skip"' in msg and "remove" in msg, msg


async def _connection_works(db):
    assert await db.execute_raw("SELECT 1") == [(1,)]
    assert await db.execute_raw("SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() "
                                "AND state = 'active'") == [(1,)]


@pytest.mark.parametrize("where", ["first", "random"])
async def test_update_repeated_key_reports_first_repeating_row(db, tables, where):
    Item = _item(db, tables)
    await db.load(Item, [{"name": f"k{i}", "qty": -i} for i in range(100)], progress=False)
    before = await _snapshot(db, Item)
    seed = random.randrange(2**32)
    earlier, repeat = _positions(where, N, seed)
    src = [{"name": f"k{i}", "qty": i} for i in range(N)]
    src[repeat]["name"] = src[earlier]["name"]
    with pytest.raises(BulkLoadError) as ei:
        # several batches: the index counts across them (one COPY into the staging table)
        await db.load(Item, src, conflict_resolution="update", conflict_on="name", batch_size=7000,
                      progress=False)
    assert ei.value.failed_index == repeat, (seed, earlier, repeat, str(ei.value))
    _assert_names_rows(ei.value, earlier, repeat, f"(name)=('k{earlier}')")
    assert await _snapshot(db, Item) == before
    await _connection_works(db)
    # the same rows without the repeat load fine on the same connection
    src[repeat]["name"] = f"k{repeat}"
    rep = await db.load(Item, src, conflict_resolution="update", conflict_on="name", progress=False)
    assert (rep["inserted"], rep["updated"]) == (N - 100, 100)


async def test_update_repeated_key_rows_of_mixed_width(db, tables):
    # short rows after long ones would fill a page's leftover space if COPY used the free space
    # map; the staging table's order (ctid) must still be the source's order
    Item = _item(db, tables)
    seed = random.randrange(2**32)
    r = random.Random(seed)
    n = 6000
    widths = (0, 5, 300, 3000, 9000)
    src = [{"name": f"k{i}", "qty": i, "note": "".join(r.choices("abcdefghij", k=r.choice(widths)))}
           for i in range(n)]
    earlier, repeat = _positions("random", n, seed)
    src[repeat]["name"] = src[earlier]["name"]
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, src, conflict_resolution="update", conflict_on="name", progress=False)
    assert ei.value.failed_index == repeat, (seed, earlier, repeat)
    _assert_names_rows(ei.value, earlier, repeat, f"(name)=('k{earlier}')")
    assert await db.express.count(Item) == 0
    await _connection_works(db)


async def test_update_reports_first_repeating_row_not_first_repeated_key(db, tables):
    Item = _item(db, tables)
    # "a" is seen first but repeats last; "b" repeats first (row 2)
    src = [{"name": n} for n in ("a", "b", "b", "a", "c", "c")]
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, src, conflict_resolution="update", conflict_on="name", progress=False)
    _assert_names_rows(ei.value, 1, 2, "(name)=('b')")
    assert await db.express.count(Item) == 0
    await _connection_works(db)


@pytest.mark.parametrize("where", ["first", "random"])
async def test_update_repeated_composite_key(db, tables, where):
    Pair = _pair(db, tables)
    n = 20_000
    await db.load(Pair, [(f"g{i % 97}", i, -1) for i in range(0, n, 50)], columns=["a", "b", "qty"],
                  progress=False)
    before = await _snapshot(db, Pair)
    seed = random.randrange(2**32)
    earlier, repeat = _positions(where, n, seed)
    src = [(f"g{i % 97}", i, i) for i in range(n)]
    if where == "random":
        # NULL never equals NULL in the unique index: repeated (a, NULL) before the repeat is no conflict
        earlier, repeat = max(earlier, 2), max(repeat, 3)
        src[0] = src[1] = ("nul", None, 0)
    src[repeat] = (src[earlier][0], src[earlier][1], 7)
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Pair, src, columns=["a", "b", "qty"], conflict_resolution="update",
                      conflict_on=["a", "b"], progress=False)
    assert ei.value.failed_index == repeat, (seed, earlier, repeat, str(ei.value))
    _assert_names_rows(ei.value, earlier, repeat, f"(a, b)=({src[earlier][0]!r}, {src[earlier][1]!r})")
    assert await _snapshot(db, Pair) == before
    await _connection_works(db)


async def test_update_repeated_key_inside_user_transaction(db, tables):
    Item = _item(db, tables)
    await db.load(Item, [{"name": f"k{i}"} for i in range(10)], progress=False)
    before = await _snapshot(db, Item)
    src = [{"name": f"k{i}", "qty": i} for i in range(5000)]
    src[4321]["name"] = "k1234"
    async with db.transaction():
        await db.express.create(Item, {"name": "before"})
        with pytest.raises(BulkLoadError) as ei:
            await db.load(Item, src, conflict_resolution="update", conflict_on="name", progress=False)
        _assert_names_rows(ei.value, 1234, 4321, "(name)=('k1234')")
        # the load's savepoint is undone; the transaction and what it did before go on
        assert await db.express.count(Item) == 11
        await db.express.create(Item, {"name": "after"})
    rows = await _snapshot(db, Item)
    assert rows[:10] == before and [r["name"] for r in rows[10:]] == ["before", "after"]
    await _connection_works(db)


async def test_update_repeated_key_non_atomic_counts_from_the_source_start(db, tables):
    Item = _item(db, tables)
    src = [{"name": f"k{i}", "qty": i} for i in range(5000)]
    src[3456]["name"] = "k3100"   # same batch of 1000 (a repeat across batches is two statements)
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, src, conflict_resolution="update", conflict_on="name", batch_size=1000,
                      atomic=False, progress=False)
    assert ei.value.failed_index == 3456 and ei.value.rows_written == 3000, str(ei.value)
    assert "row 3100" in str(ei.value) and "(name)=('k3100')" in str(ei.value)
    assert await db.express.count(Item) == 3000
    await _connection_works(db)


async def test_skip_repeated_key_is_not_an_error(db, tables):
    # DO NOTHING skips the second row of a key repeated within the load instead of raising
    Item = _item(db, tables)
    await db.load(Item, [{"name": "old", "qty": -1}], progress=False)
    src = [{"name": f"k{i % 700}", "qty": i} for i in range(1000)] + [{"name": "old", "qty": 5}]
    rep = await db.load(Item, src, conflict_resolution="skip", conflict_on="name", progress=False)
    assert (rep["inserted"], rep["skipped"]) == (700, 301)
    rows = {r["name"]: r["qty"] for r in await _snapshot(db, Item)}
    assert len(rows) == 701 and rows["old"] == -1
    Pair = _pair(db, tables)
    rep = await db.load(Pair, [("x", 1, 1), ("x", 1, 2), ("x", None, 3), ("x", None, 4)],
                        columns=["a", "b", "qty"], conflict_resolution="skip", conflict_on=["a", "b"],
                        progress=False)
    assert (rep["inserted"], rep["skipped"]) == (3, 1)
    await _connection_works(db)


async def test_update_repeated_long_key_is_shortened_in_the_message(db, tables):
    Item = _item(db, tables)
    long = "y" * 2000
    with pytest.raises(BulkLoadError) as ei:
        await db.load(Item, [{"name": long}, {"name": "z"}, {"name": long}], conflict_resolution="update",
                      conflict_on="name", progress=False)
    assert ei.value.failed_index == 2 and "(name)=('yyyy" in str(ei.value) and "...)" in str(ei.value)
    assert len(str(ei.value)) < 500
