"""The seed README's Data Fabric Engine section, run as written on PostgreSQL, SQLite and
MariaDB -- only its URLs changed: the database is the test server, ``https://api.example.com`` is a
JSON API started here on loopback, port 8000 is a free port.  The models it names (User, Order,
Product, Sensor) come from earlier sections of that README; they get per-test table names."""

from __future__ import annotations

import pytest

httpx = pytest.importorskip("httpx")

from .fabric_helpers import ApiServer, until  # noqa: E402


async def test_seed_fabric_section(db, tables, monkeypatch, backend):
    monkeypatch.setenv("CRM_API_TOKEN", "seed-token")
    with ApiServer() as api:
        api.set("/deals", [{"id": 1, "amount": 10}, {"id": 2, "amount": 20}])

        @db.model
        class User:
            name: str
            email: str
            __tablename__ = tables("users")

        @db.model
        class Order:
            total: float = 0.0
            __tablename__ = tables("orders")

        @db.model
        class Product:
            name: str
            __tablename__ = tables("products")

        @db.model
        class Sensor:
            active: bool = True
            __tablename__ = tables("sensors")

        # ---- the seed README, "Core API" (URLs replaced) ----
        from dataflow.fabric import RestSourceConfig, BearerAuth, StalenessPolicy  # noqa: F401

        db.source("crm", RestSourceConfig(
            url=api.url, allow_private=True,  # the test API is on loopback (SSRF guard off, explicitly)
            auth=BearerAuth(token_env="CRM_API_TOKEN"),
            poll_interval=60,
        ))

        @db.product("dashboard", depends_on=["User", "crm"])
        async def dashboard(ctx):
            users = await ctx.express.list("User")
            deals = await ctx.source("crm").fetch("deals")
            return {"users": len(users), "deals": len(deals)}

        # ---- "Product Modes" ----
        @db.product("stats", mode="materialized", depends_on=["Order"])
        async def stats(ctx):
            return await ctx.express.count("Order")

        @db.product("search", mode="parameterized", depends_on=["Product"])
        async def search(ctx, q: str = "", limit: int = 10):
            return await ctx.express.list("Product", {"name": {"$like": f"%{q}%"}}, limit=limit)

        @db.product("live", mode="virtual", depends_on=["Sensor"])
        async def live(ctx):
            return await ctx.express.list("Sensor", {"active": True})

        # ---- "db.start() Parameters" (port 8000 -> a free port) ----
        rt = await db.start(
            fail_fast=True,
            dev_mode=False,
            nexus=None,
            coordination=None,
            host="127.0.0.1",
            port=0,
            enable_writes=False,
            tenant_extractor=None,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}") as c:
                await until(lambda: {"dashboard", "stats"} <= set(rt.entries))
                assert (await c.get("/fabric/dashboard")).json() == {"data": {"users": 0, "deals": 2}}
                assert api.auth[-1] == "Bearer seed-token"
                await db.express.create("User", {"name": "Ada", "email": "ada@x.io"})
                await db.express.bulk_create("Product", [{"name": n} for n in ("lamp", "clamp", "desk")])
                await db.express.create("Sensor", {"active": False})
                await db.express.create("Order", {"total": 3.5})
                await until(lambda: rt.entries["dashboard"].value == {"users": 1, "deals": 2}
                            and rt.entries["stats"].value == 1)
                r = await c.get("/fabric/search", params={"q": "amp", "limit": "5"})
                assert sorted(p["name"] for p in r.json()["data"]) == ["clamp", "lamp"]
                assert (await c.get("/fabric/live")).json() == {"data": []}
                health = (await c.get("/fabric/_health")).json()
                assert health["status"] == "healthy" and health["sources"]["crm"]["circuit"]["state"] == "closed"
        finally:
            await db.stop()
