"""Database sources: another database, read through a DataFlow of its own, read-only.

``DatabaseSourceConfig(url="postgresql://.../crm", tables=("accounts",))``: the tables are
discovered (never created or migrated: ``existing_schema_mode``, no history table) and
registered as models of that second DataFlow.  ``fetch("accounts", {"region": "eu"})`` lists
rows matching the equality filter (``limit``, ``offset``, ``order_by`` are taken from the same
dict; at most ``max_rows`` rows); ``query(sql, *params)`` runs one read statement.

Read-only, twice over: the handle has no write method (each write name raises
``SourceError`` saying so), ``query`` refuses any statement that may write before it is sent,
and every read runs in a transaction the database itself keeps read-only (PostgreSQL
``SET TRANSACTION READ ONLY``, SQLite ``PRAGMA query_only``), so even a function with side
effects cannot write there.  (MySQL cannot change an open transaction to read-only: there the
statement check is the guard.)  Change detection: each poll re-reads what was read and compares a digest.
"""

from __future__ import annotations

import hashlib
import json

from ...drivers.hooks import written_tables
from ...errors import DataFlowError, SourceError
from .base import Source

#: the handle's refusals: what someone may try on a "database"
WRITE_NAMES = frozenset(("create", "update", "delete", "upsert", "insert", "execute", "execute_raw",
                         "bulk_create", "bulk_update", "bulk_delete", "bulk_upsert", "load", "write"))
READ_HEADS = ("SELECT", "WITH", "VALUES", "EXPLAIN", "SHOW")
LIST_OPTIONS = ("limit", "offset", "order_by")


class DatabaseSource(Source):
    kind = "database"

    def __init__(self, name, config):
        super().__init__(name, config)
        self.flow = None
        self._models: dict = {}       # table -> model name
        self._digests: dict = {}

    def __getattr__(self, name):
        if name in WRITE_NAMES:
            raise SourceError(f"source {self.name!r} is a read-only database source: {name}() is refused. "
                              f"Write through a DataFlow of that database, not through the fabric")
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    # -- the second DataFlow -------------------------------------------------------------------------
    async def _open(self):
        if self.flow is not None:
            return self.flow
        if self.fabric is None:
            raise SourceError(f"source {self.name!r}: register it with db.source(...) before reading it")
        flow = type(self.fabric.db)(self.config.url, auto_migrate=False, existing_schema_mode=True)
        try:
            wanted = list(self.config.tables) or None
            schema = await flow.discover_schema_async(wanted)
            missing = [t for t in wanted or () if t not in schema]
            if missing:
                raise SourceError(f"source {self.name!r}: no table {', '.join(missing)} in {_safe(self.config.url)} "
                                  f"(tables: {', '.join(sorted(schema)) or 'none'})")
            flow.register_schema_as_models(wanted, schema=schema)
        except BaseException:
            await flow.close_async()
            raise
        self._models = {m.table: name for name, m in flow._models.items()}
        self.flow = flow
        return flow

    def names(self) -> list:
        return sorted(self._models) if self._models else list(self.config.tables)

    async def _read_only(self, work):
        """Run ``work(flow)`` in a transaction the database refuses to write in."""
        flow = await self._open()
        guard = flow.dialect.read_only_sql
        try:
            async with flow.transaction():
                if guard:
                    await flow.execute_raw(guard)
                return await work(flow)
        except DataFlowError as exc:
            text = str(exc).lower()
            if "read-only" in text or "read only" in text or "readonly" in text or "query_only" in text:
                raise SourceError(f"source {self.name!r} is read-only: the database refused a write ({exc})") from exc
            raise

    async def _fetch(self, path, params, poll: bool = False):
        if not path:
            raise SourceError(f"source {self.name!r}: fetch(table) needs one of {self.names()}")
        await self._open()
        model = self._models.get(path)
        if model is None:
            raise SourceError(f"source {self.name!r}: no table {path!r} (tables: {', '.join(self.names())}; "
                              f"a table needs an id primary key to be read)")
        params = dict(params or {})
        opts = {k: params.pop(k) for k in LIST_OPTIONS if k in params}
        opts.setdefault("limit", self.config.max_rows)
        self.stats["requests"] += 1
        rows = await self._read_only(lambda flow: flow.express.list(model, params or None, cache=False, **opts))
        return rows, self._changed(self._key(path, {**params, **opts}), rows)

    async def query(self, sql: str, *params) -> list:
        """One read statement with bind parameters; rows as tuples.  Anything that may write is
        refused before it is sent."""
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head not in READ_HEADS or written_tables(sql) or ";" in sql.strip().rstrip(";"):
            raise SourceError(f"source {self.name!r} is read-only: only one SELECT/WITH statement is "
                              f"allowed, not {sql.strip()[:60]!r}")
        self.stats["requests"] += 1
        return await self._read_only(lambda flow: flow.execute_raw(sql, *params))

    def _changed(self, key, rows) -> bool:
        digest = hashlib.blake2b(json.dumps(rows, default=str, sort_keys=True).encode(), digest_size=16).digest()
        changed = self._digests.get(key) != digest
        self._digests[key] = digest
        if not changed:
            self.stats["not_modified"] += 1
        return changed

    async def fetch_all(self) -> dict:
        """Every table: ``{table: rows}`` (the tables are known once the database is open)."""
        await self._open()
        return await super().fetch_all()

    async def read(self):
        return await self.fetch_all()

    async def check(self) -> None:
        flow = await self._open()
        health = await flow.health_check_async()
        if health["status"] != "healthy":
            raise SourceError(f"source {self.name!r}: {health.get('error')}")

    async def stop(self) -> None:
        flow, self.flow = self.flow, None
        if flow is not None:
            await flow.close_async()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    return url if not sep else head.split(":", 1)[0] + "://***@" + tail
