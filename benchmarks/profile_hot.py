"""Profiling target for the hot paths of ``bench_concurrency`` and ``bench_transactions``: one
DataFlow operation in a loop, for a profiler to sample (not a benchmark: no baseline, no table).

    py-spy record -r 400 -f raw -o /tmp/read.txt -- python -m benchmarks.profile_hot pg read 32 6
    python -m benchmarks.profile_hot --top /tmp/read.txt        # top self / inclusive frames

Arguments: server (``pg`` / ``my``), operation (``read``, ``list``, ``create``, ``tx``: a
transaction with one insert), concurrent tasks, seconds.  The ops/s it prints is only a sanity
check (a profiler slows the process).  ``py-spy`` and ``pyinstrument`` are in the ``bench`` extra.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import sys
import time

try:
    from . import bench_concurrency as B
except ImportError:  # pragma: no cover - run as a script
    import bench_concurrency as B


async def _loop(server: str, op_name: str, conc: int, seconds: float) -> float:
    from dataflow import DataFlow

    db = DataFlow(B.PG_URL if server == "pg" else B.MY_URL, pool_size=B.POOL)
    B._define(db)
    try:
        await db.execute_raw(f"DROP TABLE IF EXISTS {B.TABLE}")
        await db.initialize()
        await db.express.bulk_create("ConcItem", B._items(1000))
        ids = [r[0] for r in await db.execute_raw(f"SELECT id FROM {B.TABLE} ORDER BY id")]
        ph = "$1" if server == "pg" else "%s"
        if op_name == "tx":
            await db.execute_raw("CREATE TABLE IF NOT EXISTS bench_profile_tx (v INT)")

        async def op(i):
            if op_name == "read":
                return await db.express.read("ConcItem", ids[i % len(ids)])
            if op_name == "list":
                return await db.express.list("ConcItem", limit=100)
            if op_name == "create":
                return await db.express.create("ConcItem", {"name": f"p{i}", "email": "p@example.com", "age": 3,
                                                            "score": 1.5, "active": True})
            async with db.transaction() as tx:
                await tx.execute(f"INSERT INTO bench_profile_tx VALUES ({ph})", 1)

        for i in range(200):  # warm
            await op(i)
        counter = itertools.count()
        end = time.perf_counter() + seconds

        async def worker():
            while time.perf_counter() < end:
                await op(next(counter))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return next(counter) / (time.perf_counter() - t0)
    finally:
        await db.execute_raw(f"DROP TABLE IF EXISTS {B.TABLE}")
        await db.execute_raw("DROP TABLE IF EXISTS bench_profile_tx")
        await db.close_async()


def top(path: str, k: int = 25) -> str:
    """A py-spy ``-f raw`` (collapsed stacks) file -> the top self and inclusive frames, in %."""
    own: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, n = line.rstrip().rpartition(" ")
            if not n.isdigit():
                continue
            total += int(n)
            frames = stack.split(";")
            own[frames[-1]] += int(n)
            for f in set(frames):
                incl[f] += int(n)
    short = (lambda f: f.split("site-packages/")[-1])
    out = [f"{total} samples", "-- self --"]
    out += [f"{100 * n / total:5.1f}%  {short(f)}" for f, n in own.most_common(k)]
    out += ["-- inclusive --"]
    out += [f"{100 * n / total:5.1f}%  {short(f)}" for f, n in incl.most_common(k)]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--top"]:
        print(top(argv[1], int(argv[2]) if len(argv) > 2 else 25))
        return 0
    server, op_name = argv[0], argv[1]
    conc = int(argv[2]) if len(argv) > 2 else 1
    seconds = float(argv[3]) if len(argv) > 3 else 5.0
    from dataflow._loop import new_event_loop

    loop = new_event_loop()  # uvloop, as the benchmarks
    try:
        rate = loop.run_until_complete(_loop(server, op_name, conc, seconds))
    finally:
        loop.close()
    print(f"{op_name} on {server}, {conc} tasks: {rate:,.0f} ops/s (under the profiler)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
