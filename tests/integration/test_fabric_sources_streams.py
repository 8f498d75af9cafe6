"""Stream sources against real counterparts on loopback: a ``websockets`` server started by the
test, the local Redis (a Stream read with XREAD from the last id), and Kafka when
``DATAFLOW_TEST_KAFKA_URL`` names a broker.  Messages arriving refresh the products depending on
the source (once per burst); a lost connection is re-established; the breaker and the SSRF guard
apply to the connection."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

websockets = pytest.importorskip("websockets")

from websockets.asyncio.server import serve  # noqa: E402

from dataflow import DataFlow  # noqa: E402
from dataflow.errors import SourceError, SourceRefusedError  # noqa: E402
from dataflow.fabric import CircuitBreakerConfig, StalenessPolicy, StreamSourceConfig  # noqa: E402
from dataflow.fabric.sources import ssrf  # noqa: E402

from .conftest import IN_CI  # noqa: E402
from .fabric_helpers import until  # noqa: E402

REDIS_URL = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
KAFKA_URL = os.environ.get("DATAFLOW_TEST_KAFKA_URL")


@pytest.fixture
async def db(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/streams.db")
    yield db
    await db.stop()
    await db.close_async()


class WsServer:
    """A websockets server: every client receives what ``send`` broadcasts; ``/old`` redirects
    to ``redirect_to``; ``kick()`` closes every connection."""

    def __init__(self):
        self.clients: set = set()
        self.connections = 0
        self.redirect_to = None
        self.server = None

    async def handler(self, ws):
        self.clients.add(ws)
        self.connections += 1
        try:
            await ws.wait_closed()
        finally:
            self.clients.discard(ws)

    def process_request(self, connection, request):
        if request.path == "/old" and self.redirect_to:
            response = connection.respond(302, "moved\n")
            response.headers["Location"] = self.redirect_to
            return response
        return None

    async def __aenter__(self):
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.process_request)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def send(self, *messages):
        for ws in list(self.clients):
            for m in messages:
                await ws.send(m)

    async def kick(self):
        for ws in list(self.clients):
            await ws.close()


async def test_websocket_messages_refresh_dependents(db):
    async with WsServer() as server:
        ticks = db.source("ticks", StreamSourceConfig(url=server.url + "/feed", buffer_size=3, allow_private=True))

        @db.product("last_ticks", depends_on=["ticks"])
        async def last_ticks(ctx):
            return await ctx.source("ticks").read()

        rt = await db.start(port=0)
        await until(lambda: "last_ticks" in rt.entries and server.clients)
        assert rt.entries["last_ticks"].value == []
        await server.send(json.dumps({"p": 1}), "plain text", b'{"p": 3}')
        await until(lambda: rt.entries["last_ticks"].value == [{"p": 1}, "plain text", {"p": 3}])
        n = rt.computations["last_ticks"]
        assert n <= 4  # at most one refresh per message, usually one per burst
        await server.send(*(json.dumps({"p": i}) for i in range(10, 15)))
        await until(lambda: rt.entries["last_ticks"].value == [{"p": 12}, {"p": 13}, {"p": 14}])  # buffer_size=3
        assert await ticks.fetch("latest") == {"p": 14}
        assert ticks.received == 8 and ticks.snapshot()["connected"] is True

        # the server drops the connection: the reader reconnects and goes on
        before = server.connections  # the start check's connection, and the reader's
        await server.kick()
        await until(lambda: server.connections == before + 1 and server.clients, timeout=10)
        await until(lambda: ticks.connected)
        await server.send(json.dumps({"p": 99}))
        await until(lambda: rt.entries["last_ticks"].value[-1] == {"p": 99})
        assert rt.health()["sources"]["ticks"]["healthy"] is True
        reader = ticks._task
        await db.stop()
        assert not ticks.connected and ticks._task is None and reader.done()
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_websocket_down_breaker_and_stale(db):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = db.source("down", StreamSourceConfig(
        url=f"ws://127.0.0.1:{port}/", allow_private=True, staleness=StalenessPolicy(on_source_error="error"),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=2, probe_interval=60)))
    with pytest.raises(SourceError, match="not connected"):
        await src.fetch()
    await until(lambda: src.breaker.state == "open", timeout=10)
    assert src.stats["errors"] >= 2 and not src.healthy
    errors = src.stats["errors"]
    await asyncio.sleep(0.3)  # open for probe_interval: the reader does not hammer the port
    assert src.stats["errors"] == errors
    await src.stop()


async def test_websocket_ssrf_pinned_redirects_checked(db):
    async with WsServer() as server:
        # guarded: a name resolved by a stub to 127.0.0.1, which the test hook calls public
        src = db.source("feed", StreamSourceConfig(url=f"ws://feed.test:{server.port}/old"))
        src.guard.resolver = _stub({"feed.test": ["127.0.0.1"], "private.test": ["10.9.8.7"]})
        src.guard.classify = lambda ip: None if str(ip) == "127.0.0.1" else ssrf.classify(ip)
        server.redirect_to = f"ws://feed.test:{server.port}/new"
        assert await src.fetch() == []
        assert src.guard.connections == [("feed.test", "127.0.0.1"), ("feed.test", "127.0.0.1")]  # both hops
        await server.send("hello")
        await until(lambda: src.buffer and src.buffer[-1] == "hello")
        await src.stop()

        for target, words in ((f"ws://private.test:{server.port}/", "private"),
                              (f"ws://169.254.169.254:{server.port}/", "metadata"),
                              (f"ws://[::ffff:127.0.0.1]:{server.port}/", "IPv4-mapped")):
            server.redirect_to = target
            bad = db.source(f"bad{len(db._fabric_registry().sources)}", StreamSourceConfig(
                url=f"ws://feed.test:{server.port}/old", staleness=StalenessPolicy(on_source_error="error")))
            bad.guard.resolver, bad.guard.classify = src.guard.resolver, src.guard.classify
            with pytest.raises(SourceError, match=words):
                await bad.fetch()
            await bad.stop()
        unhooked = db.source("plain", StreamSourceConfig(url=server.url))
        with pytest.raises(SourceRefusedError, match="loopback"):
            await unhooked.check()


def _stub(table):
    async def resolve(host, port):
        return table[host]
    return resolve


# -- Redis Streams ----------------------------------------------------------------------------------------
def _redis_or_skip():
    u = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((u.hostname, u.port or 6379), timeout=1):
            return
    except OSError:
        if IN_CI:
            pytest.fail(f"Redis not reachable at {REDIS_URL} (CI=true)")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


@pytest.fixture
async def redis():
    _redis_or_skip()
    import redis.asyncio as aioredis
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    key = f"dataflow-test-stream-{uuid.uuid4().hex[:8]}"
    yield client, key
    await client.delete(key)
    await client.aclose()


async def test_redis_stream_xread_from_last_id(db, redis):
    client, key = redis
    for i in range(3):
        await client.xadd(key, {"n": str(i)})
    events = db.source("events", StreamSourceConfig(url=REDIS_URL, topic=key, buffer_size=4, allow_private=True))

    @db.product("recent", depends_on=["events"])
    async def recent(ctx):
        return [m["fields"]["n"] for m in await ctx.source("events").read()]

    rt = await db.start(port=0)
    await until(lambda: rt.entries.get("recent") is not None and rt.entries["recent"].value == ["0", "1", "2"])
    for i in range(3, 6):
        await client.xadd(key, {"n": str(i)})
    await until(lambda: rt.entries["recent"].value == ["2", "3", "4", "5"])  # the newest 4
    last = events.last_id
    assert last == (await client.xrevrange(key, count=1))[0][0]

    # a reconnect goes on from the last id: nothing lost, nothing twice
    events._task.cancel()
    await until(lambda: events._task.done())
    await client.xadd(key, {"n": "6"})
    events.start(rt.loop)
    await until(lambda: rt.entries["recent"].value == ["3", "4", "5", "6"])
    assert events.received == 7
    await db.stop()


async def test_redis_stream_guarded_and_refused(db, redis):
    _, key = redis
    src = db.source("guarded", StreamSourceConfig(url=REDIS_URL, topic=key))
    with pytest.raises(SourceRefusedError, match="loopback"):
        await src.check()
    pinned = db.source("pinned", StreamSourceConfig(url=f"redis://redis.test:{urlsplit(REDIS_URL).port or 6379}/0",
                                                    topic=key))
    pinned.guard.resolver = _stub({"redis.test": ["127.0.0.1"]})
    pinned.guard.classify = lambda ip: None if str(ip) == "127.0.0.1" else ssrf.classify(ip)
    await pinned.check()
    assert pinned.guard.connections == [("redis.test", "127.0.0.1")]


async def test_kafka_unreachable_and_guarded(db):
    """Without a broker: a refused bootstrap counts against the breaker; the guard refuses a
    loopback bootstrap host unless allow_private."""
    pytest.importorskip("aiokafka")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = db.source("kdown", StreamSourceConfig(url=f"kafka://127.0.0.1:{port}", topic="t", allow_private=True,
                                                 staleness=StalenessPolicy(on_source_error="error")))
    with pytest.raises(SourceError, match="not connected.*Kafka"):
        await down.fetch()
    assert down.stats["errors"] >= 1
    await down.stop()
    guarded = db.source("kguard", StreamSourceConfig(url=f"kafka://127.0.0.1:{port}", topic="t"))
    with pytest.raises(SourceRefusedError, match="loopback"):
        await guarded.check()


# -- Kafka (only with a broker) ------------------------------------------------------------------------------
@pytest.mark.skipif(not KAFKA_URL, reason="DATAFLOW_TEST_KAFKA_URL is not set (a Kafka broker, e.g. kafka://127.0.0.1:9092)")
async def test_kafka_topic(db):
    from aiokafka import AIOKafkaProducer

    topic = f"dataflow-test-{uuid.uuid4().hex[:8]}"
    u = urlsplit(KAFKA_URL)
    producer = AIOKafkaProducer(bootstrap_servers=f"{u.hostname}:{u.port or 9092}")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"n": 1}')
        src = db.source("k", StreamSourceConfig(url=KAFKA_URL, topic=topic, allow_private=True))

        @db.product("ks", depends_on=["k"])
        async def ks(ctx):
            return [m["value"] for m in await ctx.source("k").read()]

        rt = await db.start(port=0)
        await until(lambda: rt.entries.get("ks") is not None and rt.entries["ks"].value == [{"n": 1}], timeout=30)
        await producer.send_and_wait(topic, b"two")
        await until(lambda: rt.entries["ks"].value == [{"n": 1}, "two"], timeout=30)
        assert src.received == 2
    finally:
        await producer.stop()
