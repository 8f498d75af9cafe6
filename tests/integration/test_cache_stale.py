"""The stale-read checker: several processes do random reads and writes through DataFlow on one
PostgreSQL database with the Redis cache on.  Every operation is logged with wall-clock start
and end (one machine, one clock).  A read that starts after a write to the same row was
acknowledged must return that write's value or a later one: it is stale if the value it returned
was written by a write that had finished before that acknowledged write even began."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
import uuid

import pytest

from .conftest import _backend_url
from .test_cache import REDIS_URL, _redis_up

PROCS = 4
OPS_PER_PROC = 2600
KEYS = 8


def _worker(url, table, ids, seed, out):
    import asyncio

    from dataflow import DataFlow

    async def main():
        db = DataFlow(url, cache_enabled=True, redis_url=REDIS_URL, pool_size=2)

        @db.model
        class Cell:
            k: int
            v: str
            __tablename__ = table
        rnd = random.Random(seed)
        log = []
        try:
            for i in range(OPS_PER_PROC):
                rid = rnd.choice(ids)
                if rnd.random() < 0.25:
                    token = f"{seed}-{i}"
                    t0 = time.time()
                    await db.express.update("Cell", rid, {"v": token})
                    log.append(("w", rid, token, t0, time.time()))
                else:
                    t0 = time.time()
                    row = await db.express.read("Cell", rid)
                    log.append(("r", rid, row["v"], t0, time.time()))
            stats = db.cache_stats()
        finally:
            await db.close_async()
        return log, stats

    out.put(asyncio.run(main()))


def test_no_stale_reads_across_processes(tmp_path):
    if not _redis_up():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Redis not reachable (CI=true)")
        pytest.skip("Redis not reachable")
    url = _backend_url("postgresql", tmp_path)
    import asyncio

    from dataflow import DataFlow
    table = f"t_stale_{uuid.uuid4().hex[:8]}"

    async def setup():
        db = DataFlow(url)

        @db.model
        class Cell:
            k: int
            v: str
            __tablename__ = table
        rows = [await db.express.create("Cell", {"k": i, "v": "init"}) for i in range(KEYS)]
        await db.close_async()
        return [r["id"] for r in rows]
    ids = asyncio.run(setup())
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, table, ids, s, q)) for s in range(PROCS)]
    try:
        for p in procs:
            p.start()
        results = [q.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()

        async def drop():
            db = DataFlow(url)
            await db.execute_raw(f'DROP TABLE IF EXISTS "{table}"')
            await db.close_async()
        asyncio.run(drop())
    log = [e for r in results for e in r[0]]
    hits = sum(r[1]["hits"] for r in results)
    writes = {}                                  # token -> (start, end)
    by_key: dict = {}
    for kind, rid, val, t0, t1 in log:
        if kind == "w":
            writes[val] = (t0, t1)
            by_key.setdefault(rid, []).append((t1, t0, val))
    for lst in by_key.values():
        lst.sort()
    stale = []
    reads = 0
    for kind, rid, val, t0, t1 in log:
        if kind != "r":
            continue
        reads += 1
        acked = [w for w in by_key.get(rid, []) if w[0] < t0]      # writes acknowledged before the read began
        if not acked:
            continue
        latest_end, latest_start, _ = acked[-1]
        got = writes.get(val, (-1.0, -1.0))                         # "init": written before everything
        if got[1] < latest_start:
            stale.append((rid, val, t0))
    print(f"\n{len(log)} operations ({reads} reads, {len(log) - reads} writes) in {PROCS} processes, "
          f"{hits} cache hits, {len(stale)} stale reads")
    assert len(log) >= 10_000
    assert hits > 1000, "the cache was not serving (nothing would be tested)"
    assert not stale, stale[:5]
