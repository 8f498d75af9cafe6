"""Per-tenant products over a real uvicorn on a free loopback port, with the tenancy models
(``DataFlow(..., multi_tenant=True)``): every endpoint (data, ``_batch``, ``_trace``, ``_events``,
parameterized, virtual, write pass-through, after refreshes) answers a tenant with its own rows
only; requests without a valid tenant get 400; a write bound to one tenant refreshes that
tenant's values, a write to a shared model every tenant's; and a random interleaving of requests,
writes and event streams from several tenants at once never crosses tenants."""

from __future__ import annotations

import asyncio
import random

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from dataflow import DataFlow  # noqa: E402
from dataflow.errors import ConfigurationError  # noqa: E402

from .conftest import _backend_url, drop_all  # noqa: E402
from .fabric_helpers import until  # noqa: E402

TENANT = "x-tenant"


def extractor(request):
    return request.headers.get(TENANT)


async def _open(url, tables=None):
    db = DataFlow(url, multi_tenant=True)
    tname = tables or (lambda base: base)

    @db.model
    class Order:
        label: str
        total: int = 0
        __tablename__ = tname("fab_order")

    @db.model
    class Plan:
        name: str
        __tablename__ = tname("fab_plan")
        __dataflow__ = {"multi_tenant": False}

    await db.initialize()
    return db


@pytest.fixture
async def db(tmp_path):
    db = await _open(f"sqlite:///{tmp_path}/tenants.db")
    yield db
    await db.stop()
    await db.close_async()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db(request, tmp_path, tables):
    """The tenancy models on SQLite and on the local PostgreSQL (a real pool, real concurrency)."""
    db = await _open(_backend_url(request.param, tmp_path), tables)
    yield db
    await db.stop()
    await drop_all(db)


def _rows(rows):
    return sorted([r["tenant_id"], r["label"]] for r in rows)


def define(db, max_entries=1000, seen=None):
    """Products reading tenant rows (their tenant ids travel in the values, so a leak shows)."""
    seen = seen if seen is not None else []

    @db.product("orders", depends_on=["Order", "Plan"], write_debounce=0, max_entries=max_entries)
    async def orders(ctx):
        seen.append(("orders", ctx.tenant_id, db.tenant_context.current()))
        plans = await ctx.express.count("Plan")
        return {"tenant": ctx.tenant_id, "rows": _rows(await ctx.express.list("Order", limit=1000)),
                "plans": plans}

    @db.product("summary", depends_on=["orders"])
    async def summary(ctx):
        o = await ctx.product("orders")
        return {"tenant": ctx.tenant_id, "of": o["tenant"], "n": len(o["rows"])}

    @db.product("search", mode="parameterized", depends_on=["Order"])
    async def search(ctx, prefix: str = ""):
        rows = await ctx.express.list("Order", {"label": {"$startswith": prefix}} if prefix else {}, limit=1000)
        return {"tenant": ctx.tenant_id, "rows": _rows(rows)}

    @db.product("live", mode="virtual", depends_on=["Order"])
    async def live(ctx):
        return {"tenant": ctx.tenant_id, "rows": _rows(await ctx.express.list("Order", limit=1000))}

    @db.product("everyone", depends_on=["Order"], multi_tenant=False, write_debounce=0)
    async def everyone(ctx):
        # a deliberate cross-tenant product: it runs with no tenant bound, whatever triggered it
        seen.append(("everyone", ctx.tenant_id, db.tenant_context.current()))
        async with db.all_tenants():
            return await ctx.express.count("Order")

    return seen


def client(rt, tenant=None):
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}", timeout=20,
                             headers={TENANT: tenant} if tenant is not None else {})


async def _write(db, tenant, label, total=0):
    async with db.tenant(tenant):
        return await db.express.create("Order", {"label": label, "total": total})


async def test_registration_infers_and_checks_tenancy(db):
    define(db)
    products = db._fabric.products
    assert products["orders"].multi_tenant and products["summary"].multi_tenant   # inferred
    assert products["search"].multi_tenant and not products["everyone"].multi_tenant
    with pytest.raises(ConfigurationError, match="per-tenant"):
        db.product("leak", depends_on=["orders"], multi_tenant=False)(lambda ctx: 1)
    with pytest.raises(ConfigurationError, match="multi_tenant must be"):
        db.product("odd", multi_tenant="yes")(lambda ctx: 1)
    with pytest.raises(ConfigurationError, match="tenant_extractor"):
        await db.start(port=0)


