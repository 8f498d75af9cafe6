"""The MongoDB document nodes (``DocumentInsertNode``, ``AggregateNode`` ...): not built yet.

The seed README's import path exists, so ``from dataflow.nodes.mongodb_nodes import
DocumentInsertNode`` fails with an ``UnsupportedFeatureError`` saying MongoDB support is missing
rather than a ModuleNotFoundError.
"""

from __future__ import annotations

from ..errors import UnsupportedFeatureError

#: the node names the well-known project documents (operations.md, MongoDB)
NAMES = ("DocumentInsertNode", "DocumentFindNode", "DocumentUpdateNode", "DocumentDeleteNode", "AggregateNode",
         "MongoAggregateNode", "BulkDocumentInsertNode", "CreateIndexNode", "DocumentCountNode")


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise UnsupportedFeatureError(
        f"dataflow.nodes.mongodb_nodes.{name}: MongoDB support (MongoDBAdapter and the document nodes "
        f"{', '.join(NAMES)}) is not available in this version; use a postgresql://, mysql:// or "
        f"sqlite:// URL and the model nodes")
