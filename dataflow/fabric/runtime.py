"""The running fabric: computes and caches products, refreshes them when a model they depend on
is written (the ``after_commit`` hook, with ``write_debounce``) or a source changes (polls and
file watchers), publishes events and traces, and owns the HTTP server.

One runtime per DataFlow at a time, on the event loop ``db.start()`` ran on.  ``stop()`` ends
every task, watcher, client and the listening socket it started.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import Counter
from datetime import datetime, timezone

import orjson

from ..errors import ConfigurationError, FabricError, UnsupportedFeatureError
from .coordination import Coordinator, MemoryNonces, cancel_all, coordination_config, make_backend, worker_id
from .events import EventBus
from .metrics import Metrics
from .products import Entry, ParamCache
from .tenants import TenantProducts, tenant_scope
from .traces import Trace, Traces

logger = logging.getLogger("dataflow.fabric")
#: file watchers report several events per write; they are gathered for this long
WATCH_SETTLE = 0.05


class Context:
    """What a product function receives: ``ctx.express``, ``ctx.source(name)``,
    ``await ctx.product(name)``, ``ctx.params``, ``ctx.tenant_id``."""

    __slots__ = ("_rt", "_trace", "express", "params", "tenant_id", "db")

    def __init__(self, runtime, trace, params, tenant_id=None):
        self._rt = runtime
        self._trace = trace
        self.db = runtime.db
        self.express = runtime.db.express
        self.params = params
        self.tenant_id = tenant_id

    def source(self, name):
        src = self._rt.fabric.source(name)
        if name not in self._trace.sources:
            self._trace.sources.append(name)
        return src

    async def product(self, name):
        self._trace.products.append(name)
        return await self._rt.value(name)


class FabricRuntime:
    def __init__(self, fabric, *, host="127.0.0.1", port=8000, fail_fast=True, dev_mode=False,
                 enable_writes=False):
        self.fabric = fabric
        #: a bound socket to serve on instead of binding host:port (dataflow serve --workers)
        self.sock = None
        self.db = fabric.db
        self.host, self.port = host, port
        self.fail_fast, self.dev_mode, self.enable_writes = fail_fast, dev_mode, enable_writes
        self.entries: dict = {}          # materialized product -> Entry
        self.errors: dict = {}           # product -> message of its last failed computation
        self.pending: set = set()        # materialized products with a refresh scheduled
        self.param_caches = {n: ParamCache(p.ttl, p.max_entries) for n, p in fabric.products.items()
                             if p.mode == "parameterized"}
        self.events = EventBus()
        self.traces = Traces()
        self.metrics = Metrics()
        #: computations per product (tests and benchmarks count them)
        self.computations: Counter = Counter()
        #: webhook answers per "source:status" (shown in _health)
        self.webhook_stats: Counter = Counter()
        self.worker_id = worker_id()
        #: db.start(coordination=...): a CoordinationConfig, or None for one process
        self.coordination = None
        self.coord: Coordinator | None = None
        #: webhook nonces: the coordination backend's when there is one, else this process's
        self.nonces = MemoryNonces()
        self._leader_tasks: set = set()
        self._announce = False
        self.started = False
        self.started_at: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server = None
        self._tasks: set = set()
        self._timers: dict = {}
        self._locks: dict = {}
        self._asked: Counter = Counter()
        self._done: Counter = Counter()
        self._remove_hook = None
        self._start_lock: asyncio.Lock | None = None
        self._app = None
        #: per-tenant products (tenants.py); the extractor is set by start()/fabric_app()
        self.tenants = TenantProducts(self)

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def app(self):
        if self._app is None:
            from .app import build_app
            self._app = build_app(self)
        return self._app

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/fabric"

    async def start(self, serve: bool = True) -> "FabricRuntime":
        if self.started:
            return self
        self.loop = asyncio.get_running_loop()
        if self.events.closed:  # started again after stop(): a clean slate, same app
            self.events = EventBus()
            self.entries.clear(), self.errors.clear(), self.pending.clear(), self._locks.clear()
            self.tenants.clear()
            for cache in self.param_caches.values():
                cache.clear()
        per_tenant = [n for n, p in self.fabric.products.items() if p.multi_tenant]
        if per_tenant and self.tenants.extractor is None:
            raise ConfigurationError(f"products {per_tenant} are per tenant: db.start(tenant_extractor=fn) "
                                     f"(or db.fabric_app(tenant_extractor=fn)) with fn(request) -> tenant id")
        await self._check_sources()
        for src in self.fabric.sources.values():
            src.on_change = self._source_event
            src.metrics = self.metrics
            self.metrics.breaker(src.name, src.breaker.state)
        self._remove_hook = self.db.after_commit(self._after_commit)
        self.started, self.started_at = True, time.time()
        self.fabric.runtime = self
        try:
            if self.coordination is None:       # alone: this process leads
                self._lead_sources()
                if not self.dev_mode:
                    self._spawn(self._warm())
            else:                               # the election decides who polls and refreshes
                # followers cache parameterized and per-tenant values themselves: the leader
                # announces changes so they drop them
                self._announce = any(p.multi_tenant or p.mode == "parameterized"
                                     for p in self.fabric.products.values())
                backend = make_backend(self.coordination, self.db)
                self.coord = Coordinator(self, self.coordination, backend)
                self.nonces = backend
                await self.coord.start()
            if serve:
                from .server import EmbeddedServer
                self.server = EmbeddedServer(self.app, self.host, self.port, self.sock)
                await self.server.start()
                self.port = self.server.port
        except BaseException:
            await self.stop()
            raise
        return self

    @property
    def leader(self) -> bool:
        return self.coord is None or self.coord.leader

    @property
    def epoch(self) -> int:
        return 1 if self.coord is None else self.coord.current_epoch

    def _lead_sources(self) -> None:
        """Start watchers, poll loops and cron schedules (this worker leads)."""
        for src in self.fabric.sources.values():
            src.start(self.loop)
            if not (src.kind == "file" and src.config.watch):
                self._leader_tasks.add(self._spawn(self._poll_loop(src)))
        from .schedule import run_schedule
        for name, p in self.fabric.products.items():
            if p.schedule is not None:
                self._leader_tasks.add(self._spawn(run_schedule(name, p.schedule, self._scheduled)))

    async def _become_leader(self, epoch: int) -> None:
        """Called by the coordinator: poll, watch, and refresh every materialized product once
        (what the previous leader saw last is unknown here)."""
        if not self.started:
            return
        self._lead_sources()
        self._leader_tasks.add(self._spawn(self._warm(force=True)))

    async def _become_follower(self) -> None:
        """Called by the coordinator: stop polling, watching and refreshing."""
        tasks = [t for t in self._leader_tasks if not t.done() and t is not asyncio.current_task()]
        self._leader_tasks.clear()
        await cancel_all(tasks)
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        for src in self.fabric.sources.values():
            await src.stop()

    def _adopt(self, name: str, body: bytes, cached_at: float) -> None:
        """A product version the leader published: serve it from here on."""
        entry = Entry.__new__(Entry)
        entry.value = orjson.loads(body)["data"]
        entry.body = body
        entry.cached_at = cached_at
        entry.mono = time.monotonic() - max(time.time() - cached_at, 0.0)
        entry.iso = datetime.fromtimestamp(cached_at, timezone.utc).isoformat()
        self.entries[name] = entry
        self.errors.pop(name, None)
        self.pending.discard(name)
        self.events.publish("product_refreshed", {"product": name, "trigger": "leader", "cached_at": entry.iso})

    async def ensure_started(self) -> None:
        """For an app mounted elsewhere (``db.fabric_app()``): start without a server on first use."""
        if self.started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if not self.started:
                await self.start(serve=False)

    async def _check_sources(self) -> None:
        sources = list(self.fabric.sources.values())
        results = await asyncio.gather(*(s.check() for s in sources), return_exceptions=True)
        bad = [f"{s.name}: {r}" for s, r in zip(sources, results) if isinstance(r, BaseException)]
        for s, r in zip(sources, results):
            if isinstance(r, BaseException):
                s._failed(r)
        if bad and self.fail_fast:
            await asyncio.gather(*(s.stop() for s in sources), return_exceptions=True)
            raise FabricError("source health check failed (db.start(fail_fast=False) starts anyway): "
                              + "; ".join(bad))
        for line in bad:
            logger.warning("fabric source unhealthy at start: %s", line)

    async def stop(self) -> None:
        """End polling, watchers, refreshes, event streams and the server."""
        if self.loop is not None and self.loop is not asyncio.get_running_loop() and not self.loop.is_closed():
            raise FabricError("await db.stop() on the event loop db.start() ran on")
        if self._remove_hook is not None:
            self._remove_hook()
            self._remove_hook = None
        self.started = False
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        self.tenants.cancel()
        self.events.close()
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop()
        if self.coord is not None:              # releases the lease: a follower takes over at once
            coord, self.coord = self.coord, None
            await coord.stop()
            self.nonces = MemoryNonces()
        self._leader_tasks.clear()
        await cancel_all(list(self._tasks))
        self._tasks.clear()
        for src in self.fabric.sources.values():
            src.on_change = None
            src.metrics = None
            await src.stop()

    def _spawn(self, coro):
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- computing -------------------------------------------------------------------------------------
    async def _compute(self, name: str, params: dict, trigger: str, tenant: str | None = None):
        product = self.fabric.products[name]
        trace = Trace(name, trigger)
        trace.tenant = tenant
        self.computations[name] += 1
        t0 = time.perf_counter()
        try:
            with tenant_scope(self.db, tenant):  # that tenant, or none (never the triggering writer's)
                out = product.fn(Context(self, trace, params, tenant), **params)
                if inspect.isawaitable(out):
                    out = await out
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            trace.finish(exc)
            self.traces.add(trace)
            self.metrics.refreshes.labels(name, "error").inc()
            logger.warning("fabric product %r failed (%s)", name, trace.error)
            raise
        trace.finish()
        self.traces.add(trace)
        self.metrics.refreshes.labels(name, "success").inc()
        self.metrics.refresh_seconds.labels(name).observe(time.perf_counter() - t0)
        return out, trace

    async def refresh(self, name: str, trigger: str = "manual", cascade: bool = True) -> bool:
        """Recompute a materialized product now.  Requests arriving while it computes are served
        by one more computation after it (never one per request).  True when a value computed
        after the call is the one served (False: it failed, or this worker does not lead)."""
        if not self.leader:
            return False                        # followers take products from the shared cache
        self._asked[name] += 1
        asked = self._asked[name]
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            if self._done[name] >= asked:       # served by a computation that started after us
                return name not in self.errors and name in self.entries
            gen = self._asked[name]
            self.pending.discard(name)
            try:
                value, trace = await self._compute(name, {}, trigger)
                entry = Entry(value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - kept for _health/_trace and the 5xx answer
                self._done[name] = gen
                self.errors[name] = f"{type(exc).__name__}: {exc}"
                self.events.publish("product_failed", {"product": name, "trigger": trigger,
                                                       "error": f"product {name!r} failed"})
                return False
            if self.coord is not None and not await self.coord.publish(name, entry):
                self._done[name] = gen          # fenced: a newer leader's value is the one served
                return False
            self._done[name] = gen
            self.entries[name] = entry
            self.errors.pop(name, None)
            self.events.publish("product_refreshed", {"product": name, "trigger": trigger,
                                                      "cached_at": entry.iso, "duration_ms": trace.duration_ms})
        if cascade:
            self._changed([name], f"product:{name}", debounce=False)
        return True

    async def value(self, name: str):
        """A product's current value (``ctx.product``): cached for materialized, computed
        with default parameters otherwise."""
        product = self.fabric.products.get(name)
        if product is None:
            raise FabricError(f"unknown product {name!r}")
        if product.multi_tenant:
            return await self.tenants.value(name, self.db.tenant_context.current())
        if product.mode == "materialized":
            if name not in self.entries and not self.leader:
                await self.coord.pull(name)
                if name not in self.entries:    # nothing published yet: computed, not cached
                    return await self._value_only(name, product.bind({}), "dependency")
            if name not in self.entries:
                await self.refresh(name, "dependency", cascade=False)
            if name not in self.entries:
                raise FabricError(f"product {name!r} failed: {self.errors.get(name)}")
            return self.entries[name].value
        kwargs = product.bind({})
        if product.mode == "parameterized":
            entry, _ = await self.param_caches[name].get_or_compute(
                tuple(sorted(kwargs.items())), lambda: self._value_only(name, kwargs, "dependency"))
            return entry.value
        return await self._value_only(name, kwargs, "dependency")

    async def _value_only(self, name, kwargs, trigger):
        return (await self._compute(name, kwargs, trigger))[0]

    async def _warm(self, force: bool = False) -> None:
        for name in self.fabric.order():
            p = self.fabric.products[name]
            if p.mode == "materialized" and not p.multi_tenant and (force or name not in self.entries):
                await self.refresh(name, "leader" if force else "start", cascade=False)

    async def _scheduled(self, name: str) -> None:
        """A cron tick (schedule.py): refresh the product, every cached tenant's if per tenant."""
        if self.fabric.products[name].multi_tenant:
            await self.tenants.refresh_all(name, "schedule")
        else:
            await self.refresh(name, "schedule")

    # -- change propagation ------------------------------------------------------------------------------
    def _after_commit(self, tables) -> None:
        models = self.db._models
        if "*" in tables:
            hit = list(models)
        else:
            hit = [n for n, m in models.items() if m.table in tables]
        if not hit or self.loop is None or self.loop.is_closed():
            return
        # a write bound to one tenant that touched only tenant models changes only that
        # tenant's per-tenant values; anything else changes every tenant's
        tenant = self.db.tenant_context.current()
        if tenant is not None and not all(models[n].multi_tenant for n in hit):
            tenant = None
        try:
            same = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            same = False
        if same:
            self._changed(hit, "write", tenant=tenant)
        else:  # a write from another thread's loop (express_sync, a sync runtime)
            self.loop.call_soon_threadsafe(lambda: self._changed(hit, "write", tenant=tenant))

    def _changed(self, names, trigger: str, debounce: bool = True, tenant: str | None = None) -> None:
        """Dependencies ``names`` changed: drop parameterized caches, schedule materialized
        refreshes (after each product's write_debounce)."""
        if not self.started:
            return
        if not self.leader:
            self._forward_change(names, trigger)
            return
        if self.coord is not None and self._announce:
            self._spawn(self.coord.announce(list(names)))
        for p, product in self._affected(names):
            if product.multi_tenant:
                self.tenants.changed(p, trigger, tenant, debounce)
            elif product.mode == "parameterized":
                self.param_caches[p].clear()
            elif product.mode == "materialized":
                self.pending.add(p)
                if p not in self._timers:
                    delay = product.write_debounce if debounce else 0
                    self._timers[p] = self.loop.call_later(delay, self._fire, p, trigger)

    def _affected(self, names):
        """(name, product) of every product a change of ``names`` reaches, once each: through
        parameterized and virtual products to theirs; a materialized product's dependents follow
        its own refresh, and tenants.py walks a per-tenant product's (per-tenant) dependents."""
        products = self.fabric.products
        seen = set()
        todo = list(self.fabric.dependents(names))
        while todo:
            p = todo.pop(0)
            if p in seen:
                continue
            seen.add(p)
            product = products[p]
            yield p, product
            if not product.multi_tenant and product.mode != "materialized":
                todo.extend(self.fabric.dependents([p]))

    def _drop_local(self, names, trigger: str = "leader") -> None:
        """``names`` changed (the leader announced it, or a webhook): drop what this worker caches
        per worker -- parameterized values, per-tenant values (refreshed by tenants.py) -- but not
        the materialized values, which come from the shared cache or a refresh of their own."""
        for p, product in self._affected(names):
            if product.multi_tenant:
                self.tenants.changed(p, trigger, None, False)
            elif product.mode == "parameterized":
                self.param_caches[p].clear()

    def _forward_change(self, names, trigger: str) -> None:
        """A follower saw a change (a write here): drop its own parameterized caches and ask the
        leader to refresh."""
        for p in self.fabric.dependents(names):
            if p in self.param_caches:
                self.param_caches[p].clear()

        async def send():
            try:
                await self.coord.forward("changed", {"names": list(names), "trigger": trigger}, wait=False)
            except Exception as exc:  # noqa: BLE001 - the leader's next poll or write catches up
                logger.warning("fabric: forwarding a change to the leader failed: %s: %s", type(exc).__name__, exc)

        if self.coord is not None:
            self._spawn(send())

    def _fire(self, name: str, trigger: str) -> None:
        self._timers.pop(name, None)
        if self.started:
            self._spawn(self.refresh(name, trigger))

    async def _poll_loop(self, src) -> None:
        while True:
            await asyncio.sleep(src.config.poll_interval)
            if self.leader:
                await self.poll_source(src)

    async def poll_source(self, src) -> bool:
        """Re-read a source; refresh its dependents when its data changed.  True if it did."""
        try:
            changed = await src.poll()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - counted by the breaker; polling goes on
            logger.warning("fabric source %r poll failed", src.name, exc_info=True)
            return False
        if changed:
            self._changed([src.name], f"source:{src.name}", debounce=False)
        return changed

    async def source_refresh(self, name: str) -> bool:
        """The leader's part of a webhook: re-read source ``name`` and refresh its dependents
        now.  False when the source could not be read or a dependent product failed."""
        src = self.fabric.sources.get(name)
        if src is None or not self.leader:
            return False
        failures = src.stats["errors"] + src.stats.get("short_circuited", 0)
        try:
            await src.poll()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - counted by the breaker; the sender retries
            logger.warning("fabric source %r re-read for a webhook failed", name, exc_info=True)
            return False
        if src.stats["errors"] + src.stats.get("short_circuited", 0) > failures:
            return False                        # not re-read (failed, or the circuit is open)
        ok = True
        for p in self.fabric.dependents([name]):
            product = self.fabric.products[p]
            if product.mode == "materialized" and not product.multi_tenant:
                ok = await self.refresh(p, f"webhook:{name}") and ok
        self._drop_local([name], f"webhook:{name}")     # parameterized and per-tenant values
        if self.coord is not None and self._announce:
            await self.coord.announce([name])
        return ok

    async def webhook_refresh(self, name: str) -> str:
        """A verified webhook for source ``name`` arrived here: refresh (leader) or forward to
        the leader and wait.  "ok", "failed" or "no_leader"."""
        if self.leader:
            return "ok" if await self.source_refresh(name) else "failed"
        outcome = await self.coord.forward("webhook", {"source": name}, wait=True)
        if outcome == "ok":
            await self.coord.sync_now()     # the sender's next read here sees the refreshed value
        return outcome or "no_leader"

    def _source_event(self, src) -> None:
        """A watcher saw a change (called on the loop): poll once things settle."""
        key = ("source", src.name)
        if not self.started or key in self._timers:
            return

        def fire():
            self._timers.pop(key, None)
            if self.started:
                self._spawn(self.poll_source(src))

        self._timers[key] = self.loop.call_later(WATCH_SETTLE, fire)

    # -- reporting -----------------------------------------------------------------------------------------
    def health(self) -> dict:
        sources = {n: s.snapshot() for n, s in self.fabric.sources.items()}
        now = time.monotonic()
        products = {}
        for n, p in self.fabric.products.items():
            if p.multi_tenant:
                products[n] = self.tenants.health(n, p)
                continue
            e = self.entries.get(n)
            state = ("error" if n in self.errors else "stale" if n in self.pending else
                     "fresh" if e is not None else "warming") if p.mode == "materialized" else (
                "error" if n in self.errors else "on_demand")
            products[n] = {"mode": p.mode, "freshness": state,
                           "age": None if e is None else round(now - e.mono, 3),
                           "cached_at": None if e is None else e.iso,
                           "error": self.errors.get(n),
                           "depends_on": list(p.depends_on)}
        bad_sources = [n for n, s in sources.items() if not s["healthy"]]
        bad_products = [n for n, p in products.items() if p["freshness"] == "error"]
        if sources and len(bad_sources) == len(sources):
            status = "unhealthy"
        elif bad_sources or bad_products:
            status = "degraded"
        else:
            status = "healthy"
        out = {"status": status, "leader": self.leader, "worker_id": self.worker_id, "epoch": self.epoch,
               "sources": sources, "products": products}
        if self.coord is not None:
            out["coordination"] = self.coord.snapshot()
        if self.webhook_stats:
            out["webhooks"] = dict(self.webhook_stats)
        return out


