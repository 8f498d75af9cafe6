"""The in-process stand-in for a MongoDB server: mongomock behind pymongo's async API shape
(``AsyncMongoClient``: awaitable methods, ``find()`` returning an async cursor, ``await
aggregate(...)``).  It is a thin wrapper, not a database: every query, update and index is
mongomock's.  What it cannot do is refused with ``UnsupportedFeatureError`` naming the stand-in,
at the call and before mongomock is asked: sessions (so transactions), ordering Decimal128 (by
the store), the operators in ``GAPS`` (which mongomock would get wrong or misreport), and any
stage or operator mongomock does not implement (its NotImplementedError).  The table of what
works is tests/integration/test_documents_conformance.py.
"""

from __future__ import annotations

#: operators mongomock mishandles instead of refusing: ``$mod`` ("unknown operator"), the
#: update operators ``$mul`` and ``$bit`` (taken for field names)
GAPS = frozenset(("$mod", "$mul", "$bit"))


def _refuse(what: str):
    from ..errors import UnsupportedFeatureError
    return UnsupportedFeatureError(f"the MongoDB stand-in (testing=True, mongomock) cannot run {what}; "
                                   f"a real MongoDB server can (DATAFLOW_TEST_MONGODB_URL in tests)")


def _no_session(session):
    if session is not None:
        raise _refuse("sessions (so no transactions)")


def _check(spec):
    """Refuse a filter, update or pipeline naming an operator of ``GAPS`` (at any depth)."""
    stack = [spec]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, w in v.items():
                if k in GAPS:
                    raise _refuse(f"the {k} operator")
                if isinstance(w, (dict, list, tuple)):
                    stack.append(w)
        elif isinstance(v, (list, tuple)):
            stack.extend(w for w in v if isinstance(w, (dict, list, tuple)))


def _call(fn, *args, **kw):
    """Run a mongomock call; what it does not implement becomes ``UnsupportedFeatureError``."""
    try:
        return fn(*args, **kw)
    except NotImplementedError as exc:
        raise _refuse(f"this: {str(exc).splitlines()[0][:200]}") from None


class StandInCursor:
    """``find()``'s cursor: chainable ``sort``/``skip``/``limit``, then ``async for`` or
    ``await to_list()``."""

    def __init__(self, cursor):
        self._c = cursor

    def sort(self, key, direction=None):
        self._c = self._c.sort(key, direction) if direction is not None else self._c.sort(key)
        return self

    def skip(self, n):
        self._c = self._c.skip(n)
        return self

    def limit(self, n):
        self._c = self._c.limit(n)
        return self

    async def to_list(self, length=None):
        out = list(self._c)
        return out if length is None else out[:length]

    def __aiter__(self):
        return self._iter()

    async def _iter(self):
        for doc in self._c:
            yield doc

    async def close(self):
        pass


