"""The query cache on real databases (SQLite, PostgreSQL, MariaDB) and the real Redis: never
stale for writes made through DataFlow, rollbacks never cached, tenant and database identity in
the keys, TTL, the generation fence, bounds, and Redis going away and coming back.

The tests that take ``url`` run on the document store too: on the MongoDB stand-in always and on
a real server with DATAFLOW_TEST_MONGODB_URL (raw SQL steps are left out there, and transaction
steps run only where the server has transactions)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time

import pytest

from dataflow import DataFlow

from .conftest import BACKENDS, drop_all

REDIS_URL = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up(url=REDIS_URL) -> bool:
    from urllib.parse import urlsplit
    u = urlsplit(url)
    try:
        with socket.create_connection((u.hostname, u.port or 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=BACKENDS + ["mongodb-standin", "mongodb"])
def backend(request):
    """The SQL backends and the document store (conftest's ``url`` maps the mongodb names)."""
    return request.param


def _open(url, **kw) -> DataFlow:
    if url.startswith("mongodb://standin/"):
        kw["testing"] = True            # the in-process stand-in (conftest.mongodb_url)
    return DataFlow(url, **kw)


async def _has_transactions(db) -> bool:
    return not db.documents or await db.driver.transactions_supported()


@pytest.fixture(params=["memory", "redis"])
def cache_kind(request):
    if request.param == "redis" and not _redis_up():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL} (CI=true)")
        pytest.skip("Redis not reachable")
    return request.param


def _kw(kind, **extra):
    kw = {"cache_enabled": True, **extra}
    if kind == "redis":
        kw["redis_url"] = REDIS_URL
    return kw


async def _define(db, tables, tenant=False):
    @db.model
    class Item:
        name: str
        qty: int = 0
        tags: list = []
        __tablename__ = tables("ca_items")
        __dataflow__ = {"unique": ["name"], "multi_tenant": tenant}
    await db.initialize()
    return Item


async def _drop(db):
    if db.documents:
        await drop_all(db)
        return
    async with db.all_tenants():
        for t in db.list_tables():
            await db.execute_raw(db.dialect.drop_table_sql(t, if_exists=True))
    await db.close_async()


async def test_every_write_path_makes_later_reads_fresh(url, tables, cache_kind, tmp_path):
    db = _open(url, **_kw(cache_kind))
    try:
        Item = await _define(db, tables)
        x = db.express
        a = await x.create(Item, {"name": "a", "qty": 1})

        async def check(expect_qty, expect_count):
            for _ in range(2):                      # the second read may be a hit: still fresh
                got = await x.read(Item, a["id"])
                assert (got["qty"] if got else None) == expect_qty
                assert await x.count(Item) == expect_count
                assert sorted(r["qty"] for r in await x.list(Item, limit=1000))[:1] == (
                    [] if expect_count == 0 else sorted(r["qty"] for r in await x.list(Item, cache=False, limit=1000))[:1])
        await check(1, 1)
        await x.update(Item, a["id"], {"qty": 2}); await check(2, 1)                     # noqa: E702
        await x.upsert(Item, {"name": "a", "qty": 3}, conflict_on="name"); await check(3, 1)  # noqa: E702
        await x.bulk_update(Item, {"name": "a"}, {"qty": 4}); await check(4, 1)          # noqa: E702
        await x.bulk_create(Item, [{"name": f"b{i}"} for i in range(5)]); await check(4, 6)  # noqa: E702
        await x.bulk_upsert(Item, [{"name": "a", "qty": 5}], conflict_on="name"); await check(5, 6)  # noqa: E702
        await db.load(Item, [{"name": f"l{i}"} for i in range(3)], progress=False); await check(5, 9)  # noqa: E702
        if not db.documents:                                    # raw SQL: the SQL stores only
            q = db.dialect.quote
            await db.execute_raw(f"UPDATE {q(Item.__dataflow_model__.table)} SET {q('qty')} = 6 WHERE {q('name')} = 'a'")
        else:
            await x.update(Item, a["id"], {"qty": 6})
        await check(6, 9)
        if await _has_transactions(db):
            async with db.transaction():
                await x.update(Item, a["id"], {"qty": 7})
                assert (await x.read(Item, a["id"]))["qty"] == 7   # its own write, not from the cache
            await check(7, 9)
            with pytest.raises(RuntimeError):
                async with db.transaction():
                    await x.update(Item, a["id"], {"qty": 8})
                    await x.read(Item, a["id"])
                    raise RuntimeError("roll back")
        else:                                                   # MongoDB without a replica set
            await x.update(Item, a["id"], {"qty": 7})
        await check(7, 9)                                       # the rolled-back value never cached
        await x.bulk_delete(Item, {"name": {"$ne": "a"}}); await check(7, 1)  # noqa: E702
        await x.delete(Item, a["id"]); await check(None, 0)      # noqa: E702
        s = db.cache_stats()
        assert s["hits"] > 0 and s["invalidations"] == 11   # one per committed write, none for the rollback
    finally:
        await _drop(db)


