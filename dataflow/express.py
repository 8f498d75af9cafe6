"""The express API: direct async (``db.express``) and blocking (``db.express_sync``) calls.

No workflow, lowest overhead: each method resolves the model's store (``dataflow.store``) and
calls its method; it never knows which kind of database is behind it.  ``model`` is the class
or its name; rows are plain dicts.
"""

from __future__ import annotations

from ._loop import run_sync


class Express:
    """``await db.express.read("User", 1)`` and friends."""

    def __init__(self, db):
        self._db = db

    def _t(self, model):
        return self._db._table(model)

    async def create(self, model, data: dict) -> dict:
        return await self._t(model).create(data)

    async def read(self, model, id, include_deleted: bool = False, cache: bool = True) -> dict | None:
        return await self._t(model).read(id, include_deleted, cache=cache)

    async def find_one(self, model, filter: dict, include_deleted: bool = False, cache: bool = True) -> dict | None:
        return await self._t(model).find_one(filter, include_deleted, cache=cache)

    async def update(self, model, id, fields: dict) -> dict | None:
        """Change ``fields`` of row ``id``; on a soft-delete model ``{"deleted_at": None}``
        restores a deleted row."""
        row, _ = await self._t(model).update(id, fields)
        return row

    async def delete(self, model, id) -> bool:
        return bool(await self._t(model).delete(id))

    async def list(self, model, filter: dict | None = None, limit: int = 100, offset: int = 0,
                   order_by=None, fields=None, include_deleted: bool = False, cache: bool = True) -> list[dict]:
        return await self._t(model).list(filter, limit, offset, order_by, None, fields, include_deleted, cache=cache)

    async def count(self, model, filter: dict | None = None, include_deleted: bool = False,
                    cache: bool = True) -> int:
        return await self._t(model).count(filter, include_deleted, cache=cache)

    async def upsert(self, model, data: dict, conflict_on=None) -> dict:
        t = self._t(model)
        keys = [conflict_on] if isinstance(conflict_on, str) else list(conflict_on or ["id"])
        missing = [k for k in keys if not isinstance(data, dict) or k not in data]
        if missing:
            from .errors import ValidationError
            raise ValidationError(f"{t.model.name} upsert: data must include the conflict key(s) {missing}")
        where = {k: data[k] for k in keys}
        res = await t.upsert(where, data, {k: v for k, v in data.items() if k not in keys})
        return res["record"]

    async def bulk_create(self, model, records, **opts) -> dict:
        return await self._t(model).bulk_create(records, **opts)

    async def bulk_update(self, model, filter=None, fields=None, **opts) -> dict:
        return await self._t(model).bulk_update(filter, fields, **opts)

    async def bulk_delete(self, model, filter=None, **opts) -> dict:
        """Delete the rows matching ``filter``, or a list of ids (``[1, 2]``)."""
        return await self._t(model).bulk_delete(filter, **opts)

    async def bulk_upsert(self, model, records, conflict_on=None, **opts) -> dict:
        return await self._t(model).bulk_upsert(records, conflict_on=conflict_on, **opts)

    async def vector_search(self, model, query_vector, k: int = 10, distance: str = "cosine", filter=None,
                            **opts) -> dict:
        """Nearest rows by a vector field: ``{"results": [row + "distance"], "count", "distance_metric"}``
        (``column_name``, ``return_distance``, ``vector_format`` as in VectorSearchNode)."""
        return await self._t(model).vector_search(query_vector, k, distance, filter, **opts)

    async def import_file(self, model, path, **opts) -> dict:
        """``db.load`` of a file (same options and report)."""
        return await self._t(model).load(path, **opts)


class ExpressSync:
    """Blocking twin of Express: same methods, run on a persistent loop (see _loop)."""

    def __init__(self, express: Express):
        self._express = express

    def __getattr__(self, name):
        fn = getattr(self._express, name)
        if not callable(fn) or name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            return run_sync(fn(*args, **kwargs))

        call.__name__ = name
        call.__doc__ = fn.__doc__
        setattr(self, name, call)
        return call
