"""Data products: their definition (mode, dependencies, cache settings), the binding of HTTP
query parameters to a product function's signature, and the caches that hold computed values.

A computed value is kept with its JSON body already encoded, so serving a cached product is a
dictionary lookup and a byte copy, never a serialization.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

import orjson

from ..errors import ConfigurationError, ValidationError
from .config import NAME_RE

MODES = ("materialized", "parameterized", "virtual")
#: path segments the HTTP side uses itself
RESERVED = frozenset(("metrics", "webhook", "openapi.json"))
#: query-parameter types a product signature may declare
_SCALARS = (str, int, float, bool)


def json_default(v):
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def encode(obj) -> bytes:
    return orjson.dumps(obj, default=json_default, option=orjson.OPT_NON_STR_KEYS)


@dataclass
class Param:
    name: str
    type: type
    default: object
    required: bool


@dataclass
class Product:
    """One ``@db.product(...)``: the function and how its value is kept."""

    name: str
    fn: object
    mode: str = "materialized"
    depends_on: tuple = ()
    ttl: float = 60.0
    max_entries: int = 1000
    write_debounce: float = 0.1
    params: list = field(default_factory=list)
    #: one value per tenant (``None`` until the registry infers it from ``depends_on``)
    multi_tenant: bool | None = False
    #: cron expression refreshing a materialized product (``schedule.py``)
    schedule: str | None = None

    def bind(self, query: dict) -> dict:
        """HTTP query parameters -> keyword arguments of the function (``ValidationError`` for an
        unknown name, a missing required one or a value of the wrong type)."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(query) - set(known))
        if unknown:
            raise ValidationError(f"product {self.name!r}: unknown parameter(s) {unknown}; "
                                  f"it takes {sorted(known) or 'none'}")
        out = {}
        for p in self.params:
            if p.name not in query:
                if p.required:
                    raise ValidationError(f"product {self.name!r}: parameter {p.name!r} is required")
                out[p.name] = p.default
                continue
            out[p.name] = _convert(self.name, p, query[p.name])
        return out


def _convert(product: str, p: Param, raw: str):
    try:
        if p.type is bool:
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return p.type(raw)
    except (TypeError, ValueError):
        raise ValidationError(f"product {product!r}: parameter {p.name!r} must be {p.type.__name__}, "
                              f"got {raw!r}") from None


