"""One pool per event loop, closed with its loop, all loops within one budget (issue 14, item 3).

A DataFlow used through ``asyncio.run`` per call sees a new loop every time; each loop's pool
must be closed when that loop ends, or every call leaves its connections open on the server
until it refuses new clients.  Sessions are counted on the server for the sockets this process
holds, so other users of the shared servers do not disturb the count.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys

import pytest

from dataflow import DataFlow

from .conftest import _backend_url

RUNS = 200


def _our_ports(server_port: int) -> set[int]:
    """Local ports of this process's TCP connections to ``server_port`` (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, remote, state, inode = f[1], f[2], f[3], f[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port and state == "01":
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


async def _server_sessions(backend: str, url: str, ports: set[int]) -> int:
    """Sessions the server holds for the given client ports."""
    if not ports:
        return 0
    probe = DataFlow(url, pool_size=1)
    try:
        if backend == "postgresql":
            rows = await probe.execute_raw(
                "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY($1::int[])", [sorted(ports)])
        else:
            rows = await probe.execute_raw(
                "SELECT HOST FROM information_schema.PROCESSLIST WHERE HOST LIKE %s", ["%:%"])
            return sum(1 for (host,) in rows if int(str(host).rsplit(":", 1)[1]) in ports)
        return int(rows[0][0])
    finally:
        await probe.close_async()


@pytest.fixture
def unraisable(monkeypatch):
    """Exceptions raised in finalizers (``Exception ignored in ...``) during the test."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(f"{u.exc_type.__name__}: {u.exc_value}"))
    return seen


def _model(db):
    @db.model
    class PoolLoop:
        name: str
    return PoolLoop


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_asyncio_run_per_call_keeps_sessions_within_budget(backend, tmp_path, unraisable):
    url = _backend_url(backend, tmp_path)
    server_port = int(url.rsplit(":", 1)[1].split("/")[0])
    db = DataFlow(url)
    _model(db)
    stats_before = db.pool_stats()
    budget = stats_before["max"]
    baseline = _our_ports(server_port)
    try:
        for i in range(RUNS):
            assert asyncio.run(db.express.count("PoolLoop")) == 0
            held = _our_ports(server_port) - baseline
            # stop at the first excess: an unfixed build must not exhaust the shared server
            assert len(held) <= budget, f"run {i + 1}: {len(held)} connections held, budget {budget}"
        held = _our_ports(server_port) - baseline
        assert asyncio.run(_server_sessions(backend, url, held)) <= budget
        # every loop above has ended, so nothing of theirs may stay open
        assert held == set(), f"{len(held)} connections of closed loops still open"
        assert db.pool_stats() == {**stats_before}  # "max" is the same budget before and after
    finally:
        asyncio.run(db.close_async())
        del db
        gc.collect()
    assert [u for u in unraisable if "Event loop is closed" in u] == []


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_loop_closed_without_shutdown_is_released(backend, tmp_path, unraisable):
    """A loop closed without ``shutdown_asyncgens`` (``loop.close()`` by hand): its pool is
    abandoned -- sockets closed without the dead loop -- when another loop next needs one."""
    url = _backend_url(backend, tmp_path)
    server_port = int(url.rsplit(":", 1)[1].split("/")[0])
    db = DataFlow(url)
    _model(db)
    baseline = _our_ports(server_port)
    try:
        for _ in range(5):
            loop = asyncio.new_event_loop()
            loop.run_until_complete(db.express.count("PoolLoop"))
            loop.close()
        assert asyncio.run(db.express.count("PoolLoop")) == 0
        assert _our_ports(server_port) - baseline == set()
    finally:
        asyncio.run(db.close_async())
        del db
        gc.collect()
    assert [u for u in unraisable if "Event loop is closed" in u] == []


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
async def test_loops_share_one_budget(backend, tmp_path):
    """Two live loops (this one and a thread's) never hold more than pool_size together: the
    second takes the first's idle connections instead of opening more."""
    url = _backend_url(backend, tmp_path)
    server_port = int(url.rsplit(":", 1)[1].split("/")[0])
    baseline = _our_ports(server_port)
    db = DataFlow(url, pool_size=2)
    _model(db)
    try:
        async def burst():
            async def hold():
                async with db.transaction():
                    await asyncio.sleep(0.05)
            await asyncio.gather(hold(), hold())
        await burst()  # this loop now holds 2 idle connections
        loop = asyncio.new_event_loop()
        try:
            await asyncio.to_thread(loop.run_until_complete, burst())
            assert len(_our_ports(server_port) - baseline) <= 2
            assert db.pool_stats()["max"] == 2
        finally:
            await asyncio.to_thread(loop.run_until_complete, db.close_async())
            loop.close()
    finally:
        await db.close_async()


def test_sqlite_asyncio_run_per_call(tmp_path, unraisable):
    db = DataFlow(f"sqlite:///{tmp_path}/loops.db")
    _model(db)
    before = db.pool_stats()
    for _ in range(RUNS):
        assert asyncio.run(db.express.count("PoolLoop")) == 0
    assert db.pool_stats()["max"] == before["max"] == 1
    asyncio.run(db.close_async())
    del db
    gc.collect()
    assert [u for u in unraisable if "Event loop is closed" in u] == []
