"""Circuit breaker and staleness policy of a source, against the loopback JSON API (its
``fail_next`` makes it answer 503): closed -> open -> half-open (one probe at a time) -> closed
after ``success_threshold`` probes, a failed probe reopening it; stale data served or refused as
the policy says; all of it visible in the handle's snapshot, ``/fabric/_health`` and
``/fabric/metrics``.  Time is a fake clock on the handle, so nothing waits for a timer."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dataflow import DataFlow
from dataflow.errors import SourceError
from dataflow.fabric import CircuitBreakerConfig, RestSourceConfig, StalenessPolicy

from .fabric_helpers import ApiServer, until


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def api():
    with ApiServer() as api:
        api.set("/v1/deals", [{"id": 1}])
        yield api


@pytest.fixture
async def db(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/breaker.db")
    yield db
    await db.stop()
    await db.close_async()


def _source(db, api, name="crm", **kw):
    src = db.source(name, RestSourceConfig(
        url=api.url, allow_private=True, retries=0, poll_interval=3600,
        circuit_breaker=kw.pop("breaker", CircuitBreakerConfig(failure_threshold=2, probe_interval=30,
                                                               success_threshold=2)),
        staleness=kw.pop("staleness", StalenessPolicy(max_age=60)), **kw))
    src.clock = Clock()
    return src


async def test_closed_open_half_open_closed(db, api):
    crm = _source(db, api)
    assert await crm.fetch("/v1/deals") == [{"id": 1}]
    api.fail_next = 1000
    for _ in range(2):  # two failures: open; stale data served meanwhile
        assert await crm.fetch("/v1/deals") == [{"id": 1}]
    snap = crm.snapshot()
    assert snap["circuit"]["state"] == "open" and snap["circuit"]["retry_in"] == 30
    assert "503" in snap["circuit"]["last_error"] and not snap["healthy"]
    sent = sum(api.statuses.values())
    assert await crm.fetch("/v1/deals") == [{"id": 1}]     # open: nothing sent
    assert await crm.poll() is False                       # a poll neither
    assert sum(api.statuses.values()) == sent
    assert crm.stats["short_circuited"] == 2 and crm.stats["stale_served"] == 3

    crm.clock.now += 29.9
    await crm.fetch("/v1/deals")
    assert sum(api.statuses.values()) == sent and crm.breaker.state == "open"
    crm.clock.now += 0.2                                   # probe_interval passed
    api.fail_next, api.delay = 0, 0.3
    # half-open: one probe at a time; the concurrent reads are answered from the last data
    results = await asyncio.gather(*(crm.fetch("/v1/deals") for _ in range(4)))
    assert results == [[{"id": 1}]] * 4
    assert sum(api.statuses.values()) == sent + 1
    assert crm.breaker.state == "half_open" and crm.snapshot()["circuit"]["successes"] == 1
    api.delay = 0
    await crm.fetch("/v1/deals")                           # the second successful probe closes it
    assert crm.breaker.state == "closed" and crm.healthy
    assert crm.snapshot()["circuit"]["last_error"] is None
    await crm.stop()


async def test_failed_probe_reopens_for_another_interval(db, api):
    crm = _source(db, api, breaker=CircuitBreakerConfig(failure_threshold=1, probe_interval=10))
    await crm.fetch("/v1/deals")
    api.fail_next = 1000
    await crm.fetch("/v1/deals")
    assert crm.breaker.state == "open"
    crm.clock.now += 10
    before = api.statuses[503]
    await crm.fetch("/v1/deals")                           # the probe fails
    assert api.statuses[503] == before + 1
    assert crm.breaker.state == "open" and crm.breaker.retry_in() == 10
    crm.clock.now += 10
    api.fail_next = 0
    await crm.fetch("/v1/deals")
    assert crm.breaker.state == "closed"                   # success_threshold=1
    await crm.stop()


async def test_staleness_policies(db, api):
    serve = _source(db, api, "serve", staleness=StalenessPolicy(max_age=60, on_stale="serve"))
    strict = _source(db, api, "strict", staleness=StalenessPolicy(max_age=60, on_stale="error"))
    error = _source(db, api, "error", staleness=StalenessPolicy(on_source_error="error"))
    for src in (serve, strict, error):
        await src.fetch("/v1/deals")
    api.fail_next = 1000
    with pytest.raises(SourceError, match="503"):          # on_source_error="error": never stale data
        await error.fetch("/v1/deals")
    assert await strict.fetch("/v1/deals") == [{"id": 1}]  # 0 s old: within max_age
    for src in (serve, strict):
        src.clock.now += 61
    assert await serve.fetch("/v1/deals") == [{"id": 1}]   # on_stale="serve": old data still served
    assert serve.snapshot()["stale"] is True and serve.snapshot()["data_age"] == 61
    with pytest.raises(SourceError, match="older than max_age=60"):
        await strict.fetch("/v1/deals")
    with pytest.raises(SourceError, match="503"):          # nothing ever read at that path
        await serve.fetch("/v1/other")

    # a 304 confirms the data: an unchanged source is not stale
    api.fail_next = 0
    serve.clock.now += 30                                  # its circuit opened: wait for the probe
    assert await serve.poll() is False and api.statuses[304] >= 1
    assert serve.snapshot()["stale"] is False and serve.snapshot()["data_age"] == 0
    for src in (serve, strict, error):
        await src.stop()


async def test_breaker_and_staleness_in_health_and_metrics(db, api):
    crm = _source(db, api, breaker=CircuitBreakerConfig(failure_threshold=1, probe_interval=30))

    @db.product("deals", depends_on=["crm"])
    async def deals(ctx):
        return await ctx.source("crm").fetch("/v1/deals")

    rt = await db.start(port=0)
    await until(lambda: "deals" in rt.entries)
    api.fail_next = 1000
    assert await rt.poll_source(crm) is False
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"{rt.url}/_health")).json()
        metrics = (await client.get(f"{rt.url}/metrics")).text
    src = health["sources"]["crm"]
    assert health["status"] == "unhealthy" and src["healthy"] is False
    assert src["circuit"]["state"] == "open" and src["circuit"]["failure_threshold"] == 1
    assert src["staleness"]["on_source_error"] == "serve_stale" and src["stats"]["errors"] == 1
    assert 'fabric_breaker_state{source="crm"} 2.0' in metrics
    assert 'fabric_source_errors_total{source="crm"} 1.0' in metrics
    assert 'fabric_breaker_transitions_total{source="crm",state="open"} 1.0' in metrics

    # the product still answers, from the last data, while the circuit is open
    await rt.refresh("deals")
    assert rt.entries["deals"].value == [{"id": 1}]
    assert 'fabric_source_stale_served_total{source="crm"} 1.0' in rt.metrics.text().decode()

    crm.clock.now += 30
    api.fail_next = 0
    await rt.poll_source(crm)                              # the poll is the probe: closed again
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"{rt.url}/_health")).json()
        metrics = (await client.get(f"{rt.url}/metrics")).text
    assert health["status"] == "healthy" and health["sources"]["crm"]["circuit"]["state"] == "closed"
    assert 'fabric_breaker_state{source="crm"} 0.0' in metrics
    assert 'fabric_breaker_transitions_total{source="crm",state="half_open"} 1.0' in metrics
    assert 'fabric_breaker_transitions_total{source="crm",state="closed"} 1.0' in metrics
