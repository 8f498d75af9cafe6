"""Cron schedules on materialized products: expressions checked at registration, the fire times
of a minute-resolution expression on an injected clock (no waiting for wall-clock minutes), and a
seconds-resolution schedule refreshing a real runtime (per-tenant values too) until ``db.stop()``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

pytest.importorskip("croniter")
httpx = pytest.importorskip("httpx")

from dataflow import DataFlow  # noqa: E402
from dataflow.errors import ConfigurationError  # noqa: E402
from dataflow.fabric.schedule import Schedule, run_schedule  # noqa: E402

from .fabric_helpers import until  # noqa: E402


def _ts(*a) -> float:
    return datetime(*a, tzinfo=timezone.utc).timestamp()


@pytest.fixture
async def db(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/schedule.db", multi_tenant=True)

    @db.model
    class Order:
        label: str

    await db.initialize()
    yield db
    await db.stop()
    await db.close_async()


def test_bad_expressions_are_refused_at_registration(db):
    async def f(ctx):
        return 1

    for bad in ("every 5 minutes", "* * * *", "60 * * * *", "*/0 * * * *", "", 5, "* * 31 2 * * * *"):
        with pytest.raises(ConfigurationError, match="schedule"):
            db.product("p", schedule=bad)(f)
    with pytest.raises(ConfigurationError, match="materialized"):
        db.product("p", mode="virtual", schedule="* * * * *")(f)
    db.product("p", schedule="  */5   * * * * ")(f)
    assert db._fabric.products["p"].schedule == "*/5 * * * *"


async def test_minute_schedule_on_an_injected_clock():
    """``*/5 * * * *`` from 00:03: ticks at 00:05, 00:10, 00:15; a refresh that takes longer than
    the period skips the ticks it overran instead of piling them up."""
    now = [_ts(2026, 1, 1, 0, 3, 0)]
    ticks, sleeps = [], []

    async def sleep(s):
        sleeps.append(s)
        now[0] += s

    async def refresh(name):
        ticks.append((name, now[0]))
        if len(ticks) == 2:
            now[0] += 11 * 60        # this refresh ran for 11 minutes: 00:15 and 00:20 are missed
        if len(ticks) == 4:
            raise RuntimeError("a failed refresh does not end the schedule")
        if len(ticks) == 5:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await run_schedule("p", "*/5 * * * *", refresh, clock=lambda: now[0], sleep=sleep)
    assert [t for _, t in ticks] == [_ts(2026, 1, 1, 0, 5), _ts(2026, 1, 1, 0, 10), _ts(2026, 1, 1, 0, 25),
                                     _ts(2026, 1, 1, 0, 30), _ts(2026, 1, 1, 0, 35)]
    assert sleeps[0] == 120 and all(s > 0 for s in sleeps)
    assert Schedule("0 12 * * 1").next_after(_ts(2026, 1, 1)) == _ts(2026, 1, 5, 12)  # a Monday


async def test_seconds_schedule_refreshes_until_stop(db):
    @db.product("clock", schedule="* * * * * *", write_debounce=60)   # every second (sixth field)
    async def clock(ctx):
        return "tick"

    @db.product("mine", depends_on=["Order"], schedule="* * * * * *")
    async def mine(ctx):
        return {"tenant": ctx.tenant_id, "n": await ctx.express.count("Order")}

    rt = await db.start(port=0, tenant_extractor=lambda r: r.headers.get("x-tenant"))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}", timeout=10) as c:
        for t in ("a", "b"):
            assert (await c.get("/fabric/mine", headers={"x-tenant": t})).json()["data"] == {"tenant": t, "n": 0}

        def scheduled(name, tenant=None):
            return [t for t in rt.traces._by_product.get(name, ()) if t.trigger == "schedule" and t.tenant == tenant]

        await until(lambda: len(scheduled("clock")) >= 2, timeout=15)
        # every cached tenant's value is refreshed on each tick, each in its own tenant
        await until(lambda: len(scheduled("mine", "a")) >= 2 and len(scheduled("mine", "b")) >= 2, timeout=15)
        async with db.tenant("a"):
            await db.express.create("Order", {"label": "x"})
        await until(lambda: rt.tenants.slots["mine"]["a"].entry.value == {"tenant": "a", "n": 1})
        assert rt.tenants.slots["mine"]["b"].entry.value == {"tenant": "b", "n": 0}
        ticks = [t.started for t in scheduled("clock")]
        assert all(b - a > 0.5 for a, b in zip(ticks, ticks[1:]))   # about one a second, not a busy loop
    await db.stop()
    # the schedule tasks are gone with the runtime: nothing fires after stop
    assert not [t for t in asyncio.all_tasks() if "run_schedule" in repr(t.get_coro())]
