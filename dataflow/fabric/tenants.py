"""Per-tenant products: the tenant of a request, one cached value per tenant, and refreshes
that reach every tenant's value (or only the writing tenant's).

- The tenant comes from ``db.start(tenant_extractor=fn)`` / ``db.fabric_app(tenant_extractor=fn)``:
  ``fn(request) -> tenant_id | None`` (may be async).  No tenant, an id that is not a tenant id
  (``tenancy.check_tenant_id``: 1-128 of letters, digits and ``_.:@-``) or an extractor that raises
  -> 400, before anything is computed.
- A product function runs inside the tenant's binding (``db.tenant(id)``), so its express calls
  see that tenant's rows only, and ``ctx.tenant_id`` is the id.  A product that is *not* per
  tenant runs with no tenant bound, whatever context triggered it (a refresh is scheduled from the
  writer's context, which may be bound to a tenant: its value must not be that tenant's view).
- Materialized: computed on a tenant's first request (which waits for it; concurrent first
  requests share one computation), then served from the cache; at most ``max_entries`` tenants per
  product, least recently used goes first.  A change of a dependency refreshes the cached tenants'
  values (served as ``stale`` meanwhile): only the writing tenant's when the write was bound to one
  tenant and touched only multi-tenant models, every cached tenant's otherwise (non-tenant models,
  sources, ``all_tenants()`` writes, schedules).
- Parameterized: the runtime's parameter cache with the tenant in the key.  Virtual: every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import OrderedDict

from ..errors import ConfigurationError, FabricError, ValidationError
from ..tenancy import check_tenant_id
from .products import Entry, encode

logger = logging.getLogger("dataflow.fabric")
#: cached tenants refreshed at once after a change that reaches all of them
REFRESH_CONCURRENCY = 4
JSON = "application/json"


class TenantRequestError(ValidationError):
    """The request names no (valid) tenant: the HTTP side answers 400 with this message."""


@contextlib.contextmanager
def tenant_scope(db, tenant: str | None):
    """Bind ``tenant`` (or no tenant at all) for a product computation, restoring what was
    bound before on exit.  Unlike ``db.tenant()``, ``None`` is allowed: it *unbinds*."""
    var = db.tenant_context._var
    token = var.set(tenant if tenant is None else check_tenant_id(tenant))
    try:
        yield
    finally:
        var.reset(token)


class _Slot:
    """One tenant's value of one materialized product."""

    __slots__ = ("entry", "error", "lock", "asked", "done", "pending")

    def __init__(self):
        self.entry: Entry | None = None
        self.error: str | None = None
        self.lock = asyncio.Lock()
        self.asked = 0
        self.done = 0
        self.pending = False


