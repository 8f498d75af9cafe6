"""``from dataflow.nodes.vector_nodes import VectorSearchNode`` (the documented import path)."""

from ..vector.nodes import CreateVectorIndexNode, VectorSearchNode

__all__ = ["CreateVectorIndexNode", "VectorSearchNode"]
