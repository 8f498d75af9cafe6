"""Pool sizing, pool_timeout (never a second pool), state reset between borrowers -- shared
servers (own sessions and tables only) and SQLite."""

from __future__ import annotations

import asyncio
import time

import pytest

from dataflow import DataFlow, pools
from dataflow import errors as E

from .conftest import _backend_url


def test_derive_rules(monkeypatch):
    for v in pools.WORKER_VARS + ("DATAFLOW_STARTUP_VALIDATION",):
        monkeypatch.delenv(v, raising=False)
    assert pools.worker_count() == 1
    assert pools.derive(None, 100, 3, workers=4) == 20
    assert pools.derive(None, 100, 3, workers=8) == 10
    assert pools.derive(None, 20, 3, workers=1) == 16  # min(17, 80 % of 20)
    assert pools.derive(None, 10, 3, workers=100) == 1
    assert pools.derive(7, 100, 3, workers=1) == 7
    with pytest.warns(ResourceWarning, match="80 %"):
        assert pools.derive(50, 100, 3, workers=2) == 50
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert pools.worker_count() == 4
    monkeypatch.setenv("DATAFLOW_WORKER_COUNT", "2")
    assert pools.worker_count() == 2  # DataFlow's own variable wins
    monkeypatch.setenv("DATAFLOW_STARTUP_VALIDATION", "false")
    assert not pools.startup_validation()


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
async def test_size_from_server(backend, tmp_path, monkeypatch):
    url = _backend_url(backend, tmp_path)
    monkeypatch.setenv("DATAFLOW_WORKER_COUNT", "3")
    monkeypatch.delenv("DATAFLOW_POOL_SIZE", raising=False)
    db = DataFlow(url)
    try:
        info = await db.driver.server_info()
        size = db.pool_stats()["max"]
        assert 1 <= size * 3 <= info["max_connections"] * 0.8
        assert size == min(pools.MAX_DERIVED, size)
    finally:
        await db.close_async()
    monkeypatch.setenv("DATAFLOW_STARTUP_VALIDATION", "false")
    db = DataFlow(url)
    try:
        await db.execute_raw("SELECT 1")
        assert db.pool_stats()["max"] == pools.DEFAULT_SIZE
    finally:
        await db.close_async()
    monkeypatch.setenv("DATAFLOW_POOL_SIZE", "3")
    db = DataFlow(url)
    try:
        await db.execute_raw("SELECT 1")
        assert db.pool_stats()["max"] == 3
    finally:
        await db.close_async()


async def test_pool_timeout_then_error_never_a_second_pool(url):
    db = DataFlow(url, pool_size=1, pool_timeout=0.3)
    try:
        await db.execute_raw("SELECT 1")
        held = asyncio.Event()
        release = asyncio.Event()

        async def hold():
            async with db.transaction():
                held.set()
                await release.wait()
        holder = asyncio.create_task(hold())
        await held.wait()
        t0 = time.monotonic()
        with pytest.raises(E.DatabaseConnectionError, match="timed out"):
            await db.execute_raw("SELECT 1")
        assert 0.25 <= time.monotonic() - t0 < 2
        assert db.pool_stats()["max"] == 1 and db.pool_stats()["active"] == 1
        release.set()
        await holder
        assert (await db.execute_raw("SELECT 1"))[0][0] == 1
        assert db.pool_stats()["active"] == 0
    finally:
        await db.close_async()


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
async def test_session_state_never_leaks(backend, tmp_path):
    url = _backend_url(backend, tmp_path)
    db = DataFlow(url, pool_size=1)
    try:
        if backend == "postgresql":
            await db.execute_raw("SET application_name = 'leaky'")
            await db.execute_raw("SET search_path TO pg_catalog")
            await db.execute_raw("SELECT pg_advisory_lock(4242)")
            assert (await db.execute_raw("SELECT current_setting('application_name')"))[0][0] != "leaky"
            assert (await db.execute_raw("SELECT current_setting('search_path')"))[0][0] != "pg_catalog"
            rows = await db.execute_raw("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                        "AND pid = pg_backend_pid()")
            assert rows[0][0] == 0
        else:
            await db.execute_raw("SET @leak = 5")
            await db.execute_raw("SET SESSION sql_mode = ''")
            await db.execute_raw("SELECT GET_LOCK('df_leak_test', 0)")
            assert (await db.execute_raw("SELECT @leak"))[0][0] is None
            assert "STRICT_ALL_TABLES" in (await db.execute_raw("SELECT @@SESSION.sql_mode"))[0][0]
            assert (await db.execute_raw("SELECT IS_USED_LOCK('df_leak_test')"))[0][0] is None
            assert (await db.execute_raw("SELECT @@time_zone"))[0][0] == "+00:00"
    finally:
        await db.close_async()


async def test_open_transaction_rolled_back_before_reuse(url, tables, backend):
    db = DataFlow(url, pool_size=1)
    t = tables("reuse")
    q = db.dialect.quote(t)
    try:
        await db.execute_raw(f"CREATE TABLE {q} (id INT PRIMARY KEY)")
        if backend != "sqlite":
            async with db.driver.connection() as raw:  # a raw borrower that forgets to commit
                if backend == "postgresql":
                    await raw.execute("BEGIN")
                    await raw.execute(f"INSERT INTO {q} VALUES (1)")
                else:
                    async with raw.cursor() as cur:
                        await cur.execute("BEGIN")
                        await cur.execute(f"INSERT INTO {q} VALUES (1)")
        else:
            with pytest.raises(RuntimeError):
                async with db.transaction():
                    await db.execute_raw(f"INSERT INTO {q} VALUES (1)")
                    raise RuntimeError
        other = DataFlow(url)
        try:
            assert (await other.execute_raw(f"SELECT COUNT(*) FROM {q}"))[0][0] == 0
        finally:
            await other.close_async()
        assert (await db.execute_raw(f"SELECT COUNT(*) FROM {q}"))[0][0] == 0
        async with db.transaction():  # the reused connection can start a fresh transaction
            await db.execute_raw(f"INSERT INTO {q} VALUES (2)")
        assert (await db.execute_raw(f"SELECT COUNT(*) FROM {q}"))[0][0] == 1
    finally:
        await db.execute_raw(f"DROP TABLE IF EXISTS {q}")
        await db.close_async()
