"""The 11 generated nodes through real workflows, on every backend and on the document store
(the MongoDB stand-in always; a real server when DATAFLOW_TEST_MONGODB_URL is set)."""

from __future__ import annotations

import pytest

from dataflow import AsyncLocalRuntime, WorkflowBuilder
from dataflow import errors as E

from .conftest import BACKENDS


@pytest.fixture(params=BACKENDS + ["mongodb-standin", "mongodb"])
def backend(request):
    return request.param


def define(db, tables):
    @db.model
    class Customer:
        __tablename__ = tables("customers")
        name: str
        email: str
        tier: str = "free"
        __dataflow__ = {"unique": ["email"]}
    return Customer


async def run(wf, **inputs):
    return await AsyncLocalRuntime().execute_workflow_async(wf.build(), inputs=inputs)


async def test_all_eleven_nodes(db, tables):
    define(db, tables)
    inst = db.name
    wf = WorkflowBuilder()
    wf.add_node("CustomerCreateNode", "create", {"name": "${name}", "email": "a@x.io", "db_instance": inst,
                                                 "model_name": "Customer"})
    wf.add_node("CustomerReadNode", "read", {"db_instance": inst})
    wf.add_connection("create", "id", "read", "id")
    wf.add_node("CustomerUpdateNode", "update", {"fields": {"tier": "pro"}, "db_instance": inst})
    wf.add_connection("read", "id", "update", "filter.id")
    wf.add_node("CustomerBulkCreateNode", "bulk", {"data": [{"name": f"n{i}", "email": f"{i}@x"} for i in range(5)],
                                                   "db_instance": inst})
    wf.add_node("CustomerListNode", "list", {"filter": {"tier": "free"}, "order_by": ["-id"], "limit": 3,
                                             "db_instance": inst})
    wf.add_connection("bulk", "inserted", "list", "offset")
    wf.add_node("CustomerCountNode", "count", {"db_instance": inst})
    wf.add_connection("update", "record.tier", "count", "filter.tier")  # dotted path into a nested input
    res, run_id = await run(wf, name="Ada")
    assert res["create"]["name"] == "Ada" and res["create"]["id"]
    assert res["read"]["found"] is True and res["read"]["email"] == "a@x.io"
    assert res["update"]["updated"] is True and res["update"]["record"]["tier"] == "pro"
    assert res["bulk"]["inserted"] == 5 and res["bulk"]["success"] is True
    assert res["list"]["limit"] == 3 and res["list"]["offset"] == 5
    assert res["count"]["count"] == 1  # only the updated row has tier "pro"
    assert isinstance(run_id, str)

    wf = WorkflowBuilder()
    wf.add_node("CustomerCountNode", "before", {})
    wf.add_node("CustomerUpsertNode", "ups", {"where": {"email": "a@x.io"}, "update": {"name": "Ada L"},
                                             "create": {"name": "never", "email": "a@x.io"}})
    wf.add_node("CustomerUpsertNode", "ups2", {"where": {"email": "new@x"}, "create": {"name": "New"}})
    wf.add_node("CustomerBulkUpdateNode", "bu", {"filter": {"tier": "free"}, "fields": {"tier": "basic"}})
    res = await run(wf)
    assert res["before"]["count"] == 6
    assert res["ups"]["created"] is False and res["ups"]["record"]["name"] == "Ada L"
    assert res["ups2"]["action"] == "created"
    assert res["bu"]["updated"] >= 5

    wf = WorkflowBuilder()
    wf.add_node("CustomerBulkUpsertNode", "bups", {"data": [{"name": "X", "email": "0@x"}, {"name": "Y", "email": "y@x"}],
                                                   "conflict_on": ["email"]})
    res = await run(wf)
    assert res["bups"]["inserted"] == 1 and res["bups"]["updated"] == 1
    wf = WorkflowBuilder()  # independent nodes run concurrently, so the delete gets its own run
    wf.add_node("CustomerBulkDeleteNode", "bdel", {"filter": {"tier": "basic"}})
    res = await run(wf)
    assert res["bdel"]["deleted"] >= 1

    wf = WorkflowBuilder()
    wf.add_node("CustomerListNode", "all", {"count_only": True})
    wf.add_node("CustomerListNode", "first", {"limit": 1, "fields": ["id"]})
    wf.add_node("CustomerDeleteNode", "del", {})
    wf.add_connection("first", "records.0.id", "del", "id")
    res = await run(wf)
    assert res["del"]["deleted"] is True and res["del"]["rows_affected"] == 1
    assert res["all"]["count"] >= 1


async def test_node_errors(db, tables):
    define(db, tables)
    bad = [
        ("CustomerCreateNode", {"data": {"name": "x", "email": "y"}}, "flat fields"),
        ("CustomerCreateNode", {"name": "x", "email": "y", "created_at": "now"}, "managed automatically"),
        ("CustomerReadNode", {"id": 123456}, "not found"),
        ("CustomerUpdateNode", {"filter": {"tier": "free"}, "fields": {"tier": "x"}}, "identify one row by id"),
        ("CustomerBulkDeleteNode", {"filter": {}}, "confirmed=True"),
        ("CustomerListNode", {"filter": {"name; DROP": 1}}, "unknown field"),
        ("CustomerListNode", {"bogus": 1}, "unknown parameter"),
        ("CustomerCreateNode", {"name": "x", "email": "y", "model_name": "Other"}, "does not match"),
    ]
    for node, params, msg in bad:
        wf = WorkflowBuilder()
        wf.add_node(node, "n", params)
        with pytest.raises(E.NodeExecutionError, match=msg):
            await run(wf)
    wf = WorkflowBuilder()
    wf.add_node("CustomerReadNode", "n", {"id": 123456, "raise_on_not_found": False})
    res = await run(wf)
    assert res["n"] == {"id": 123456, "found": False}
    with pytest.raises(E.WorkflowError, match="did you mean CustomerCreateNode"):
        WorkflowBuilder().add_node("Customer_Create", "x", {})
    with pytest.raises(E.WorkflowError, match="no DataFlow instance named 'my_db'"):
        WorkflowBuilder().add_node("CustomerCreateNode", "x", {"db_instance": "my_db"})
