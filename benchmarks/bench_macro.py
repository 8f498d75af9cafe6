"""Macro cases of the foundation issue: what a user's call costs against the raw driver.

Express read vs asyncpg ``fetchrow`` on a pool, a one-node workflow vs the same express call,
``import dataflow`` wall time, express create vs a raw aiosqlite INSERT.  Each pair is timed
interleaved in one process on one loop; PostgreSQL cases are skipped when the server is down.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

from dataflow import DataFlow, LocalRuntime, WorkflowBuilder
from dataflow._loop import new_event_loop, run_sync

try:  # run as part of the package (python -m benchmarks) or as a script
    from .timing import ainterleaved, failed, interleaved, row
except ImportError:  # pragma: no cover
    from timing import ainterleaved, failed, interleaved, row

PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLE = "bench_macro_users"
COLUMNS = "id, name, email, age, score, active, created_at, updated_at"

G_READ = "point read by id (PostgreSQL)"
G_WF = "one-node workflow vs express (SQLite memory and PostgreSQL)"
G_IMPORT = "import"
G_CREATE = "express create (SQLite memory)"


def _define(db: DataFlow) -> None:
    @db.model
    class BenchUser:
        __tablename__ = TABLE
        name: str
        email: str
        age: int = 0
        score: float = 0.0
        active: bool = True


def _users(n: int) -> list[dict]:
    return [{"name": f"user{i}", "email": f"user{i}@example.com", "age": 20 + i % 50,
             "score": i * 0.5, "active": i % 3 != 0} for i in range(n)]


def _run(coro):
    """Run ``coro`` on a fresh loop of the kind DataFlow prefers (uvloop when installed)."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# -- 1. point read: express vs raw asyncpg pool -------------------------------------------------
async def _point_read(calls: int, repeats: int) -> list[dict]:
    import asyncpg

    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=4)
    db = DataFlow(PG_URL)
    _define(db)
    try:
        await pool.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await db.initialize()
        await db.express.bulk_create("BenchUser", _users(1000))
        ids = [r["id"] for r in await pool.fetch(f"SELECT id FROM {TABLE} ORDER BY id")]
        sql = f"SELECT {COLUMNS} FROM {TABLE} WHERE id = $1"
        raw_ids, df_ids = itertools.cycle(ids), itertools.cycle(ids)
        got = await db.express.read("BenchUser", ids[7])
        want = dict(await pool.fetchrow(sql, ids[7]))
        if got != want:
            raise AssertionError(f"express.read returned {got!r}, raw fetchrow {want!r}")

        async def raw():
            return await pool.fetchrow(sql, next(raw_ids))

        async def raw_dict():
            return dict(await pool.fetchrow(sql, next(raw_ids)))

        async def express():
            return await db.express.read("BenchUser", next(df_ids))

        t = await ainterleaved({"raw": raw, "raw_dict": raw_dict, "express": express}, calls, repeats)
    finally:
        try:
            await db.close_async()
        finally:
            await pool.execute(f"DROP TABLE IF EXISTS {TABLE}")
            await pool.close()
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    base = "raw asyncpg pool.fetchrow"
    return [
        row(G_READ, base, t["raw"], note=f"{loop} loop, 8 columns, 1,000 rows"),
        row(G_READ, "raw asyncpg pool.fetchrow + dict(record)", t["raw_dict"], base, "reference"),
        row(G_READ, "await db.express.read", t["express"], base, "returns a dict", target_ratio=1.2),
    ]


# -- 2. one-node workflow vs express_sync.read -------------------------------------------------
def _workflow_vs_express(url: str, label: str, calls: int, repeats: int) -> list[dict]:
    db = DataFlow(url)
    _define(db)
    try:
        if url.startswith("postgresql"):
            run_sync(db.execute_raw(f"DROP TABLE IF EXISTS {TABLE}"))
        db.express_sync.bulk_create("BenchUser", _users(100))
        rid = db.express_sync.list("BenchUser", limit=1)[0]["id"]
        wf = WorkflowBuilder()
        wf.add_node("BenchUserReadNode", "r", {"id": rid})
        graph = wf.build()
        rt = LocalRuntime()
        res = rt.execute(graph)
        if res["r"]["id"] != rid:
            raise AssertionError(f"BenchUserReadNode returned {res['r']!r}")
        t = interleaved({"express": lambda: db.express_sync.read("BenchUser", rid),
                         "workflow": lambda: rt.execute(graph)}, calls, repeats)
    finally:
        try:
            if url.startswith("postgresql"):
                run_sync(db.execute_raw(f"DROP TABLE IF EXISTS {TABLE}"))
        finally:
            db.close()
    base = f"db.express_sync.read ({label})"
    return [row(G_WF, base, t["express"]),
            row(G_WF, f"1-node workflow via LocalRuntime ({label})", t["workflow"], base,
                "LocalRuntime().execute(wf), 1 BenchUserReadNode; runtime and built workflow reused", target_ratio=1.3)]