async def test_every_endpoint_answers_a_tenant_with_its_own_rows(db):
    seen = define(db)
    await _write(db, "acme", "a1", 1)
    await _write(db, "acme", "a2", 2)
    await _write(db, "beta", "b1", 3)
    rt = await db.start(port=0, tenant_extractor=extractor, enable_writes=True)
    async with client(rt, "acme") as a, client(rt, "beta") as b, client(rt) as anon:
        r = await a.get("/fabric/orders")
        assert r.status_code == 200 and r.headers["x-fabric-mode"] == "materialized"
        assert r.json()["data"] == {"tenant": "acme", "rows": [["acme", "a1"], ["acme", "a2"]], "plans": 0}
        assert (await b.get("/fabric/orders")).json()["data"]["rows"] == [["beta", "b1"]]
        assert (await b.get("/fabric/summary")).json()["data"] == {"tenant": "beta", "of": "beta", "n": 1}
        r = await a.get("/fabric/search", params={"prefix": "a2"})
        assert r.json()["data"] == {"tenant": "acme", "rows": [["acme", "a2"]]}
        # the same parameters for another tenant are another cache entry
        assert (await b.get("/fabric/search", params={"prefix": "a2"})).json()["data"]["rows"] == []
        assert (await b.get("/fabric/live")).json()["data"]["rows"] == [["beta", "b1"]]
        batch = (await a.get("/fabric/_batch", params={"products": "orders,summary,live,search,everyone"})).json()
        d = batch["data"]
        assert d["orders"]["data"]["rows"] == [["acme", "a1"], ["acme", "a2"]] and d["orders"]["cached_at"]
        assert d["summary"]["data"]["of"] == "acme" and d["live"]["data"]["tenant"] == "acme"
        assert d["search"]["data"]["rows"] == [["acme", "a1"], ["acme", "a2"]] and d["everyone"]["data"] == 3
        # cached: 20 more reads compute nothing
        before = rt.computations["orders"]
        for _ in range(10):
            await a.get("/fabric/orders")
            await b.get("/fabric/orders")
        assert rt.computations["orders"] == before

        # no tenant, or a tenant id that is not one -> 400, before anything is computed
        computed = sum(rt.computations.values())
        for bad in (None, "", "../beta", "acme/../beta", "acme%2Fbeta", "a b", "x" * 129, "beta\\", "*", "acme;beta"):
            hdr = {} if bad is None else {TENANT: bad}
            for path in ("/fabric/orders", "/fabric/search?prefix=a", "/fabric/live", "/fabric/summary",
                         "/fabric/_batch?products=orders", "/fabric/_trace/orders"):
                r = await anon.get(path, headers=hdr)
                assert r.status_code == 400, (bad, path, r.status_code)
                assert "tenant" in r.json()["error"] and "acme" not in r.text
        assert sum(rt.computations.values()) == computed
        # _events without a tenant is the shared stream (non-tenant products only); a bad id is 400
        assert (await anon.get("/fabric/_events", headers={TENANT: "../x"})).status_code == 400
        # products that are not per tenant need no tenant
        assert (await anon.get("/fabric/everyone")).json()["data"] == 3

        # traces: a tenant sees its own computations only
        traces = (await a.get("/fabric/_trace/orders")).json()["traces"]
        assert traces and all(t["outcome"] == "success" for t in traces)
        assert len(traces) == sum(1 for s in seen if s[:2] == ("orders", "acme"))
        # _health: counts, no tenant ids or values
        h = (await anon.get("/fabric/_health")).json()
        assert h["products"]["orders"]["multi_tenant"] is True and h["products"]["orders"]["tenants"] == 2
        assert "acme" not in str(h) and "beta" not in str(h)

        # write pass-through writes as the request's tenant; no tenant -> 400
        r = await b.post("/fabric/Order/write", json={"operation": "create", "data": {"label": "b2"}})
        assert r.status_code == 201 and r.json()["data"]["tenant_id"] == "beta"
        assert (await anon.post("/fabric/Order/write", json={"operation": "create",
                                                             "data": {"label": "z"}})).status_code == 400
        # beta cannot update acme's row through it either
        acme_row = (await _list(db, "acme"))[0]
        r = await b.post("/fabric/Order/write", json={"operation": "update", "id": acme_row["id"],
                                                      "data": {"label": "stolen"}})
        assert r.status_code == 404
        await until(lambda: _value(rt, "orders", "beta") == [["beta", "b1"], ["beta", "b2"]])
        assert (await b.get("/fabric/orders")).json()["data"]["rows"] == [["beta", "b1"], ["beta", "b2"]]
        assert (await a.get("/fabric/orders")).json()["data"]["rows"] == [["acme", "a1"], ["acme", "a2"]]
        assert (await b.get("/fabric/search", params={"prefix": "a2"})).json()["data"]["rows"] == []
        assert (await a.get("/fabric/search", params={"prefix": "b"})).json()["data"]["rows"] == []
        await until(lambda: rt.entries.get("everyone") is not None and rt.entries["everyone"].value == 4)
    # every computation ran bound to exactly its own tenant, the cross-tenant one to none
    assert all(ctx_t == bound for _, ctx_t, bound in seen)
    assert {t for p, t, _ in seen if p == "everyone"} == {None}


