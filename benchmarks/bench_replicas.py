"""Read replicas, same run, on private primary + replica pairs started here (PostgreSQL streaming,
MariaDB GTID; tests/integration/replcluster.py): read throughput of 16 concurrent readers with one
replica against the primary alone, and what read-your-writes costs a write-then-read pair against
a DataFlow with no replica -- next to the per-write alternative this design avoids (reading the
primary's log position after every write: one more round trip).

Both servers of a pair run on this machine: with two cores shared by everything, a replica adds
no CPU, so the throughput ratio shows the routing's cost more than a replica's gain.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import random
import statistics
import time

from benchmarks.timing import ainterleaved, failed, interleaved, row

READERS = 16
G_READ = "replicas: 16 concurrent readers, time per read ({})"
G_RYW = "replicas: write-then-read pair, read-your-writes ({})"
LOG_POS = {"postgresql": "SELECT pg_current_wal_insert_lsn()", "mysql": "SELECT @@last_gtid"}


def fresh(coro):
    """A task with an empty context: a session that wrote nothing (reads may use the replica)."""
    return asyncio.get_running_loop().create_task(coro, context=contextvars.Context())


async def _throughput(dbs: dict, ids: list, per_reader: int, repeats: int) -> dict:
    """Median seconds per read with READERS concurrent readers, rounds alternating the cases."""
    samples = {name: [] for name in dbs}

    async def reader(db, seed):
        rnd = random.Random(seed)
        for _ in range(per_reader):
            await db.express.read("BenchR", rnd.choice(ids))
    for name, db in dbs.items():  # warm: pools filled, statements prepared, replica probed
        await asyncio.gather(*(fresh(reader(db, s)) for s in range(READERS)))
    for r in range(repeats):
        order = list(dbs.items()) if r % 2 == 0 else list(reversed(dbs.items()))
        for name, db in order:
            t0 = time.perf_counter()
            await asyncio.gather(*(fresh(reader(db, s + 100 * r)) for s in range(READERS)))
            samples[name].append((time.perf_counter() - t0) / (READERS * per_reader))
    return {name: statistics.median(s) for name, s in samples.items()}


async def _bench(pair, kind: str, calls: int, repeats: int) -> list:
    from dataflow import DataFlow

    label = "PostgreSQL" if kind == "postgresql" else "MariaDB"
    plain = DataFlow(pair.primary.url, pool_size=READERS)
    rep = DataFlow(pair.primary.url, read_url=pair.replica.url, pool_size=READERS, read_pool_size=READERS)
    for d in (plain, rep):
        @d.model
        class BenchR:
            name: str
            n: int = 0
    out = []
    try:
        await plain.initialize()
        await plain.express.bulk_create("BenchR", [{"name": f"r{i}", "n": i} for i in range(1000)])
        ids = [r["id"] for r in await plain.express.list("BenchR", limit=1000)]
        await rep.initialize()
        # wait until the replica holds the rows and serves a session that wrote nothing
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await rep.driver.probe()
            if rep.driver.replicas[0].caught_up > rep.driver._last_write:
                break
            await asyncio.sleep(0.05)
        before = rep.driver.replicas[0].reads
        t = await _throughput({"p": plain, "r": rep}, ids, max(20, calls // 4), repeats)
        served = rep.driver.replicas[0].reads - before
        g = G_READ.format(label)
        out += [row(g, "primary only", t["p"]),
                row(g, "primary + 1 replica (reads on the replica)", t["r"], "primary only",
                    f"{served} reads served by the replica; same host, 2 shared cores")]

        # write-then-read: update a row, read it back (the read must see the update)
        wid = itertools.cycle(ids[:200])

        async def pair_plain():
            i = next(wid)
            await plain.express.update("BenchR", i, {"n": 1})
            return await plain.express.read("BenchR", i)

        async def pair_rep():
            i = next(wid)
            await rep.express.update("BenchR", i, {"n": 2})
            return await rep.express.read("BenchR", i)

        async def pair_lsn():
            i = next(wid)
            await plain.express.update("BenchR", i, {"n": 3})
            await plain.execute_raw(LOG_POS[kind])
            return await plain.express.read("BenchR", i)

        async def read_plain():
            return await plain.express.read("BenchR", next(wid))

        async def read_rep():
            return await rep.express.read("BenchR", next(wid))

        t = await ainterleaved({"p": pair_plain, "r": pair_rep, "l": pair_lsn}, calls, repeats)
        g = G_RYW.format(label)
        base = "update + read, primary only"
        out += [row(g, base, t["p"]),
                row(g, "update + read, with a replica (read-your-writes: the read goes to the primary)", t["r"], base,
                    "a time fence per write, no extra query", target_ratio=1.05),
                row(g, f"update + {LOG_POS[kind]} + read, primary only", t["l"], base,
                    "the per-write log-position read this design avoids")]
        # a session that wrote nothing: the single-read latency on the replica vs the primary
        t = await _in_fresh(ainterleaved({"p": read_plain, "r": read_rep}, calls, repeats))
        out += [row(g, "read alone, primary only", t["p"]),
                row(g, "read alone, clean session, on the replica", t["r"], "read alone, primary only",
                    "routing + a replica round trip")]
        # the routing's own CPU per read (no I/O): the decision a read makes, in a clean session
        sql = rep._table("BenchR").st.read_by_id(1, False)[0]
        drv = rep.driver
        t = await _in_fresh(_sync(lambda: interleaved({"pick": lambda: drv._pick(sql)}, calls * 10, repeats)))
        out.append(row(g, "routing decision per read (CPU only, no I/O)", t["pick"],
                       note="session fence, lag bound, round-robin"))
    finally:
        try:
            for t in plain.list_tables():
                await plain.execute_raw(plain.dialect.drop_table_sql(t, if_exists=True))
        finally:
            for d in (plain, rep):
                await d.close_async()
    return out


async def _sync(fn):
    return fn()


async def _in_fresh(coro):
    return await fresh(coro)


def run(quick: bool) -> list[dict]:
    from tests.integration import replcluster

    calls, repeats = (100, 5) if quick else (300, 11)
    out = []
    for kind in ("postgresql", "mysql"):
        label = "PostgreSQL" if kind == "postgresql" else "MariaDB"
        try:
            pair = replcluster.PgPair() if kind == "postgresql" else replcluster.MyPair()
        except Exception as exc:
            out.append(failed(G_READ.format(label), "primary + 1 replica (reads on the replica)", exc, "primary only"))
            continue
        try:
            out += asyncio.run(_bench(pair, kind, calls, repeats))
        except Exception as exc:
            out.append(failed(G_READ.format(label), "primary + 1 replica (reads on the replica)", exc, "primary only"))
        finally:
            pair.destroy()
    return out
