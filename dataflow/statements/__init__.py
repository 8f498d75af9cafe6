"""The statement layer: every statement a model's operations send is built here, per model.

``ModelStatements(dialect, model)`` renders SQL text plus parameter lists and does no I/O.
Every predicate goes through one ``where(...)`` (``scope.py``), which compiles the caller's
filter and ANDs the scope predicates (soft delete, the tenant) *outside* it, so no
operation can forget a scope and no ``$or`` can escape one.  One module per concern:

- ``scope.py``   the one ``where``, the scope predicates
- ``reads.py``   select, count, read by id, id lookups, vector candidate fetches, upsert locks
- ``writes.py``  insert, update, delete (soft and hard), single-row and multi-row upserts
- ``bulk.py``    the PostgreSQL COPY staging merge, MySQL LOAD DATA, counting around loads
- ``admin.py``   deliberately unscoped statements: the migration history, ``test_reset``

Dialect differences stay data and small renderers on the dialect classes (``dialects/``).
"""

from __future__ import annotations

from .bulk import BulkStatements
from .reads import Reads
from .scope import Pred, Scope, SoftDelete, TenantScope, Where
from .writes import Writes


class ModelStatements(Where, Reads, Writes, BulkStatements):
    """All statements of one model on one dialect (built once per Table)."""


__all__ = ["ModelStatements", "Pred", "Scope", "SoftDelete", "TenantScope"]
