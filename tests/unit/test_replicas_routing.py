"""Read-replica routing decisions that need no server: which statements may run on a replica,
how log positions compare, the session a sync call or a workflow run carries, and the options."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from dataflow import DataFlow, sessions
from dataflow.drivers.replicas import _gtid_covers, _gtids, _lsn, _pg_covers, is_read, use_primary, _PRIMARY
from dataflow.errors import ConfigurationError


@pytest.mark.parametrize("sql", [
    'SELECT "id", "v" FROM "items" WHERE "id" = $1',
    "select count(*) from items",
    "  WITH t AS (SELECT 1) SELECT * FROM t",
    "SELECT inet_server_port()",
    'SELECT "id" FROM "updates" WHERE "intosomething" = 1',   # words inside names are no verbs
    "VALUES (1), (2)",
])
def test_reads_that_may_go_to_a_replica(sql):
    assert is_read(sql)


@pytest.mark.parametrize("sql", [
    "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t", "CREATE TABLE t (a int)",
    "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
    "SELECT * FROM t FOR UPDATE", "SELECT * FROM t FOR SHARE", "SELECT * FROM t FOR NO KEY UPDATE",
    "SELECT * FROM t LOCK IN SHARE MODE", "SELECT * INTO t2 FROM t",
    "SELECT nextval('s')", "SELECT pg_advisory_lock(1)", "SELECT pg_try_advisory_lock(1)",
    "SELECT GET_LOCK('m', 1)", "SELECT RELEASE_LOCK('m')", "SELECT set_config('a.b', 'c', true)",
    "SELECT @@auto_increment_increment", "SELECT current_setting('max_connections')",
    "SELECT LAST_INSERT_ID()", "SELECT pg_current_wal_lsn()", "SELECT txid_current()",
    "SHOW WARNINGS", "SET x = 1", "BEGIN", "SELECT pg_sleep(1)", "",
])
def test_statements_that_stay_on_the_primary(sql):
    assert not is_read(sql)


def test_postgresql_positions():
    assert _lsn("0/3000060") == 0x3000060 and _lsn("1/0") == 1 << 32 and _lsn(None) is None
    assert _pg_covers(100, 100) and _pg_covers(101, 100) and not _pg_covers(99, 100)
    # an idle primary's insert position just past a page header: the record ended at the boundary
    page = 5 * 8192
    assert _pg_covers(page, page + 24) and _pg_covers(page, page + 40)
    assert not _pg_covers(page - 8, page + 24) and not _pg_covers(page, page + 48)


def test_mariadb_gtid_positions():
    assert _gtids("0-1-42,1-2-7") == {0: 42, 1: 7} and _gtids("") == {} and _gtids(None) == {}
    assert _gtid_covers({0: 42, 1: 7}, {0: 42}) and _gtid_covers({0: 43}, {0: 42})
    assert not _gtid_covers({0: 41}, {0: 42}) and not _gtid_covers({0: 50}, {0: 1, 1: 1})


def test_use_primary_sync_and_async():
    assert _PRIMARY.get() is False
    with use_primary():
        assert _PRIMARY.get() is True
    assert _PRIMARY.get() is False

    async def inside():
        async with DataFlow(":memory:").use_primary():
            return _PRIMARY.get()
    assert asyncio.run(inside()) is True


def test_sync_calls_of_a_thread_share_one_session(monkeypatch):
    from dataflow._loop import run_sync

    monkeypatch.setattr(sessions, "enabled", True)   # set by the first DataFlow with replicas

    async def mine():
        return sessions.current()
    a, b = run_sync(mine()), run_sync(mine())
    assert a is not None and a is b
    assert sessions.current() is None  # the thread's own context is left as it was


def test_a_workflow_run_opens_a_session_before_node_tasks(monkeypatch):
    monkeypatch.setattr(sessions, "enabled", True)
    from dataflow import AsyncLocalRuntime, WorkflowBuilder
    from dataflow.nodes.base import Node

    class Probe(Node):
        async def run(self, ctx, **kw):
            return {"session": id(sessions.current())}
    wf = WorkflowBuilder()
    for n in ("a", "b", "c"):
        wf.add_node(Probe, n, {})
    wf.add_connection("a", "session", "c", "x")

    async def go():
        res, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build())
        return {res[n]["session"] for n in "abc"}

    got = contextvars.Context().run(asyncio.run, go())
    assert len(got) == 1 and None not in got


def test_read_url_options():
    with pytest.raises(ConfigurationError, match="read_pool_size"):
        DataFlow("mysql://h/db", read_url="mysql://r/db", read_pool_size=0)
    with pytest.raises(ConfigurationError, match="non-empty list"):
        DataFlow("mysql://h/db", read_url=[])
    db = DataFlow("mysql://h/db", read_url=["mysql://r1/db", "mysql://r2/db"], read_pool_size=3)
    assert [u.host for u in db.config.read_urls] == ["r1", "r2"]
    assert [r.driver.config.pool_size for r in db.driver.replicas] == [3, 3]
    assert DataFlow("postgresql://h/db", read_replica_url="postgresql://r/db").config.read_urls[0].host == "r"
    assert sessions.enabled


def test_without_replicas_no_session_is_opened(monkeypatch):
    from dataflow._loop import run_sync

    monkeypatch.setattr(sessions, "enabled", False)

    async def mine():
        return sessions.current()
    assert run_sync(mine()) is None
