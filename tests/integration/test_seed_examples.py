"""The well-known project's README examples, as written, run here (on SQLite; the same code paths
are covered on PostgreSQL and MariaDB elsewhere).  Among them the ones that fail there:
testing helpers, ``adapter=``, ``TransactionContextNode``, ``"{param}"`` templates, ``$like``,
top-level ``$or``."""

from __future__ import annotations

import pytest

from dataflow import DataFlow, LocalRuntime, WorkflowBuilder
from dataflow import errors as E


def test_critical_rules_create_flat_update_nested(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/app.db", name="my_db")

    @db.model
    class User:
        id: str
        name: str
        email: str

    wf = WorkflowBuilder()
    wf.add_node("UserCreateNode", "create", {"db_instance": "my_db", "model_name": "User",
                                             "id": "user_001", "name": "Alice", "email": "alice@example.com"})
    wf.add_node("UserUpdateNode", "update", {"db_instance": "my_db", "model_name": "User",
                                             "filter": {"id": "user_001"}, "fields": {"name": "Alice Updated"}})
    wf.add_connection("create", "id", "update", "filter.id")
    results, run_id = LocalRuntime().execute(wf.build())
    assert results["create"]["id"] == "user_001"
    assert results["update"]["record"]["name"] == "Alice Updated"
    db.close()


def test_list_with_like_and_top_level_or_and_query_builder():
    db = DataFlow("sqlite:///:memory:")

    @db.model
    class User:
        name: str
        email: str
        age: int = 0
        status: str = "active"

    for n, e, a, s in [("Alice", "admin@company.com", 30, "active"), ("Bob", "bob@x.io", 17, "premium"),
                       ("Ann", "ann@company.com", 45, "gone")]:
        db.express_sync.create("User", {"name": n, "email": e, "age": a, "status": s})
    wf = WorkflowBuilder()
    wf.add_node("UserCreateNode", "create_user", {"name": "Alicia", "email": "alicia@example.com", "age": 20})
    wf.add_node("UserListNode", "find_users", {"filter": {"name": {"$like": "A%"}}})
    wf.add_node("UserListNode", "search", {"filter": {"age": {"$gte": 18}, "status": {"$in": ["active", "premium"]},
                                                      "email": {"$regex": "^admin"}}})
    wf.add_node("UserListNode", "either", {"filter": {"$or": [{"age": {"$lt": 18}}, {"status": "gone"}]}})
    results, _ = LocalRuntime().execute(wf.build())
    assert {r["name"] for r in results["search"]["records"]} == {"Alice"}
    assert {r["name"] for r in results["either"]["records"]} == {"Bob", "Ann"}
    builder = User.query_builder()
    builder.where("age", "$gte", 18)
    builder.where("status", "$in", ["active", "premium"])
    builder.where("email", "$regex", r"^[a-z]+@company\.com$")
    builder.order_by("created_at", "DESC")
    builder.limit(10)
    sql, params = builder.build_select()
    assert sql.startswith('SELECT * FROM "users" WHERE') and sql.endswith('ORDER BY "created_at" DESC LIMIT 10')
    assert params == [18, "active", "premium", r"^[a-z]+@company\.com$"]
    db.close()


def test_ecommerce_templates_and_transaction_context_node(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/shop.db")

    @db.model
    class Product:
        id: int
        name: str
        price: float
        stock: int

    @db.model
    class Order:
        id: int
        user_id: int
        total: float
        status: str = "new"

    p = db.express_sync.create("Product", {"name": "Lamp", "price": 20.0, "stock": 5})
    wf = WorkflowBuilder()
    wf.add_node("ProductGetNode", "check_stock", {"id": "{product_id}"})
    wf.add_node("TransactionContextNode", "tx_start")
    wf.add_node("OrderCreateNode", "create_order", {"user_id": "{user_id}", "total": "{total}"})
    wf.add_node("ProductUpdateNode", "update_stock", {"id": "{product_id}", "stock": "{new_stock}"})
    wf.add_connection("tx_start", "db_instance", "create_order", "db_instance")
    wf.add_connection("tx_start", "db_instance", "update_stock", "db_instance")
    wf.add_node("TransactionCommitNode", "commit")
    wf.add_connection("create_order", "id", "commit", "after_order")
    wf.add_connection("update_stock", "id", "commit", "after_stock")
    results, _ = LocalRuntime().execute(wf.build(), parameters={"product_id": p["id"], "user_id": 7,
                                                                 "total": 20.0, "new_stock": 4})
    assert results["check_stock"]["stock"] == 5
    assert results["create_order"]["total"] == 20.0
    assert db.express_sync.read("Product", p["id"])["stock"] == 4
    assert db.express_sync.count("Order") == 1
    db.close()


def test_high_performance_etl_example():
    db = DataFlow(":memory:")

    @db.model
    class User:
        name: str
        email: str
        active: bool = True
        __dataflow__ = {"unique": ["email"]}

    users_data = [{"name": f"u{i}", "email": f"u{i % 900}@x", "active": i % 2 == 0} for i in range(1000)]
    wf = WorkflowBuilder()
    wf.add_node("UserBulkCreateNode", "import_users", {"data": users_data, "batch_size": 1000,
                                                       "conflict_resolution": "skip"})
    wf.add_node("UserListNode", "active_users", {"limit": 1000, "offset": 0, "order_by": ["created_at"],
                                                 "filter": {"active": True}})
    wf.add_connection("import_users", "inserted", "active_users", "offset")
    results, _ = LocalRuntime().execute(wf.build())
    assert results["import_users"]["inserted"] == 900 and results["import_users"]["skipped"] == 100
    db.close()


def test_testing_helpers():
    db = DataFlow(testing=True)

    @db.model
    class User:
        id: int
        name: str

    user = db.test_create(User, name="Test User")
    assert user.name == "Test User" and user.id == 1
    db.test_reset()
    assert db.express_sync.count("User") == 0
    db.close()


def test_documented_import_paths():
    from dataflow.adapters import MongoDBAdapter, PostgreSQLVectorAdapter
    from dataflow.nodes.vector_nodes import VectorSearchNode
    from dataflow.nodes import registry

    assert registry.resolve("VectorSearchNode") is VectorSearchNode
    assert PostgreSQLVectorAdapter("postgresql://localhost/vectordb", vector_dimensions=8).database_url
    assert MongoDBAdapter("mongodb://localhost:27017/ecommerce").database_name == "ecommerce"  # no I/O yet
    from dataflow.nodes.mongodb_nodes import AggregateNode, MongoAggregateNode
    assert registry.resolve("AggregateNode") is AggregateNode is MongoAggregateNode

