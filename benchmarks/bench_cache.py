"""The query cache, same run: an in-process hit against the real query (PostgreSQL point read
and 100-row list; target: a hit costs at most 5 % of the query), a Redis hit against a raw
redis-py GET of the same payload (target <= 1.5x), and what invalidation adds to a single-row
write (target <= 1.05x)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys

from benchmarks.timing import ainterleaved, failed, row

PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
G_HIT = "cache: in-process hit vs the query (PostgreSQL)"
G_REDIS = "cache: Redis hit vs raw redis-py GET"
G_WRITE = "cache: invalidation on a single-row write (PostgreSQL)"


def _define(db, table):
    @db.model
    class BenchC:
        name: str
        email: str
        age: int = 0
        score: float = 0.0
        active: bool = True
        __tablename__ = table


async def _bench(calls, repeats):
    out = []
    plain = DataFlow_(PG_URL)
    mem = DataFlow_(PG_URL, cache_enabled=True)
    red = DataFlow_(PG_URL, cache_enabled=True, redis_url=REDIS_URL)
    for d in (plain, mem, red):
        _define(d, "bench_cache")
    try:
        await plain.execute_raw('DROP TABLE IF EXISTS "bench_cache"')
        plain._ready = False
        await plain.initialize()
        await plain.express.bulk_create("BenchC", [{"name": f"u{i}", "email": f"u{i}@x", "age": i % 80}
                                                   for i in range(1000)])
        ids = [r["id"] for r in await plain.express.list("BenchC", limit=1000)]
        one = ids[7]
        await mem.initialize()
        await red.initialize()

        async def q_read():
            return await plain.express.read("BenchC", one)

        async def hit_read():
            return await mem.express.read("BenchC", one)

        async def q_list():
            return await plain.express.list("BenchC", {"age": {"$gte": 0}}, limit=100)

        async def hit_list():
            return await mem.express.list("BenchC", {"age": {"$gte": 0}}, limit=100)
        assert await hit_read() == await q_read() and await hit_list() == await q_list()
        t = await ainterleaved({"q": q_read, "hit": hit_read}, calls, repeats)
        out += [row(G_HIT, "express.read, the query", t["q"]),
                row(G_HIT, "express.read, in-process hit", t["hit"], "express.read, the query",
                    "a copy of the cached row", target_ratio=0.05)]
        t = await ainterleaved({"q": q_list, "hit": hit_list}, max(20, calls // 5), repeats)
        out += [row(G_HIT, "express.list(limit=100), the query", t["q"]),
                row(G_HIT, "express.list(limit=100), in-process hit", t["hit"], "express.list(limit=100), the query",
                    "copies of 100 cached rows", target_ratio=0.05)]

        # Redis hit: evict the local copy so every call decodes the payload fetched from Redis,
        # against a raw GET of the same bytes
        import redis.asyncio as aredis

        import dataflow.cache.codec as codec
        raw = aredis.Redis.from_url(REDIS_URL)
        payload = codec.dumps(await q_read())
        await raw.set("bench:cache:payload", payload)

        async def raw_get():
            return await raw.get("bench:cache:payload")

        async def raw_get_decode():
            return codec.loads(await raw.get("bench:cache:payload"))

        async def redis_hit():
            red.cache.lru.clear()
            return await red.express.read("BenchC", one)

        async def redis_hit_local():
            return await red.express.read("BenchC", one)
        await redis_hit()
        t = await ainterleaved({"raw": raw_get, "rawd": raw_get_decode, "hit": redis_hit, "local": redis_hit_local},
                               calls, repeats)
        await raw.delete("bench:cache:payload")
        await raw.aclose()
        base = "raw redis-py GET of the same payload"
        out += [row(G_REDIS, base, t["raw"], note=f"{len(payload)} bytes"),
                row(G_REDIS, "raw GET + decode", t["rawd"], base, "reference"),
                row(G_REDIS, "express.read, Redis hit (generation check + value, decoded)", t["hit"], base,
                    "one MGET round trip", target_ratio=1.5),
                row(G_REDIS, "express.read, Redis hit with a current local copy", t["local"], base,
                    "generation check only")]

        # invalidation on write: the same update with and without the cache hooks
        wid = itertools.cycle(ids[100:200])

        async def w_plain():
            return await plain.express.update("BenchC", next(wid), {"age": 1})

        async def w_mem():
            return await mem.express.update("BenchC", next(wid), {"age": 2})

        async def w_redis():
            return await red.express.update("BenchC", next(wid), {"age": 3})
        t = await ainterleaved({"p": w_plain, "m": w_mem, "r": w_redis}, calls, repeats)
        base = "express.update, no cache"
        out += [row(G_WRITE, base, t["p"]),
                row(G_WRITE, "express.update, in-process cache (generation bump)", t["m"], base, target_ratio=1.05),
                row(G_WRITE, "express.update, Redis cache (INCR before returning)", t["r"], base,
                    "one more round trip, to Redis")]
    finally:
        await plain.execute_raw('DROP TABLE IF EXISTS "bench_cache"')
        for d in (plain, mem, red):
            await d.close_async()
    return out


def DataFlow_(*a, **k):
    from dataflow import DataFlow
    return DataFlow(*a, **k)


def run(quick: bool) -> list[dict]:
    calls, repeats = (100, 7) if quick else (300, 21)
    try:
        return asyncio.run(_bench(calls, repeats))
    except Exception as exc:
        return [failed(G_HIT, "express.read, in-process hit", exc)]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
