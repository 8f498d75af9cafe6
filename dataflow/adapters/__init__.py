"""Adapters passed as ``DataFlow(adapter=...)`` -- the import path the well-known project documents."""

from ..errors import UnsupportedFeatureError
from ..vector.adapter import PostgreSQLVectorAdapter


class MongoDBAdapter:
    """Not built yet: constructing it says so instead of failing later."""

    def __init__(self, *args, **kwargs):
        raise UnsupportedFeatureError(
            "MongoDBAdapter is not available in this version (MongoDB support is not built yet); "
            "use a postgresql://, mysql:// or sqlite:// URL")


__all__ = ["MongoDBAdapter", "PostgreSQLVectorAdapter"]
