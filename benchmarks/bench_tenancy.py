"""Tenancy overhead on PostgreSQL: a tenant-scoped point read and a 100-row list against the
same model without tenancy, in the same run (target: at most 1.05x).

Both tables hold the same 2,000 rows; the tenant table spreads them over 10 tenants (so the
scoped list reads 100 of the bound tenant's 200 rows through the tenant_id index, like the
plain one reads 100 of its rows)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys

from benchmarks.timing import ainterleaved, failed, row

PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
G_READ = "tenancy: point read by id (PostgreSQL)"
G_LIST = "tenancy: 100-row list (PostgreSQL)"


async def _bench(calls: int, repeats: int) -> list[dict]:
    from dataflow import DataFlow

    db = DataFlow(PG_URL, pool_size=4)

    @db.model
    class BenchPlain:
        name: str
        score: int = 0
        __tablename__ = "bench_tn_plain"

    @db.model
    class BenchTenant:
        name: str
        score: int = 0
        __tablename__ = "bench_tn_tenant"
        __dataflow__ = {"multi_tenant": True}

    try:
        for t in ("bench_tn_plain", "bench_tn_tenant"):
            await db.execute_raw(f'DROP TABLE IF EXISTS "{t}"')
        db._ready = False
        await db.initialize()
        await db.express.bulk_create("BenchPlain", [{"name": f"u{i}", "score": i % 7} for i in range(2000)])
        for k in range(10):
            async with db.tenant(f"t{k}"):
                await db.express.bulk_create("BenchTenant", [{"name": f"u{i}", "score": i % 7} for i in range(200)])
        plain_ids = itertools.cycle([r["id"] for r in await db.express.list("BenchPlain", limit=2000)])
        async with db.tenant("t3"):
            t_ids = itertools.cycle([r["id"] for r in await db.express.list("BenchTenant", limit=2000)])

            async def plain_read():
                return await db.express.read("BenchPlain", next(plain_ids))

            async def tenant_read():
                return await db.express.read("BenchTenant", next(t_ids))

            async def plain_list():
                return await db.express.list("BenchPlain", {"score": {"$gte": 0}}, limit=100)

            async def tenant_list():
                return await db.express.list("BenchTenant", {"score": {"$gte": 0}}, limit=100)

            assert len(await tenant_list()) == 100 and (await tenant_read())["tenant_id"] == "t3"
            reads = await ainterleaved({"plain": plain_read, "tenant": tenant_read}, calls, repeats)
            lists = await ainterleaved({"plain": plain_list, "tenant": tenant_list}, max(20, calls // 5), repeats)
    finally:
        async with db.all_tenants():
            for t in ("bench_tn_plain", "bench_tn_tenant"):
                await db.execute_raw(f'DROP TABLE IF EXISTS "{t}"')
        await db.close_async()
    base_r, base_l = "express.read, model without tenancy", "express.list(limit=100), model without tenancy"
    return [row(G_READ, base_r, reads["plain"]),
            row(G_READ, "express.read, tenant model inside db.tenant()", reads["tenant"], base_r,
                "tenant predicate from the statement layer", target_ratio=1.05),
            row(G_LIST, base_l, lists["plain"]),
            row(G_LIST, "express.list(limit=100), tenant model inside db.tenant()", lists["tenant"], base_l,
                "10 tenants x 200 rows; tenant_id index", target_ratio=1.05)]


def run(quick: bool) -> list[dict]:
    calls, repeats = (100, 7) if quick else (300, 21)
    try:
        return asyncio.run(_bench(calls, repeats))
    except Exception as exc:
        return [failed(G_READ, "express.read, tenant model inside db.tenant()", exc)]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