def make_product(name: str, fn, *, mode="materialized", depends_on=(), ttl=None, max_entries=1000,
                 write_debounce=0.1, schedule=None, multi_tenant=None, cache_ttl=None) -> Product:
    """Check a product definition (everything but its dependencies, which need the registry)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or name.startswith("_") or name in RESERVED:
        raise ValidationError(f"product name {name!r} must match [A-Za-z][A-Za-z0-9_-]{{0,63}} "
                              f"and not be one of {sorted(RESERVED)}")
    if not callable(fn):
        raise ConfigurationError(f"@db.product({name!r}) decorates a function, not {type(fn).__name__}")
    if mode not in MODES:
        raise ConfigurationError(f"product {name!r}: mode must be one of {MODES}, got {mode!r}")
    if schedule is not None:
        if mode != "materialized":
            raise ConfigurationError(f"product {name!r}: schedule= refreshes a cached value, so it needs "
                                     f"mode='materialized' (a {mode} product is computed on request)")
        from .schedule import check_schedule
        schedule = check_schedule(name, schedule)
    if multi_tenant is not None and not isinstance(multi_tenant, bool):
        raise ConfigurationError(f"product {name!r}: multi_tenant must be True, False or None (inferred "
                                 f"from depends_on), got {multi_tenant!r}")
    if isinstance(depends_on, str):
        depends_on = [depends_on]
    depends_on = tuple(getattr(d, "__name__", d) for d in depends_on)
    if not all(isinstance(d, str) for d in depends_on):
        raise ConfigurationError(f"product {name!r}: depends_on names models, sources or products")
    ttl = cache_ttl if ttl is None else ttl
    ttl = 60.0 if ttl is None else ttl
    for label, v in (("ttl", ttl), ("write_debounce", write_debounce)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigurationError(f"product {name!r}: {label} must be a number >= 0, got {v!r}")
    if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
        raise ConfigurationError(f"product {name!r}: max_entries must be an int >= 1, got {max_entries!r}")
    params = _signature(name, fn)
    if mode != "parameterized" and any(p.required for p in params):
        raise ConfigurationError(f"product {name!r}: a {mode} product is computed without request parameters, "
                                 f"so its parameters need defaults (or use mode='parameterized')")
    return Product(name, fn, mode, depends_on, float(ttl), max_entries, float(write_debounce), params,
                   multi_tenant, schedule)


def resolve_tenancy(product: Product, models: dict, products: dict) -> None:
    """Decide whether ``product`` keeps one value per tenant, once its dependencies are known.

    ``multi_tenant=None`` (the default) means: per tenant when it depends on a multi-tenant
    model or on a per-tenant product.  ``multi_tenant=False`` on a product depending on a
    multi-tenant model is a deliberate cross-tenant product: its function runs with no tenant
    bound, so tenant models are read only inside ``db.all_tenants()``.  It may not depend on a
    per-tenant product: that would serve one tenant's value to everyone.
    """
    tenant_deps = [d for d in product.depends_on
                   if (d in models and getattr(models[d], "multi_tenant", False))
                   or (d in products and products[d].multi_tenant)]
    if product.multi_tenant is None:
        product.multi_tenant = bool(tenant_deps)
        return
    per_tenant_products = [d for d in product.depends_on if d in products and products[d].multi_tenant]
    if product.multi_tenant is False and per_tenant_products:
        raise ConfigurationError(f"product {product.name!r}: multi_tenant=False, but it depends on the per-tenant "
                                 f"product(s) {per_tenant_products}; it would serve one tenant's value to "
                                 f"every caller (drop multi_tenant=False)")


def _signature(name: str, fn) -> list[Param]:
    sig = inspect.signature(fn)
    ps = list(sig.parameters.values())
    if not ps or ps[0].kind not in (ps[0].POSITIONAL_ONLY, ps[0].POSITIONAL_OR_KEYWORD):
        raise ConfigurationError(f"product {name!r}: the function takes the context first: def {name}(ctx, ...)")
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to the defaults' types
        hints = {}
    out = []
    for p in ps[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        typ = hints.get(p.name)
        if typ is None or typ is inspect.Parameter.empty:
            typ = type(p.default) if p.default is not p.empty and p.default is not None else str
        if typ not in _SCALARS:
            raise ConfigurationError(f"product {name!r}: parameter {p.name!r} must be str, int, float or bool "
                                     f"(query parameters), not {typ!r}")
        out.append(Param(p.name, typ, None if p.default is p.empty else p.default, p.default is p.empty))
    return out


class Entry:
    """A computed value, its encoded body, and when it was computed."""

    __slots__ = ("value", "body", "cached_at", "mono", "iso")

    def __init__(self, value):
        self.value = value
        self.body = encode({"data": value})
        self.cached_at = time.time()
        self.mono = time.monotonic()
        self.iso = datetime.fromtimestamp(self.cached_at, timezone.utc).isoformat()


class ParamCache:
    """Values of a parameterized product per parameter set: ``ttl`` seconds each, at most
    ``max_entries`` sets (least recently used goes first); concurrent requests for the same set
    share one computation."""

    def __init__(self, ttl: float, max_entries: int):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._inflight: dict = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key) -> Entry | None:
        e = self._entries.get(key)
        if e is None:
            return None
        if time.monotonic() - e.mono > self.ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return e

    async def get_or_compute(self, key, compute) -> tuple[Entry, bool]:
        """(entry, hit)."""
        e = self.get(key)
        if e is not None:
            return e, True
        fut = self._inflight.get(key)
        if fut is not None:
            return await asyncio.shield(fut), True
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            e = Entry(await compute())
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            fut.set_result(e)
            self._entries[key] = e
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return e, False
        finally:
            self._inflight.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def drop(self, pred) -> None:
        """Forget the entries whose key ``pred(key)`` is true (one tenant's, for instance)."""
        for key in [k for k in self._entries if pred(k)]:
            del self._entries[key]
