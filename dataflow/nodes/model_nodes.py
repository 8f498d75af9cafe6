"""The 11 generated nodes per model, plus the factory that names and registers them.

Each node is a thin adapter: it reads its parameters in the documented shapes and calls its
model's store (``dataflow.store.Store``, the same methods the express API uses), so the nodes
work unchanged on any kind of store.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import NotFoundError, ValidationError
from . import registry
from .base import Node, RunContext


class ModelNode(Node):
    """Base of generated nodes: bound to one store (``table``); checks db_instance/model_name
    when given."""

    table: ClassVar[Any] = None
    operation: ClassVar[str] = ""
    database_node: ClassVar[bool] = True
    allowed: ClassVar[tuple] = ()

    def _common(self, params: dict) -> dict:
        t = self.table
        p = dict(params)
        inst = p.pop("db_instance", None)
        name = p.pop("model_name", None)
        if name is not None and name != t.model.name:
            raise ValidationError(f"{self.node_type()}: model_name {name!r} does not match {t.model.name!r}")
        if inst is not None and not isinstance(inst, str) and inst is not t.db:
            raise ValidationError(f"{self.node_type()}: db_instance must be the DataFlow instance name")
        if self.allowed:
            extra = [k for k in p if k not in self.allowed]
            if extra:
                raise ValidationError(
                    f"{self.node_type()}: unknown parameter(s) {', '.join(map(repr, extra))}; "
                    f"valid: {', '.join(self.allowed)}")
        return p

    def validate(self, params: dict) -> dict:
        return params

    @property
    def where(self) -> str:
        return f"{self.node_type()} {self.node_id!r}"


def _pick_id(node, p, keys=("id", "record_id")):
    for k in keys:
        if p.get(k) is not None:
            return p.pop(k)
    filt = p.pop("filter", None)
    if isinstance(filt, dict) and set(filt) == {"id"} and not isinstance(filt["id"], dict):
        return filt["id"]
    if filt is not None:
        raise ValidationError(
            f"{node.where}: the filter must identify one row by id, e.g. {{'filter': {{'id': 5}}}}; "
            f"for many rows use {node.table.model.name}Bulk{node.operation}Node")
    raise ValidationError(f"{node.where}: pass 'id' (or 'filter': {{'id': ...}})")


class CreateNode(ModelNode):
    operation = "Create"

    async def run(self, ctx: RunContext, **params):
        p = self._common(params)
        return await self.table.create(p, where=self.where)


class ReadNode(ModelNode):
    operation = "Read"
    allowed = ("id", "record_id", "filter", "raise_on_not_found", "include_deleted", "cache")

    async def run(self, ctx, **params):
        p = self._common(params)
        raise_nf = p.pop("raise_on_not_found", True)
        include_deleted = p.pop("include_deleted", False)
        cache = p.pop("cache", True)
        id_ = _pick_id(self, p)
        row = await self.table.read(id_, include_deleted, cache=cache)
        if row is None:
            if raise_nf:
                raise NotFoundError(f"{self.table.model.name} with id {id_!r} not found ({self.where})")
            return {"id": id_, "found": False}
        row["found"] = True
        return row


class UpdateNode(ModelNode):
    operation = "Update"

    async def run(self, ctx, **params):
        p = self._common(params)
        fields = p.pop("fields", None)
        id_ = _pick_id(self, p)
        if fields is None:
            fields = p
        elif p:
            raise ValidationError(f"{self.where}: pass values either in 'fields' or flat, not both ({sorted(p)})")
        row, n = await self.table.update(id_, fields, where=self.where)
        return {"id": id_, "updated": n > 0, "rows_affected": n, "record": row}


class DeleteNode(ModelNode):
    operation = "Delete"
    allowed = ("id", "record_id", "filter")

    async def run(self, ctx, **params):
        p = self._common(params)
        id_ = _pick_id(self, p)
        n = await self.table.delete(id_)
        return {"id": id_, "deleted": n > 0, "rows_affected": n}


class ListNode(ModelNode):
    operation = "List"
    allowed = ("filter", "limit", "offset", "order_by", "sort", "fields", "include_deleted", "count_only", "cache")

    async def run(self, ctx, **params):
        p = self._common(params)
        t = self.table
        cache = p.get("cache", True)
        if p.get("count_only"):
            return {"count": await t.count(p.get("filter"), p.get("include_deleted", False), cache=cache)}
        limit = p.get("limit", 10)
        offset = p.get("offset", 0)
        rows = await t.list(p.get("filter"), limit, offset, p.get("order_by"), p.get("sort"),
                            p.get("fields"), p.get("include_deleted", False), cache=cache)
        return {"records": rows, "count": len(rows), "limit": limit, "offset": offset}


class CountNode(ModelNode):
    operation = "Count"
    allowed = ("filter", "include_deleted", "cache")

    async def run(self, ctx, **params):
        p = self._common(params)
        return {"count": await self.table.count(p.get("filter"), p.get("include_deleted", False),
                                                cache=p.get("cache", True))}


class UpsertNode(ModelNode):
    operation = "Upsert"
    allowed = ("where", "create", "update", "conflict_on", "data")

    async def run(self, ctx, **params):
        p = self._common(params)
        create = p.get("create") or p.get("data")
        where = p.get("where")
        if where is None:
            keys = p.get("conflict_on") or ["id"]
            keys = [keys] if isinstance(keys, str) else list(keys)
            if not isinstance(create, dict) or any(k not in create for k in keys):
                raise ValidationError(f"{self.where}: pass 'where' (unique field values) or 'create' containing {keys}")
            where = {k: create[k] for k in keys}
        return await self.table.upsert(where, create, p.get("update"), where_label=self.where)


def _data(node, p):
    for k in ("data", "records", "rows"):
        if k in p:
            return p.pop(k)
    raise ValidationError(f"{node.where}: pass the records as 'data' (a list of dicts)")


class BulkCreateNode(ModelNode):
    operation = "BulkCreate"
    allowed = ("data", "records", "rows", "batch_size", "conflict_resolution", "conflict_on",
               "return_ids", "atomic")

    async def run(self, ctx, **params):
        p = self._common(params)
        data = _data(self, p)
        return await self.table.bulk_create(data, label="bulk_create", **p)


class BulkUpdateNode(ModelNode):
    operation = "BulkUpdate"
    allowed = ("filter", "fields", "update", "data", "records", "confirmed")

    async def run(self, ctx, **params):
        p = self._common(params)
        data = p.get("data", p.get("records"))
        fields = p.get("fields", p.get("update"))
        return await self.table.bulk_update(p.get("filter"), fields, data=data, confirmed=p.get("confirmed", False))


class BulkDeleteNode(ModelNode):
    operation = "BulkDelete"
    allowed = ("filter", "confirmed", "ids")

    async def run(self, ctx, **params):
        p = self._common(params)
        filt = p.get("filter")
        if p.get("ids") is not None:
            filt = {"id": {"$in": list(p["ids"])}}
        return await self.table.bulk_delete(filt, confirmed=p.get("confirmed", False))


class BulkUpsertNode(ModelNode):
    operation = "BulkUpsert"
    allowed = ("data", "records", "rows", "conflict_on", "conflict_resolution", "batch_size", "atomic")

    async def run(self, ctx, **params):
        p = self._common(params)
        data = _data(self, p)
        return await self.table.bulk_upsert(data, **p)


_BASES = {"Create": CreateNode, "Read": ReadNode, "Update": UpdateNode, "Delete": DeleteNode,
          "List": ListNode, "Count": CountNode, "Upsert": UpsertNode, "BulkCreate": BulkCreateNode,
          "BulkUpdate": BulkUpdateNode, "BulkDelete": BulkDeleteNode, "BulkUpsert": BulkUpsertNode}


def make_nodes(db, table) -> dict:
    """Create and register ``<Model><Op>Node`` classes bound to ``table``; returns name -> class."""
    out = {}
    model = table.model.name
    for op, base in _BASES.items():
        name = f"{model}{op}Node"
        cls = type(name, (base,), {"table": table, "type_name": name,
                                   "__doc__": f"{op} for model {model} (generated)."})
        registry.register(cls, name, owner=db.name)
        out[name] = cls
    return out
