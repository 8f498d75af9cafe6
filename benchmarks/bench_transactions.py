"""db.transaction() around one INSERT vs the raw driver's own transaction (asyncpg, aiomysql),
timed interleaved on the same server and table."""

from __future__ import annotations

import asyncio
import os

from .timing import ainterleaved

GROUP = "transaction overhead"
PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MY_URL = os.environ.get("DATAFLOW_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


async def _pg(calls, repeats):
    import asyncpg

    from dataflow import DataFlow

    db = DataFlow(PG_URL, pool_size=2)
    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=2)
    await db.execute_raw("CREATE TABLE IF NOT EXISTS bench_tx (v INT)")
    try:
        async def ours():
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO bench_tx VALUES ($1)", 1)

        async def raw():
            async with pool.acquire() as con:
                async with con.transaction():
                    await con.execute("INSERT INTO bench_tx VALUES ($1)", 1)
        res = await ainterleaved({"ours": ours, "raw": raw}, calls, repeats)
    finally:
        await db.execute_raw("DROP TABLE IF EXISTS bench_tx")
        await pool.close()
        await db.close_async()
    raw = "asyncpg pool.acquire() + con.transaction(): 1 insert"
    return [{"group": GROUP + " (PostgreSQL)", "case": raw, "median_s": res["raw"], "baseline": None, "note": ""},
            {"group": GROUP + " (PostgreSQL)", "case": "async with db.transaction(): 1 insert",
             "median_s": res["ours"], "baseline": raw, "note": ""}]


async def _my(calls, repeats):
    import aiomysql

    from dataflow import DataFlow

    db = DataFlow(MY_URL, pool_size=2)
    pool = await aiomysql.create_pool(host="127.0.0.1", port=3306, user="root", db="test", minsize=1,
                                      maxsize=2, autocommit=True)
    await db.execute_raw("CREATE TABLE IF NOT EXISTS bench_tx (v INT) ENGINE=InnoDB")
    try:
        async def ours():
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO bench_tx VALUES (%s)", 1)

        async def raw():
            async with pool.acquire() as con:
                await con.begin()
                async with con.cursor() as cur:
                    await cur.execute("INSERT INTO bench_tx VALUES (%s)", (1,))
                await con.commit()
        res = await ainterleaved({"ours": ours, "raw": raw}, calls, repeats)
    finally:
        await db.execute_raw("DROP TABLE IF EXISTS bench_tx")
        pool.close()
        await pool.wait_closed()
        await db.close_async()
    raw = "aiomysql pool.acquire() + begin/commit: 1 insert"
    return [{"group": GROUP + " (MariaDB)", "case": raw, "median_s": res["raw"], "baseline": None, "note": ""},
            {"group": GROUP + " (MariaDB)", "case": "async with db.transaction(): 1 insert",
             "median_s": res["ours"], "baseline": raw, "note": ""}]


def run(quick: bool) -> list[dict]:
    calls, repeats = (50, 5) if quick else (200, 15)
    out: list[dict] = []
    for fn, label in ((_pg, "PostgreSQL"), (_my, "MariaDB")):
        try:
            out += asyncio.run(fn(calls, repeats))
        except Exception as exc:  # a missing server is reported, not fatal
            out.append({"group": GROUP, "case": f"{label}: db.transaction()", "median_s": None,
                        "baseline": None, "note": f"failed: {type(exc).__name__}: {exc}"})
    return out


if __name__ == "__main__":
    for row in run(quick=False):
        print(f"{row['group']:<40} {row['case']:<55} {row['median_s'] or 0:.6f}s  {row['note']}")