async def start(fabric, *, host="127.0.0.1", port=8000, fail_fast=True, dev_mode=False, nexus=None,
                coordination=None, enable_writes=False, tenant_extractor=None, serve=True, sock=None):
    """``await db.start(...)``: see ``DataFlow.start``."""
    if nexus is not None:
        raise UnsupportedFeatureError("db.start(nexus=...): attaching to a Nexus instance is not available "
                                      "in this version; mount db.fabric_app() in your ASGI server instead")
    coordination = coordination_config(coordination)
    rt = fabric.runtime
    if rt is not None and rt.started:
        raise FabricError("the fabric is already running (await db.stop() first)")
    if rt is None:
        rt = FabricRuntime(fabric)
    if tenant_extractor is not None:
        rt.tenants = TenantProducts(rt, tenant_extractor)
    # a runtime made by db.fabric_app() before start is reused, so that app serves this one
    rt.host, rt.port, rt.fail_fast, rt.dev_mode, rt.enable_writes = host, port, fail_fast, dev_mode, enable_writes
    rt.coordination, rt.sock = coordination, sock
    return await rt.start(serve=serve)


def fabric_app(fabric, tenant_extractor=None):
    """``db.fabric_app()``: the runtime's app; mounted in another server it starts the fabric
    (without a server of its own) on its first request."""
    if fabric.runtime is None:
        fabric.runtime = FabricRuntime(fabric)
    if tenant_extractor is not None:
        fabric.runtime.tenants = TenantProducts(fabric.runtime, tenant_extractor)
    return fabric.runtime.app