async def _collect(c, out, ready):
    """Append every event of an SSE stream to ``out`` until cancelled."""
    import json
    cur = {}
    async with c.stream("GET", "/fabric/_events") as r:
        async for line in r.aiter_lines():
            if line.startswith(": connected"):
                ready.set()
            if line == "":
                if "data" in cur:
                    cur["data"] = json.loads(cur["data"])
                    out.append(cur)
                cur = {}
            elif not line.startswith(":"):
                k, _, v = line.partition(": ")
                cur[k] = v


async def _list(db, tenant):
    async with db.tenant(tenant):
        return await db.express.list("Order")


def _value(rt, name, tenant):
    slot = rt.tenants.slots.get(name, {}).get(tenant)
    return None if slot is None or slot.entry is None else slot.entry.value["rows"]


async def test_a_tenants_write_refreshes_its_values_a_shared_write_everyones(db):
    define(db)
    for t in ("acme", "beta", "gamma"):
        await _write(db, t, f"{t}-0")
    rt = await db.start(port=0, tenant_extractor=extractor)
    clients = {t: client(rt, t) for t in ("acme", "beta", "gamma")}
    try:
        for t, c in clients.items():
            assert (await c.get("/fabric/summary")).json()["data"]["n"] == 1
        start = rt.computations["orders"]
        await _write(db, "beta", "beta-1")
        await until(lambda: _value(rt, "orders", "beta") == [["beta", "beta-0"], ["beta", "beta-1"]])
        await until(lambda: rt.tenants.slots["summary"]["beta"].entry.value["n"] == 2)
        assert rt.computations["orders"] == start + 1          # only beta's value was recomputed
        assert (await clients["acme"].get("/fabric/summary")).json()["data"] == {"tenant": "acme", "of": "acme", "n": 1}
        # a write to a model that is not per tenant reaches every tenant's value
        await db.express.create("Plan", {"name": "gold"})
        for t in clients:
            await until(lambda t=t: rt.tenants.slots["orders"][t].entry.value["plans"] == 1)
        assert rt.computations["orders"] == start + 4
        # and so does a cross-tenant (all_tenants) write
        async with db.all_tenants():
            await db.express.create("Order", {"label": "gamma-1", "tenant_id": "gamma"})
        await until(lambda: _value(rt, "orders", "gamma") == [["gamma", "gamma-0"], ["gamma", "gamma-1"]])
        await until(lambda: rt.computations["orders"] == start + 7)
        assert _value(rt, "orders", "acme") == [["acme", "acme-0"]]
    finally:
        for c in clients.values():
            await c.aclose()


