"""PostgreSQLVectorAdapter: a PostgreSQL URL plus vector defaults, usable as ``DataFlow(adapter=...)``.

The engine reads ``database_url``; the vector nodes read ``default_distance``.  pgvector itself
is detected (and the extension created) when the DataFlow initializes.
"""

from __future__ import annotations

from ..config import parse_url
from ..errors import ConfigurationError
from .search import METRICS


class PostgreSQLVectorAdapter:
    """``DataFlow(adapter=PostgreSQLVectorAdapter("postgresql://...", vector_dimensions=384))``.

    ``vector_dimensions``: the embedding size this application uses (informational, checked
    positive); ``default_distance``: the metric VectorSearchNode / CreateVectorIndexNode use when
    none is given.
    """

    def __init__(self, url: str, vector_dimensions: int | None = None, default_distance: str = "cosine"):
        parsed = parse_url(url)
        if parsed.dialect != "postgresql":
            raise ConfigurationError(f"PostgreSQLVectorAdapter needs a postgresql:// URL, got {parsed.redacted()!r}")
        if vector_dimensions is not None and (type(vector_dimensions) is not int or not 0 < vector_dimensions <= 16000):
            raise ConfigurationError(f"vector_dimensions must be an int between 1 and 16000, got {vector_dimensions!r}")
        if default_distance not in METRICS:
            raise ConfigurationError(f"default_distance must be one of {METRICS}, not {default_distance!r}")
        self.database_url = url
        self.vector_dimensions = vector_dimensions
        self.default_distance = default_distance

    def __repr__(self) -> str:
        return f"PostgreSQLVectorAdapter({parse_url(self.database_url).redacted()!r}, " \
               f"vector_dimensions={self.vector_dimensions}, default_distance={self.default_distance!r})"
