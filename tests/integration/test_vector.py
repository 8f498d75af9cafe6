"""Vector fields and search on every backend: SQLite, MariaDB, the shared PostgreSQL (no pgvector:
client-side path) and a pgvector PostgreSQL started in a temporary directory.

Exact top-k must equal a numpy reference for cosine, L2 and inner product, with filters.
"""


import math
import uuid

import numpy as np
import pytest

from dataflow import DataFlow
from dataflow.errors import BulkLoadError, ValidationError
from dataflow.testing.fixtures import backend_url_for, drop_tables, pgvector_server  # noqa: F401
from dataflow.types import Vector
from dataflow.vector import CreateVectorIndexNode, PostgreSQLVectorAdapter, VectorSearchNode
from dataflow.workflow import AsyncLocalRuntime, WorkflowBuilder

BACKENDS = ["sqlite", "mysql", "postgresql", "pgvector"]
DIM = 16
N = 300


@pytest.fixture(params=BACKENDS)
def vurl(request, tmp_path):
    if request.param == "pgvector":
        return request.getfixturevalue("pgvector_server")
    return backend_url_for(request.param, tmp_path)


@pytest.fixture
async def vdb(vurl):
    db = DataFlow(vurl)
    yield db
    try:
        await drop_tables(db)
    finally:
        await db.close_async()


def _doc_model(db, dim=DIM):
    suffix = uuid.uuid4().hex[:8]

    class Doc:
        __dataflow__ = {"table_name": f"t_vdoc_{suffix}"}
        title: str
        cat: str
        score: int
        embedding: Vector(dim)
        other: list[float] | None = None

    Doc.__dataflow__["vector"] = {"other": 3}
    Doc.__name__ = Doc.__qualname__ = f"Doc{suffix}"
    return db.model(Doc)


def reference(mat, ids, q, k, metric):
    """Exact ranking in double precision over the float32 data; ties by id."""
    m = mat.astype(np.float64)
    qq = np.asarray(q, dtype=np.float32).astype(np.float64)
    if metric == "cosine":
        d = 1 - (m @ qq) / (np.linalg.norm(m, axis=1) * np.linalg.norm(qq))
    elif metric == "l2":
        d = np.linalg.norm(m - qq, axis=1)
    else:
        d = -(m @ qq)
    order = sorted(range(len(ids)), key=lambda i: (d[i], ids[i]))[:k]
    return [ids[i] for i in order], [float(d[i]) for i in order]


async def _load(db, Doc, rng, n=N):
    mat = rng.standard_normal((n, DIM)).astype(np.float32)
    recs = [{"title": f"d{i}", "cat": "ab"[i % 2], "score": i % 10, "embedding": mat[i].tolist()} for i in range(n)]
    res = await db.express.bulk_create(Doc, recs, batch_size=128)
    assert res["inserted"] == n
    rows = await db.express.list(Doc, limit=n, order_by="id")
    return mat, [r["id"] for r in rows]


async def test_backend_detected(vdb, vurl):
    _doc_model(vdb)
    await vdb.initialize()
    expect = "pgvector" if vurl.startswith("postgresql") and "5432" not in vurl else "client"
    assert vdb.vector_backend == expect


