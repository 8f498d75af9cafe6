"""The DataFlow facade: configuration, model registry, tables, nodes, lifecycle.

It delegates: SQL to dialects/ and ops/, connections to drivers/, nodes to nodes/.
Construction does no I/O; connection and DDL happen on first use or ``await db.initialize()``.
"""

from __future__ import annotations

import weakref

from ._loop import run_sync
from .config import build_config
from .errors import ConfigurationError, DataFlowError, ModelDefinitionError, ValidationError
from .express import Express, ExpressSync
from .models.model import build_model
from .types import MISSING
from .nodes.registry import claim_name, release_name


class DataFlow:
    """A database plus the models defined on it.

    >>> db = DataFlow("sqlite:///:memory:")
    >>> @db.model
    ... class User:
    ...     name: str
    >>> db.express_sync.create("User", {"name": "Ada"})["id"]
    1
    """

    def __init__(self, database_url: str | None = None, *, pool_size=None, max_overflow=None,
                 pool_recycle=3600, pool_timeout=30, echo=False, auto_migrate=True,
                 existing_schema_mode=False, migration_lock_timeout=30, multi_tenant=False,
                 tenant_isolation="predicate", cache_enabled=False, cache_ttl=300, cache_max_entries=None,
                 cache_max_bytes=None, redis_url=None, monitoring=False, slow_query_threshold=1.0, testing=False,
                 adapter=None, name=None, read_url=None, read_pool_size=None, max_replica_lag=None,
                 **compat):
        adapter_url = getattr(adapter, "database_url", None) if adapter is not None else None
        if adapter is not None and adapter_url is None:
            raise ConfigurationError(f"adapter {type(adapter).__name__} has no database_url")
        self.config = build_config(
            database_url, adapter_url=adapter_url, compat=compat, pool_size=pool_size,
            max_overflow=max_overflow, pool_recycle=pool_recycle, pool_timeout=pool_timeout, echo=echo,
            auto_migrate=auto_migrate, existing_schema_mode=existing_schema_mode,
            migration_lock_timeout=migration_lock_timeout, multi_tenant=multi_tenant,
            tenant_isolation=tenant_isolation,
            cache_enabled=cache_enabled, cache_ttl=cache_ttl, cache_max_entries=cache_max_entries,
            cache_max_bytes=cache_max_bytes, redis_url=redis_url, monitoring=monitoring,
            slow_query_threshold=slow_query_threshold, testing=testing, name=name,
            read_url=read_url, read_pool_size=read_pool_size, max_replica_lag=max_replica_lag)
        self.adapter = adapter
        self.name = claim_name(self.config.name, self, explicit=name is not None)
        #: models are documents (mongodb://): the document store instead of the SQL one
        self.documents = self.config.url.is_document
        if self.documents:
            from .documents.client import DocumentDriver
            self.driver = DocumentDriver(self.config, adapter)   # names the [mongo] extra if missing
            from .documents.store import DocumentStore as store_class
            from .documents.client import refuse_sql_only
            refuse_sql_only(monitoring=monitoring, echo=echo)
        else:
            from .drivers import driver_for
            from .ops.table import Table as store_class
            self.driver = driver_for(self.config)
        self._store_class = store_class
        self.dialect = self.driver.dialect
        self._models: dict = {}
        self._tables: dict = {}
        self._nodes: dict = {}
        self._ready = False
        from .tenancy import TenantContext
        #: which tenant this task works for (``db.tenant(...)``, ``db.all_tenants()``)
        self.tenant_context = TenantContext()
        #: bumped by every @db.model: schema made inside a transaction is for one generation
        self._generation = 0
        self._tx_schema: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._init_locks: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self.express = Express(self)
        self.express_sync = ExpressSync(self.express)
        self.monitor = None
        if self.config.monitoring:
            from .monitoring import Monitor, attach
            self.monitor = Monitor(self.config.slow_query_threshold)
            attach(self.driver, self.monitor)
        #: the query cache (dataflow.cache), None unless cache_enabled=True; every committed write
        #: bumps the generation of the tables it wrote before the write call returns
        self.cache = None
        if self.config.cache_enabled:
            from .cache import make_cache
            self.cache = make_cache(self.config, identity=getattr(self.driver, "cache_identity", None))
            self.driver.add_hook("after_commit", self.cache.invalidate)
            if self.config.read_urls and getattr(self.cache, "shared", False):
                from .drivers.replicas import use_primary
                self.cache.fill_context = use_primary   # see SharedCache.fill_context
        if self.config.tenant_isolation == "rls":
            # defence in depth under the tenant predicate: RLS policies on tenant tables, the
            # tenant set per transaction by the driver, raw SQL on tenant tables vetted
            self.dialect = self.driver.dialect = self.dialect.with_(tenant_rls=True)
            tc = self.tenant_context
            self.driver.tenant_settings = lambda: (tc.current(), tc.is_all())
            self.driver.raw_guard = self._check_raw_tenant
        if self.config.echo:
            from .monitoring import echo
            echo(self.driver)

    def __repr__(self) -> str:
        return f"DataFlow({self.config.url.redacted()!r}, name={self.name!r})"

    # -- models ----------------------------------------------------------------------------------
    def model(self, cls=None, **options):
        """Class decorator: register a model, generate its 11 nodes; the table comes on first use."""
        if cls is None:
            return lambda c: self.model(c, **options)
        if not isinstance(cls, type):
            raise ModelDefinitionError(f"@db.model decorates a class, not {type(cls).__name__}")
        if self.config.multi_tenant and "multi_tenant" not in (getattr(cls, "__dataflow__", None) or {}):
            options = {"multi_tenant": True, **options}       # the instance default; a model may opt out
        if options:
            merged = dict(getattr(cls, "__dataflow__", None) or {})
            merged.update(options)
            cls.__dataflow__ = merged
        info = build_model(cls)
        for other in self._models.values():
            if other.table == info.table and other.name != info.name:
                raise ModelDefinitionError(f"{info.name}: table {info.table!r} is already used by model {other.name}")
        from .nodes.model_nodes import make_nodes

        self._models[info.name] = info
        self._tables[info.name] = self._store_class(self, info)
        self._nodes[info.name] = make_nodes(self, self._tables[info.name])
        self._ready = False
        self._generation += 1
        if self.monitor is not None:
            self.monitor.set_tables({m.table: n for n, m in self._models.items()})
        db = self

        def query_builder(_cls=None):
            from .query.builder import QueryBuilder
            db._sql_only("QueryBuilder (it builds SQL statements)")
            return QueryBuilder(db._tables[info.name])

        cls.query_builder = staticmethod(query_builder)
        cls.__dataflow_model__ = info
        cls.__dataflow_db__ = weakref.proxy(self)
        return cls

    def _table(self, model):
        name = model if isinstance(model, str) else getattr(model, "__name__", None)
        t = self._tables.get(name)
        if t is None:
            import difflib
            close = difflib.get_close_matches(str(name), list(self._tables), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValidationError(f"unknown model {name!r}{hint}; models on this DataFlow: "
                                  f"{', '.join(self._tables) or 'none (use @db.model)'}")
        return t

    def _sql_only(self, what: str) -> None:
        """On MongoDB, ``UnsupportedFeatureError`` for a SQL-only feature, at the call."""
        if self.documents:
            from .documents.client import sql_only
            raise sql_only(what)

    def list_models(self) -> list[str]:
        return list(self._models)

    def get_model_fields(self, name) -> dict:
        from dataflow._native._pure.params import KIND_NAMES

        info = self._table(name).model
        return {n: {"type": KIND_NAMES[f.kind], "nullable": f.nullable, "required": f.required,
                    "default": None if f.default is MISSING else f.default, "managed": f.managed}
                for n, f in info.fields.items()}

    def list_tables(self) -> list[str]:
        return [m.table for m in self._models.values()]

    def get_generated_nodes(self, name) -> dict:
        self._table(name)
        return dict(self._nodes[name if isinstance(name, str) else name.__name__])

    # -- lifecycle -------------------------------------------------------------------------------
    async def initialize(self) -> None:
        """Connect and create the tables of every model (idempotent; runs once per change)."""
        if self._ready:
            return
        tx = self.driver.current()
        if tx is not None and self.driver.single_connection:
            await self._initialize_in_transaction(tx)
            return
        import asyncio  # loaded by now (a loop runs); not at import: `import dataflow` stays light

        loop = asyncio.get_running_loop()
        lock = self._init_locks.get(loop)
        if lock is None:
            lock = self._init_locks[loop] = asyncio.Lock()
        async with lock:
            if self._ready:
                return
            # Schema work never joins the caller's transaction here (first use may happen inside
            # `async with db.transaction()`; MySQL would commit it implicitly on DDL): run it
            # in a task with a fresh context, on another connection of the pool.
            import contextvars

            ctx = contextvars.Context()
            if self.config.read_urls:  # schema decisions read the primary, never a replica
                from .drivers.replicas import use_primary
                ctx.run(use_primary().__enter__)
            await asyncio.get_running_loop().create_task(self._initialize_schema(), context=ctx)
            self._ready = True

    async def _initialize_in_transaction(self, tx) -> None:
        """First use inside a transaction on a database with one connection (SQLite): the
        transaction holds that connection, so the schema work runs in it (SQLite DDL is
        transactional: a rollback takes the new tables with it).  Not marked ready until a
        later first use outside a transaction finds the committed schema."""
        state = self._tx_schema.get(tx)
        if state is None:
            import asyncio

            state = self._tx_schema[tx] = [asyncio.Lock(), -1]
        async with state[0]:  # concurrent nodes of the transaction: one runs it
            if state[1] == self._generation:
                return
            await self._initialize_schema()
            state[1] = self._generation

    async def _initialize_schema(self) -> None:
        if self.documents:                      # collections come by themselves; indexes here
            await self.driver.initialize_schema(self)
            return
        await self._prepare_vectors()
        # auto_migrate: create missing tables, apply additive changes under the migration
        # lock; existing_schema_mode: validate only (dataflow/migrations/apply.py)
        from .migrations.apply import initialize_schema
        await initialize_schema(self)
        check = getattr(self.driver, "check_session_triggers", None)  # PostgreSQL's reset skip
        if check is not None and self._models:
            await check([m.table for m in self._models.values()])

    #: "pgvector" or "client" once a model with a vector field was initialized (dataflow.vector)
    vector_backend: str | None = None

    async def _prepare_vectors(self) -> None:
        """Before the schema: on PostgreSQL detect pgvector (creating the extension on first use)
        so vector fields become vector(n); elsewhere they stay float32 BLOBs (dataflow.vector)."""
        from .vector.setup import has_vectors, prepare
        if self.vector_backend is None and has_vectors(self._models.values()):
            self.vector_backend = await prepare(self)

    # -- migrations and discovery (dataflow/migrations) ----------------------------------------
    def migration_plan(self):
        """What it takes to bring the database to the models: a ``Plan`` of operations, each
        automatic (applied on first use), manual (``migrate(allow_destructive=True)``) or refused
        (a rename without ``__dataflow__['renames']``).  ``print(db.migration_plan())``."""
        self._sql_only("migration_plan()")
        from .migrations.apply import plan
        return run_sync(plan(self))

    async def migrate(self, allow_destructive: bool = False) -> dict:
        """Apply the plan under the migration lock; destructive changes only when allowed.
        Returns {"version", "applied", "pending"}; ``version`` is None when nothing ran."""
        self._sql_only("migrate()")
        from .migrations.apply import migrate
        return await migrate(self, allow_destructive)

    async def rollback_migration(self, version: str) -> list:
        """Run the reverse DDL recorded for ``version`` in dataflow_migrations."""
        self._sql_only("rollback_migration()")
        from .migrations.apply import rollback
        return await rollback(self, version)

    def discover_schema(self, use_real_inspection: bool = True) -> dict:
        """{table: {"columns": [...], "indexes": [...], "foreign_keys": [...]}} of the live
        database; with ``use_real_inspection=False``, of the registered models (no I/O)."""
        self._sql_only("discover_schema()")
        if not use_real_inspection:
            from .migrations.register import model_schema
            return model_schema(self)
        return run_sync(self.discover_schema_async())

    async def discover_schema_async(self, tables=None) -> dict:
        self._sql_only("discover_schema_async()")
        from .migrations.discover import discover_dict
        return await discover_dict(self, tables)

    def register_schema_as_models(self, tables=None, schema: dict | None = None) -> dict:
        """Turn discovered tables (all, or ``tables``) into models with nodes; returns
        {model name: class}.  Tables without an ``id`` primary key are skipped."""
        self._sql_only("register_schema_as_models()")
        from .migrations.register import register_schema
        if schema is None:
            schema = self.discover_schema()
        return register_schema(self, schema, tables)

    async def health_check_async(self) -> dict:
        try:
            info = await self.driver.server_info()
        except DataFlowError as exc:
            return {"status": "unhealthy", "database": self.config.url.dialect, "error": str(exc)}
        return {"status": "healthy", "database": self.config.url.dialect, "server_version": str(info["version"]),
                "pool": self.pool_stats()}

    def health_check(self) -> dict:
        return run_sync(self.health_check_async())

    def pool_stats(self) -> dict:
        return self.driver.pool_stats()

    # -- tenants (dataflow/tenancy.py) --------------------------------------------------------
    def tenant(self, tenant_id: str):
        """``with db.tenant("acme"):`` / ``async with``: every statement of a tenant model in the
        block (nodes, express, bulk, loads, QueryBuilder, vector search) is scoped to ``acme``;
        concurrent tasks keep their own tenant (a context variable)."""
        return self.tenant_context.bind(tenant_id)

    def all_tenants(self):
        """``async with db.all_tenants():`` explicit cross-tenant admin work: no tenant predicate;
        new rows must name their ``tenant_id``."""
        return self.tenant_context.all()

    def use_primary(self):
        """``with db.use_primary():`` (or ``async with``): reads in the block go to the primary even
        when ``read_url`` names replicas (reads that must see writes made elsewhere, e.g. by
        another process).  Writes and transactions always use the primary; without replicas
        this does nothing."""
        from .drivers.replicas import use_primary
        return use_primary()

    def transaction(self, isolation_level: str | None = None):
        """A transaction every statement of this task joins (nodes, express, bulk, raw SQL).

        ``async with db.transaction() as tx:`` commits on success and rolls back on an exception;
        nested, it is a savepoint.  ``tx.execute(sql, *params)``, ``tx.fetch(...)``,
        ``tx.fetchrow(...)`` run raw SQL in it.  ``isolation_level``: ``"read_committed"``,
        ``"repeatable_read"``, ``"serializable"`` (``"immediate"``/``"exclusive"`` on SQLite).
        To retry deadlocks and serialization failures use ``run_in_transaction``.
        """
        return self.driver.transaction(isolation_level, yield_conn=False)

    async def run_in_transaction(self, fn, *, retries: int = 3, isolation_level: str | None = None):
        """``await fn(tx)`` in a transaction, retried whole on deadlock / serialization failure.

        At most ``retries`` extra attempts, only for ``TransactionConflictError`` (``retryable``);
        ``fn`` must be safe to run again (it is, if it only talks to this database)::

            async def transfer(tx):
                await tx.execute("UPDATE acct SET bal = bal - 10 WHERE id = $1", 1)
                await tx.execute("UPDATE acct SET bal = bal + 10 WHERE id = $1", 2)
            await db.run_in_transaction(transfer, retries=5)
        """
        if self.documents:
            return await self.driver.run_in_transaction(fn, retries=retries, isolation_level=isolation_level)
        from .drivers.base import run_in_transaction
        return await run_in_transaction(self.driver, fn, retries=retries, isolation_level=isolation_level)

    def on_statement(self, fn):
        """Call ``fn(sql, seconds, ok)`` after every statement (monitoring, logging); returns a
        callable that removes the hook.  Keep it cheap: it runs on every statement."""
        return self.driver.add_hook("on_statement", fn)

    def after_commit(self, fn):
        """Call ``fn(tables)`` once per committed write with the set of tables written (an
        autocommit statement, a bulk load, a transaction's final COMMIT; never on rollback).
        ``fn`` may be a coroutine function; it runs before the write call returns.  Returns a
        callable that removes the hook."""
        return self.driver.add_hook("after_commit", fn)

    def cache_stats(self) -> dict:
        """Hits, misses, invalidations, stores, fenced (reads that saw a write commit meanwhile and
        did not store), errors (Redis unreachable), entries and bytes; ``{"enabled": False}`` off."""
        if self.cache is None:
            return {"enabled": False}
        return {"enabled": True, **self.cache.snapshot()}

    async def cache_clear_async(self, model=None) -> None:
        if self.cache is not None:
            await self.cache.clear(None if model is None else self._table(model).model.table)

    def cache_clear(self, model=None) -> None:
        """Drop the cached results of ``model`` (all models when None)."""
        run_sync(self.cache_clear_async(model))

    def metrics(self) -> dict:
        """Per-model query counts and latency histograms, the slow-query log and pool stats.

        Needs ``DataFlow(..., monitoring=True)``; without it only ``pool`` is filled in.
        """
        out = self.monitor.snapshot() if self.monitor is not None else {
            "models": {}, "queries": 0, "slow_queries": [], "monitoring": False}
        out["pool"] = self.pool_stats()
        return out

    def _check_raw_tenant(self, sql: str) -> None:
        from .drivers.hooks import named_tables

        tenant_tables = {m.table: m.name for m in self._models.values() if m.multi_tenant}
        hit = [tenant_tables[t] for t in named_tables(sql) if t in tenant_tables]
        if hit and not self.tenant_context.is_all():
            self.tenant_context.require(f"raw SQL on {', '.join(sorted(hit))}")

    async def execute_raw(self, sql: str, *params):
        """Run raw SQL with bind parameters; returns rows for queries, else the row count."""
        self.driver.check_raw(sql)
        from .drivers.hooks import written_tables

        from .drivers.base import RAW_SQL

        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        writes = written_tables(sql)
        token = RAW_SQL.set(True)
        try:
            if head in ("SELECT", "WITH", "SHOW", "PRAGMA", "EXPLAIN", "VALUES", "DESCRIBE") or " RETURNING " in sql.upper():
                return [tuple(r) for r in await self.driver.fetch(sql, params, writes=writes)]
            return await self.driver.execute(sql, params, writes=writes)
        finally:
            RAW_SQL.reset(token)

    async def load(self, model, source, **opts) -> dict:
        """Bulk-load ``source`` into ``model`` as fast as the database allows (COPY BINARY /
        LOAD DATA / the native SQLite writer); options and report: ``dataflow.bulk.load.load``."""
        return await self._table(model).load(source, **opts)

    async def export(self, model, path, **opts) -> dict:
        """Write ``model``'s rows to a CSV/TSV/JSONL/Parquet file; see ``dataflow.bulk.export``."""
        return await self._table(model).export(path, **opts)

    # -- testing helpers (dataflow.testing.helpers) ----------------------------------------------
    def test_create(self, model, **fields):
        """Create a row and return it with attribute access: ``db.test_create(User, name="x").name``."""
        from .testing.helpers import test_create
        return run_sync(test_create(self, model, fields))

    def test_reset(self) -> None:
        """Delete every row of every model's table (for isolation between tests)."""
        from .testing.helpers import test_reset
        run_sync(test_reset(self))

    # -- the data fabric (dataflow/fabric): sources, products, their HTTP endpoints ------------------
    def _fabric_registry(self):
        fabric = self.__dict__.get("_fabric")
        if fabric is None:
            from .fabric.registry import Fabric
            fabric = self._fabric = Fabric(self)
        return fabric

    def source(self, name, config=None):
        """Register an external source and return its handle (``fetch``, ``fetch_all``, ``read``,
        ``healthy``, ``last_successful_data``); with no config, the handle registered as ``name``::

            crm = db.source("crm", RestSourceConfig(url="https://api.example.com",
                                                    auth=BearerAuth(token_env="CRM_TOKEN")))
        """
        fabric = self._fabric_registry()
        return fabric.source(name) if config is None else fabric.add_source(name, config)

    def product(self, name, **options):
        """Decorator registering a data product ``fn(ctx, **params)`` served at ``/fabric/<name>``.

        ``mode``: ``"materialized"`` (default; computed at start, refreshed when a dependency
        changes, after ``write_debounce`` seconds), ``"parameterized"`` (per query-parameter set,
        ``ttl`` seconds, at most ``max_entries`` sets) or ``"virtual"`` (every request).
        ``depends_on`` names models, sources and products registered before it::

            @db.product("stats", depends_on=["Order"])
            async def stats(ctx):
                return await ctx.express.count("Order")

        ``multi_tenant``: one value per tenant (the request's, from ``db.start(tenant_extractor=...)``),
        computed inside ``db.tenant(id)``; the default ``None`` infers it from ``depends_on`` (a
        multi-tenant model or a per-tenant product).  ``schedule="*/5 * * * *"``: a materialized
        product is also refreshed on that cron schedule (a sixth field is seconds).
        """
        def register(fn):
            self._fabric_registry().add_product(name, fn, options)
            return fn
        return register

    async def start(self, **options):
        """Start the fabric: check sources, start polling and watchers, compute materialized
        products, and listen on ``host``/``port`` (``port=0``: a free port, see ``runtime.port``).
        Returns the ``FabricRuntime``; ``await db.stop()`` ends it."""
        from .fabric.runtime import start
        return await start(self._fabric_registry(), **options)

    async def stop(self) -> None:
        """Stop the fabric: server, polling, watchers and pending refreshes (no-op if not running)."""
        fabric = self.__dict__.get("_fabric")
        if fabric is not None and fabric.runtime is not None:
            await fabric.runtime.stop()

    def fabric_app(self, tenant_extractor=None):
        """The fabric's endpoints as an ASGI app, to mount in an existing server (it starts the
        fabric, without a server of its own, on its first request).  ``tenant_extractor``: as in
        ``db.start``, for per-tenant products."""
        from .fabric.runtime import fabric_app
        return fabric_app(self._fabric_registry(), tenant_extractor)

    async def close_async(self) -> None:
        import asyncio

        fabric = self.__dict__.get("_fabric")
        if fabric is not None and fabric.runtime is not None and fabric.runtime.loop is asyncio.get_running_loop():
            await fabric.runtime.stop()  # a fabric started on this loop ends with its database
        if self.cache is not None:
            await self.cache.close()
        await self.driver.close()
        from .nodes.registry import unregister_owner
        unregister_owner(self.name)
        release_name(self.name, self)

    def close(self) -> None:
        run_sync(self.close_async())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close_async()
