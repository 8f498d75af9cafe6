"""The fabric's HTTP side: a Starlette app over a runtime.  Handlers are thin: they bind the
request to runtime calls and turn outcomes into status codes.  A product that raises becomes a
5xx with a plain message (the exception goes to the trace and the log, never to the client)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import NotFoundError, ValidationError
from .events import sse_frame
from .products import encode

JSON = "application/json"
#: seconds between SSE keep-alive comments
PING = 15.0


def _json(obj, status: int = 200, headers: dict | None = None) -> Response:
    return Response(encode(obj), status, headers, JSON)


def _error(status: int, message: str, **extra) -> Response:
    return _json({"error": message, **extra}, status)


def build_app(rt) -> Starlette:
    products = rt.fabric.products
    metrics = rt.metrics

    def headers_of(entry, mode, freshness) -> dict:
        return {"X-Fabric-Mode": mode, "X-Fabric-Freshness": freshness, "X-Fabric-Cached-At": entry.iso,
                "X-Fabric-Age": str(int(time.monotonic() - entry.mono))}

    def failed(name) -> Response:
        return _error(500, f"product {name!r} failed", trace=f"/fabric/_trace/{name}")

    async def product(request: Request) -> Response:
        t0 = time.perf_counter()
        name = request.path_params["product"]
        if not rt.started:
            await rt.ensure_started()
        p = products.get(name)
        if p is None:
            resp = _error(404, f"unknown product {name!r}", products=sorted(products))
        else:
            resp = await _serve(name, p, request)
        metrics.request(name if p is not None else "_unknown", resp.status_code, time.perf_counter() - t0)
        return resp

    async def _serve(name, p, request) -> Response:
        if p.multi_tenant:
            from .tenants import serve
            return await serve(rt, name, p, request)
        query = request.query_params
        if p.mode == "materialized":
            if query:
                try:
                    p.bind(dict(query))
                except ValidationError as exc:
                    return _error(400, str(exc))
            entry = rt.entries.get(name)
            if entry is None and rt.dev_mode and name not in rt.errors:
                await rt.refresh(name, "request", cascade=False)
                entry = rt.entries.get(name)
            if entry is None:
                if name in rt.errors:
                    return failed(name)
                metrics.cache.labels(name, "miss").inc()
                return _json({"status": "warming"}, 202, {"Retry-After": "1", "X-Fabric-Mode": "materialized"})
            metrics.cache.labels(name, "hit").inc()
            fresh = "stale" if (name in rt.pending or name in rt.errors) else "fresh"
            return Response(entry.body, 200, headers_of(entry, "materialized", fresh), JSON)
        try:
            kwargs = p.bind(dict(query)) if query or p.params else {}
        except ValidationError as exc:
            return _error(400, str(exc))
        try:
            if p.mode == "parameterized":
                entry, hit = await rt.param_caches[name].get_or_compute(
                    tuple(sorted(kwargs.items())), lambda: rt._value_only(name, kwargs, "request"))
                metrics.cache.labels(name, "hit" if hit else "miss").inc()
            else:
                from .products import Entry
                entry = Entry(await rt._value_only(name, kwargs, "request"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged and traced by the runtime
            rt.errors[name] = f"{type(exc).__name__}: {exc}"
            return failed(name)
        rt.errors.pop(name, None)
        return Response(entry.body, 200, headers_of(entry, p.mode, "fresh"), JSON)

    async def batch(request: Request) -> Response:
        await rt.ensure_started()
        names = [n for n in request.query_params.get("products", "").split(",") if n]
        if not names:
            return _error(400, "_batch needs ?products=a,b")
        unknown = [n for n in names if n not in products]
        if unknown:
            return _error(404, f"unknown product(s) {unknown}", products=sorted(products))
        tenant = None
        if any(products[n].multi_tenant for n in names):
            try:
                tenant = await rt.tenants.extract(request)
            except ValidationError as exc:
                return _error(400, str(exc))
        out = {}
        for n in names:
            p = products[n]
            if p.multi_tenant:
                from .tenants import batch_item
                out[n] = await batch_item(rt, n, tenant)
                continue
            if p.mode == "materialized":
                e = rt.entries.get(n)
                out[n] = ({"data": e.value, "cached_at": e.iso} if e is not None else
                          {"data": None, "cached_at": None, "status": "error" if n in rt.errors else "warming"})
                continue
            try:
                out[n] = {"data": await rt.value(n), "cached_at": None}
            except ValidationError as exc:
                out[n] = {"data": None, "cached_at": None, "status": "error", "error": str(exc)}
            except Exception:  # noqa: BLE001 - traced by the runtime
                out[n] = {"data": None, "cached_at": None, "status": "error", "error": f"product {n!r} failed"}
        return _json({"data": out})

    async def health(request: Request) -> Response:
        return _json(rt.health())

    async def trace(request: Request) -> Response:
        name = request.path_params["product"]
        if name not in products:
            return _error(404, f"unknown product {name!r}", products=sorted(products))
        tenant = None
        if products[name].multi_tenant:  # a tenant sees its own computations only
            try:
                tenant = await rt.tenants.extract(request)
            except ValidationError as exc:
                return _error(400, str(exc))
        return _json({"product": name, "traces": rt.traces.get(name, tenant)})

    async def events(request: Request) -> Response:
        raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        try:
            last = int(raw) if raw not in (None, "") else None
        except ValueError:
            return _error(400, f"Last-Event-ID must be an event id (an integer), got {raw!r}")
        tenant = None
        if rt.tenants.extractor is not None:  # a tenant's stream: shared events and its own only
            try:
                tenant = await rt.tenants.extract(request, required=False)
            except ValidationError as exc:
                return _error(400, str(exc))
        queue = rt.events.subscribe(last, tenant)

        async def stream():
            try:
                yield b"retry: 1000\n: connected\n\n"
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), PING)
                    except asyncio.TimeoutError:
                        yield b": ping\n\n"
                        continue
                    if item is None:
                        return
                    yield sse_frame(item)
            finally:
                rt.events.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def metrics_text(request: Request) -> Response:
        from .metrics import CONTENT_TYPE
        for name, src in rt.fabric.sources.items():
            metrics.breaker(name, src.breaker.state)
        return Response(metrics.text(), 200, media_type=CONTENT_TYPE)

    async def write(request: Request) -> Response:
        if not rt.enable_writes:
            return _error(403, "writes are disabled (db.start(enable_writes=True) enables them)")
        model = request.path_params["model"]
        if model not in rt.db._models:
            return _error(404, f"unknown model {model!r}")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body must be JSON: {\"operation\": \"create|update|delete|upsert\", ...}")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        op, data, ident = body.get("operation"), body.get("data"), body.get("id")
        ex = rt.db.express
        scope = contextlib.nullcontext()
        if rt.tenants.extractor is not None:  # a tenant model is written as the request's tenant
            from .tenants import tenant_scope
            try:
                tenant = await rt.tenants.extract(request, required=rt.db._models[model].multi_tenant)
            except ValidationError as exc:
                return _error(400, str(exc))
            scope = tenant_scope(rt.db, tenant)
        try:
            with scope:
                if op == "create":
                    out = await ex.create(model, data)
                elif op == "update":
                    out = await ex.update(model, ident, data or {})
                    if out is None:
                        raise NotFoundError(f"{model} {ident!r} not found")
                elif op == "delete":
                    if not await ex.delete(model, ident):
                        raise NotFoundError(f"{model} {ident!r} not found")
                    out = {"deleted": ident}
                elif op == "upsert":
                    out = await ex.upsert(model, data, body.get("conflict_on"))
                else:
                    return _error(400, f"operation must be create, update, delete or upsert, got {op!r}")
        except ValidationError as exc:
            return _error(400, str(exc))
        except NotFoundError as exc:
            return _error(404, str(exc))
        return _json({"data": out}, 201 if op == "create" else 200)

    async def webhook(request: Request) -> Response:
        if not rt.started:
            await rt.ensure_started()
        from .webhooks import handle
        status, body = await handle(rt, request.path_params["source"], request)
        return _json(body, status)

    async def openapi(request: Request) -> Response:
        from .openapi import document
        return _json(document(rt))

    async def page(request: Request) -> Response:
        from .page import HTML
        return HTMLResponse(HTML)

    routes = [
        Route("/fabric/", page, methods=["GET"]),
        Route("/fabric/_health", health, methods=["GET"]),
        Route("/fabric/_batch", batch, methods=["GET"]),
        Route("/fabric/_events", events, methods=["GET"]),
        Route("/fabric/_trace/{product}", trace, methods=["GET"]),
        Route("/fabric/metrics", metrics_text, methods=["GET"]),
        Route("/fabric/webhook/{source}", webhook, methods=["POST"]),
        Route("/fabric/{model}/write", write, methods=["POST"]),
        Route("/fabric/{product}", product, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes)

