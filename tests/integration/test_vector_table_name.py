"""VectorSearchNode's ``table_name`` as the well-known project's RAG example writes it: the
model's name in singular snake case ("knowledge_base" for KnowledgeBase, whose table is
knowledge_bases), or the model's name; an unknown name lists the tables there are."""

from __future__ import annotations

import pytest

from dataflow import AsyncLocalRuntime, DataFlow, WorkflowBuilder
from dataflow import errors as E
from dataflow.adapters import PostgreSQLVectorAdapter

from .conftest import PG_URL, _reachable


def _knowledge_base(db, tablename=None):
    class KnowledgeBase:
        id: str
        topic: str
        content: str
        embedding: list[float]
        # the seed declares only list[float] (with the adapter's vector_dimensions); here a
        # list[float] is a vector field when __dataflow__ gives its dimension
        __dataflow__ = {"vector": {"embedding": 3}}

    if tablename:
        KnowledgeBase.__tablename__ = tablename
    return db.model(KnowledgeBase)


async def _search(table_name, q, **extra):
    wf = WorkflowBuilder()
    wf.add_node("VectorSearchNode", "search", {"table_name": table_name, "query_vector": q, "k": 2,
                                               "distance": "cosine", **extra})
    results = await AsyncLocalRuntime().execute_workflow_async(wf.build())
    return results["search"]["results"]


async def _fill(db, KB):
    await db.express.bulk_create(KB, [
        {"id": "auth", "topic": "auth", "content": "log in", "embedding": [1.0, 0.0, 0.0]},
        {"id": "db", "topic": "db", "content": "tables", "embedding": [0.0, 1.0, 0.0]},
        {"id": "net", "topic": "net", "content": "sockets", "embedding": [0.0, 0.0, 1.0]},
    ])


@pytest.mark.parametrize("name", ["knowledge_base", "KnowledgeBase"])
async def test_table_name_as_model_singular_or_model_name(db, tables, name):
    KB = _knowledge_base(db, tables("knowledge_bases"))
    await _fill(db, KB)
    docs = await _search(name, [0.9, 0.1, 0.0])
    assert [d["id"] for d in docs] == ["auth", "db"]
    # the real table name still works
    assert [d["id"] for d in await _search(KB.__dataflow_model__.table, [0.0, 0.1, 0.9])] == ["net", "db"]


async def test_unknown_table_name_lists_the_tables(db, tables):
    KB = _knowledge_base(db, tables("knowledge_bases"))
    await _fill(db, KB)
    with pytest.raises(E.NodeExecutionError) as info:
        await _search("knowledge_basis", [1.0, 0.0, 0.0], db_instance=db)
    msg = str(info.value)
    assert "knowledge_basis" in msg and KB.__dataflow_model__.table in msg and "KnowledgeBase" in msg


async def test_seed_rag_example_on_pgvector_adapter():
    """The seed README's example as written (no __tablename__: the table is knowledge_bases)."""
    if not _reachable(PG_URL):
        pytest.skip("postgresql not reachable")
    adapter = PostgreSQLVectorAdapter(PG_URL, vector_dimensions=3, default_distance="cosine")
    db = DataFlow(adapter=adapter)
    try:
        await db.execute_raw('DROP TABLE IF EXISTS "knowledge_bases"')
        KB = _knowledge_base(db)
        await db.initialize()
        assert KB.__dataflow_model__.table == "knowledge_bases"
        await _fill(db, KB)
        docs = await _search("knowledge_base", [0.9, 0.1, 0.0])
        assert [d["id"] for d in docs] == ["auth", "db"]
    finally:
        try:
            await db.execute_raw('DROP TABLE IF EXISTS "knowledge_bases"')
        finally:
            await db.close_async()
