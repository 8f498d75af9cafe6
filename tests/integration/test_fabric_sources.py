"""Fabric sources against real counterparts on loopback: a JSON API with ETags (304s counted:
an unchanged source costs no product computation), auth read from the environment per request,
retries with backoff, timeouts, the circuit breaker and stale data; files in CSV, JSON and JSONL
changed on disk and picked up by the watchdog watcher."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("httpx")
pytest.importorskip("watchdog")

from dataflow import DataFlow  # noqa: E402
from dataflow.errors import FabricError, SourceError  # noqa: E402
from dataflow.fabric import (BearerAuth, CircuitBreakerConfig, FileSourceConfig,  # noqa: E402
                             RestSourceConfig, StalenessPolicy)

from .fabric_helpers import ApiServer, until  # noqa: E402


@pytest.fixture
async def db(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/fabric.db")
    yield db
    await db.stop()
    await db.close_async()


@pytest.fixture
def api():
    with ApiServer() as api:
        api.set("/v1/deals", [{"id": 1}, {"id": 2}])
        yield api


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
async def test_unchanged_rest_source_costs_a_304_and_no_refresh(db, api, validator, monkeypatch):
    api.use_last_modified = validator == "last_modified"
    monkeypatch.setenv("CRM_TOKEN", "t1")
    crm = db.source("crm", RestSourceConfig(url=api.url, auth=BearerAuth(token_env="CRM_TOKEN"),
                                            endpoints={"deals": "/v1/deals"}, poll_interval=3600,
                                            allow_private=True))

    @db.product("dashboard", depends_on=["crm"])
    async def dashboard(ctx):
        return {"deals": len(await ctx.source("crm").fetch("deals"))}

    rt = await db.start(port=0)
    await until(lambda: "dashboard" in rt.entries)
    assert rt.entries["dashboard"].value == {"deals": 2} and rt.computations["dashboard"] == 1
    for _ in range(5):  # unchanged: each poll is one conditional request answered 304
        assert await rt.poll_source(crm) is False
    assert api.statuses[304] == 5 and rt.computations["dashboard"] == 1
    assert crm.stats["not_modified"] == 5
    metrics = rt.metrics.text().decode()
    assert 'fabric_source_requests_total{result="not_modified",source="crm"} 5.0' in metrics

    # rotated token: read from the environment on the next request
    monkeypatch.setenv("CRM_TOKEN", "t2")
    api.set("/v1/deals", [{"id": 1}, {"id": 2}, {"id": 3}])
    assert await rt.poll_source(crm) is True
    await until(lambda: rt.entries["dashboard"].value == {"deals": 3})
    assert rt.computations["dashboard"] == 2
    # the refresh the poll triggered used the data the poll fetched: no second request
    assert api.statuses[200] == 3  # start check, first fetch, the changed poll
    assert api.auth[-1] == "Bearer t2" and "Bearer t1" in api.auth
    assert crm.last_successful_data("deals") == [{"id": 1}, {"id": 2}, {"id": 3}]


async def test_poll_loop_refreshes_on_change(db, api):
    db.source("crm", RestSourceConfig(url=api.url, poll_interval=0.05, allow_private=True))

    @db.product("deals", depends_on=["crm"])
    async def deals(ctx):
        return await ctx.source("crm").fetch("/v1/deals")

    rt = await db.start(port=0)
    await until(lambda: "deals" in rt.entries)
    await asyncio.sleep(0.3)
    assert rt.computations["deals"] == 1 and api.statuses[304] >= 2
    api.set("/v1/deals", [])
    await until(lambda: rt.entries["deals"].value == [])


async def test_retries_with_backoff_then_breaker_and_stale_data(db, api):
    crm = db.source("crm", RestSourceConfig(
        url=api.url, retries=2, backoff=0.01, allow_private=True, poll_interval=3600,
        circuit_breaker=CircuitBreakerConfig(failure_threshold=2, probe_interval=0.2),
        staleness=StalenessPolicy(on_source_error="serve_stale")))
    api.fail_next = 2  # two 503s, then the answer: retried within one fetch
    assert await crm.fetch("/v1/deals") == [{"id": 1}, {"id": 2}]
    assert api.statuses[503] == 2 and crm.healthy

    api.fail_next = 100
    assert await crm.fetch("/v1/deals") == [{"id": 1}, {"id": 2}]  # stale data served
    assert api.statuses[503] == 5  # 1 + 2 retries
    await crm.fetch("/v1/deals")
    assert crm.breaker.state == "open" and not crm.healthy
    before = sum(api.statuses.values())
    assert await crm.fetch("/v1/deals") == [{"id": 1}, {"id": 2}]  # open: no request at all
    assert sum(api.statuses.values()) == before
    with pytest.raises(SourceError, match="circuit open"):
        await crm.fetch("/v1/other")  # nothing stale to serve

    api.fail_next = 0
    await asyncio.sleep(0.25)  # probe_interval: one probe closes it
    assert await crm.fetch("/v1/deals") == [{"id": 1}, {"id": 2}] and crm.breaker.state == "closed"
    await crm.stop()


async def test_timeouts_and_fail_fast(db, api):
    slow = db.source("slow", RestSourceConfig(url=api.url, timeout=0.1, retries=0, allow_private=True,
                                              staleness=StalenessPolicy(on_source_error="error")))
    api.delay = 0.3
    with pytest.raises(SourceError, match="Timeout"):
        await slow.fetch("/v1/deals")
    api.delay = 0
    await slow.stop()

    db.source("down", RestSourceConfig(url="http://127.0.0.1:9", retries=0, allow_private=True))
    with pytest.raises(FabricError, match="down"):
        await db.start(port=0)
    rt = await db.start(port=0, fail_fast=False)
    down = rt.health()["sources"]["down"]["circuit"]
    assert down["failures"] == 2 and "ConnectError" in down["last_error"]  # one per start


async def test_file_sources_csv_json_jsonl_watched(db, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("id,name\n1,ada\n2,bob\n")
    (data / "b.jsonl").write_text('{"x": 1}\n{"x": 2}\n')
    (data / "ignored.txt").write_text("not matched")
    single = tmp_path / "rates.json"
    single.write_text(json.dumps({"eur": 1.0}))
    files = db.source("files", FileSourceConfig(directory=str(data), pattern="*.json*"))
    db.source("rates", FileSourceConfig(path=str(single)))
    db.source("csvs", FileSourceConfig(directory=str(data), pattern="*.csv"))

    @db.product("summary", depends_on=["files", "rates", "csvs"])
    async def summary(ctx):
        return {"files": await ctx.source("files").read(), "rates": await ctx.source("rates").read(),
                "csv": await ctx.source("csvs").fetch("a.csv")}

    rt = await db.start(port=0)
    await until(lambda: "summary" in rt.entries)
    v = rt.entries["summary"].value
    assert v["files"] == {"b.jsonl": [{"x": 1}, {"x": 2}]}
    assert v["rates"] == {"eur": 1.0}
    assert v["csv"] == [{"id": "1", "name": "ada"}, {"id": "2", "name": "bob"}]
    assert files.names() == ["b.jsonl"]

    single.write_text(json.dumps({"eur": 0.9}))
    await until(lambda: rt.entries["summary"].value["rates"] == {"eur": 0.9})
    (data / "a.csv").write_text("id,name\n1,ada\n")
    await until(lambda: rt.entries["summary"].value["csv"] == [{"id": "1", "name": "ada"}])
    n = rt.computations["summary"]
    single.write_text(json.dumps({"eur": 0.9}))  # rewritten, same content: no refresh
    await asyncio.sleep(0.4)
    assert rt.computations["summary"] == n

    with pytest.raises(SourceError):
        await db.source("csvs").fetch("../rates.json")
    with pytest.raises(SourceError):
        await db.source("csvs").fetch("b.jsonl")  # not matching the pattern
