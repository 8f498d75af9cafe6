"""db.transaction(), savepoints, isolation, run_in_transaction retries, transaction nodes and
monitoring -- on SQLite, PostgreSQL and MariaDB (the shared servers, own tables only)."""

from __future__ import annotations

import asyncio

import pytest

from dataflow import AsyncLocalRuntime, DataFlow, WorkflowBuilder
from dataflow import errors as E


async def define(db, tables):
    @db.model
    class Item:
        __tablename__ = tables("items")
        name: str
        qty: int = 0
    # Tables first: MySQL commits implicitly on DDL, so creating the table lazily inside a
    # transaction would end that transaction early.
    await db.initialize()
    return Item


def ph(db, n):
    return db.dialect.placeholder(n)


async def names_fresh(url, table):
    """Rows as seen from a brand-new DataFlow (a different connection)."""
    other = DataFlow(url)
    try:
        rows = await other.execute_raw(f"SELECT name FROM {other.dialect.quote(table)} ORDER BY name")
        return [r[0] for r in rows]
    finally:
        await other.close_async()


async def test_commit_rollback_and_raw_sql(db, tables, url):
    await define(db, tables)
    await db.initialize()
    t = db.list_tables()[0]
    q = db.dialect.quote(t)
    async with db.transaction() as tx:
        await db.express.create("Item", {"name": "a"})
        n = await tx.execute(f"INSERT INTO {q} (name, qty, created_at, updated_at) VALUES ({ph(db, 1)}, {ph(db, 2)}, "
                             f"CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)", "b", 2)
        assert n == 1
        rows = await tx.fetch(f"SELECT name FROM {q} WHERE qty >= {ph(db, 1)} ORDER BY name", 0)
        assert [r[0] for r in rows] == ["a", "b"]
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.express.create("Item", {"name": "gone"})
            await db.execute_raw(f"UPDATE {q} SET qty = 99")
            raise RuntimeError("boom")
    assert await names_fresh(url, t) == ["a", "b"]
    assert all(r["qty"] != 99 for r in await db.express.list("Item"))


async def test_nested_savepoints(db, tables, url):
    await define(db, tables)
    async with db.transaction():
        await db.express.create("Item", {"name": "outer"})
        with pytest.raises(ValueError):
            async with db.transaction() as inner:
                assert inner.nested
                await db.express.create("Item", {"name": "inner"})
                raise ValueError
        async with db.transaction():
            await db.express.create("Item", {"name": "kept"})
    assert await names_fresh(url, db.list_tables()[0]) == ["kept", "outer"]


async def test_rolled_back_scope_leaves_nothing_bulk_included(db, tables, url):
    """Every write in a rolled-back scope -- create, bulk, upsert, raw -- is absent afterwards."""
    await define(db, tables)
    await db.initialize()
    q = db.dialect.quote(db.list_tables()[0])
    with pytest.raises(KeyError):
        async with db.transaction():
            await db.express.create("Item", {"name": "one"})
            await db.express.bulk_create("Item", [{"name": f"b{i}", "qty": i} for i in range(300)])
            await db.express.upsert("Item", {"id": 9999, "name": "up"})
            await db.express.bulk_update("Item", {"qty": {"$gte": 0}}, {"qty": 7})
            await db.execute_raw(f"DELETE FROM {q} WHERE name = {ph(db, 1)}", "b1")
            assert await db.express.count("Item") == 301
            raise KeyError
    assert await names_fresh(url, db.list_tables()[0]) == []


async def test_isolation_levels(db, tables):
    await define(db, tables)
    await db.initialize()
    for level in ("read_committed", "repeatable_read", "SERIALIZABLE"):
        async with db.transaction(isolation_level=level) as tx:
            await db.express.create("Item", {"name": level})
            assert len(await tx.fetch(f"SELECT id FROM {db.dialect.quote(db.list_tables()[0])}")) >= 1
    with pytest.raises(E.ValidationError):
        async with db.transaction(isolation_level="chaos"):
            pass
    if db.dialect.name == "postgresql":
        async with db.transaction(isolation_level="serializable") as tx:
            assert (await tx.fetchval("SHOW transaction_isolation")) == "serializable"
    assert db.pool_stats()["active"] == 0


async def test_error_in_transaction_rolls_back_and_frees(db, tables, url):
    await define(db, tables)
    with pytest.raises(E.ValidationError):
        async with db.transaction():
            await db.express.create("Item", {"name": "x"})
            await db.express.create("Item", {"name": 5})
    assert await names_fresh(url, db.list_tables()[0]) == []
    assert db.pool_stats()["active"] == 0


