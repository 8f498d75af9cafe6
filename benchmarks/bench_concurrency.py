"""Throughput under concurrency: express read / list / create with 1, 8, 32 and 128 tasks at
once against the raw driver's own pool of the same size (10), on PostgreSQL and MariaDB, and a
one-node workflow under ``AsyncLocalRuntime`` with 32 concurrent runs.

What single-call medians (``bench_macro``) cannot show: pool hand-over, the event loop's
scheduling and per-statement bookkeeping when many tasks compete.  Each case is a *round*: ``N``
operations drawn by ``C`` worker tasks from one counter; ops/s is ``N`` / the round's wall time,
and every operation's latency is kept for p50/p99.  DataFlow and raw rounds alternate
(A/B/B/A/...) on one uvloop loop so a neighbour's load lands on both sides of a ratio; the
median over rounds is reported.  ``median_s`` of a row is seconds per operation (1 / ops/s),
so the ratio column reads "how much slower than the raw driver" (target: at most 1/0.95); the
note adds the client process's CPU per operation, a steadier figure on a shared machine.

Raw baselines return what the driver returns (asyncpg ``Record`` / aiomysql tuples); DataFlow
returns decoded dicts.  On PostgreSQL the baseline is asyncpg's pool as it comes, which sends
its reset query after every statement; DataFlow skips that round trip after plain statements
(``drivers/postgresql._session_kept``), so a third row, asyncpg's pool with ``reset=`` a no-op,
shows the raw driver without it: the lower bound for what DataFlow adds.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import sys
import time

try:  # part of the package (python -m benchmarks) or run as a script
    from .timing import failed, row
except ImportError:  # pragma: no cover
    from timing import failed, row

PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MY_URL = os.environ.get("DATAFLOW_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
TABLE = "bench_conc_items"
POOL = 10
LEVELS = (1, 8, 32, 128)
COLS = ("id", "name", "email", "age", "score", "active", "created_at", "updated_at")
#: throughput at least 0.95x the raw driver's: seconds per op at most 1/0.95 of its
TARGET = round(1 / 0.95, 3)


def _define(db) -> None:
    @db.model
    class ConcItem:
        __tablename__ = TABLE
        name: str
        email: str
        age: int = 0
        score: float = 0.0
        active: bool = True


def _items(n: int) -> list[dict]:
    return [{"name": f"item{i}", "email": f"item{i}@example.com", "age": 20 + i % 50, "score": i * 0.5,
             "active": i % 3 != 0} for i in range(n)]


async def _round(op, n: int, conc: int) -> tuple[float, list[float], float]:
    """``n`` calls of ``op(i)`` by ``conc`` workers: (wall seconds, per-call latencies, this
    process's CPU seconds -- the client's own cost, steadier than wall time on a busy machine)."""
    counter = itertools.count()
    lat: list[float] = []
    clock = time.perf_counter

    async def worker():
        for i in counter:
            if i >= n:
                return
            t0 = clock()
            await op(i)
            lat.append(clock() - t0)

    c0, t0 = time.process_time(), clock()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return clock() - t0, lat, time.process_time() - c0


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def _compare(cases: dict, n: int, conc: int, repeats: int) -> dict[str, dict]:
    """Interleaved rounds of every case at concurrency ``conc``: median ops/s, p50, p99."""
    for op in cases.values():  # warm: statement caches, pool filled to its size
        await _round(op, max(conc * 2, n // 10), conc)
    walls: dict[str, list[float]] = {k: [] for k in cases}
    lats: dict[str, list[float]] = {k: [] for k in cases}
    cpus: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(repeats):
        order = list(cases.items())
        if r % 2:
            order.reverse()
        for name, op in order:
            wall, lat, cpu = await _round(op, n, conc)
            walls[name].append(wall / n)
            cpus[name].append(cpu / n)
            lats[name].extend(lat)
    return {k: {"s_per_op": statistics.median(walls[k]), "p50": _pct(lats[k], 0.5), "p99": _pct(lats[k], 0.99),
                "cpu": statistics.median(cpus[k])} for k in cases}


def _note(m: dict) -> str:
    return (f"{1 / m['s_per_op']:,.0f} ops/s, p50 {m['p50'] * 1e3:.2f} ms, p99 {m['p99'] * 1e3:.2f} ms, "
            f"client CPU {m['cpu'] * 1e6:.1f} µs/op")


def _rows(group: str, res: dict, raw_case: str, ours_case: str, conc: int, target: bool,
          bare_case: str | None = None) -> list[dict]:
    out = []
    cases = [("raw", raw_case), ("ours", ours_case)]
    if bare_case:
        cases.insert(1, ("bare", bare_case))
    for key, case in cases:
        m = res[key]
        note = _note(m)
        extra = {"target_ratio": TARGET} if key == "ours" and target else {}
        extra["cpu_s"] = m["cpu"]
        out.append(row(group, f"{case}, {conc} tasks", m["s_per_op"],
                       None if key == "raw" else f"{raw_case}, {conc} tasks", note, **extra))
    return out


# -- PostgreSQL ---------------------------------------------------------------------------------
async def _pg(n: int, repeats: int) -> list[dict]:
    import asyncpg

    from dataflow import DataFlow

    db = DataFlow(PG_URL, pool_size=POOL)
    _define(db)
    pool = await asyncpg.create_pool(PG_URL, min_size=POOL, max_size=POOL)

    async def no_reset(con):
        pass

    # the lower bound: asyncpg's pool without its reset query on release (DataFlow skips that
    # round trip after plain statements; the pool above, asyncpg's default, runs it every time)
    bare = await asyncpg.create_pool(PG_URL, min_size=POOL, max_size=POOL, reset=no_reset)
    out: list[dict] = []
    try:
        await pool.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await db.initialize()
        await db.express.bulk_create("ConcItem", _items(1000))
        ids = [r["id"] for r in await pool.fetch(f"SELECT id FROM {TABLE} ORDER BY id")]
        cols = ", ".join(COLS)
        read_sql = f"SELECT {cols} FROM {TABLE} WHERE id = $1"
        list_sql = f"SELECT {cols} FROM {TABLE} ORDER BY id LIMIT 100 OFFSET 0"
        ins_sql = (f"INSERT INTO {TABLE} (name, email, age, score, active, created_at, updated_at) "
                   f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
        from datetime import datetime, timezone
        nid = len(ids)
        assert await db.express.read("ConcItem", ids[3]) == dict(await pool.fetchrow(read_sql, ids[3]))
        assert len(await db.express.list("ConcItem", limit=100)) == 100

        async def raw_read(i):
            return await pool.fetchrow(read_sql, ids[i % nid])

        async def df_read(i):
            return await db.express.read("ConcItem", ids[i % nid])

        async def bare_read(i):
            return await bare.fetchrow(read_sql, ids[i % nid])

        async def raw_list(i):
            return await pool.fetch(list_sql)

        async def df_list(i):
            return await db.express.list("ConcItem", limit=100)

        async def raw_create(i):
            now = datetime.now(timezone.utc)
            return await pool.fetchval(ins_sql, f"n{i}", f"n{i}@example.com", 30, 1.5, True, now, now)

        async def df_create(i):
            return await db.express.create("ConcItem", {"name": f"n{i}", "email": f"n{i}@example.com",
                                                        "age": 30, "score": 1.5, "active": True})

        async def bare_create(i):
            now = datetime.now(timezone.utc)
            return await bare.fetchval(ins_sql, f"n{i}", f"n{i}@example.com", 30, 1.5, True, now, now)

        out += await _all_levels("PostgreSQL", "asyncpg pool", {"read": (raw_read, df_read, bare_read),
                                 "list 100 rows": (raw_list, df_list), "create": (raw_create, df_create, bare_create)},
                                 n, repeats, "fetchrow", "fetch", "fetchval(INSERT ... RETURNING id)")
        out += await _workflow("PostgreSQL", db, raw_read, df_read, ids, n, repeats)
    finally:
        try:
            await db.close_async()
        finally:
            await pool.execute(f"DROP TABLE IF EXISTS {TABLE}")
            await pool.close()
            await bare.close()
    return out


async def _all_levels(label, raw_name, ops, n, repeats, read_call, list_call, create_call) -> list[dict]:
    out = []
    calls = {"read": read_call, "list 100 rows": list_call, "create": create_call}
    ours = {"read": "await db.express.read(id)", "list 100 rows": "await db.express.list(limit=100)",
            "create": "await db.express.create(data)"}
    for what, (raw, df, *bare) in ops.items():
        group = f"concurrency: {what} ({label}, pool {POOL})"
        cases = {"raw": raw, "ours": df}
        if bare:
            cases["bare"] = bare[0]
        for conc in LEVELS:
            m = n if conc > 1 else max(n // 2, 50)
            if what == "list 100 rows":
                m = max(m // 4, 50)
            res = await _compare(cases, m, conc, repeats)
            out += _rows(group, res, f"raw {raw_name} {calls[what]}", ours[what], conc,
                         target=what != "list 100 rows",
                         bare_case=f"raw {raw_name} without its reset query (reset=no-op) {calls[what]}"
                         if bare else None)
    return out


async def _workflow(label, db, raw_read, df_read, ids, n, repeats) -> list[dict]:
    """A one-node read workflow, 32 runs at once under AsyncLocalRuntime (built once, reused)."""
    from dataflow import AsyncLocalRuntime, WorkflowBuilder

    wf = WorkflowBuilder()
    wf.add_node("ConcItemReadNode", "r", {"id": ids[0]})
    graph = wf.build()
    rt = AsyncLocalRuntime()
    nid = len(ids)
    got = await rt.execute(graph, {"r": {"id": ids[5]}})
    assert got["r"]["id"] == ids[5], got

    async def run(i):
        return await rt.execute(graph, {"r": {"id": ids[i % nid]}})

    res = await _compare({"raw": raw_read, "express": df_read, "ours": run}, n, 32, repeats)
    group = f"concurrency: one-node workflow ({label}, pool {POOL})"
    base = "raw read (same as the read group), 32 tasks"
    rows = []
    for key, case, b in (("raw", base, None), ("express", "await db.express.read(id), 32 tasks", base),
                         ("ours", "AsyncLocalRuntime.execute(1 ReadNode), 32 concurrent runs", base)):
        m = res[key]
        rows.append(row(group, case, m["s_per_op"], b, _note(m), cpu_s=m["cpu"]))
    return rows


# -- MariaDB ------------------------------------------------------------------------------------
async def _my(n: int, repeats: int) -> list[dict]:
    import aiomysql

    from dataflow import DataFlow

    db = DataFlow(MY_URL, pool_size=POOL)
    _define(db)
    pool = await aiomysql.create_pool(host="127.0.0.1", port=3306, user="root", db="test", minsize=POOL,
                                      maxsize=POOL, autocommit=True, charset="utf8mb4")
    out: list[dict] = []
    try:
        await db.execute_raw(f"DROP TABLE IF EXISTS {TABLE}")
        await db.initialize()
        await db.express.bulk_create("ConcItem", _items(1000))
        ids = [r[0] for r in await db.execute_raw(f"SELECT id FROM {TABLE} ORDER BY id")]
        cols = ", ".join(COLS)
        read_sql = f"SELECT {cols} FROM {TABLE} WHERE id = %s"
        list_sql = f"SELECT {cols} FROM {TABLE} ORDER BY id LIMIT 100 OFFSET 0"
        ins_sql = (f"INSERT INTO {TABLE} (name, email, age, score, active, created_at, updated_at) "
                   f"VALUES (%s, %s, %s, %s, %s, %s, %s)")
        from datetime import datetime, timezone
        nid = len(ids)
        assert (await db.express.read("ConcItem", ids[3]))["id"] == ids[3]

        async def raw_read(i):
            async with pool.acquire() as con:
                async with con.cursor() as cur:
                    await cur.execute(read_sql, (ids[i % nid],))
                    return await cur.fetchone()

        async def df_read(i):
            return await db.express.read("ConcItem", ids[i % nid])

        async def raw_list(i):
            async with pool.acquire() as con:
                async with con.cursor() as cur:
                    await cur.execute(list_sql)
                    return await cur.fetchall()

        async def df_list(i):
            return await db.express.list("ConcItem", limit=100)

        async def raw_create(i):
            now = datetime.now(timezone.utc).replace(tzinfo=None)
            async with pool.acquire() as con:
                async with con.cursor() as cur:
                    await cur.execute(ins_sql, (f"n{i}", f"n{i}@example.com", 30, 1.5, True, now, now))
                    return cur.lastrowid

        async def df_create(i):
            return await db.express.create("ConcItem", {"name": f"n{i}", "email": f"n{i}@example.com",
                                                        "age": 30, "score": 1.5, "active": True})

        out += await _all_levels("MariaDB", "aiomysql pool", {"read": (raw_read, df_read),
                                 "list 100 rows": (raw_list, df_list), "create": (raw_create, df_create)},
                                 n, repeats, "acquire+cursor.execute+fetchone", "acquire+cursor.execute+fetchall",
                                 "acquire+cursor.execute(INSERT)+lastrowid")
    finally:
        try:
            await db.execute_raw(f"DROP TABLE IF EXISTS {TABLE}")
        finally:
            pool.close()
            await pool.wait_closed()
            await db.close_async()
    return out


def _run(coro):
    from dataflow._loop import new_event_loop

    loop = new_event_loop()  # uvloop when installed
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def run(quick: bool) -> list[dict]:
    n, repeats = (300, 2) if quick else (2000, 6)
    out: list[dict] = []
    only = os.environ.get("BENCH_CONCURRENCY_ONLY", "")  # "pg" / "my": one server (profiling)
    for fn, label in ((_pg, "PostgreSQL"), (_my, "MariaDB")):
        if only and only != fn.__name__[1:]:
            continue
        try:
            out += _run(fn(n, repeats))
        except Exception as exc:  # a missing server is reported, not fatal
            out.append(failed(f"concurrency ({label})", "(whole case)", exc))
    return out


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        t = r["median_s"]
        print(f"{r['group'][:45]:45s} {r['case'][:70]:70s} {'-' if t is None else f'{t * 1e6:9.1f} us/op'}  "
              f"{r['note']}")