async def test_mounted_app_with_a_tenant_extractor(db):
    define(db)
    await _write(db, "acme", "a1")

    async def from_token(request):          # an async extractor, as an auth lookup would be
        token = request.headers.get("authorization", "")
        return {"Bearer k-acme": "acme", "Bearer k-beta": "beta"}.get(token)

    app = db.fabric_app(tenant_extractor=from_token)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fabric") as c:
        r = await c.get("/fabric/orders", headers={"Authorization": "Bearer k-acme"})
        assert r.status_code == 200 and r.json()["data"]["rows"] == [["acme", "a1"]]
        assert r.headers["cache-control"] == "private"
        r = await c.get("/fabric/orders", headers={"Authorization": "Bearer k-beta"})
        assert r.json()["data"]["rows"] == []
        r = await c.get("/fabric/orders", headers={"Authorization": "Bearer nobody"})
        assert r.status_code == 400 and r.json()["error"] == "this product is per tenant and the request names no tenant"


async def test_a_source_change_refreshes_every_tenants_value(db, tmp_path):
    from dataflow.fabric import FileSourceConfig

    (tmp_path / "rates.json").write_text('{"eur": 1}')
    src = db.source("rates", FileSourceConfig(path=str(tmp_path / "rates.json"), watch=False))

    @db.product("priced", depends_on=["Order", "rates"], write_debounce=0)
    async def priced(ctx):
        rate = (await ctx.source("rates").read())["eur"]
        return {"tenant": ctx.tenant_id, "rate": rate, "n": await ctx.express.count("Order")}

    with pytest.raises(ConfigurationError, match="tenant_extractor must be"):
        await db.start(port=0, tenant_extractor="x-tenant")
    rt = await db.start(port=0, tenant_extractor=extractor)
    for t in ("acme", "beta"):
        async with client(rt, t) as c:
            assert (await c.get("/fabric/priced")).json()["data"] == {"tenant": t, "rate": 1, "n": 0}
    (tmp_path / "rates.json").write_text('{"eur": 2}')
    assert await rt.poll_source(src) is True
    for t in ("acme", "beta"):
        await until(lambda t=t: rt.tenants.slots["priced"][t].entry.value == {"tenant": t, "rate": 2, "n": 0})
        async with client(rt, t) as c:
            assert (await c.get("/fabric/priced")).json()["data"] == {"tenant": t, "rate": 2, "n": 0}


async def test_cached_tenants_are_bounded_and_evicted_ones_recompute(db):
    define(db, max_entries=2)
    for t in ("t1", "t2", "t3"):
        await _write(db, t, t)
    rt = await db.start(port=0, tenant_extractor=extractor)
    for t in ("t1", "t2", "t3", "t1"):
        async with client(rt, t) as c:
            assert (await c.get("/fabric/orders")).json()["data"]["rows"] == [[t, t]]
    assert list(rt.tenants.slots["orders"]) == ["t3", "t1"] and rt.computations["orders"] == 4


async def test_event_streams_are_per_tenant_with_ids_of_their_own(db):
    define(db)
    rt = await db.start(port=0, tenant_extractor=extractor)
    async with client(rt, "acme") as a, client(rt, "beta") as b, client(rt) as anon:
        await a.get("/fabric/summary"), await b.get("/fabric/summary")
        await until(lambda: "everyone" in rt.entries)
        ready_a, ready_s = asyncio.Event(), asyncio.Event()
        events_a, events_s = [], []
        readers = [asyncio.create_task(_collect(a, events_a, ready_a)),      # acme's stream
                   asyncio.create_task(_collect(anon, events_s, ready_s))]   # the shared stream
        await ready_a.wait(), await ready_s.wait()
        shared_before = rt.computations["everyone"]
        for _ in range(3):  # beta's refreshes never reach acme's stream
            await _write(db, "beta", "b")
            await until(lambda: rt.tenants.slots["orders"]["beta"].pending is False)
        await _write(db, "acme", "a")

        def settled():
            shared = rt.computations["everyone"] - shared_before
            return (rt.entries["everyone"].value == 4 and not rt._timers and shared >= 1
                    and len(events_s) == shared
                    and sum(e["data"]["product"] == "everyone" for e in events_a) == shared
                    and any(e["data"]["product"] == "summary" for e in events_a))

        try:
            await until(settled, timeout=20)
        finally:
            for r in readers:
                r.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    assert {(e["data"]["product"], e["data"].get("tenant")) for e in events_a} <= {
        ("orders", "acme"), ("summary", "acme"), ("everyone", None)}
    assert all(e["data"].get("tenant") is None for e in events_s)
    assert {e["data"]["product"] for e in events_s} == {"everyone"}
    ids = [int(e["id"]) for e in events_a]
    assert ids == list(range(ids[0], ids[0] + len(ids)))   # no gaps: beta's events are not counted


