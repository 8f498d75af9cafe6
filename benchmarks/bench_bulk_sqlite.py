"""Bulk create on a SQLite file: ``db.express.bulk_create`` vs raw aiosqlite ``executemany``.

Both sides start from the same list of dicts holding Python values (8 columns: bigint, text,
text, int, float, bool, datetime, JSON) and write them in one transaction to a fresh file with
the same pragmas (WAL, synchronous=NORMAL); the raw side converts values the way a hand-written
loader would (isoformat, json.dumps) inside its timing.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from dataflow import DataFlow
from dataflow._loop import new_event_loop

try:
    from .timing import failed, row
except ImportError:  # pragma: no cover
    from timing import failed, row

TABLE = "bench_bulk_rows"
COLS = ("ext_id", "name", "email", "age", "score", "active", "seen_at", "meta")


def _records(n: int) -> list[dict]:
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return [{"ext_id": 10_000_000_000 + i, "name": f"user {i}", "email": f"user{i}@example.com",
             "age": 18 + i % 70, "score": i * 0.25, "active": i % 2 == 0,
             "seen_at": t0 + timedelta(seconds=i), "meta": {"k": i % 7, "tags": ["a", "b"]}} for i in range(n)]


def _define(db: DataFlow) -> None:
    @db.model
    class BenchRow:
        __tablename__ = TABLE
        ext_id: int
        name: str
        email: str
        age: int
        score: float
        active: bool
        seen_at: datetime
        meta: dict
        __dataflow__ = {"unique": ["ext_id"]}


async def _dataflow(path: str, records: list[dict], skip: bool = False) -> float:
    db = DataFlow(f"sqlite:///{path}")
    _define(db)
    try:
        await db.initialize()
        half = records[::2] if skip else []
        if half:   # every other record is already there: the timed call skips half
            await db.express.bulk_create("BenchRow", half)
        opts = {"conflict_resolution": "skip", "conflict_on": ["ext_id"]} if skip else {}
        t0 = time.perf_counter()
        res = await db.express.bulk_create("BenchRow", records, **opts)
        dt = time.perf_counter() - t0
        n = await db.express.count("BenchRow")
    finally:
        await db.close_async()
    if res.get("inserted") != len(records) - len(half) or n != len(records):
        raise AssertionError(f"bulk_create reported {res!r}, table holds {n} rows, expected {len(records)}")
    return dt


async def _raw(path: str, records: list[dict], ddl: list[str], skip: bool = False) -> float:
    import aiosqlite

    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        for sql in ddl:
            await conn.execute(sql)
        cols = COLS + ("created_at", "updated_at")
        sql = f"INSERT INTO {TABLE} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        if skip:
            pre = [(r["ext_id"], r["name"], r["email"], r["age"], r["score"], int(r["active"]),
                    r["seen_at"].isoformat(), json.dumps(r["meta"]), "x", "x") for r in records[::2]]
            await conn.execute("BEGIN")
            await conn.executemany(sql, pre)
            await conn.execute("COMMIT")
            sql += " ON CONFLICT (ext_id) DO NOTHING"
        t0 = time.perf_counter()
        now = datetime.now(timezone.utc).isoformat()
        rows = [(r["ext_id"], r["name"], r["email"], r["age"], r["score"], int(r["active"]),
                 r["seen_at"].isoformat(), json.dumps(r["meta"]), now, now) for r in records]
        await conn.execute("BEGIN")
        await conn.executemany(sql, rows)
        await conn.execute("COMMIT")
        dt = time.perf_counter() - t0
        async with conn.execute(f"SELECT count(*) FROM {TABLE}") as cur:
            (n,) = await cur.fetchone()
    finally:
        await conn.close()
    if n != len(records):
        raise AssertionError(f"raw executemany left {n} rows, expected {len(records)}")
    return dt


def run(quick: bool) -> list[dict]:
    n, repeats = (20_000, 3) if quick else (100_000, 5)
    records = _records(n)
    return (_group(records, n, repeats, False) +
            _group(records, n, repeats, True))


def _group(records, n, repeats, skip):
    group = f"bulk create {n // 1000}k rows SQLite (file in a temp dir)"
    base = "raw aiosqlite executemany, one transaction"
    case = "await db.express.bulk_create"
    if skip:
        group = f"bulk create {n // 1000}k rows SQLite, half already present (skip)"
        base = "raw aiosqlite executemany, INSERT ... ON CONFLICT DO NOTHING"
        case = "await db.express.bulk_create(conflict_resolution='skip')"
    probe = DataFlow("sqlite:///:memory:")
    _define(probe)
    ddl = probe.dialect.create_table(probe._table("BenchRow").model)
    probe.close()
    loop = new_event_loop()
    times: dict[str, list[float]] = {"raw": [], "df": []}
    try:
        with tempfile.TemporaryDirectory(prefix="df-bench-bulk-") as tmp:
            for r in range(repeats):  # alternate which side goes first; a fresh file each time
                order = [("raw", lambda p: _raw(p, records, ddl, skip)), ("df", lambda p: _dataflow(p, records, skip))]
                for name, fn in (reversed(order) if r % 2 else order):
                    path = os.path.join(tmp, f"{name}-{r}-{int(skip)}.db")
                    times[name].append(loop.run_until_complete(fn(path)))
    except Exception as exc:
        return [row(group, base, statistics.median(times["raw"]) if times["raw"] else None),
                failed(group, case, exc, base)]
    finally:
        loop.close()
    raw_t, df_t = statistics.median(times["raw"]), statistics.median(times["df"])
    return [row(group, base, raw_t, note=f"{n / raw_t:,.0f} rows/s; 8 columns + 2 timestamps; median of {repeats}"),
            row(group, case, df_t, base, f"{n / df_t:,.0f} rows/s; validates and coerces every row")]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
