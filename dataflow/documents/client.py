"""The one module that talks to the MongoDB driver: pymongo's ``AsyncMongoClient`` (imported
on first use; a missing package names the extra) or the in-process stand-in; error
translation into ``dataflow.errors``; session transactions where the server has them.

``DocumentDriver`` takes the place of a SQL driver on a ``DataFlow`` whose URL is mongodb://:
the engine calls the same few methods (``current``, ``transaction``, ``close``,
``pool_stats``, ``server_info``, ``add_hook``) and the document store does the rest.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from contextlib import asynccontextmanager

from ..errors import (ConfigurationError, DatabaseConnectionError, DatabaseError, QueryError,
                      TransactionConflictError, UniqueViolationError, UnsupportedFeatureError, ValidationError)

EXTRA_HINT = "pip install 'dataflow-native[mongo]'"


def require_pymongo():
    """The pymongo package, or ``ConfigurationError`` naming the extra to install."""
    try:
        import pymongo
    except ImportError:
        raise ConfigurationError(f"the mongodb driver (pymongo) is not installed; run: {EXTRA_HINT}") from None
    if not hasattr(pymongo, "AsyncMongoClient"):
        raise ConfigurationError(f"pymongo {pymongo.version} has no AsyncMongoClient (4.9+ needed); run: {EXTRA_HINT}")
    return pymongo


def make_client(url: str, testing: bool):
    """A client for ``url``: the stand-in when ``testing``, else pymongo's AsyncMongoClient
    (constructing it does no I/O; it connects on first use)."""
    require_pymongo()
    if testing:
        from .standin import StandInClient
        return StandInClient(url)
    import pymongo
    return pymongo.AsyncMongoClient(url, tz_aware=True, uuidRepresentation="standard")


class DocumentDialect:
    """What the rest of DataFlow reads off ``db.dialect``: a name and capability flags."""

    name = "mongodb"
    bulk_path = "documents"
    supports_returning = False
    tenant_rls = False


def translate(exc, what: str = "MongoDB"):
    """A pymongo error -> the DataFlow error it means (``raise translate(e) from e``).
    Values are never copied into the message (they may be secrets)."""
    from pymongo import errors as E
    if isinstance(exc, E.DuplicateKeyError) or (isinstance(exc, E.BulkWriteError) and _dup(exc)):
        key = _dup_key(exc)
        err = UniqueViolationError(f"{what}: duplicate key{f' for unique index on {key}' if key else ''}")
    elif isinstance(exc, E.PyMongoError) and exc.has_error_label("TransientTransactionError") \
            and not isinstance(exc, E.ConnectionFailure):
        err = TransactionConflictError(f"{what}: the transaction met a concurrent write (MongoDB "
                                       f"TransientTransactionError); run it again (db.run_in_transaction retries)")
    elif isinstance(exc, (E.ConnectionFailure, E.ServerSelectionTimeoutError)):
        err = DatabaseConnectionError(f"{what}: cannot reach the MongoDB server: {type(exc).__name__}")
    elif isinstance(exc, E.OperationFailure):
        err = QueryError(f"{what}: the server refused the operation (code {exc.code}): {_msg(exc)}")
    elif isinstance(exc, (E.InvalidDocument, E.InvalidOperation, OverflowError)):
        err = ValidationError(f"{what}: {exc}")
    else:
        err = DatabaseError(f"{what}: {type(exc).__name__}: {_msg(exc)}")
    err.orig = exc
    return err


def _msg(exc) -> str:
    details = getattr(exc, "details", None) or {}
    return str(details.get("errmsg") or exc)[:300]


def _dup(exc) -> bool:
    errs = (getattr(exc, "details", None) or {}).get("writeErrors") or []
    return bool(errs) and errs[0].get("code") == 11000


def _dup_key(exc) -> str:
    details = getattr(exc, "details", None) or {}
    if "writeErrors" in details and details["writeErrors"]:
        details = details["writeErrors"][0]
    pattern = details.get("keyPattern")
    if pattern:
        return "(" + ", ".join("id" if k == "_id" else k for k in pattern) + ")"
    return ""


def driver_errors():
    """The exception classes ``translate`` understands (for ``except`` clauses)."""
    from pymongo.errors import PyMongoError
    return (PyMongoError, OverflowError)


def refuse_sql_only(*, monitoring=False, echo=False) -> None:
    """``DataFlow("mongodb://...", ...)`` options that exist for SQL only, refused when the
    instance is made (not at first use), each with the reason and what to use instead."""
    if monitoring:
        raise UnsupportedFeatureError(
            "monitoring=True works on SQL databases only: its metrics are per SQL statement; on MongoDB "
            "use the server's profiler or pymongo's command monitoring (pymongo.monitoring)")
    if echo:
        raise UnsupportedFeatureError("echo=True logs SQL statements, which MongoDB has none of; use "
                                      "pymongo's command monitoring (pymongo.monitoring) to log commands")
    # tenant_isolation='rls' is refused by the configuration already (PostgreSQL only)


_SQL_ONLY_HINT = {
    "QueryBuilder (it builds SQL statements)": "use filters with express/nodes list, count, bulk_update and bulk_delete",
    **dict.fromkeys(("discover_schema()", "discover_schema_async()", "register_schema_as_models()"),
                    "collections have no schema to discover: declare @db.model classes (MongoDBAdapter "
                    "reads any collection as plain documents)"),
}


def sql_only(what: str) -> UnsupportedFeatureError:
    """The error for a SQL-only feature called on a MongoDB DataFlow."""
    hint = _SQL_ONLY_HINT.get(what, "collections need no migrations on MongoDB: they come by themselves, "
                                    "and the models' indexes are created on first use")
    return UnsupportedFeatureError(f"{what} works on SQL databases only, not on MongoDB; {hint}")


def topology_has_transactions(hello: dict) -> bool:
    """From a ``hello`` reply: a replica set member names its set, a mongos says ``isdbgrid``;
    a standalone server does neither (and has no multi-document transactions)."""
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


class DocumentDriver:
    """The database side of a DataFlow on MongoDB: clients (one per event loop for the real
    driver, one stand-in otherwise), the database, transactions, hooks."""

    dialect = DocumentDialect()
    single_connection = False
    code = None

    def __init__(self, config, adapter=None):
        url = config.url
        self.url = url
        self.database_name = url.database
        if not self.database_name:
            raise ConfigurationError("a MongoDB URL names its database: mongodb://host:27017/mydb")
        self._adapter_client = getattr(adapter, "client", None) if adapter is not None else None
        self.standin = (bool(getattr(adapter, "testing", False) or getattr(self._adapter_client, "standin", False))
                        if adapter is not None else bool(config.testing))
        require_pymongo()
        self._clients: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._standin_client = None
        self._session = contextvars.ContextVar(f"dataflow_mongo_session_{id(self)}", default=None)
        from ..drivers.hooks import Hooks
        self._hooks = Hooks()
        self._tx_capable = None
        self._standin_identity = None

    # -- clients -------------------------------------------------------------------------------
    @property
    def client(self):
        if self._adapter_client is not None:
            return self._adapter_client
        if self.standin:
            if self._standin_client is None:
                self._standin_client = make_client(self.url.raw, True)
            return self._standin_client
        # AsyncMongoClient belongs to the loop it first ran on: one per loop
        loop = asyncio.get_running_loop()
        c = self._clients.get(loop)
        if c is None:
            c = self._clients[loop] = make_client(self.url.raw, False)
        return c

    @property
    def database(self):
        return self.client[self.database_name]

    def collection(self, name: str):
        return self.database[name]

    def session_kw(self) -> dict:
        """``{"session": s}`` inside a transaction, else ``{}``: every call passes it."""
        tx = self._session.get()
        return {"session": tx.session} if tx is not None else {}

    async def guard(self, awaitable, what: str = "MongoDB"):
        """Await a driver call, translating its errors; in a transaction one call at a time."""
        tx = self._session.get()
        try:
            if tx is None:
                return await awaitable
            async with tx.lock:
                return await awaitable
        except driver_errors() as exc:
            raise translate(exc, what) from exc

    async def fetch_all(self, cursor, what: str = "MongoDB") -> list:
        return await self.guard(cursor.to_list(None), what)

    @property
    def cache_identity(self) -> str:
        """Whose data cached results are (``dataflow.cache``): the server and database, or for
        the stand-in, whose data is private to its client, that client alone."""
        if self.standin:
            if self._standin_identity is None:
                import uuid
                self._standin_identity = f"mongodb-standin:{uuid.uuid4().hex}"
            return self._standin_identity
        return self.url.identity()

    # -- what the engine calls -------------------------------------------------------------------
    def current(self):
        """The transaction this task is in (``transaction.Tx``), or None."""
        return self._session.get()

    async def hello(self) -> dict:
        return await self.guard(self.client.admin.command("hello"), "MongoDB hello")

    async def transactions_supported(self) -> bool:
        """Whether the server runs multi-document transactions: a replica set member (``hello``
        names a ``setName``) or a mongos (``msg == "isdbgrid"``); never the stand-in.  Asked
        once per driver (the answer is a property of the deployment)."""
        if self.standin:
            return False
        if self._tx_capable is None:
            self._tx_capable = topology_has_transactions(await self.hello())
        return self._tx_capable

    async def check_transactions(self) -> None:
        """``UnsupportedFeatureError`` saying why a transaction cannot start here, else nothing."""
        if self._session.get() is not None:
            raise UnsupportedFeatureError("MongoDB transactions have no savepoints: db.transaction() cannot "
                                          "be nested (the enclosing transaction already covers the work)")
        if self.standin:
            raise UnsupportedFeatureError(
                "db.transaction() needs MongoDB sessions on a replica set; the in-process stand-in "
                "(testing=True) has none, so transactions cannot run on it")
        if not await self.transactions_supported():
            raise UnsupportedFeatureError(
                f"the MongoDB server at {self.url.redacted()} is standalone (no replica set), and MongoDB "
                f"runs multi-document transactions only on a replica set or sharded cluster; start it "
                f"with --replSet (a one-node replica set is enough) to use db.transaction()")

    def transaction(self, isolation_level=None, yield_conn=False):
        """A session transaction (``documents.transaction.DocumentTransaction``) on a replica set
        or sharded cluster; on a standalone server or the stand-in its start raises
        ``UnsupportedFeatureError`` saying why.  ``isolation_level`` is refused (no such notion)."""
        from .transaction import DocumentTransaction
        return DocumentTransaction(self, isolation_level)

    async def run_in_transaction(self, fn, *, retries: int = 3, isolation_level=None):
        from .transaction import run_in_transaction
        return await run_in_transaction(self, fn, retries=retries, isolation_level=isolation_level)

    @asynccontextmanager
    async def atomic(self):
        """The scope of one ``atomic=True`` bulk write.  Yields how it is made atomic:

        - ``"transaction"``: a session transaction of its own (replica set / mongos); a failure
          aborts it, so nothing the call wrote is ever visible;
        - ``"joined"``: the caller's ``db.transaction()`` (its commit or abort decides; the bulk
          call compensates inside it, so catching the error and committing keeps no partial rows);
        - ``None``: no transactions here (standalone server, stand-in): the caller compensates.
        """
        if self._session.get() is not None:
            yield "joined"
        elif await self.transactions_supported():
            from .transaction import DocumentTransaction
            async with DocumentTransaction(self):
                yield "transaction"
        else:
            yield None

    async def close(self):
        clients, self._clients = list(self._clients.values()), weakref.WeakKeyDictionary()
        for c in clients:
            await c.close()
        self._standin_client = None

    def pool_stats(self) -> dict:
        return {"active": 0, "idle": 0, "max": 0, "overflow": 0, "max_overflow": 0, "utilization": 0.0}

    async def server_info(self) -> dict:
        info = await self.guard(self.client.admin.command("buildInfo"), "MongoDB buildInfo")
        return {"version": info.get("version")}

    def check_raw(self, sql):
        raise UnsupportedFeatureError("raw SQL does not run on MongoDB; use the store's filters, "
                                      "or MongoDBAdapter for native document operations")

    def add_hook(self, name, fn):
        """``after_commit`` hooks as on SQL (``drivers.hooks.Hooks``: once per committed write
        with the collections written; a failing hook is logged, never raised).  ``on_statement``
        observes SQL statements, which MongoDB has none of: refused, saying what to use."""
        if name == "on_statement":
            raise UnsupportedFeatureError("on_statement hooks observe SQL statements; MongoDB has none -- "
                                          "observe its commands with pymongo.monitoring (a CommandListener)")
        if name != "after_commit":
            raise ValidationError(f"unknown hook {name!r}")
        hooks = self._hooks.after_commit
        hooks.append(fn)
        return lambda: hooks.remove(fn) if fn in hooks else None

    async def wrote(self, collections) -> None:
        """A write finished: outside a transaction it is committed now (after_commit hooks run
        before the write call returns); inside one it is noted for the commit."""
        tx = self._session.get()
        if tx is None:
            await self._after_commit(collections)
        else:
            tx.writes.update(collections)

    async def _after_commit(self, collections):
        await self._hooks.fire_after_commit(collections or ())

    # -- schema ----------------------------------------------------------------------------------
    async def initialize_schema(self, db) -> None:
        """Create every model's indexes (idempotent: the server keeps existing ones).  With
        ``existing_schema_mode=True`` nothing is created: the indexes the models need must exist
        (``ConfigurationError`` lists the missing ones); ``auto_migrate=False`` creates nothing."""
        cfg = db.config
        if cfg.existing_schema_mode:
            missing = []
            for store in db._tables.values():
                missing += await store.missing_indexes()
            if missing:
                raise ConfigurationError("existing_schema_mode=True: the MongoDB database lacks indexes the "
                                         "models declare: " + "; ".join(missing))
            return
        if not cfg.auto_migrate:
            return
        for store in db._tables.values():
            await store.create_indexes()
