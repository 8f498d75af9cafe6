"""The fabric's configuration and registration rules (no I/O): config validation, source and
product names, unknown dependencies and cycles refused at registration, parameter binding."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

from dataflow import DataFlow  # noqa: E402
from dataflow.errors import ConfigurationError, UnsupportedFeatureError, ValidationError  # noqa: E402
from dataflow.fabric import (ApiKeyAuth, BasicAuth, BearerAuth, CircuitBreakerConfig,  # noqa: E402
                             DatabaseSourceConfig, FileSourceConfig, RestSourceConfig, StalenessPolicy,
                             WebhookConfig)


@pytest.fixture
def db():
    db = DataFlow("sqlite:///:memory:")

    @db.model
    class User:
        name: str

    yield db
    db.close()


@pytest.mark.parametrize("make", [
    lambda: RestSourceConfig(url="ftp://x"),
    lambda: RestSourceConfig(url="https://x", poll_interval=0),
    lambda: RestSourceConfig(url="https://x", timeout=-1),
    lambda: RestSourceConfig(url="https://x", retries=-1),
    lambda: RestSourceConfig(url="https://x", auth="token"),
    lambda: RestSourceConfig(url="https://x", endpoints={"a": 1}),
    lambda: BearerAuth(token_env="not a var"),
    lambda: ApiKeyAuth(key_env="K", header="bad header"),
    lambda: StalenessPolicy(on_stale="maybe"),
    lambda: StalenessPolicy(max_age=0),
    lambda: CircuitBreakerConfig(failure_threshold=0),
    lambda: WebhookConfig(path="hook", secret_env="S"),
    lambda: FileSourceConfig(),
    lambda: FileSourceConfig(path="a.csv", directory="d"),
    lambda: FileSourceConfig(path="a.csv", format="xml"),
    lambda: DatabaseSourceConfig(url="sqlite:///x.db", read_only=False),
])
def test_bad_configs_are_refused(make):
    with pytest.raises(ConfigurationError):
        make()


def test_auth_reads_the_environment_per_call(monkeypatch):
    auth = BearerAuth(token_env="FAB_TOKEN")
    with pytest.raises(ConfigurationError, match="FAB_TOKEN"):
        auth.headers()
    monkeypatch.setenv("FAB_TOKEN", "one")
    assert auth.headers() == {"Authorization": "Bearer one"}
    monkeypatch.setenv("FAB_TOKEN", "two")
    assert auth.headers() == {"Authorization": "Bearer two"}
    monkeypatch.setenv("U", "ada")
    monkeypatch.setenv("P", "pw")
    assert BasicAuth("U", "P").headers() == {"Authorization": "Basic YWRhOnB3"}
    monkeypatch.setenv("K", "k1")
    assert ApiKeyAuth("K").headers() == {"X-API-Key": "k1"}


def test_source_names(db):
    cfg = RestSourceConfig(url="http://127.0.0.1:1", allow_private=True)
    handle = db.source("crm", cfg)
    assert db.source("crm") is handle and handle.healthy
    for bad in ("1x", "a b", "x" * 65, "", "User", "crm"):
        with pytest.raises(ValidationError):
            db.source(bad, cfg)
    with pytest.raises(ConfigurationError):
        db.source("other", {"url": "http://x"})
    with pytest.raises(ValidationError):
        db.source("unknown")


def test_every_source_kind_makes_a_handle(db):
    # their reads are tested against real counterparts in tests/integration/test_fabric_sources*.py
    from dataflow.fabric import CloudSourceConfig, StreamSourceConfig
    assert db.source("warehouse", DatabaseSourceConfig(url="sqlite:///x.db")).kind == "database"
    assert db.source("ws", StreamSourceConfig(url="wss://feed.example.com/x")).kind == "stream"
    assert db.source("rs", StreamSourceConfig(url="redis://cache.example.com/0", topic="events")).kind == "stream"
    assert db.source("s3", CloudSourceConfig(bucket="b")).kind == "cloud"
    with pytest.raises(ConfigurationError, match="topic"):
        StreamSourceConfig(url="redis://cache.example.com/0")


def test_products_refuse_unknown_dependencies_and_cycles(db):
    db.source("crm", RestSourceConfig(url="http://127.0.0.1:1", allow_private=True))

    @db.product("a", depends_on=["User", "crm"])
    async def a(ctx):
        return 1

    @db.product("b", depends_on=["a"])
    async def b(ctx):
        return 2

    with pytest.raises(ValidationError, match="Nope"):
        db.product("c", depends_on=["Nope"])(a)
    with pytest.raises(ValidationError, match="itself"):
        db.product("d", depends_on=["d"])(a)
    with pytest.raises(ValidationError, match="already"):
        db.product("a")(a)
    for bad in ("User", "crm", "_health", "metrics", "a/b"):
        with pytest.raises(ValidationError):
            db.product(bad)(a)
    fabric = db._fabric_registry()
    # a cycle through a product defined earlier (only possible by editing the graph) is found too
    assert fabric._cycle({"a": ("b",), "b": ("a",)}) in (["a", "b", "a"], ["b", "a", "b"])
    assert fabric.order() == ["a", "b"]
    assert fabric.dependents(["User"]) == ["a"] and fabric.dependents(["a"]) == ["b"]


def test_product_definitions_are_checked(db):
    async def f(ctx, q: str, limit: int = 10):
        return q

    with pytest.raises(ConfigurationError, match="mode"):
        db.product("x", mode="eager")(f)
    with pytest.raises(ConfigurationError, match="defaults"):
        db.product("x", mode="materialized")(f)
    with pytest.raises(ConfigurationError, match="str, int, float or bool"):
        db.product("x", mode="parameterized")(_listy)
    with pytest.raises(ConfigurationError, match="ttl"):
        db.product("x", mode="parameterized", ttl=-1)(f)
    with pytest.raises(ConfigurationError, match="not a cron expression"):  # croniter checks it here
        db.product("x", schedule="61 * * * *")(_plain)
    with pytest.raises(ConfigurationError, match="mode='materialized'"):
        db.product("x", mode="parameterized", schedule="* * * * *")(f)
    db.product("search", mode="parameterized")(f)
    p = db._fabric_registry().products["search"]
    assert p.bind({"q": "a", "limit": "3"}) == {"q": "a", "limit": 3}
    with pytest.raises(ValidationError, match="required"):
        p.bind({})
    with pytest.raises(ValidationError, match="must be int"):
        p.bind({"q": "a", "limit": "many"})
    with pytest.raises(ValidationError, match="unknown parameter"):
        p.bind({"q": "a", "offset": "1"})


async def _plain(ctx):
    return 1


async def _listy(ctx, ids: list = ()):
    return ids


def test_param_cache_ttl_and_bound():
    import asyncio
    from dataflow.fabric.products import ParamCache

    async def run():
        cache = ParamCache(ttl=0.05, max_entries=2)
        calls = []

        def compute(k):
            async def f():
                calls.append(k)
                await asyncio.sleep(0.01)
                return k
            return f

        # concurrent requests for one set share one computation
        out = await asyncio.gather(*(cache.get_or_compute(("a",), compute("a")) for _ in range(5)))
        assert calls == ["a"] and [e.value for e, _ in out] == ["a"] * 5
        await cache.get_or_compute(("b",), compute("b"))
        await cache.get_or_compute(("c",), compute("c"))
        assert len(cache) == 2 and cache.get(("a",)) is None  # least recently used went first
        await asyncio.sleep(0.06)
        assert cache.get(("c",)) is None  # expired
    asyncio.run(run())
