"""The fabric over real HTTP: a uvicorn server on a free loopback port (``db.start(port=0)``) and
an httpx client.  Products in three modes, the spec's headers and status codes, refresh on write
through ``after_commit`` with SSE events, and a stop that leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from dataflow import DataFlow  # noqa: E402

from .fabric_helpers import sse_events, until  # noqa: E402


@pytest.fixture
async def db(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/fabric.db")

    @db.model
    class Order:
        customer: str
        total: int = 0

    await db.initialize()
    yield db
    await db.stop()
    await db.close_async()


def client(rt):
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}", timeout=10)


async def test_materialized_warming_then_cached_with_headers(db):
    gate = asyncio.Event()

    @db.product("stats", depends_on=["Order"])
    async def stats(ctx):
        await gate.wait()
        return {"orders": await ctx.express.count("Order")}

    rt = await db.start(port=0)
    async with client(rt) as c:
        r = await c.get("/fabric/stats")
        assert r.status_code == 202 and r.json() == {"status": "warming"} and r.headers["retry-after"] == "1"
        gate.set()
        await until(lambda: "stats" in rt.entries)
        r = await c.get("/fabric/stats")
        assert r.status_code == 200 and r.json() == {"data": {"orders": 0}}
        h = r.headers
        assert h["x-fabric-mode"] == "materialized" and h["x-fabric-freshness"] == "fresh"
        assert h["x-fabric-age"] == "0" and h["x-fabric-cached-at"].endswith("+00:00")
        for _ in range(20):
            await c.get("/fabric/stats")
        assert rt.computations["stats"] == 1  # served from the cache
        assert (await c.get("/fabric/stats?x=1")).status_code == 400


async def test_parameterized_cache_per_parameter_set(db):
    await db.express.bulk_create("Order", [{"customer": f"c{i % 3}", "total": i} for i in range(30)])

    @db.product("search", mode="parameterized", depends_on=["Order"], ttl=60, max_entries=2)
    async def search(ctx, customer: str = "c0", limit: int = 5, desc: bool = False):
        rows = await ctx.express.list("Order", {"customer": customer}, limit=limit,
                                      order_by=["-total" if desc else "total"])
        return [r["total"] for r in rows]

    rt = await db.start(port=0)
    async with client(rt) as c:
        r = await c.get("/fabric/search", params={"customer": "c1", "limit": "3"})
        assert r.status_code == 200 and r.json() == {"data": [1, 4, 7]}
        assert r.headers["x-fabric-mode"] == "parameterized"
        await c.get("/fabric/search", params={"limit": "3", "customer": "c1"})  # same set, other order
        assert rt.computations["search"] == 1
        assert (await c.get("/fabric/search", params={"desc": "true", "limit": "2"})).json() == {"data": [27, 24]}
        assert rt.computations["search"] == 2
        await c.get("/fabric/search")
        assert len(rt.param_caches["search"]) == 2  # bounded: the least recently used set went
        for bad in ({"limit": "ten"}, {"desc": "perhaps"}, {"offset": "1"}):
            r = await c.get("/fabric/search", params=bad)
            assert r.status_code == 400 and "error" in r.json()
        # a write to a dependency empties the cache
        await db.express.create("Order", {"customer": "c1", "total": 0})
        assert (await c.get("/fabric/search", params={"customer": "c1", "limit": "3"})).json() == {"data": [0, 1, 4]}


async def test_virtual_errors_unknown_batch_health_trace_metrics_openapi(db):
    @db.product("live", mode="virtual", depends_on=["Order"])
    async def live(ctx):
        return await ctx.express.count("Order")

    @db.product("broken", mode="virtual")
    async def broken(ctx):
        raise RuntimeError("password=hunter2 in an internal message")

    @db.product("total", depends_on=["live"])
    async def total(ctx):
        return {"live": await ctx.product("live")}

    rt = await db.start(port=0)
    async with client(rt) as c:
        await until(lambda: "total" in rt.entries)
        assert (await c.get("/fabric/live")).json() == {"data": 0}
        await c.get("/fabric/live")
        assert rt.computations["live"] == 3  # the warm-up of total, then every request

        r = await c.get("/fabric/broken")
        assert r.status_code == 500
        assert "hunter2" not in r.text and "Traceback" not in r.text and r.json()["error"] == "product 'broken' failed"
        traces = (await c.get("/fabric/_trace/broken")).json()
        assert traces["product"] == "broken" and traces["traces"][0]["outcome"] == "error"
        assert "RuntimeError" in traces["traces"][0]["error"]
        t = (await c.get("/fabric/_trace/total")).json()["traces"][0]
        assert t["outcome"] == "success" and t["products"] == ["live"] and t["duration_ms"] >= 0

        assert (await c.get("/fabric/nothing")).status_code == 404
        assert (await c.get("/fabric/_trace/nothing")).status_code == 404

        b = (await c.get("/fabric/_batch", params={"products": "total,live"})).json()["data"]
        assert b["total"]["data"] == {"live": 0} and b["total"]["cached_at"] and b["live"]["data"] == 0
        assert (await c.get("/fabric/_batch", params={"products": "total,nope"})).status_code == 404
        assert (await c.get("/fabric/_batch")).status_code == 400

        h = (await c.get("/fabric/_health")).json()
        assert h["status"] == "degraded" and h["leader"] is True and h["epoch"] == 1 and h["worker_id"]
        assert h["products"]["total"]["freshness"] == "fresh" and h["products"]["broken"]["freshness"] == "error"

        m = (await c.get("/fabric/metrics")).text
        assert 'fabric_requests_total{product="broken",status="500"} 1.0' in m
        assert 'fabric_refreshes_total{outcome="error",product="broken"}' in m
        doc = (await c.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.") and "/fabric/live" in doc["paths"] and "/fabric/_events" in doc["paths"]
        page = await c.get("/fabric/")
        assert page.status_code == 200 and "EventSource" in page.text


async def test_write_refreshes_dependents_once_per_debounce_and_sse_resumes(db):
    @db.product("stats", depends_on=["Order"], write_debounce=0.2)
    async def stats(ctx):
        return {"orders": await ctx.express.count("Order")}

    @db.product("double", depends_on=["stats"])
    async def double(ctx):
        return 2 * (await ctx.product("stats"))["orders"]

    rt = await db.start(port=0)
    async with client(rt) as c:
        await until(lambda: "double" in rt.entries)
        ready = asyncio.Event()
        reader = asyncio.create_task(sse_events(c, "/fabric/_events", 2, ready=ready))
        await ready.wait()
        for i in range(5):  # a burst inside one debounce window: one refresh
            await db.express.create("Order", {"customer": "a", "total": i})
        assert (await c.get("/fabric/stats")).headers["x-fabric-freshness"] == "stale"
        events = await reader
        assert [e["data"]["product"] for e in events] == ["stats", "double"]
        assert events[0]["event"] == "product_refreshed" and events[0]["data"]["trigger"] == "write"
        assert rt.computations["stats"] == 2 and rt.computations["double"] == 2
        assert (await c.get("/fabric/double")).json() == {"data": 10}
        assert (await c.get("/fabric/stats")).headers["x-fabric-freshness"] == "fresh"

        # a client that reconnects with Last-Event-ID gets what it missed, in order
        first = int(events[0]["id"])
        missed = await sse_events(c, "/fabric/_events", 1, headers={"Last-Event-ID": str(first)})
        assert int(missed[0]["id"]) == first + 1 and missed[0]["data"]["product"] == "double"
        assert (await c.get("/fabric/_events", headers={"Last-Event-ID": "x"})).status_code == 400

        # a write from another thread (the sync API) reaches the runtime's loop too
        await asyncio.to_thread(db.express_sync.create, "Order", {"customer": "b"})
        await until(lambda: rt.entries["double"].value == 12)


async def test_write_pass_through(db):
    @db.product("stats", depends_on=["Order"], write_debounce=0)
    async def stats(ctx):
        return await ctx.express.count("Order")

    rt = await db.start(port=0, enable_writes=True)
    async with client(rt) as c:
        r = await c.post("/fabric/Order/write", json={"operation": "create", "data": {"customer": "z", "total": 3}})
        assert r.status_code == 201 and r.json()["data"]["customer"] == "z"
        oid = r.json()["data"]["id"]
        await until(lambda: rt.entries.get("stats") is not None and rt.entries["stats"].value == 1)
        r = await c.post("/fabric/Order/write", json={"operation": "update", "id": oid, "data": {"total": 4}})
        assert r.status_code == 200 and r.json()["data"]["total"] == 4
        assert (await c.post("/fabric/Order/write", json={"operation": "create", "data": {"nope": 1}})).status_code == 400
        assert (await c.post("/fabric/Order/write", json={"operation": "drop"})).status_code == 400
        assert (await c.post("/fabric/Nope/write", json={"operation": "create"})).status_code == 404
        assert (await c.post("/fabric/Order/write", json={"operation": "delete", "id": oid})).status_code == 200
        await until(lambda: rt.entries["stats"].value == 0)
    await db.stop()
    rt = await db.start(port=0)
    async with client(rt) as c:
        assert (await c.post("/fabric/Order/write", json={"operation": "create", "data": {}})).status_code == 403


def _listening(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _threads():
    # the loop's default executor (asyncio.to_thread) belongs to the loop, not to the fabric
    return {t for t in threading.enumerate() if not t.name.startswith("asyncio_")}


async def test_stop_leaves_no_task_thread_watcher_or_socket(db, tmp_path):
    from dataflow.fabric import FileSourceConfig

    (tmp_path / "rates.json").write_text('{"eur": 1}')
    db.source("rates", FileSourceConfig(path=str(tmp_path / "rates.json"), watch=True))

    @db.product("stats", depends_on=["Order", "rates"])
    async def stats(ctx):
        return {"orders": await ctx.express.count("Order"), "rates": await ctx.source("rates").read()}

    threads_before = _threads()
    tasks_before = asyncio.all_tasks()
    rt = await db.start(port=0)
    port = rt.port
    async with client(rt) as c:
        await until(lambda: "stats" in rt.entries)
        ready = asyncio.Event()
        reader = asyncio.create_task(sse_events(c, "/fabric/_events", 100, timeout=30, ready=ready))
        await ready.wait()
        assert _listening(port) and len(_threads()) > len(threads_before)  # the watcher runs
        await db.stop()
        assert await asyncio.wait_for(reader, 5) == []  # the open event stream ended cleanly
    assert not _listening(port)
    assert asyncio.all_tasks() == tasks_before
    assert _threads() == threads_before
    await db.stop()  # twice is fine


async def test_mounted_app_starts_on_first_request(db):
    @db.product("stats", depends_on=["Order"], write_debounce=0)
    async def stats(ctx):
        return await ctx.express.count("Order")

    app = db.fabric_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fabric") as c:
        r = await c.get("/fabric/stats")
        assert r.status_code in (200, 202)
        await until(lambda: db._fabric.runtime.entries.get("stats") is not None)
        assert (await c.get("/fabric/stats")).json() == {"data": 0}
        await db.express.create("Order", {"customer": "m"})
        await until(lambda: db._fabric.runtime.entries["stats"].value == 1)
    await db.stop()
    # db.start() after fabric_app() serves the same runtime the app belongs to
    rt = await db.start(port=0)
    assert rt.app is app


async def test_refresh_reads_past_the_query_cache(tmp_path):
    """With cache_enabled=True the cache's after_commit invalidation runs before the fabric's
    refresh, so a refreshed product never reads a cached pre-write result."""
    db = DataFlow(f"sqlite:///{tmp_path}/cached.db", cache_enabled=True)

    @db.model
    class Order:
        customer: str

    @db.product("stats", depends_on=["Order"], write_debounce=0)
    async def stats(ctx):
        return await ctx.express.count("Order")

    try:
        rt = await db.start(port=0)
        await until(lambda: "stats" in rt.entries)
        for i in range(1, 4):
            await db.express.create("Order", {"customer": "c"})
            await until(lambda: rt.entries["stats"].value == i)
    finally:
        await db.stop()
        await db.close_async()


async def test_materialized_product_that_fails_at_start_answers_500_and_recovers(db):
    state = {"fail": True}

    @db.product("fragile", depends_on=["Order"], write_debounce=0)
    async def fragile(ctx):
        if state["fail"]:
            raise ValueError("internal detail")
        return await ctx.express.count("Order")

    rt = await db.start(port=0)
    async with client(rt) as c:
        await until(lambda: "fragile" in rt.errors)
        r = await c.get("/fabric/fragile")
        assert r.status_code == 500 and "internal detail" not in r.text
        assert (await c.get("/fabric/_trace/fragile")).json()["traces"][0]["error"] == "ValueError: internal detail"
        state["fail"] = False
        await db.express.create("Order", {"customer": "x"})
        await until(lambda: "fragile" in rt.entries)
        r = await c.get("/fabric/fragile")
        assert r.status_code == 200 and r.json() == {"data": 1}
        assert (await c.get("/fabric/_health")).json()["status"] == "healthy"
