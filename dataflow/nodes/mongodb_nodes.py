"""The seed's document nodes: native MongoDB operations on collections without models, on the
MongoDB database of a DataFlow (``DataFlow(adapter=MongoDBAdapter(...))`` or a mongodb:// URL).

Each node takes ``collection`` plus its operation's parameters and returns the well-known
project's result shape.  ``db_instance`` names the DataFlow when more than one MongoDB-backed
instance is open.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import ValidationError
from . import registry
from .base import Node, Param


def _adapter(db_instance=None):
    live = registry.LIVE
    if db_instance is not None and not isinstance(db_instance, str):
        dbs = [db_instance]
    elif db_instance is not None:
        db = live.get(db_instance)
        if db is None:
            raise ValidationError(f"no open DataFlow named {db_instance!r}; open ones: {', '.join(live) or 'none'}")
        dbs = [db]
    else:
        dbs = [db for db in list(live.values()) if getattr(db, "documents", False)]
    dbs = [db for db in dbs if getattr(db, "documents", False)]
    if not dbs:
        raise ValidationError("document nodes need a DataFlow on MongoDB: DataFlow(adapter=MongoDBAdapter(url)) "
                              "or DataFlow('mongodb://host/db') (with testing=True for the in-process stand-in)")
    if len(dbs) > 1:
        raise ValidationError(f"{len(dbs)} MongoDB-backed DataFlow instances are open ({', '.join(d.name for d in dbs)}); "
                              f"pass db_instance to say which one the node uses")
    db = dbs[0]
    from ..adapters.mongodb import MongoDBAdapter
    if isinstance(db.adapter, MongoDBAdapter):
        return db.adapter
    if getattr(db, "_document_adapter", None) is None:      # a mongodb:// URL: the same client
        db._document_adapter = MongoDBAdapter(db.config.url.raw, client=db.driver.client,
                                              database=db.driver.database_name)
    return db._document_adapter


class DocumentNode(Node):
    """Base: ``collection`` (required) and ``db_instance`` (optional)."""

    operation: ClassVar[str] = ""

    def adapter(self, params):
        return _adapter(params.pop("db_instance", None))


def _params(**extra):
    return {"collection": Param(str, required=True), "db_instance": Param(object, default=None), **extra}


class DocumentInsertNode(DocumentNode):
    """Insert one document: ``{"inserted_id", "success"}``."""

    parameters = _params(document=Param(dict, required=True))

    async def run(self, ctx, **p):
        a = self.adapter(p)
        return {"inserted_id": await a.insert_one(p["collection"], p["document"]), "success": True}


class DocumentFindNode(DocumentNode):
    """Find documents: ``{"documents", "count"}``."""

    parameters = _params(filter=Param(dict, default={}), projection=Param(object, default=None),
                         sort=Param(object, default=None), limit=Param(int, default=0), skip=Param(int, default=0))

    async def run(self, ctx, **p):
        a = self.adapter(p)
        docs = await a.find(p["collection"], p.get("filter"), p.get("projection"), p.get("sort"),
                            p.get("limit") or 0, p.get("skip") or 0)
        return {"documents": docs, "count": len(docs)}


class DocumentUpdateNode(DocumentNode):
    """Update one (or with ``multi=True`` every) matching document:
    ``{"matched_count", "modified_count", "upserted_id"}``."""

    parameters = _params(filter=Param(dict, required=True), update=Param(object, required=True),
                         upsert=Param(bool, default=False), multi=Param(bool, default=False))

    async def run(self, ctx, **p):
        a = self.adapter(p)
        fn = a.update_many if p.get("multi") else a.update_one
        return await fn(p["collection"], p["filter"], p["update"], upsert=p.get("upsert", False))


class DocumentDeleteNode(DocumentNode):
    """Delete one (or with ``multi=True`` every) matching document: ``{"deleted_count"}``."""

    parameters = _params(filter=Param(dict, required=True), multi=Param(bool, default=False))

    async def run(self, ctx, **p):
        a = self.adapter(p)
        fn = a.delete_many if p.get("multi") else a.delete_one
        return {"deleted_count": await fn(p["collection"], p["filter"])}


class AggregateNode(DocumentNode):
    """Run an aggregation pipeline: ``{"results", "count"}``."""

    parameters = _params(pipeline=Param(list, required=True))

    async def run(self, ctx, **p):
        a = self.adapter(p)
        rows = await a.aggregate(p["collection"], p["pipeline"])
        return {"results": rows, "count": len(rows)}


#: the well-known project's other name for AggregateNode
MongoAggregateNode = AggregateNode


class BulkDocumentInsertNode(DocumentNode):
    """Insert many documents: ``{"inserted_ids", "inserted_count", "success"}``."""

    parameters = _params(documents=Param(list, required=True), ordered=Param(bool, default=True))

    async def run(self, ctx, **p):
        a = self.adapter(p)
        ids = await a.insert_many(p["collection"], p["documents"], ordered=p.get("ordered", True))
        return {"inserted_ids": ids, "inserted_count": len(ids), "success": True}


class CreateIndexNode(DocumentNode):
    """Create an index: ``{"index_name", "success"}``."""

    parameters = _params(keys=Param(object, required=True), unique=Param(bool, default=False),
                         name=Param(object, default=None))

    async def run(self, ctx, **p):
        a = self.adapter(p)
        name = await a.create_index(p["collection"], p["keys"], unique=p.get("unique", False), name=p.get("name"))
        return {"index_name": name, "success": True}


class DocumentCountNode(DocumentNode):
    """Count matching documents: ``{"count"}``."""

    parameters = _params(filter=Param(dict, default={}))

    async def run(self, ctx, **p):
        a = self.adapter(p)
        return {"count": await a.count_documents(p["collection"], p.get("filter"))}


NODES = (DocumentInsertNode, DocumentFindNode, DocumentUpdateNode, DocumentDeleteNode, AggregateNode,
         BulkDocumentInsertNode, CreateIndexNode, DocumentCountNode)
for _cls in NODES:
    registry.register(_cls)
registry.register(AggregateNode, "MongoAggregateNode")

__all__ = [c.__name__ for c in NODES] + ["MongoAggregateNode"]