async def test_round_trip(vdb):
    Doc = _doc_model(vdb)
    v = [0.1, -2.5, 3.25, 1e-3] * 4
    row = await vdb.express.create(Doc, {"title": "a", "cat": "a", "score": 1, "embedding": v, "other": [1, 2, 3]})
    back = await vdb.express.read(Doc, row["id"])
    assert back["embedding"] == np.asarray(v, dtype=np.float32).tolist()
    assert all(type(x) is float for x in back["embedding"])
    assert back["other"] == [1.0, 2.0, 3.0]
    # numpy in, numpy out when asked; None for an optional vector
    arr = np.linspace(-1, 1, DIM, dtype=np.float32)
    r2 = await vdb.express.create(Doc, {"title": "b", "cat": "b", "score": 2, "embedding": arr})
    got = await vdb.express.read(Doc, r2["id"])
    assert got["other"] is None
    np.testing.assert_array_equal(np.asarray(got["embedding"], dtype=np.float32), arr)
    res = await vdb.express.vector_search(Doc, arr, k=1, vector_format="numpy")
    top = res["results"][0]
    assert top["id"] == r2["id"] and isinstance(top["embedding"], np.ndarray)
    assert top["embedding"].dtype == np.float32
    np.testing.assert_array_equal(top["embedding"], arr)
    upd = await vdb.express.update(Doc, row["id"], {"embedding": [1.0] * DIM})
    assert upd["embedding"] == [1.0] * DIM


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
async def test_exact_topk_matches_numpy(vdb, metric):
    Doc = _doc_model(vdb)
    rng = np.random.default_rng(7)
    mat, ids = await _load(vdb, Doc, rng)
    for trial in range(3):
        q = rng.standard_normal(DIM).astype(np.float32)
        res = await vdb.express.vector_search(Doc, q.tolist(), k=10, distance=metric)
        want_ids, want_d = reference(mat, ids, q, 10, metric)
        assert res["distance_metric"] == metric and res["count"] == 10
        assert [r["id"] for r in res["results"]] == want_ids
        np.testing.assert_allclose([r["distance"] for r in res["results"]], want_d, rtol=1e-4, atol=1e-4)
        # with a filter in the normal filter language
        filt = {"cat": "a", "score": {"$gte": 3}}
        keep = [i for i in range(N) if i % 2 == 0 and i % 10 >= 3]
        res = await vdb.express.vector_search(Doc, q, k=7, distance=metric, filter=filt)
        want_ids, want_d = reference(mat[keep], [ids[i] for i in keep], q, 7, metric)
        assert [r["id"] for r in res["results"]] == want_ids
        assert all(r["cat"] == "a" and r["score"] >= 3 for r in res["results"])
        np.testing.assert_allclose([r["distance"] for r in res["results"]], want_d, rtol=1e-4, atol=1e-4)


async def test_k_larger_than_candidates_and_no_match(vdb):
    Doc = _doc_model(vdb)
    rng = np.random.default_rng(1)
    await _load(vdb, Doc, rng, n=12)
    q = rng.standard_normal(DIM).tolist()
    res = await vdb.express.vector_search(Doc, q, k=50, filter={"cat": "b"})
    assert res["count"] == 6
    res = await vdb.express.vector_search(Doc, q, k=5, filter={"title": "nope"})
    assert res == {"results": [], "count": 0, "distance_metric": "cosine"}


@pytest.mark.parametrize("bad,msg", [
    ([1.0] * (DIM - 1), "has dimension 15; expected 16"),
    ([1.0] * (DIM - 1) + [math.nan], "is not finite"),
    ([1.0] * (DIM - 1) + [math.inf], "is not finite"),
    ([], "must not be empty"),
    ([1.0] * (DIM - 1) + ["x"], "must be a number"),
])
async def test_validation(vdb, bad, msg):
    Doc = _doc_model(vdb)
    with pytest.raises(ValidationError, match=msg):
        await vdb.express.create(Doc, {"title": "a", "cat": "a", "score": 1, "embedding": bad})
    with pytest.raises(ValidationError, match=msg):
        await vdb.express.vector_search(Doc, bad)
    with pytest.raises((ValidationError, BulkLoadError), match=msg):
        await vdb.express.bulk_create(Doc, [{"title": "a", "cat": "a", "score": 1, "embedding": bad}])
    assert await vdb.express.count(Doc) == 0


async def test_search_parameter_errors(vdb):
    Doc = _doc_model(vdb)
    q = [1.0] * DIM
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValidationError, match="k must be"):
            await vdb.express.vector_search(Doc, q, k=k)
    with pytest.raises(ValidationError, match="distance must be one of"):
        await vdb.express.vector_search(Doc, q, distance="dot")
    with pytest.raises(ValidationError, match="zero vector"):
        await vdb.express.vector_search(Doc, [0.0] * DIM)
    with pytest.raises(ValidationError, match="not a vector field"):
        await vdb.express.vector_search(Doc, q, column_name="title")
    with pytest.raises(ValidationError, match="expected 3"):
        await vdb.express.vector_search(Doc, q, column_name="other")