class StandInCollection:
    def __init__(self, coll):
        self._c = coll
        self.name = coll.name

    def find(self, filter=None, projection=None, *, session=None, **kw):
        _no_session(session)
        _check(filter)
        return StandInCursor(_call(self._c.find, filter or {}, projection, **kw))

    async def aggregate(self, pipeline, *, session=None, **kw):
        _no_session(session)
        _check(pipeline)
        return StandInCursor(_call(self._c.aggregate, pipeline, **kw))

    async def bulk_write(self, requests, ordered=True, *, session=None, **kw):
        """pymongo's request objects applied one by one through mongomock's single-document
        calls (mongomock's own bulk_write does not accept current pymongo's requests), with
        pymongo's result and ``BulkWriteError`` shapes."""
        _no_session(session)
        from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
        from pymongo.errors import BulkWriteError, PyMongoError
        from pymongo.results import BulkWriteResult
        res = {"nInserted": 0, "nUpserted": 0, "nMatched": 0, "nModified": 0, "nRemoved": 0,
               "upserted": [], "writeErrors": [], "writeConcernErrors": []}
        c = self._c
        for op in requests:
            _check([getattr(op, "_filter", None), None if isinstance(op, InsertOne) else getattr(op, "_doc", None)])
        for i, op in enumerate(requests):
            try:
                if isinstance(op, InsertOne):
                    c.insert_one(op._doc)
                    res["nInserted"] += 1
                elif isinstance(op, (UpdateOne, UpdateMany, ReplaceOne)):
                    fn = c.replace_one if isinstance(op, ReplaceOne) else \
                        c.update_one if isinstance(op, UpdateOne) else c.update_many
                    r = fn(op._filter, op._doc, upsert=bool(op._upsert))
                    if r.upserted_id is not None:
                        res["nUpserted"] += 1
                        res["upserted"].append({"index": i, "_id": r.upserted_id})
                    else:
                        res["nMatched"] += r.matched_count
                        res["nModified"] += r.modified_count
                elif isinstance(op, (DeleteOne, DeleteMany)):
                    fn = c.delete_one if isinstance(op, DeleteOne) else c.delete_many
                    res["nRemoved"] += fn(op._filter).deleted_count
                else:
                    raise TypeError(f"unsupported bulk request {type(op).__name__}")
            except NotImplementedError as exc:
                raise _refuse(f"this: {str(exc).splitlines()[0][:200]}") from None
            except PyMongoError as exc:
                res["writeErrors"].append({"index": i, "code": getattr(exc, "code", None) or 8,
                                           "errmsg": str(exc), "op": getattr(op, "_doc", None)})
                if ordered:
                    raise BulkWriteError(res) from exc
        if res["writeErrors"]:
            raise BulkWriteError(res)
        return BulkWriteResult(res, True)

    def __getattr__(self, name):
        fn = getattr(self._c, name)
        if not callable(fn):
            return fn

        inserts = name in ("insert_one", "insert_many")

        async def call(*args, session=None, **kw):
            _no_session(session)
            if not inserts:
                _check([args, kw])
            return _call(fn, *args, **kw)

        call.__name__ = name
        return call


class StandInDatabase:
    def __init__(self, client, db):
        self._client = client
        self._db = db
        self.name = db.name

    def __getitem__(self, name) -> StandInCollection:
        return StandInCollection(self._db[name])

    get_collection = __getitem__

    async def list_collection_names(self, *, session=None, **kw):
        _no_session(session)
        return self._db.list_collection_names(**kw)

    async def drop_collection(self, name, *, session=None):
        _no_session(session)
        self._db.drop_collection(name)

    async def create_collection(self, name, **kw):
        return StandInCollection(self._db.create_collection(name, **kw))

    async def command(self, command, *args, **kw):
        name = command if isinstance(command, str) else next(iter(command))
        if name in ("hello", "isMaster", "ismaster"):
            # a standalone server: no setName, so no transactions (the store says why)
            return {"ok": 1.0, "isWritablePrimary": True, "ismaster": True, "standin": True,
                    "maxWireVersion": 21}
        if name == "buildInfo" or name == "buildinfo":
            import mongomock
            return {"ok": 1.0, "version": f"mongomock {mongomock.__version__}"}
        return self._db.command(command, *args, **kw)


class StandInClient:
    """``AsyncMongoClient``-shaped, over one private mongomock client (one per instance, so two
    ``DataFlow(url, testing=True)`` never see each other's data)."""

    standin = True

    def __init__(self, host=None):
        import mongomock
        self._c = mongomock.MongoClient()
        self.address = ("stand-in", 0)

    def __getitem__(self, name) -> StandInDatabase:
        return StandInDatabase(self, self._c[name])

    get_database = __getitem__

    @property
    def admin(self) -> StandInDatabase:
        return self["admin"]

    async def list_database_names(self):
        return self._c.list_database_names()

    async def drop_database(self, name):
        self._c.drop_database(name)

    def start_session(self, **kw):
        raise _refuse("sessions (so no transactions)")

    async def close(self):
        pass
