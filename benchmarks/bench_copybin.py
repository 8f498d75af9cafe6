"""COPY BINARY encoding of 100,000 rows x 8 columns: _native.copybin against asyncpg's own encoder.

asyncpg's encoder cannot be called on its own, so its cost is isolated as the *client CPU time*
(``time.process_time``: the server is another process) of ``copy_records_to_table`` minus that of
``copy_to_table`` of our pre-encoded bytes (same rows, same temp table), both in the same repeat;
the median of those differences is reported.  A wall-clock difference would understate encoding
(asyncpg encodes while the server is still parsing earlier chunks; it even came out negative), so
only the two wall-clock totals are shown.  The python twin runs on a slice and is scaled to the full size (noted in its row).
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

try:  # part of the package (python -m benchmarks) or run as a script
    from .timing import median_of as _median
except ImportError:  # pragma: no cover
    from timing import median_of as _median

N = 100_000
TYPES = ["int8", "text", "text", "int4", "float8", "bool", "timestamptz", "jsonb"]
GROUP = "copybin encode 100k×8"
URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BASE = "native encode_rows"


def make_rows(n: int = N) -> list[tuple]:
    """The benchmark row: jsonb as already-serialized text, which is what asyncpg's codec takes."""
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return [(i, f"user{i}", f"user{i}@example.com", i % 1000, i * 0.5, i % 2 == 0,
             t0 + timedelta(seconds=i), f'{{"n": {i}, "tags": ["a", "b"]}}') for i in range(n)]


def make_columns(rows: list[tuple]) -> list:
    try:
        import numpy as np
    except ImportError:  # plain lists still work
        return [list(c) for c in zip(*rows)]
    cols = [list(c) for c in zip(*rows)]
    cols[0] = np.asarray(cols[0], dtype=np.int64)
    cols[3] = np.asarray(cols[3], dtype=np.int32)
    cols[4] = np.asarray(cols[4], dtype=np.float64)
    cols[5] = np.asarray(cols[5], dtype=np.bool_)
    return cols


async def _server_cases(rows, encoded: bytes, native, repeats: int) -> list[dict]:
    import asyncpg
    conn = await asyncpg.connect(URL, timeout=5)
    try:
        await conn.execute("CREATE TEMP TABLE bench_copybin (a int8, b text, c text, d int4, e float8, "
                           "f bool, g timestamptz, h jsonb)")
        records, pre, ours, cpu_diffs = [], [], [], []
        for _ in range(repeats):
            await conn.execute("TRUNCATE bench_copybin")
            t0, c0 = time.perf_counter(), time.process_time()
            await conn.copy_records_to_table("bench_copybin", records=rows)
            t_rec, c_rec = time.perf_counter() - t0, time.process_time() - c0
            await conn.execute("TRUNCATE bench_copybin")
            t0, c0 = time.perf_counter(), time.process_time()
            await conn.copy_to_table("bench_copybin", source=io.BytesIO(encoded), format="binary")
            t_pre, c_pre = time.perf_counter() - t0, time.process_time() - c0
            cpu_diffs.append(c_rec - c_pre)
            await conn.execute("TRUNCATE bench_copybin")
            t0 = time.perf_counter()
            data = native.encode_rows(rows, TYPES)
            await conn.copy_to_table("bench_copybin", source=io.BytesIO(data), format="binary")
            ours.append(time.perf_counter() - t0)
            records.append(t_rec)
            pre.append(t_pre)
        await conn.execute("DROP TABLE IF EXISTS bench_copybin")
    finally:
        await conn.close()
    med = statistics.median
    return [
        {"group": GROUP, "case": "asyncpg encoder (client CPU: records − pre-encoded COPY)",
         "median_s": med(cpu_diffs), "baseline": BASE,
         "note": "median of per-repeat client CPU-time differences"},
        {"group": GROUP, "case": "asyncpg copy_records_to_table (total)", "median_s": med(records),
         "baseline": BASE, "note": "temp table, truncated between runs"},
        {"group": GROUP, "case": "COPY of pre-encoded buffer (copy_to_table)", "median_s": med(pre),
         "baseline": BASE, "note": "the server's share: the floor for any loader"},
        {"group": GROUP, "case": "native encode_rows + COPY (total)", "median_s": med(ours),
         "baseline": BASE, "note": "compare with asyncpg copy_records_to_table (total)"},
    ]


def run(quick: bool) -> list[dict]:
    from dataflow import _native
    native = _native.load("copybin", "native")
    twin = _native.load("copybin", "python")
    repeats = 3 if quick else 7
    rows = make_rows()
    cols = make_columns(rows)
    out = []
    native_ok = str(getattr(native, "__file__", "")).endswith((".so", ".pyd"))
    if native_ok:
        out.append({"group": GROUP, "case": BASE, "median_s": _median(lambda: native.encode_rows(rows, TYPES), repeats),
                    "baseline": None, "note": "tuples; jsonb given as str"})
        out.append({"group": GROUP, "case": "native encode_columns", "median_s":
                    _median(lambda: native.encode_columns(cols, TYPES), repeats), "baseline": BASE,
                    "note": "int/float/bool columns as numpy arrays (buffer protocol), others lists"})
        out.append({"group": GROUP, "case": "native iter_chunks (1 MiB chunks)", "median_s":
                    _median(lambda: sum(map(len, native.iter_chunks(rows, TYPES))), repeats),
                    "baseline": BASE, "note": "streaming, constant memory"})
    sample = 2_000 if quick else 10_000
    t = _median(lambda: twin.encode_rows(rows[:sample], TYPES), 1 if quick else 3) * (N / sample)
    out.append({"group": GROUP, "case": "python twin encode_rows", "median_s": t,
                "baseline": BASE if native_ok else None, "note": f"measured on {sample} rows, scaled x{N // sample}"})
    if native_ok:
        try:
            out += asyncio.run(_server_cases(rows, native.encode_rows(rows, TYPES), native, repeats))
        except Exception as exc:  # server down or asyncpg missing: skip the server cases
            print(f"bench_copybin: PostgreSQL cases skipped ({exc.__class__.__name__}: {exc})", file=sys.stderr)
    return out


if __name__ == "__main__":
    entries = run("--quick" in sys.argv)
    times = {(e["group"], e["case"]): e["median_s"] for e in entries}
    for e in entries:
        ratio = f"{e['median_s'] / times[(e['group'], e['baseline'])]:.2f}x" if e["baseline"] else ""
        print(f"{e['group']:<24} {e['case']:<60} {e['median_s'] * 1e3:10.2f} ms {ratio:>8}  {e['note']}")