async def test_hits_are_copies_and_cache_false_skips(url, tables, cache_kind):
    db = _open(url, **_kw(cache_kind))
    try:
        Item = await _define(db, tables)
        a = await db.express.create(Item, {"name": "a", "tags": ["x"]})
        r = await db.express.read(Item, a["id"])
        r["tags"].append("mutated")
        r["name"] = "mutated"
        again = await db.express.read(Item, a["id"])
        assert again["name"] == "a" and again["tags"] == ["x"]
        hits = db.cache_stats()["hits"]
        await db.express.read(Item, a["id"], cache=False)
        assert db.cache_stats()["hits"] == hits
    finally:
        await _drop(db)


async def test_tenant_and_database_identity_are_in_the_keys(url, tables, cache_kind, tmp_path):
    db = _open(url, multi_tenant=True, **_kw(cache_kind))
    other = DataFlow(f"sqlite:///{tmp_path}/other.db", multi_tenant=True, **_kw(cache_kind))
    try:
        Item = await _define(db, tables, tenant=True)
        await _define(other, tables, tenant=True)
        for t, n in (("acme", 2), ("beta", 3)):
            async with db.tenant(t):
                await db.express.bulk_create(Item, [{"name": f"{t}{i}"} for i in range(n)])
        for _ in range(2):
            async with db.tenant("acme"):
                assert await db.express.count(Item) == 2
            async with db.tenant("beta"):
                assert await db.express.count(Item) == 3
            async with other.tenant("acme"):
                assert await other.express.count("Item") == 0    # same statement, another database
    finally:
        await _drop(db)
        await _drop(other)


async def test_ttl_expires_writes_made_behind_dataflows_back(tmp_path, tables, cache_kind):
    url = f"sqlite:///{tmp_path}/ttl.db"
    db = DataFlow(url, **_kw(cache_kind, cache_ttl=0.3))
    try:
        Item = await _define(db, tables)
        a = await db.express.create(Item, {"name": "a", "qty": 1})
        assert (await db.express.read(Item, a["id"]))["qty"] == 1
        import sqlite3
        con = sqlite3.connect(f"{tmp_path}/ttl.db")
        con.execute(f'UPDATE "{Item.__dataflow_model__.table}" SET "qty" = 9')
        con.commit()
        con.close()
        assert (await db.express.read(Item, a["id"]))["qty"] == 1          # behind DataFlow's back: cached
        await asyncio.sleep(0.4)
        assert (await db.express.read(Item, a["id"]))["qty"] == 9          # ... until the TTL
    finally:
        await _drop(db)


