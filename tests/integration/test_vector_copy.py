"""Vector columns through the PostgreSQL COPY BINARY path (pgvector `vector` encoding)."""

from __future__ import annotations

import math

import pytest

from dataflow import BulkLoadError, DataFlow, Vector
from dataflow.testing.fixtures import pgvector_server  # noqa: F401  (a fixture)

DIM = 8


def _model(db):
    @db.model
    class Emb:
        __tablename__ = "t_vec_copy"
        title: str
        embedding: Vector(DIM)
    return Emb


@pytest.fixture
async def vdb(pgvector_server):
    db = DataFlow(pgvector_server)
    Emb = _model(db)
    await db.initialize()
    assert db.vector_backend == "pgvector"
    yield db, Emb
    await db.execute_raw('DROP TABLE IF EXISTS "t_vec_copy"')
    await db.close_async()


async def test_bulk_vectors_go_through_copy_and_round_trip(vdb):
    from dataflow.bulk import postgresql as copy

    db, Emb = vdb
    assert copy.supports(db._table(Emb))
    recs = [{"title": f"t{i}", "embedding": [i + j / 8 for j in range(DIM)]} for i in range(500)]
    rep = await db.load(Emb, recs, progress=False)
    assert rep["path"] == "copy" and rep["rows"] == 500
    res = await db.express.bulk_create(Emb, recs[:10])
    assert res["inserted"] == 10
    back = await db.express.list(Emb, {"title": "t7"}, order_by="id")
    assert len(back) == 2 and all(r["embedding"] == recs[7]["embedding"] for r in back)
    hits = await db.express.vector_search(Emb, recs[42]["embedding"], k=1, distance="l2")
    assert hits["results"][0]["title"] == "t42" and hits["results"][0]["distance"] == 0


@pytest.mark.parametrize("bad", [[1.0] * (DIM - 1), [math.nan] * DIM, [], "not a vector"])
async def test_bad_vector_row_leaves_nothing_and_names_the_row(vdb, bad):
    db, Emb = vdb
    recs = [{"title": f"t{i}", "embedding": [1.0] * DIM} for i in range(50)]
    recs[37] = {"title": "bad", "embedding": bad}
    with pytest.raises(BulkLoadError) as info:
        await db.load(Emb, recs, progress=False)
    assert info.value.failed_index == 37
    assert await db.express.count(Emb) == 0