class TenantProducts:
    """The per-tenant side of a runtime (``runtime.tenants``)."""

    def __init__(self, rt, extractor=None):
        if extractor is not None and not callable(extractor):
            raise ConfigurationError(f"tenant_extractor must be a callable(request) -> tenant id, got {extractor!r}")
        self.rt = rt
        self.extractor = extractor
        self.slots: dict = {}            # product -> OrderedDict(tenant -> _Slot)
        self._timers: dict = {}          # (product, tenant or None) -> TimerHandle

    # -- the tenant of a request ------------------------------------------------------------------
    async def extract(self, request, required: bool = True) -> str | None:
        """The request's tenant id.  ``TenantRequestError`` if there is none (when ``required``)
        or it is not a valid tenant id."""
        if self.extractor is None:
            raise TenantRequestError("this product is per tenant, and the fabric was started without a "
                                     "tenant_extractor (db.start(tenant_extractor=...))")
        try:
            tenant = self.extractor(request)
            if inspect.isawaitable(tenant):
                tenant = await tenant
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the extractor refused the request
            logger.info("fabric tenant_extractor refused a request: %s: %s", type(exc).__name__, exc)
            raise TenantRequestError("the request names no valid tenant (the tenant extractor refused it)") from None
        if tenant is None or tenant == "":
            if not required:
                return None
            raise TenantRequestError("this product is per tenant and the request names no tenant")
        try:
            return check_tenant_id(tenant)
        except ValidationError:
            raise TenantRequestError("the request's tenant id is not valid: 1-128 characters of letters, "
                                     "digits and _.:@-") from None

    # -- values -----------------------------------------------------------------------------------
    def _slots(self, name: str) -> OrderedDict:
        s = self.slots.get(name)
        if s is None:
            s = self.slots[name] = OrderedDict()
        return s

    def _slot(self, name: str, tenant: str) -> _Slot:
        slots = self._slots(name)
        slot = slots.get(tenant)
        if slot is None:
            slot = slots[tenant] = _Slot()
            limit = self.rt.fabric.products[name].max_entries
            for t in list(slots):
                if len(slots) <= limit:
                    break
                if t != tenant and not slots[t].lock.locked():
                    del slots[t]
        else:
            slots.move_to_end(tenant)
        return slot

    async def materialized(self, name: str, tenant: str) -> tuple[_Slot, bool]:
        """The tenant's slot with a value or an error, computing it on first use: (slot, hit)."""
        slot = self._slot(name, tenant)
        if slot.entry is not None:
            return slot, True
        async with slot.lock:
            if slot.entry is None:
                await self._compute_into(name, tenant, slot, "request")
        return slot, False

    async def _compute_into(self, name, tenant, slot, trigger) -> bool:
        try:
            value, trace = await self.rt._compute(name, {}, trigger, tenant)
            entry = Entry(value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - kept for the 5xx answer and the trace
            slot.error = f"{type(exc).__name__}: {exc}"
            self.rt.events.publish("product_failed", {"product": name, "trigger": trigger, "tenant": tenant,
                                                      "error": f"product {name!r} failed"}, tenant=tenant)
            return False
        slot.entry, slot.error = entry, None
        self.rt.events.publish("product_refreshed", {"product": name, "trigger": trigger, "tenant": tenant,
                                                     "cached_at": entry.iso, "duration_ms": trace.duration_ms},
                               tenant=tenant)
        return True

    async def refresh(self, name: str, tenant: str, trigger: str = "manual", cascade: bool = True) -> None:
        """Recompute one tenant's value now (requests meanwhile get the old one, as ``stale``);
        refreshes asked for while one runs are served by one more, never one each."""
        slots = self._slots(name)
        slot = slots.get(tenant)
        if slot is None:
            return                        # evicted or never asked for: computed on its next request
        slot.asked += 1
        asked = slot.asked
        async with slot.lock:
            if slot.done >= asked:
                return
            gen = slot.asked
            slot.pending = False
            ok = await self._compute_into(name, tenant, slot, trigger)
            slot.done = gen
        if ok and cascade:
            self.changed_dependents(name, f"product:{name}", tenant)

    async def refresh_all(self, name: str, trigger: str) -> None:
        """Refresh every cached tenant's value of a materialized product (a few at a time)."""
        sem = asyncio.Semaphore(REFRESH_CONCURRENCY)

        async def one(t):
            async with sem:
                await self.refresh(name, t, trigger)

        await asyncio.gather(*(one(t) for t in list(self._slots(name))))

    async def value(self, name: str, tenant: str | None):
        """``ctx.product(name)`` for a per-tenant product: the value of the tenant being computed."""
        if tenant is None:
            raise FabricError(f"product {name!r} is per tenant: read it from a per-tenant product "
                              f"(or inside db.tenant(...))")
        product = self.rt.fabric.products[name]
        if product.mode == "materialized":
            slot, _ = await self.materialized(name, tenant)
            if slot.entry is None:
                raise FabricError(f"product {name!r} failed for this tenant: {slot.error}")
            return slot.entry.value
        kwargs = product.bind({})
        if product.mode == "parameterized":
            entry, _ = await self.param_entry(name, tenant, kwargs, "dependency")
            return entry.value
        return (await self.rt._compute(name, kwargs, "dependency", tenant))[0]

    async def param_entry(self, name: str, tenant: str, kwargs: dict, trigger: str):
        """(entry, hit) of a per-tenant parameterized product: the tenant is part of the key."""
        key = (tenant, tuple(sorted(kwargs.items())))

        async def compute():
            return (await self.rt._compute(name, kwargs, trigger, tenant))[0]

        return await self.rt.param_caches[name].get_or_compute(key, compute)

    # -- change propagation ---------------------------------------------------------------------------
    def changed(self, name: str, trigger: str, tenant: str | None, debounce: bool) -> None:
        """A dependency of per-tenant product ``name`` changed, for ``tenant`` (None: everyone)."""
        rt = self.rt
        product = rt.fabric.products[name]
        if product.mode == "parameterized":
            if tenant is None:
                rt.param_caches[name].clear()
            else:
                rt.param_caches[name].drop(lambda k: k[0] == tenant)
            self.changed_dependents(name, trigger, tenant)
            return
        if product.mode != "materialized":
            self.changed_dependents(name, trigger, tenant)
            return
        slots = self._slots(name)
        targets = list(slots) if tenant is None else ([tenant] if tenant in slots else [])
        if not targets:
            return
        for t in targets:
            slots[t].pending = True
        key = (name, tenant)
        if key in self._timers or (name, None) in self._timers:
            return
        delay = product.write_debounce if debounce else 0
        self._timers[key] = rt.loop.call_later(delay, self._fire, key, trigger)

    def changed_dependents(self, name: str, trigger: str, tenant: str | None) -> None:
        for dep in self.rt.fabric.dependents([name]):
            self.changed(dep, trigger, tenant, debounce=False)

    def _fire(self, key, trigger: str) -> None:
        self._timers.pop(key, None)
        if not self.rt.started:
            return
        name, tenant = key
        self.rt._spawn(self.refresh_all(name, trigger) if tenant is None else self.refresh(name, tenant, trigger))

    # -- lifecycle and reporting -------------------------------------------------------------------------
    def clear(self) -> None:
        self.cancel()
        self.slots.clear()

    def cancel(self) -> None:
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()

    def health(self, name: str, product) -> dict:
        """A per-tenant product in ``_health``: counts only (no tenant ids, no values: ``_health``
        is not tenant-scoped)."""
        slots = list(self.slots.get(name, {}).values())
        now = time.monotonic()
        ages = [now - s.entry.mono for s in slots if s.entry is not None]
        if product.mode == "materialized":
            freshness = ("error" if any(s.error for s in slots) else
                         "stale" if any(s.pending for s in slots) else "per_tenant")
        else:
            freshness = "on_demand"
        return {"mode": product.mode, "multi_tenant": True, "freshness": freshness,
                "tenants": len(slots), "age": round(max(ages), 3) if ages else None, "cached_at": None,
                "error": None, "depends_on": list(product.depends_on)}


async def serve(rt, name: str, product, request):
    """``GET /fabric/{product}`` for a per-tenant product (app.py delegates here)."""
    from starlette.responses import Response

    def error(status, message, **extra):
        return Response(encode({"error": message, **extra}), status, media_type=JSON)

    try:
        tenant = await rt.tenants.extract(request)
        raw = request.scope.get("query_string")     # parsed only when there is one (or defaults)
        kwargs = product.bind(dict(request.query_params)) if (raw or product.params) else {}
        if product.mode == "materialized":
            kwargs = {}       # checked only: a materialized value is computed without parameters
    except ValidationError as exc:
        return error(400, str(exc))
    try:
        if product.mode == "materialized":
            slot, hit = await rt.tenants.materialized(name, tenant)
            entry, fresh = slot.entry, ("stale" if (slot.pending or slot.error) else "fresh")
        elif product.mode == "parameterized":
            (entry, hit), fresh = await rt.tenants.param_entry(name, tenant, kwargs, "request"), "fresh"
        else:
            entry, hit, fresh = Entry((await rt._compute(name, kwargs, "request", tenant))[0]), False, "fresh"
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - logged and traced by the runtime
        entry = None
    if entry is None:
        return error(500, f"product {name!r} failed", trace=f"/fabric/_trace/{name}")
    if product.mode != "virtual":
        rt.metrics.cache.labels(name, "hit" if hit else "miss").inc()
    headers = {"X-Fabric-Mode": product.mode, "X-Fabric-Freshness": fresh, "X-Fabric-Cached-At": entry.iso,
               "X-Fabric-Age": str(int(time.monotonic() - entry.mono)),
               # one tenant's answer: never to be reused from a shared HTTP cache for another
               "Cache-Control": "private", "Vary": "*"}
    return Response(entry.body, 200, headers, JSON)


async def batch_item(rt, name: str, tenant: str) -> dict:
    """One per-tenant product in ``_batch``."""
    product = rt.fabric.products[name]
    try:
        if product.mode == "materialized":
            slot, _ = await rt.tenants.materialized(name, tenant)
            if slot.entry is None:
                return {"data": None, "cached_at": None, "status": "error", "error": f"product {name!r} failed"}
            return {"data": slot.entry.value, "cached_at": slot.entry.iso}
        return {"data": await rt.tenants.value(name, tenant), "cached_at": None}
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - traced by the runtime
        return {"data": None, "cached_at": None, "status": "error", "error": f"product {name!r} failed"}
