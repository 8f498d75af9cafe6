"""Bulk loading, side by side in one run: db.load against the server's own limit and the usual
peers on each database, and BulkCreateNode against db.load on the same rows.

- PostgreSQL, N rows x 8 columns (bigint, text, text, int, float8, bool, timestamptz, jsonb):
  db.load vs COPY of a pre-encoded buffer (baseline) vs asyncpg copy_records_to_table.
- SQLite: db.load vs aiosqlite executemany of the same rows already in SQLite's types.
- MariaDB: db.load vs LOAD DATA LOCAL INFILE of a pre-built file.
- PostgreSQL: BulkCreateNode vs db.load on the same list of dicts.
Cases of a group are timed in alternating rounds; the table is truncated before every call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import statistics
import tempfile
import time

PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MY_URL = os.environ.get("DATAFLOW_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
UTC = dt.timezone.utc
COLS = ("id", "name", "email", "age", "score", "active", "seen", "meta")


def _define(db, table):
    @db.model
    class BenchRow:
        __tablename__ = table
        id: int
        name: str
        email: str
        age: int
        score: float
        active: bool
        seen: dt.datetime
        meta: dict
    return BenchRow


def make_rows(n):
    t0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
    return [(i + 1, f"user {i}", f"user{i}@example.com", i % 97, i * 0.25, bool(i & 1),
             t0 + dt.timedelta(seconds=i), {"k": i, "tag": "x"}) for i in range(n)]


async def _timed(cases: dict, setup, repeats: int) -> dict:
    samples = {k: [] for k in cases}
    for r in range(repeats):
        order = list(cases.items())
        if r % 2:
            order.reverse()
        for name, fn in order:
            await setup()
            t0 = time.perf_counter()
            await fn()
            samples[name].append(time.perf_counter() - t0)
    await setup()
    return {k: statistics.median(v) for k, v in samples.items()}


def _rows_out(group, res, base, notes, n):
    out = []
    for case, t in res.items():
        out.append({"group": group, "case": case, "median_s": t, "baseline": None if case == base else base,
                    "note": notes.get(case, "") + f" ({n:,} rows, {n / t:,.0f} rows/s)"})
    return out


async def _pg(n, repeats):
    import asyncpg

    from dataflow import _native
    from dataflow import DataFlow
    copybin = _native.load("copybin")
    table = "bench_bulk_pg"
    db = DataFlow(PG_URL)
    _define(db, table)
    await db.initialize()
    rows = make_rows(n)
    con = await asyncpg.connect(PG_URL)
    now = dt.datetime.now(UTC)
    names = list(COLS) + ["created_at", "updated_at"]
    full = [r[:7] + (r[7] if False else __import__("orjson").dumps(r[7]).decode(), now, now) for r in rows]
    types = ["int8", "text", "text", "int8", "float8", "bool", "timestamptz", "jsonb", "timestamptz", "timestamptz"]
    buf = copybin.encode_rows(full, types)

    async def truncate():
        await con.execute(f'TRUNCATE "{table}"')

    async def dataflow_load():
        await db.load("BenchRow", rows, columns=COLS, progress=False)

    async def pre_encoded():
        await con.copy_to_table(table, source=io.BytesIO(buf), columns=names, format="binary")

    async def records():
        await con.copy_records_to_table(table, records=full, columns=names)

    res = await _timed({"db.load (COPY BINARY, streamed)": dataflow_load, "COPY pre-encoded buffer": pre_encoded,
                        "asyncpg copy_records_to_table": records}, truncate, repeats)
    out = _rows_out("bulk load: PostgreSQL", res, "COPY pre-encoded buffer",
                    {"db.load (COPY BINARY, streamed)": "tuples in, defaults+timestamps, encode overlapped",
                     "COPY pre-encoded buffer": "server limit: bytes already built",
                     "asyncpg copy_records_to_table": "jsonb as str"}, n)

    # BulkCreateNode vs db.load on the same dicts
    from dataflow.nodes.base import RunContext
    dicts = [dict(zip(COLS, r)) for r in rows]
    node = db.get_generated_nodes("BenchRow")["BenchRowBulkCreateNode"]("bulk")

    async def node_run():
        res = await node.run(RunContext(run_id="bench"), data=dicts)
        assert res["inserted"] == n

    async def load_dicts():
        await db.load("BenchRow", dicts, progress=False)

    res = await _timed({"db.load (dicts)": load_dicts, "BulkCreateNode (dicts)": node_run}, truncate, repeats)
    out += _rows_out("bulk load: BulkCreateNode", res, "db.load (dicts)", {}, n)
    await con.execute(f'DROP TABLE IF EXISTS "{table}"')
    await con.close()
    await db.close_async()
    return out


async def _sqlite(n, repeats):
    import aiosqlite

    from dataflow import _native
    from dataflow import DataFlow
    from dataflow._native._pure import params as K
    params = _native.load("params")
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "bench.db")
    table = "bench_bulk_lite"
    db = DataFlow(f"sqlite:///{path}")
    model = _define(db, table)
    await db.initialize()
    rows = make_rows(n)
    info = model.__dataflow_model__
    names = list(COLS) + ["created_at", "updated_at"]
    kinds = tuple(info.fields[c].kind for c in names)
    now = dt.datetime.now(UTC)
    flat = params.coerce_rows([r + (now, now) for r in rows], kinds, K.SQLITE, names)
    native_rows = list(zip(*[iter(flat)] * len(names)))
    raw = await aiosqlite.connect(path, isolation_level=None)
    await raw.execute("PRAGMA synchronous=NORMAL")
    sql = f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))})'

    async def truncate():
        await db.execute_raw(f'DELETE FROM "{table}"')

    async def dataflow_load():
        await db.load("BenchRow", rows, columns=COLS, progress=False)

    async def executemany():
        await raw.execute("BEGIN")
        await raw.executemany(sql, native_rows)
        await raw.execute("COMMIT")

    res = await _timed({"db.load (coerced, native writer)": dataflow_load,
                        "aiosqlite executemany (pre-coerced)": executemany}, truncate, repeats)
    await raw.close()
    await db.close_async()
    return _rows_out("bulk load: SQLite", res, "aiosqlite executemany (pre-coerced)", {}, n)


async def _mysql(n, repeats):
    from dataflow import DataFlow
    table = "bench_bulk_my"
    db = DataFlow(MY_URL)
    _define(db, table)
    await db.initialize()
    rows = make_rows(n)
    import orjson
    now = dt.datetime.now(UTC).replace(tzinfo=None)
    fd, path = tempfile.mkstemp(suffix=".tsv")
    with os.fdopen(fd, "w") as fh:
        for r in rows:
            fh.write("\t".join([str(r[0]), r[1], r[2], str(r[3]), repr(r[4]), "1" if r[5] else "0",
                                r[6].astimezone(UTC).replace(tzinfo=None).isoformat(" "),
                                orjson.dumps(r[7]).decode(), now.isoformat(" "), now.isoformat(" ")]) + "\n")
    names = list(COLS) + ["created_at", "updated_at"]
    import aiomysql
    from dataflow.drivers.mysql import INIT_SQL
    u = db.driver.url          # the raw peer: its own connection, the same settings as DataFlow's
    raw = await aiomysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.user or "root",
                                 password=u.password or "", db=u.database or "test", autocommit=False,
                                 charset="utf8mb4", init_command=INIT_SQL, local_infile=True)

    async def truncate():
        await db.execute_raw(f"TRUNCATE TABLE `{table}`")

    async def dataflow_load():
        rep = await db.load("BenchRow", rows, columns=COLS, progress=False)
        assert rep["path"] == "load_data", rep

    async def load_data():
        async with raw.cursor() as cur:
            await cur.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` CHARACTER SET utf8mb4 FIELDS "
                              f"TERMINATED BY '\\t' LINES TERMINATED BY '\\n' ({', '.join(names)})", (path,))
        await raw.commit()

    async def insert_path():
        await db.load("BenchRow", rows, columns=COLS, progress=False, local_infile=False)

    res = await _timed({"db.load (LOAD DATA)": dataflow_load, "LOAD DATA of a pre-built file": load_data,
                        "db.load (local_infile=False: INSERTs)": insert_path}, truncate, repeats)
    raw.close()
    os.unlink(path)
    await db.execute_raw(f"DROP TABLE IF EXISTS `{table}`")
    await db.close_async()
    return _rows_out("bulk load: MariaDB", res, "LOAD DATA of a pre-built file",
                     {"db.load (local_infile=False: INSERTs)": "multi-row INSERTs sized to max_allowed_packet"}, n)


def run(quick: bool) -> list[dict]:
    repeats = 3
    out = []
    for fn, n in ((_pg, 100_000 if quick else 1_000_000), (_sqlite, 20_000 if quick else 100_000),
                  (_mysql, 20_000 if quick else 100_000)):
        try:
            out += asyncio.run(fn(n, repeats))
        except (OSError, ConnectionError) as exc:  # server not running: skip its group
            out.append({"group": f"bulk load: {fn.__name__[1:]}", "case": "skipped", "median_s": float("nan"),
                        "baseline": None, "note": f"server unavailable: {exc}"})
    return out


if __name__ == "__main__":  # pragma: no cover
    import sys
    quick = "--quick" in sys.argv
    for row in run(quick):
        print(row)
