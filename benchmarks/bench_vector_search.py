"""End-to-end vector search, top-10 cosine over 100,000 x 384 float32.

Client path (SQLite): ``db.express.vector_search`` whole; and its ranking step alone --
``_native.vector.topk`` over the fetched blobs -- against numpy on the same blobs with one BLAS
thread (the *_NUM_THREADS variables are set before numpy loads; the runner starts each module in
its own process).  pgvector path (temp-dir server): ``vector_search`` without an index (exact)
against the same SQL typed by hand on asyncpg with a text query vector.
"""

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import asyncio  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

try:  # part of the package (python -m benchmarks) or run as a script
    from .timing import median_of as _median
except ImportError:  # pragma: no cover
    from timing import median_of as _median

N, DIM, K, SEED = 100_000, 384, 10, 20240601


async def _amedian(fn, reps):
    await fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        await fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _model(db):
    from dataflow.types import Vector

    class BenchDoc:
        __dataflow__ = {"table_name": "bench_vector_docs"}
        title: str
        embedding: Vector(DIM)

    return db.model(BenchDoc)


async def _client(quick, M, q) -> list[dict]:
    import sqlite3

    import numpy as np

    from dataflow import _native
    from dataflow import DataFlow

    reps = 3 if quick else 7
    tmp = tempfile.mkdtemp(prefix="df-bench-vec-")
    path = f"{tmp}/v.db"
    db = DataFlow(f"sqlite:///{path}")
    Doc = _model(db)
    await db.initialize()
    await db.close_async()
    con = sqlite3.connect(path)
    now = "2024-01-01T00:00:00.000000+00:00"
    con.executemany("INSERT INTO bench_vector_docs (title, embedding, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    ((f"d{i}", M[i].tobytes(), now, now) for i in range(N)))
    con.commit()
    blobs = [r[0] for r in con.execute("SELECT embedding FROM bench_vector_docs ORDER BY id")]
    con.close()
    group = f"vector search top-{K} cosine {N // 1000}k\u00d7{DIM}: client path"
    vec = _native.load("vector")
    native_t = _median(lambda: vec.topk(blobs, q, K, "cosine"), reps)

    def numpy_rank():
        m = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, DIM)
        d = 1 - (m @ q) / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
        i = np.argpartition(d, K)[:K]
        return i[np.argsort(d[i], kind="stable")]

    numpy_t = _median(numpy_rank, reps)
    assert list(numpy_rank()) == vec.topk(blobs, q, K, "cosine")[0]
    db = DataFlow(f"sqlite:///{path}")
    Doc = _model(db)
    search_t = await _amedian(lambda: db.express.vector_search(Doc, q, k=K), reps)
    await db.close_async()
    base = "numpy over the fetched blobs (1 BLAS thread)"
    return [
        {"group": group, "case": base, "median_s": numpy_t, "baseline": None,
         "note": "join + frombuffer + matvec + norms + argpartition"},
        {"group": group, "case": f"_native.vector.topk over the fetched blobs [{vec.KERNEL}]", "median_s": native_t,
         "baseline": base, "note": "list of bytes in, one pass, no copy into a matrix"},
        {"group": group, "case": "db.express.vector_search (SQLite, whole call)", "median_s": search_t,
         "baseline": base, "note": "reads 100k blobs (150 MB) + ranks + fetches 10 rows"},
    ]


async def _pgvector(quick, q) -> list[dict]:
    import asyncpg

    from dataflow import DataFlow
    from dataflow.testing import PgServerUnavailable, TempPostgres

    reps = 3 if quick else 7
    group = f"vector search top-{K} cosine {N // 1000}k\u00d7{DIM}: pgvector exact (no index)"
    try:
        server = TempPostgres().start()
    except PgServerUnavailable as exc:
        return [{"group": group, "case": "skipped", "median_s": None, "baseline": None, "note": str(exc)[:120]}]
    try:
        db = DataFlow(server.url)
        Doc = _model(db)
        await db.initialize()
        assert db.vector_backend == "pgvector"
        await db.execute_raw(
            "INSERT INTO bench_vector_docs (title, embedding, created_at, updated_at) "
            "SELECT 'd' || g, ARRAY(SELECT random() - 0.5 + g * 0 FROM generate_series(1, $1))::real[]::vector, "
            "now(), now() FROM generate_series(1, $2) g", DIM, N)
        await db.execute_raw("VACUUM ANALYZE bench_vector_docs")
        con = await asyncpg.connect(server.url)
        qtext = "[" + ",".join(repr(float(x)) for x in q) + "]"
        hand = ("SELECT id, title, embedding, created_at, updated_at, embedding <=> $1::vector FROM bench_vector_docs "
                "WHERE embedding IS NOT NULL ORDER BY embedding <=> $1::vector LIMIT 10")
        hand_t = await _amedian(lambda: con.fetch(hand, qtext), reps)
        ours_t = await _amedian(lambda: db.express.vector_search(Doc, q, k=K), reps)
        got = [r["id"] for r in (await db.express.vector_search(Doc, q, k=K))["results"]]
        assert got == [r[0] for r in await con.fetch(hand, qtext)]
        await con.close()
        await db.close_async()
    finally:
        server.stop()
    base = "asyncpg, the same SQL typed by hand"
    return [
        {"group": group, "case": base, "median_s": hand_t, "baseline": None,
         "note": "query vector as text, result vectors as text"},
        {"group": group, "case": "db.express.vector_search (pgvector)", "median_s": ours_t, "baseline": base,
         "note": "binary vector codec, rows decoded to dicts + lists"},
    ]


def run(quick: bool) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(SEED)
    M = rng.standard_normal((N, DIM), dtype=np.float32)
    q = rng.standard_normal(DIM, dtype=np.float32)

    async def main():
        return await _client(quick, M, q) + await _pgvector(quick, q)

    return asyncio.run(main())


if __name__ == "__main__":
    for e in run("--quick" in sys.argv):
        t = e["median_s"]
        print(f"{e['group']:<60} {e['case']:<62} {t * 1e3 if t else float('nan'):9.2f} ms  {e['note']}")
