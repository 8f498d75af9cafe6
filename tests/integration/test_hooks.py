"""The driver's explicit hooks on real databases: ``after_commit(tables)`` fires once per
committed write (autocommit statement, bulk load, a transaction's final COMMIT) and never on
rollback; ``on_statement`` sees every statement.  Monitoring and the query cache hang on these."""

from __future__ import annotations

import pytest

from dataflow import DataFlow
from dataflow.drivers.hooks import written_tables


async def _define(db, tables):
    @db.model
    class Item:
        name: str
        qty: int = 0
        __tablename__ = tables("hk_items")
        __dataflow__ = {"unique": ["name"]}

    @db.model
    class Other:
        label: str
        __tablename__ = tables("hk_other")

    await db.initialize()
    return Item, Other


@pytest.fixture
async def hooked(db, tables):
    Item, Other = await _define(db, tables)
    commits: list = []
    stmts: list = []
    off_c = db.after_commit(lambda t: commits.append(set(t)))
    off_s = db.on_statement(lambda sql, s, ok: stmts.append((sql, ok)))
    yield db, Item, Other, commits, stmts
    off_c()
    off_s()


async def test_autocommit_writes_fire_once_each_reads_never(hooked):
    db, Item, Other, commits, stmts = hooked
    t = Item.__dataflow_model__.table
    row = await db.express.create(Item, {"name": "a"})
    await db.express.read(Item, row["id"])
    await db.express.list(Item, {"qty": 0})
    await db.express.count(Item)
    assert commits == [{t}]
    await db.express.update(Item, row["id"], {"qty": 2})
    await db.express.delete(Item, row["id"])
    await db.express.bulk_update(Item, {"qty": 5}, {"qty": 1}, confirmed=True)
    await db.express.bulk_delete(Item, {"qty": 7})
    assert commits == [{t}] * 5
    assert stmts and all(ok for _, ok in stmts)


async def test_a_transaction_fires_once_at_commit_with_every_table(hooked):
    db, Item, Other, commits, _ = hooked
    async with db.transaction():
        await db.express.create(Item, {"name": "a"})
        await db.express.create(Other, {"label": "x"})
        await db.express.create(Item, {"name": "b"})
        assert commits == []
    assert commits == [{Item.__dataflow_model__.table, Other.__dataflow_model__.table}]


async def test_rollback_fires_nothing(hooked):
    db, Item, Other, commits, _ = hooked
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.express.create(Item, {"name": "a"})
            raise RuntimeError("undo")
    assert commits == []
    assert await db.express.count(Item) == 0
    async with db.transaction():                      # a rolled-back savepoint inside a committed one
        await db.express.create(Other, {"label": "y"})
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await db.express.create(Item, {"name": "z"})
                raise RuntimeError("undo savepoint")
    assert len(commits) == 1 and Other.__dataflow_model__.table in commits[0]


async def test_failed_statement_fires_nothing_and_reports_not_ok(hooked):
    db, Item, Other, commits, stmts = hooked
    await db.express.create(Item, {"name": "dup"})
    commits.clear()
    with pytest.raises(Exception):
        await db.express.create(Item, {"name": "dup"})
    assert commits == []
    assert stmts[-1][1] is False


@pytest.mark.parametrize("n", [3, 2500])
async def test_bulk_writes_and_loads_fire_once(hooked, n):
    db, Item, Other, commits, _ = hooked
    t = Item.__dataflow_model__.table
    await db.load(Item, [{"name": f"l{i}"} for i in range(n)], progress=False)
    assert commits == [{t}]
    await db.express.bulk_create(Item, [{"name": f"b{i}"} for i in range(n)])
    assert commits == [{t}] * 2
    await db.express.bulk_upsert(Item, [{"name": f"b{i}", "qty": 3} for i in range(n)], conflict_on="name")
    assert commits == [{t}] * 3
    assert await db.express.count(Item, {"qty": 3}) == n


async def test_raw_statements_name_their_tables(hooked):
    db, Item, Other, commits, _ = hooked
    t = Item.__dataflow_model__.table
    q = db.dialect.quote
    await db.execute_raw(f"SELECT COUNT(*) FROM {q(t)}")
    assert commits == []
    await db.execute_raw(f"DELETE FROM {q(t)} WHERE {q('qty')} = 99")
    assert commits == [{t}]
    async with db.transaction() as tx:
        await tx.execute(f"UPDATE {q(t)} SET {q('qty')} = 1 WHERE {q('qty')} = 98")
    assert commits[-1] == {t}


async def test_a_failing_hook_never_fails_the_write(hooked):
    db, Item, Other, commits, _ = hooked

    def boom(tables):
        raise ValueError("observer bug")
    off = db.after_commit(boom)
    try:
        row = await db.express.create(Item, {"name": "still-written"})
    finally:
        off()
    assert (await db.express.read(Item, row["id"]))["name"] == "still-written"


async def test_async_hooks_run_before_the_write_returns(hooked):
    db, Item, Other, commits, _ = hooked
    seen = []

    async def invalidate(tables):
        seen.append(sorted(tables))
    off = db.after_commit(invalidate)
    try:
        await db.express.create(Item, {"name": "x"})
        assert seen == [[Item.__dataflow_model__.table]]
    finally:
        off()


async def test_no_hooks_no_observation(url, tables):
    db = DataFlow(url)
    try:
        Item, _ = await _define(db, tables)
        assert not db.driver.observed
        off = db.after_commit(lambda t: None)
        assert db.driver.observed
        off()
        assert not db.driver.observed
    finally:
        for t in db.list_tables():
            await db.execute_raw(db.dialect.drop_table_sql(t, if_exists=True))
        await db.close_async()


@pytest.mark.parametrize("sql,expected", [
    ("SELECT * FROM users", set()),
    ("  select 1", set()),
    ('INSERT INTO "users" (a) VALUES ($1)', {"users"}),
    ("UPDATE `shop`.`orders` SET x = 1", {"orders"}),
    ("DELETE FROM t1 WHERE id IN (SELECT id FROM t2)", {"t1", "t2"}),
    ("WITH d AS (DELETE FROM a RETURNING *) SELECT * FROM d", {"a", "d"}),
    ("WITH c AS (SELECT 1) SELECT * FROM c", set()),
    ("TRUNCATE TABLE logs", {"logs"}),
    ("CALL do_something()", {"*"}),
    ("SELECT * INTO newtab FROM old", {"newtab", "old"}),
])
def test_written_tables(sql, expected):
    assert set(written_tables(sql)) == expected