async def test_nodes_in_a_workflow(vdb):
    Doc = _doc_model(vdb)
    rng = np.random.default_rng(3)
    mat, ids = await _load(vdb, Doc, rng, n=40)
    q = rng.standard_normal(DIM).astype(np.float32)
    wf = WorkflowBuilder()
    wf.add_node("VectorSearchNode", "search", {"model": Doc, "query_vector": q.tolist(), "k": 3, "distance": "l2",
                                               "filter": {"cat": "b"}})
    wf.add_node(VectorSearchNode, "by_table", {"table_name": Doc.__dataflow_model__.table, "query_vector": q,
                                               "k": 2, "return_distance": False, "db_instance": vdb})
    wf.add_node(CreateVectorIndexNode, "ix", {"model": Doc.__name__, "db_instance": vdb.name, "m": 8,
                                              "ef_construction": 32})
    results, _ = await AsyncLocalRuntime().execute(wf.build())
    keep = [i for i in range(40) if i % 2 == 1]
    want, _ = reference(mat[keep], [ids[i] for i in keep], q, 3, "l2")
    assert [r["id"] for r in results["search"]["results"]] == want
    assert results["search"]["distance_metric"] == "l2"
    assert results["by_table"]["count"] == 2 and "distance" not in results["by_table"]["results"][0]
    assert results["ix"]["created"] == (vdb.vector_backend == "pgvector")


async def test_vector_search_node_refuses_unknown_parameter(vdb):
    Doc = _doc_model(vdb)
    wf = WorkflowBuilder()
    wf.add_node(VectorSearchNode, "s", {"model": Doc, "query_vector": [1.0] * DIM, "limit": 3})
    with pytest.raises(Exception, match="limit"):
        await AsyncLocalRuntime().execute(wf.build())


# -- pgvector only ---------------------------------------------------------------------------

@pytest.fixture
async def pgv(pgvector_server):
    db = DataFlow(adapter=PostgreSQLVectorAdapter(pgvector_server, vector_dimensions=DIM, default_distance="l2"))
    yield db
    try:
        await drop_tables(db)
    finally:
        await db.close_async()


async def test_pgvector_column_type_and_bind_parameter(pgv):
    Doc = _doc_model(pgv)
    await pgv.initialize()
    table = Doc.__dataflow_model__.table
    typ = await pgv.execute_raw("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                "WHERE attrelid = $1::regclass AND attname = 'embedding'", table)
    assert typ == [("vector(16)",)]
    # the query vector travels as a bind parameter: text that looks like SQL is just refused
    with pytest.raises(ValidationError):
        await pgv.express.vector_search(Doc, "[1,2]); DROP TABLE x; --")


async def test_hnsw_index_created_and_used(pgv):
    Doc = _doc_model(pgv)
    rng = np.random.default_rng(11)
    mat, ids = await _load(pgv, Doc, rng, n=500)
    wf = WorkflowBuilder()
    wf.add_node(CreateVectorIndexNode, "ix", {"model": Doc, "index_type": "hnsw", "distance": "cosine",
                                              "m": 16, "ef_construction": 64})
    wf.add_node(CreateVectorIndexNode, "ivf", {"model": Doc, "index_type": "ivfflat", "distance": "l2",
                                               "lists": 10})
    results, _ = await AsyncLocalRuntime().execute(wf.build())
    ix = results["ix"]
    assert ix["created"] and ix["index_type"] == "hnsw" and results["ivf"]["created"]
    table = Doc.__dataflow_model__.table
    defs = await pgv.execute_raw("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1", table)
    hnsw = [d for n, d in defs if n == ix["index_name"]]
    assert hnsw and "USING hnsw" in hnsw[0] and "vector_cosine_ops" in hnsw[0] and "m='16'" in hnsw[0]
    q = rng.standard_normal(DIM).astype(np.float32)
    from dataflow.vector.search import _pgvector  # the exact statement the search runs
    t = pgv._table(Doc)
    async with pgv.transaction():
        await pgv.driver.execute("SET LOCAL enable_seqscan = off")
        plan_sql = ("EXPLAIN SELECT id FROM " + t.qtable + " WHERE embedding IS NOT NULL "
                    "ORDER BY embedding <=> $1 LIMIT 5")
        plan = "\n".join(r[0] for r in await pgv.driver.fetch(plan_sql, [q.tobytes()]))
        assert ix["index_name"] in plan and "Index Scan" in plan, plan
        rows, dists = await _pgvector(t, "embedding", q.tobytes(), 5, "cosine", None)
    want, _ = reference(mat, ids, q, 5, "cosine")
    # HNSW is approximate; at this size with ef_search 40 it finds the true neighbours
    assert len(set(r["id"] for r in rows) & set(want)) >= 4
    # default_distance from the adapter
    wf = WorkflowBuilder()
    wf.add_node(VectorSearchNode, "s", {"model": Doc, "query_vector": q, "k": 3})
    results, _ = await AsyncLocalRuntime().execute(wf.build())
    assert results["s"]["distance_metric"] == "l2"
