"""``MongoDBAdapter``: the seed's schemaless document API (collections without models) on the
same client as the document store -- pymongo's ``AsyncMongoClient``, or the in-process
stand-in with ``testing=True``, or any client with pymongo's async API (``client=``).

Filters are native MongoDB queries (DataFlow's ``$like``/``$contains``/... are translated);
filters, updates and pipelines that would run server-side code (``$where``, ``$function``,
``$accumulator``) are refused at any depth before anything is sent.

    adapter = MongoDBAdapter("mongodb://localhost:27017/shop", testing=True)
    db = DataFlow(adapter=adapter)
    uid = await adapter.insert_one("users", {"name": "Alice"})
"""

from __future__ import annotations

from ..config import parse_url
from ..documents import client as C
from ..errors import ConfigurationError, ValidationError

C.require_pymongo()     # the filters below need bson: a missing driver names the extra here
from ..documents.filters import SERVER_CODE, native_filter, refuse_server_code  # noqa: E402


class MongoDBAdapter:
    """Native document operations on one MongoDB database (the one the URL names)."""

    def __init__(self, database_url: str = "mongodb://localhost:27017/test", *, testing: bool = False,
                 client=None, database: str | None = None):
        url = parse_url(database_url)
        if not url.is_document:
            raise ConfigurationError(f"MongoDBAdapter needs a mongodb:// URL, got {url.redacted()!r}")
        self.database_url = database_url
        self.database_name = database or url.database
        if not self.database_name:
            raise ConfigurationError("a MongoDB URL names its database: mongodb://host:27017/mydb")
        self.testing = bool(testing)
        self._client = client
        if client is None:
            C.require_pymongo()

    @property
    def client(self):
        if self._client is None:
            self._client = C.make_client(self.database_url, self.testing)
        return self._client

    @property
    def database(self):
        return self.client[self.database_name]

    def _coll(self, name):
        if not isinstance(name, str) or not name or "$" in name or "\x00" in name:
            raise ValidationError(f"collection name must be a non-empty str without '$', got {name!r}")
        return self.database[name]

    async def _run(self, awaitable, what):
        try:
            return await awaitable
        except C.driver_errors() as exc:
            raise C.translate(exc, f"MongoDB {what}") from exc

    # -- lifecycle -------------------------------------------------------------------------------
    async def initialize(self) -> None:
        await self._run(self.client.admin.command("ping"), "ping")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    # -- documents -------------------------------------------------------------------------------
    async def insert_one(self, collection, document: dict):
        """Insert ``document``; returns its ``_id`` (an ObjectId unless the document had one)."""
        if not isinstance(document, dict):
            raise ValidationError("insert_one: document must be a dict")
        doc = dict(document)
        res = await self._run(self._coll(collection).insert_one(doc), "insert_one")
        return res.inserted_id

    async def insert_many(self, collection, documents, ordered: bool = True) -> list:
        docs = [dict(d) for d in documents]
        if any(not isinstance(d, dict) for d in documents):
            raise ValidationError("insert_many: documents must be dicts")
        if not docs:
            return []
        res = await self._run(self._coll(collection).insert_many(docs, ordered=ordered), "insert_many")
        return list(res.inserted_ids)

    async def find_one(self, collection, filter=None, projection=None):
        q = native_filter(filter)
        return await self._run(self._coll(collection).find_one(q, projection), "find_one")

    async def find(self, collection, filter=None, projection=None, sort=None, limit: int = 0,
                   skip: int = 0) -> list:
        q = native_filter(filter)
        cur = self._coll(collection).find(q, projection)
        if sort:
            cur = cur.sort(list(sort.items()) if isinstance(sort, dict) else list(sort))
        if skip:
            cur = cur.skip(int(skip))
        if limit:
            cur = cur.limit(int(limit))
        return await self._run(cur.to_list(None), "find")

    def _update(self, update, what):
        if not isinstance(update, (dict, list)) or not update:
            raise ValidationError(f"{what}: update must be a non-empty dict like {{'$set': {{...}}}} or a pipeline")
        refuse_server_code(update, f"{what} update", SERVER_CODE)
        return update

    async def update_one(self, collection, filter, update, upsert: bool = False) -> dict:
        q, change = native_filter(filter), self._update(update, "update_one")
        res = await self._run(self._coll(collection).update_one(q, change, upsert=upsert), "update_one")
        return _update_result(res)

    async def update_many(self, collection, filter, update, upsert: bool = False) -> dict:
        q, change = native_filter(filter), self._update(update, "update_many")
        res = await self._run(self._coll(collection).update_many(q, change, upsert=upsert), "update_many")
        return _update_result(res)

    async def delete_one(self, collection, filter) -> int:
        q = native_filter(filter)
        res = await self._run(self._coll(collection).delete_one(q), "delete_one")
        return res.deleted_count

    async def delete_many(self, collection, filter) -> int:
        if not filter:
            raise ValidationError("delete_many: an empty filter deletes every document; use drop_collection")
        q = native_filter(filter)
        res = await self._run(self._coll(collection).delete_many(q), "delete_many")
        return res.deleted_count

    async def count_documents(self, collection, filter=None) -> int:
        q = native_filter(filter)
        return int(await self._run(self._coll(collection).count_documents(q), "count_documents"))

    async def aggregate(self, collection, pipeline) -> list:
        if not isinstance(pipeline, list) or not all(isinstance(s, dict) and len(s) == 1 for s in pipeline):
            raise ValidationError("aggregate: pipeline must be a list of one-key stage dicts like {'$match': {...}}")
        refuse_server_code(pipeline, "pipeline", SERVER_CODE)
        cur = await self._run(self._coll(collection).aggregate(pipeline), "aggregate")
        return await self._run(cur.to_list(None), "aggregate")

    async def create_index(self, collection, keys, unique: bool = False, name: str | None = None, **options) -> str:
        if isinstance(keys, str):
            keys = [(keys, 1)]
        elif isinstance(keys, dict):
            keys = list(keys.items())
        opts = dict(options, unique=bool(unique))
        if name:
            opts["name"] = name
        if "partialFilterExpression" in opts:
            refuse_server_code(opts["partialFilterExpression"], "partialFilterExpression", SERVER_CODE)
        return await self._run(self._coll(collection).create_index(list(keys), **opts), "create_index")

    async def list_collections(self) -> list[str]:
        return sorted(await self._run(self.database.list_collection_names(), "list_collections"))

    async def drop_collection(self, collection) -> None:
        self._coll(collection)
        await self._run(self.database.drop_collection(collection), "drop_collection")


def _update_result(res) -> dict:
    return {"matched_count": res.matched_count, "modified_count": res.modified_count,
            "upserted_id": res.upserted_id}