async def test_concurrent_tasks_have_separate_transactions(db, tables, url):
    await define(db, tables)
    await db.initialize()

    async def work(i):
        try:
            async with db.transaction():
                await db.express.create("Item", {"name": f"w{i}"})
                await asyncio.sleep(0.01)
                if i % 2:
                    raise LookupError
        except LookupError:
            pass
    await asyncio.gather(*(work(i) for i in range(8)))
    assert await names_fresh(url, db.list_tables()[0]) == ["w0", "w2", "w4", "w6"]


# -- run_in_transaction: whole-transaction retries ---------------------------------------------
async def test_run_in_transaction_retries_conflicts_only(db, tables):
    await define(db, tables)
    calls = []

    async def flaky(tx):
        calls.append(1)
        await db.express.create("Item", {"name": f"try{len(calls)}"})
        if len(calls) < 3:
            raise E.TransactionConflictError("simulated deadlock")
        return "ok"
    assert await db.run_in_transaction(flaky, retries=3) == "ok"
    assert [r["name"] for r in await db.express.list("Item")] == ["try3"]

    async def broken(tx):
        calls.append(1)
        raise E.QueryError("not retryable")
    calls.clear()
    with pytest.raises(E.QueryError):
        await db.run_in_transaction(broken, retries=5)
    assert len(calls) == 1
    calls.clear()

    async def always(tx):
        calls.append(1)
        raise E.TransactionConflictError("again")
    with pytest.raises(E.TransactionConflictError):
        await db.run_in_transaction(always, retries=2)
    assert len(calls) == 3


@pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=False)
async def test_real_deadlock_resolved_by_retry(backend, tables, tmp_path):
    from .conftest import _backend_url

    url = _backend_url(backend, tmp_path)
    db = DataFlow(url, pool_size=4)
    t = tables("acct")
    q = db.dialect.quote(t)
    try:
        await db.execute_raw(f"CREATE TABLE {q} (id INT PRIMARY KEY, bal INT NOT NULL)")
        await db.execute_raw(f"INSERT INTO {q} VALUES (1, 100), (2, 100)")
        both_locked = asyncio.Barrier(2)
        attempts = {"a": 0, "b": 0}

        def transfer(key, first, second):
            async def body(tx):
                attempts[key] += 1
                await tx.execute(f"UPDATE {q} SET bal = bal - 1 WHERE id = {ph(db, 1)}", first)
                if attempts[key] == 1:
                    await both_locked.wait()  # both hold their first row: the next step deadlocks
                await tx.execute(f"UPDATE {q} SET bal = bal + 1 WHERE id = {ph(db, 1)}", second)
                return attempts[key]
            return body
        res = await asyncio.wait_for(asyncio.gather(
            db.run_in_transaction(transfer("a", 1, 2), retries=3),
            db.run_in_transaction(transfer("b", 2, 1), retries=3)), 30)
        assert sorted(res)[1] == 2, (res, attempts)  # exactly one side was retried
        rows = await db.execute_raw(f"SELECT id, bal FROM {q} ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, 100), (2, 100)]
        assert db.pool_stats()["active"] == 0
    finally:
        await db.execute_raw(f"DROP TABLE IF EXISTS {q}")
        await db.close_async()


# -- transaction nodes ------------------------------------------------------------------------
def scoped_wf(db, commit: bool, fail: bool):
    inst = db.name
    wf = WorkflowBuilder()
    wf.add_node("TransactionScopeNode", "tx", {"database": inst})
    wf.add_node("ItemCreateNode", "c1", {"name": "n1"})
    wf.add_connection("tx", "db_instance", "c1", "db_instance")
    wf.add_node("ItemBulkCreateNode", "bulk", {"data": [{"name": f"b{i}"} for i in range(50)]})
    wf.add_connection("c1", "id", "bulk", "batch_size")
    wf.add_node("ItemCreateNode", "c2", {"name": 5 if fail else "n2"})
    wf.add_connection("bulk", "inserted", "c2", "qty")
    if commit:
        wf.add_node("TransactionCommitNode", "commit", {})
        wf.add_connection("c2", "id", "commit", "after")
    return wf


async def test_scope_node_commit(db, tables, url):
    await define(db, tables)
    res = await AsyncLocalRuntime().execute_workflow_async(scoped_wf(db, True, False).build())
    assert res["commit"]["status"] == "committed"
    assert len(await names_fresh(url, db.list_tables()[0])) == 52
    assert db.pool_stats()["active"] == 0


async def test_scope_node_failing_node_rolls_back(db, tables, url):
    await define(db, tables)
    with pytest.raises(E.NodeExecutionError):
        await AsyncLocalRuntime().execute_workflow_async(scoped_wf(db, True, True).build())
    assert await names_fresh(url, db.list_tables()[0]) == []
    # raise_on_error=False: the failure is recorded, the commit node skipped, nothing written
    res = await AsyncLocalRuntime(raise_on_error=False).execute_workflow_async(scoped_wf(db, True, True).build())
    assert res["c2"]["failed"] and res["commit"].get("skipped")
    assert await names_fresh(url, db.list_tables()[0]) == []
    assert db.pool_stats()["active"] == 0


async def test_scope_never_committed_rolled_back_at_run_end(db, tables, url):
    await define(db, tables)
    await AsyncLocalRuntime().execute_workflow_async(scoped_wf(db, False, False).build())
    assert await names_fresh(url, db.list_tables()[0]) == []
    assert db.pool_stats()["active"] == 0


async def test_savepoint_nodes_and_outside_nodes(db, tables, url):
    await define(db, tables)
    inst = db.name
    wf = WorkflowBuilder()
    wf.add_node("TransactionContextNode", "tx", {"database": inst, "isolation_level": "READ_COMMITTED"})
    wf.add_node("ItemCreateNode", "keep", {"name": "keep"})
    wf.add_connection("tx", "db_instance", "keep", "db_instance")
    wf.add_node("TransactionSavepointNode", "sp", {"name": "before_drop"})
    wf.add_connection("keep", "id", "sp", "after")
    wf.add_node("ItemCreateNode", "drop", {"name": "drop"})
    wf.add_connection("sp", "savepoint", "drop", "name")
    wf.add_node("TransactionRollbackToSavepointNode", "undo", {"savepoint": "before_drop"})
    wf.add_connection("drop", "id", "undo", "after")
    wf.add_node("TransactionCommitNode", "commit", {})
    wf.add_connection("undo", "savepoint", "commit", "after")
    wf.add_node("ItemCreateNode", "later", {"name": "later"})  # after the commit: own autocommit
    wf.add_connection("commit", "status", "later", "name")
    wf.add_node("ItemCreateNode", "free", {"name": "free", "db_instance": inst})  # not in the scope
    res = await AsyncLocalRuntime().execute_workflow_async(wf.build())
    assert res["undo"]["status"] == "rolled_back_to_savepoint"
    assert await names_fresh(url, db.list_tables()[0]) == ["committed", "free", "keep"]

    wf2 = WorkflowBuilder()
    wf2.add_node("TransactionScopeNode", "tx", {"database": inst})
    wf2.add_node("ItemCreateNode", "x", {"name": "x"})
    wf2.add_connection("tx", "db_instance", "x", "db_instance")
    wf2.add_node("TransactionRollbackNode", "rb", {"reason": "test"})
    wf2.add_connection("x", "id", "rb", "after")
    res = await AsyncLocalRuntime().execute_workflow_async(wf2.build())
    assert res["rb"]["status"] == "rolled_back"
    assert "x" not in await names_fresh(url, db.list_tables()[0])

    wf3 = WorkflowBuilder()
    wf3.add_node("TransactionCommitNode", "c", {})
    with pytest.raises(E.NodeExecutionError, match="must depend on a TransactionScopeNode"):
        await AsyncLocalRuntime().execute_workflow_async(wf3.build())
    assert db.pool_stats()["active"] == 0


# -- monitoring -------------------------------------------------------------------------------
async def test_monitoring_metrics(url, tables):
    db = DataFlow(url, monitoring=True, slow_query_threshold=0.0)
    try:
        await define(db, tables)
        await db.express.create("Item", {"name": "m"})
        await db.express.list("Item")
        await db.express.count("Item")
        await db.execute_raw("SELECT 1")
        m = db.metrics()
        item = m["models"]["Item"]
        assert item["count"] >= 3 and item["errors"] == 0
        assert item["latency"]["buckets"]["+Inf"] == item["count"]
        assert item["latency"]["p95"] >= item["latency"]["p50"] >= 0
        assert "(raw)" in m["models"]
        assert m["slow_queries"] and m["slow_queries"][-1]["sql"]
        assert "pool" in m
    finally:
        for t in db.list_tables():
            await db.execute_raw(f"DROP TABLE IF EXISTS {db.dialect.quote(t)}")
        await db.close_async()
    plain = DataFlow("sqlite:///:memory:")
    assert plain.metrics()["models"] == {} and not plain.driver.observed and not plain.driver.hooks.on_statement
    await plain.close_async()
