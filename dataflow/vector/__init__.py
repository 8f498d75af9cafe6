"""Vector fields and nearest-neighbour search: pgvector on PostgreSQL, exact native top-k elsewhere.

    from dataflow.types import Vector
    @db.model
    class Doc:
        title: str
        embedding: Vector(384)

    await db.express.vector_search("Doc", query, k=5, filter={"lang": "en"})
"""

from .adapter import PostgreSQLVectorAdapter
from .nodes import CreateVectorIndexNode, VectorSearchNode, create_index, resolve_table
from .search import METRICS, search


def as_numpy(value):
    """A vector read back as a list (or a row dict's vector fields) -> float32 numpy array(s)."""
    import numpy as np

    if isinstance(value, dict):
        return {k: np.asarray(v, dtype=np.float32) if isinstance(v, list) and v and type(v[0]) is float else v
                for k, v in value.items()}
    return np.asarray(value, dtype=np.float32)


__all__ = ["CreateVectorIndexNode", "METRICS", "PostgreSQLVectorAdapter", "VectorSearchNode", "as_numpy",
           "create_index", "resolve_table", "search"]
