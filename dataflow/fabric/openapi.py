"""The OpenAPI 3.1 document of a running fabric: one path per product (its query parameters
from the function's signature) plus the fixed endpoints."""

from __future__ import annotations

_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}}}}}


def _op(summary: str, description: str = "", params=(), responses=None) -> dict:
    return {"get": {"summary": summary, "description": description, "parameters": list(params),
                    "responses": responses or {"200": {"description": "OK"}}}}


def document(rt) -> dict:
    paths = {
        "/fabric/_health": _op("Sources (circuit state) and products (freshness)"),
        "/fabric/_batch": _op("Several products at once", params=[
            {"name": "products", "in": "query", "required": True, "schema": {"type": "string"},
             "description": "comma-separated product names"}]),
        "/fabric/_trace/{product}": _op("The last 20 pipeline traces of a product", params=[
            {"name": "product", "in": "path", "required": True, "schema": {"type": "string"}}]),
        "/fabric/_events": _op("Server-Sent Events, one per product refresh (Last-Event-ID resumes)",
                               responses={"200": {"description": "event stream",
                                                  "content": {"text/event-stream": {}}}}),
        "/fabric/metrics": _op("Prometheus metrics", responses={"200": {"description": "text format"}}),
    }
    for name, p in rt.fabric.products.items():
        params = [{"name": q.name, "in": "query", "required": q.required,
                   "schema": {"type": _TYPES[q.type], **({} if q.required else {"default": q.default})}}
                  for q in p.params]
        doc = (p.fn.__doc__ or "").strip()
        responses = {"200": {"description": "the product's value",
                             "content": {"application/json": {"schema": {
                                 "type": "object", "properties": {"data": {}}}}}},
                     "400": _ERROR, "500": _ERROR}
        if p.mode == "materialized":
            responses["202"] = {"description": "warming: not computed yet (Retry-After)"}
        paths[f"/fabric/{name}"] = _op(f"{name} ({p.mode} product; depends on {', '.join(p.depends_on) or 'nothing'})",
                                       doc, params, responses)
    if rt.enable_writes:
        for model in rt.db._models:
            paths[f"/fabric/{model}/write"] = {"post": {
                "summary": f"create/update/delete/upsert a {model}",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                    "operation": {"enum": ["create", "update", "delete", "upsert"]}, "data": {"type": "object"},
                    "id": {}}}}}},
                "responses": {"200": {"description": "OK"}, "201": {"description": "created"}, "400": _ERROR}}}
    for name, src in rt.fabric.sources.items():
        hook = getattr(src.config, "webhook", None)
        if hook is not None:
            paths[f"/fabric/webhook/{name}"] = {"post": {
                "summary": f"change notification for source {name} ({hook.provider} signature scheme)",
                "responses": {"202": {"description": "accepted: the source was re-read and its products refreshed"},
                              "401": _ERROR, "409": _ERROR, "413": _ERROR, "500": _ERROR, "503": _ERROR}}}
    return {"openapi": "3.1.0", "info": {"title": "DataFlow fabric", "version": "1"}, "paths": paths}
