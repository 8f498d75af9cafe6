"""Adapters passed as ``DataFlow(adapter=...)`` -- the import path the well-known project documents."""

from ..vector.adapter import PostgreSQLVectorAdapter


def __getattr__(name):
    # MongoDBAdapter is imported on first use: importing it needs nothing, but keeping
    # ``dataflow.adapters`` light keeps the vector adapter's import cheap too
    if name == "MongoDBAdapter":
        from .mongodb import MongoDBAdapter
        return MongoDBAdapter
    raise AttributeError(f"module 'dataflow.adapters' has no attribute {name!r}")


__all__ = ["MongoDBAdapter", "PostgreSQLVectorAdapter"]
