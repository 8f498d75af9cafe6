"""The store protocol: everything nodes, express, bulk, ETL and vector search call on a model.

One typed interface, so the callers (``nodes/``, ``express.py``, ``workflow/``) never know which
kind of database is behind a model.  ``dataflow.ops.table.Table`` is the SQL store; a document
store implements the same methods with the same parameters and result shapes, and the
contract tests (``tests/integration/test_store_contract.py``, parametrised by store) hold it to
them.  Filters are the one filter language (``core.md``, Filters) on every store.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Store(Protocol):
    """One model bound to one DataFlow instance's database."""

    db: Any          # the owning DataFlow
    model: Any       # dataflow.models.model.ModelInfo

    async def ready(self) -> None:
        """Connect and create the schema on first use (idempotent)."""

    # -- single rows -----------------------------------------------------------------------------
    async def create(self, data: dict, where: str | None = None) -> dict:
        """Insert one record (flat fields); the stored row with ``id`` and timestamps."""

    async def read(self, id, include_deleted: bool = False, cache: bool = True) -> dict | None:
        """The row with ``id``, or None (``cache=False``: never from the query cache)."""

    async def update(self, id, fields: dict, where: str | None = None) -> tuple[dict | None, int]:
        """Change ``fields`` of row ``id``: (row after the update or None, rows affected)."""

    async def delete(self, id) -> int:
        """Delete (soft-delete) row ``id``; rows affected."""

    async def upsert(self, where: dict, create: dict | None, update: dict | None,
                     where_label: str | None = None) -> dict:
        """Update the row matching the unique ``where`` values or create it:
        ``{"created", "action", "record"}``."""

    # -- queries ---------------------------------------------------------------------------------
    async def list(self, filt=None, limit=100, offset=0, order_by=None, sort=None, fields=None,
                   include_deleted: bool = False, cache: bool = True) -> list[dict]:
        """Rows matching ``filt``, ordered (default by id), paged, optionally projected."""

    async def count(self, filt=None, include_deleted: bool = False, cache: bool = True) -> int:
        """How many rows match ``filt``."""

    async def find_one(self, filt, include_deleted: bool = False, cache: bool = True) -> dict | None:
        """The first row (by id) matching ``filt``, or None."""

    # -- bulk and ETL ----------------------------------------------------------------------------
    async def bulk_create(self, records, **opts) -> dict:
        """``{"processed", "inserted", "skipped", ...}``; options of ``dataflow.bulk.options``."""

    async def bulk_update(self, filt=None, fields=None, **opts) -> dict:
        """Set ``fields`` on every row matching ``filt`` (or per-row ``data``): ``{"processed", "updated"}``."""

    async def bulk_delete(self, filt=None, **opts) -> dict:
        """Delete every row matching ``filt`` (a list of ids is accepted): ``{"processed", "deleted"}``."""

    async def bulk_upsert(self, records, **opts) -> dict:
        """``{"processed", "inserted", "updated", "skipped"}``."""

    async def load(self, source, **opts) -> dict:
        """Bulk-load any source (iterables, files, columns, arrays): the ``db.load`` report."""

    async def export(self, path, **opts) -> dict:
        """Write the rows matching ``filter`` to a file: ``{"rows", "seconds", "path", "format"}``."""

    async def vector_search(self, query_vector, k: int = 10, distance: str = "cosine", filter=None,
                            **opts) -> dict:
        """``{"results": [row + "distance"], "count", "distance_metric"}``, nearest first."""


#: the methods a store must have (the contract tests check each store against this list)
METHODS = tuple(n for n, v in vars(Store).items() if callable(v) and not n.startswith("_"))