# -- 3. import time in a fresh interpreter -----------------------------------------------------
def _imports(repeats: int) -> list[dict]:
    stmts = {"pass": "pass", "dataflow": "import dataflow", "sqlalchemy": "import sqlalchemy",
             # the engine and runtime load lazily; this is what a program that uses them pays
             "dataflow_full": "from dataflow import DataFlow, WorkflowBuilder, LocalRuntime"}
    env = dict(os.environ)
    samples: dict[str, list[float]] = {k: [] for k in stmts}
    for _ in range(2):  # warm the OS file cache
        for code in stmts.values():
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
    for r in range(repeats):
        order = list(stmts.items())
        if r % 2:
            order.reverse()
        for name, code in order:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            samples[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in samples.items()}
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, dataflow; print(','.join(m for m in ('asyncpg', 'aiosqlite', "
         "'aiomysql', 'pymongo', 'numpy', 'sqlalchemy') if m in sys.modules) or 'none')"],
        env=env, check=True, capture_output=True, text=True).stdout.strip()
    peer = "import sqlalchemy (peer reference)"
    start = f"interpreter start {med['pass'] * 1e3:.0f} ms subtracted"
    return [row(G_IMPORT, peer, med["sqlalchemy"] - med["pass"], note=start),
            row(G_IMPORT, "import dataflow", med["dataflow"] - med["pass"], peer,
                f"{start}; heavy modules loaded: {probe}", target_s=0.1),
            row(G_IMPORT, "from dataflow import DataFlow, WorkflowBuilder, LocalRuntime",
                med["dataflow_full"] - med["pass"], peer, f"{start}; engine + runtime (asyncio loads on first use)",
                target_s=0.06)]


# -- 4. express create vs raw aiosqlite INSERT ---------------------------------------------------
async def _create(calls: int, repeats: int) -> list[dict]:
    import aiosqlite

    db = DataFlow("sqlite:///:memory:")
    _define(db)
    raw = await aiosqlite.connect(":memory:", isolation_level=None)
    try:
        await db.initialize()
        for sql in db.dialect.create_table(db._table("BenchUser").model):
            await raw.execute(sql)
        ins = f"INSERT INTO {TABLE} (name, email, age, score, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        n = itertools.count()

        async def raw_insert():
            i = next(n)
            now = datetime.now(timezone.utc).isoformat()
            async with raw.execute(ins, (f"user{i}", f"user{i}@example.com", 30, 1.5, 1, now, now)) as cur:
                return cur.lastrowid

        async def express():
            i = next(n)
            return await db.express.create("BenchUser", {"name": f"user{i}", "email": f"user{i}@example.com",
                                                         "age": 30, "score": 1.5, "active": True})

        t = await ainterleaved({"raw": raw_insert, "express": express}, calls, repeats)
    finally:
        await raw.close()
        await db.close_async()
    base = "raw aiosqlite execute(INSERT) (autocommit)"
    return [row(G_CREATE, base, t["raw"], note="same table DDL, timestamps built per call"),
            row(G_CREATE, "await db.express.create", t["express"], base, "validates, coerces, returns the row")]


def run(quick: bool) -> list[dict]:
    calls, repeats = (100, 7) if quick else (300, 31)
    out: list[dict] = []
    try:
        out += _run(_point_read(calls, repeats))
    except Exception as exc:
        out.append(failed(G_READ, "await db.express.read", exc, "raw asyncpg pool.fetchrow"))
    for url, label in (("sqlite:///:memory:", "SQLite memory"), (PG_URL, "PostgreSQL")):
        try:
            out += _workflow_vs_express(url, label, calls, repeats)
        except Exception as exc:
            out.append(failed(G_WF, f"1-node workflow via LocalRuntime ({label})", exc))
    try:
        out += _imports(6 if quick else 15)
    except Exception as exc:
        out.append(failed(G_IMPORT, "import dataflow", exc))
    try:
        out += _run(_create(calls, repeats))
    except Exception as exc:
        out.append(failed(G_CREATE, "await db.express.create", exc))
    return out


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        t = r["median_s"]
        print(f"{r['group'][:40]:40s} {r['case'][:60]:60s} "
              f"{'-' if t is None else f'{t * 1e6:10.1f} us'}  {r['note']}")
