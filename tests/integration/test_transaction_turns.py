"""One transaction, one connection: statements of a transaction take turns on it (gathered
tasks, concurrent workflow nodes, savepoints), and the first use of a model inside a transaction
never waits for a second connection -- on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio

import pytest

from dataflow import AsyncLocalRuntime, DataFlow, WorkflowBuilder
from dataflow import errors as E

from .test_transactions import define, names_fresh


# -- statements of one transaction take turns ---------------------------------------------------
async def test_gathered_statements_of_one_transaction_take_turns(db, tables, url):
    await define(db, tables)
    async with db.transaction() as tx:
        made = await asyncio.gather(*(db.express.create("Item", {"name": f"g{i}", "qty": i}) for i in range(20)))
        counts = await asyncio.gather(*(db.express.count("Item") for _ in range(10)),
                                      *(tx.fetch("SELECT 1") for _ in range(5)))
        assert all(c == 20 for c in counts[:10])
        async with db.transaction():  # a savepoint shares the outer turn
            await asyncio.gather(*(db.express.update("Item", r["id"], {"qty": 100}) for r in made[:5]))
    assert len(await names_fresh(url, db.list_tables()[0])) == 20
    assert await db.express.count("Item", {"qty": 100}) == 5
    assert db.pool_stats()["active"] == 0


async def test_concurrent_workflow_nodes_in_one_transaction(db, tables, url):
    await define(db, tables)
    wf = WorkflowBuilder()
    for i in range(8):  # independent nodes: the async runtime runs them concurrently
        wf.add_node("ItemCreateNode", f"c{i}", {"name": f"w{i}"})
        wf.add_node("ItemListNode", f"l{i}", {"filter": {"qty": 0}, "limit": 50})
    async with db.transaction():
        res = await AsyncLocalRuntime(max_concurrency=16).execute_workflow_async(wf.build())
    assert sorted(res[f"c{i}"]["name"] for i in range(8)) == [f"w{i}" for i in range(8)]
    assert len(await names_fresh(url, db.list_tables()[0])) == 8


async def test_statement_after_the_transaction_ended_is_refused(db, tables):
    await define(db, tables)
    async with db.transaction() as tx:
        conn = tx.conn
    with pytest.raises(E.ValidationError, match="already ended"):
        await conn.fetch("SELECT 1")


# -- first use of a model inside a transaction ----------------------------------------------------
@pytest.fixture
def db_kwargs():
    # before the fix SQLite waited pool_timeout for its one connection; keep that wait short
    return {"pool_timeout": 3}


def lazy_model(db, tables):
    @db.model
    class Lazy:
        __tablename__ = tables("lazy")
        name: str
    return Lazy


async def test_first_use_inside_transaction_does_not_wait_for_another_connection(db, tables, url):
    lazy_model(db, tables)
    async with db.transaction() as tx:
        await db.express.create("Lazy", {"name": "a"})
        await db.express.create("Lazy", {"name": "b"})
        assert await db.express.count("Lazy") == 2
        assert tx.active
    assert await names_fresh(url, db.list_tables()[0]) == ["a", "b"]
    assert db.pool_stats()["active"] == 0


async def test_first_use_inside_rolled_back_transaction(db, tables, url):
    lazy_model(db, tables)
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await asyncio.gather(*(db.express.create("Lazy", {"name": f"r{i}"}) for i in range(3)))
            raise RuntimeError("undo")
    # the rows are gone; the table is usable afterwards (SQLite: recreated, its DDL was undone too)
    assert await db.express.count("Lazy") == 0
    await db.express.create("Lazy", {"name": "after"})
    assert await names_fresh(url, db.list_tables()[0]) == ["after"]


async def test_first_use_inside_a_scope_node(db, tables, url):
    lazy_model(db, tables)
    wf = WorkflowBuilder()
    wf.add_node("TransactionScopeNode", "tx", {"database": db.name})
    wf.add_node("LazyCreateNode", "a", {"name": "a"})
    wf.add_connection("tx", "db_instance", "a", "db_instance")
    wf.add_node("LazyCreateNode", "b", {"name": "b"})
    wf.add_connection("tx", "db_instance", "b", "db_instance")
    wf.add_node("TransactionCommitNode", "commit", {})
    wf.add_connection("a", "id", "commit", "after")
    wf.add_connection("b", "id", "commit", "also")
    res = await AsyncLocalRuntime().execute_workflow_async(wf.build())
    assert res["commit"]["status"] == "committed"
    assert await names_fresh(url, db.list_tables()[0]) == ["a", "b"]


# -- the seed README's E-Commerce example: an unconnected TransactionContextNode -------------------
def shop(db, tables):
    @db.model
    class Product:
        __tablename__ = tables("product")
        id: int
        name: str
        price: float
        stock: int

    @db.model
    class Order:
        __tablename__ = tables("order")
        id: int
        user_id: int
        total: float
        status: str


def ecommerce_workflow():
    """As the seed README writes it (plus the required ``status``): nothing is connected."""
    workflow = WorkflowBuilder()
    workflow.add_node("ProductGetNode", "check_stock", {"id": "{product_id}"})
    workflow.add_node("TransactionContextNode", "tx_start")
    workflow.add_node("OrderCreateNode", "create_order", {"user_id": "{user_id}", "total": "{total}",
                                                          "status": "placed"})
    workflow.add_node("ProductUpdateNode", "update_stock", {"id": "{product_id}", "stock": "{new_stock}"})
    return workflow


async def test_ecommerce_example_runs_in_one_transaction(db, tables, url):
    shop(db, tables)
    p = await db.express.create("Product", {"name": "Lamp", "price": 20.0, "stock": 5})
    rt = AsyncLocalRuntime()
    results, _ = await rt.execute_workflow_async(
        ecommerce_workflow().build(), {"product_id": p["id"], "user_id": 7, "total": 20.0, "new_stock": 4})
    assert results["check_stock"]["stock"] == 5
    assert results["create_order"]["status"] == "placed"
    assert (await db.express.read("Product", p["id"]))["stock"] == 4
    assert await db.express.count("Order") == 1
    # a failing node rolls the whole scope back: the order written before it is gone too
    with pytest.raises(E.NodeExecutionError, match="update_stock"):
        await rt.execute_workflow_async(
            ecommerce_workflow().build(), {"product_id": p["id"], "user_id": 8, "total": 1.0, "new_stock": "many"})
    assert await db.express.count("Order") == 1
    assert (await db.express.read("Product", p["id"]))["stock"] == 4
    assert db.pool_stats()["active"] == 0


async def test_unconnected_scope_with_commit_node_is_left_to_it(db, tables):
    shop(db, tables)
    p = await db.express.create("Product", {"name": "Lamp", "price": 20.0, "stock": 5})
    wf = ecommerce_workflow()
    wf.add_node("TransactionRollbackNode", "undo")
    wf.add_connection("update_stock", "id", "undo", "after")
    await AsyncLocalRuntime().execute_workflow_async(
        wf.build(), {"product_id": p["id"], "user_id": 7, "total": 20.0, "new_stock": 4})
    assert await db.express.count("Order") == 0
    assert (await db.express.read("Product", p["id"]))["stock"] == 5


async def test_unconnected_scope_fed_by_a_node_added_before_it(db, tables, url):
    """A write outside the scope (added before it) feeding a node inside it: the scope's
    transaction begins when its first member runs, so the outside node never waits for the
    connection the scope holds (SQLite has one writer: this waited out pool_timeout)."""
    shop(db, tables)

    def wf():
        w = WorkflowBuilder()
        w.add_node("ProductCreateNode", "make", {"name": "Lamp", "price": 20.0, "stock": 5})
        w.add_node("TransactionContextNode", "tx")
        w.add_node("OrderCreateNode", "order", {"user_id": 7, "status": "placed"})
        w.add_connection("make", "price", "order", "total")
        w.add_node("ProductUpdateNode", "take", {"stock": "{new_stock}"})
        w.add_connection("make", "id", "take", "id")
        return w.build()
    for rt in (AsyncLocalRuntime(), AsyncLocalRuntime(max_concurrency=1)):
        results, _ = await asyncio.wait_for(rt.execute_workflow_async(wf(), {"new_stock": 4}), 20)
        assert results["order"]["total"] == 20.0, results
    assert await db.express.count("Order") == 2
    with pytest.raises(E.NodeExecutionError, match="take"):
        await asyncio.wait_for(AsyncLocalRuntime().execute_workflow_async(wf(), {"new_stock": "many"}), 20)
    # the scope rolled back: no third order; the product made outside it stays
    assert await db.express.count("Order") == 2
    assert await db.express.count("Product") == 3
    assert db.pool_stats()["active"] == 0