async def test_a_read_that_started_before_a_write_never_stores_its_old_result(url, tables, cache_kind):
    db = _open(url, **_kw(cache_kind))
    try:
        Item = await _define(db, tables)
        a = await db.express.create(Item, {"name": "a", "qty": 1})
        t = db._table(Item)
        orig = t._read
        entered, release = asyncio.Event(), asyncio.Event()

        async def slow(sql, params):
            row = await orig(sql, params)                 # reads the old row ...
            entered.set()
            await release.wait()                          # ... and is slow to come back
            return row
        t._read = slow
        reader = asyncio.ensure_future(db.express.read(Item, a["id"]))
        await entered.wait()
        t._read = orig
        await db.express.update(Item, a["id"], {"qty": 2})  # committed (and invalidated) meanwhile
        release.set()
        assert (await reader)["qty"] == 1                  # the slow read returns what it read
        assert (await db.express.read(Item, a["id"]))["qty"] == 2   # but did not store it as current
        assert db.cache_stats()["fenced"] >= 1
    finally:
        await _drop(db)


async def test_bounds_evict_least_recently_used(tmp_path, tables):
    db = DataFlow(f"sqlite:///{tmp_path}/b.db", cache_enabled=True, cache_max_entries=3)
    try:
        Item = await _define(db, tables)
        rows = [await db.express.create(Item, {"name": f"n{i}"}) for i in range(5)]
        for r in rows:
            await db.express.read(Item, r["id"])
        s = db.cache_stats()
        assert s["entries"] == 3 and s["evictions"] == 2
    finally:
        await _drop(db)


async def test_two_instances_sharing_redis_see_each_others_writes(url, tables):
    """Two DataFlows (as two processes would: separate local copies) on one database and one Redis."""
    if not _redis_up():
        pytest.skip("Redis not reachable")
    if url.startswith("mongodb://standin/"):
        pytest.skip("each MongoDB stand-in holds its own data: two instances never share a database")
    a_db = DataFlow(url, **_kw("redis"))
    b_db = DataFlow(url, **_kw("redis"))
    try:
        Item = await _define(a_db, tables)
        await _define(b_db, tables)
        row = await a_db.express.create(Item, {"name": "x", "qty": 1})
        for i in range(2, 30):
            assert (await b_db.express.read("Item", row["id"]))["qty"] == i - 1
            assert (await b_db.express.read("Item", row["id"]))["qty"] == i - 1      # a hit
            await a_db.express.update(Item, row["id"], {"qty": i})
            assert (await b_db.express.read("Item", row["id"]))["qty"] == i          # fresh at once
        assert b_db.cache_stats()["hits"] >= 28
    finally:
        await b_db.close_async()
        await _drop(a_db)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed")
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if _redis_up(f"redis://127.0.0.1:{port}/0"):
            return p
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("private redis-server did not start")


async def test_redis_stopped_and_started_mid_run(tmp_path, tables, caplog):
    """A private redis-server on another port, stopped and restarted while reads and writes go on:
    nothing fails, one warning, reads stay fresh, and the cache comes back by itself."""
    port = _free_port()
    proc = _start_redis(port)
    db = DataFlow(f"sqlite:///{tmp_path}/r.db", cache_enabled=True, redis_url=f"redis://127.0.0.1:{port}/0")
    try:
        Item = await _define(db, tables)
        row = await db.express.create(Item, {"name": "x", "qty": 0})
        value = 0

        async def round_trip():
            nonlocal value
            value += 1
            await db.express.update(Item, row["id"], {"qty": value})
            assert (await db.express.read(Item, row["id"]))["qty"] == value
            assert (await db.express.read(Item, row["id"]))["qty"] == value
        for _ in range(5):
            await round_trip()
        hits_before = db.cache_stats()["hits"]
        assert hits_before > 0
        proc.terminate()
        proc.wait()
        with caplog.at_level(logging.WARNING, logger="dataflow.cache"):
            for _ in range(5):
                await round_trip()                      # Redis gone: database answers, writes succeed
        assert db.cache_stats()["errors"] >= 1
        assert sum("unreachable" in r.message for r in caplog.records) == 1
        proc = _start_redis(port)
        await asyncio.sleep(1.1)                        # past the back-off
        for _ in range(5):
            await round_trip()
        assert db.cache_stats()["hits"] > hits_before   # serving from the restarted Redis
        assert not db.cache_stats()["redis_down"]
    finally:
        await _drop(db)
        proc.kill()