@pytest.mark.parametrize("seed", [20, 21])
async def test_random_interleaving_of_tenants_never_crosses(any_db, seed):
    """Four tenants at once, each a random sequence of reads (every endpoint), writes (express
    and HTTP), updates and deletes of its own rows, with an event stream open: every answer
    holds the asking tenant's rows only, and once quiet every value equals the tenant's rows."""
    define(any_db, max_entries=3)  # fewer slots than tenants: eviction and recompute run too
    tenants = ["t0", "t1", "t2", "t3"]
    rt = await any_db.start(port=0, tenant_extractor=extractor, enable_writes=True)
    known = {t: set() for t in tenants}      # labels a tenant ever wrote
    bad: list = []

    def check(t, rows, where):
        for tid, label in rows:
            if tid != t or label.split("-")[0] != t:
                bad.append((t, where, tid, label))

    async def tenant_run(t, rng):
        async with client(rt, t) as c:
            ready, got = asyncio.Event(), []
            events = asyncio.create_task(_collect(c, got, ready))
            await ready.wait()
            mine = []
            for step in range(40):
                op = rng.choice(["orders", "summary", "search", "live", "batch", "write", "http_write",
                                 "update", "delete"])
                if op in ("orders", "live"):
                    d = (await c.get(f"/fabric/{op}")).json()["data"]
                    assert d["tenant"] == t
                    check(t, d["rows"], op)
                elif op == "summary":
                    d = (await c.get("/fabric/summary")).json()["data"]
                    assert d["tenant"] == d["of"] == t
                elif op == "search":
                    d = (await c.get("/fabric/search", params={"prefix": rng.choice(["", "t0", "t1", t])})).json()
                    check(t, d["data"]["rows"], op)
                elif op == "batch":
                    d = (await c.get("/fabric/_batch", params={"products": "orders,live,search"})).json()["data"]
                    for n in ("orders", "live", "search"):
                        check(t, d[n]["data"]["rows"], "batch")
                elif op == "write":
                    label = f"{t}-{step}"
                    known[t].add(label)
                    mine.append((await _write(any_db, t, label))["id"])
                elif op == "http_write":
                    label = f"{t}-h{step}"
                    known[t].add(label)
                    r = await c.post("/fabric/Order/write", json={"operation": "create", "data": {"label": label}})
                    assert r.status_code == 201
                    mine.append(r.json()["data"]["id"])
                elif op == "update" and mine:
                    label = f"{t}-u{step}"
                    known[t].add(label)
                    async with any_db.tenant(t):
                        await any_db.express.update("Order", rng.choice(mine), {"label": label})
                elif op == "delete" and mine:
                    victim = mine.pop(rng.randrange(len(mine)))
                    r = await c.post("/fabric/Order/write", json={"operation": "delete", "id": victim})
                    assert r.status_code == 200
                await asyncio.sleep(0)
            await asyncio.sleep(0.2)
            events.cancel()
            await asyncio.gather(events, return_exceptions=True)
        streams[t] = got
        return mine

    streams: dict = {}
    rng = random.Random(seed)
    await asyncio.gather(*(tenant_run(t, random.Random(rng.random())) for t in tenants))
    assert bad == []
    for t, got in streams.items():
        assert got, t
        assert all(e["data"].get("tenant") in (t, None) for e in got), t
        assert all(e["data"]["product"] == "everyone" for e in got if e["data"].get("tenant") is None)
        ids = [int(e["id"]) for e in got]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
    # quiet: every tenant's values equal its rows
    for t in tenants:
        expected = _rows(await _list(any_db, t))
        async with client(rt, t) as c:
            async def settled(c=c, expected=expected):
                d = (await c.get("/fabric/orders")).json()["data"]
                return d["rows"] == expected
            await until(settled, timeout=20, step=0.05)
            assert (await c.get("/fabric/live")).json()["data"]["rows"] == expected
            assert (await c.get("/fabric/search")).json()["data"]["rows"] == expected
    async with any_db.all_tenants():
        total = await any_db.express.count("Order")
    await until(lambda: rt.entries["everyone"].value == total, timeout=20)
