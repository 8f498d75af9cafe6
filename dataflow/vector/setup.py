"""Per-database vector set-up, run once at ``initialize`` when a model has a vector field.

PostgreSQL with pgvector available: the extension is created, every pool connection gets the
``vector`` codec and the DataFlow's dialect renders ``vector(n)`` columns.  Anywhere else the
columns stay float32 BLOBs and searches rank client-side.
"""

from __future__ import annotations

from dataflow import _native

import dataflow.vector.pgcodec as pgcodec

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

PGVECTOR = "pgvector"
CLIENT = "client"


def has_vectors(models) -> bool:
    return any(f.kind == K.VECTOR for m in models for f in m.fields.values())


async def prepare(db) -> str:
    """Detect the backend for vector search on ``db``: "pgvector" or "client"."""
    if not getattr(db.dialect, "supports_pgvector", False):
        return CLIENT
    schema = await pgcodec.detect(db)
    if schema is None or not await _install_codec(db, schema):
        return CLIENT
    db.dialect = db.dialect.with_pgvector()
    return PGVECTOR


async def _install_codec(db, schema: str) -> bool:
    """Give every connection of ``db``'s pool the pgvector codec (present and future ones)."""

    async def setup(con):
        await pgcodec.register(con, schema)

    drv = db.driver
    hooks = drv.connection_setup       # run by the driver on every new pooled connection
    if not any(getattr(h, "_dataflow_vector", False) for h in hooks):
        setup._dataflow_vector = True
        hooks.append(setup)
    pool = await drv.pool()
    # Connections opened before the extension existed decoded nothing as ``vector``: renew them.
    await pool.expire_connections()
    return True
