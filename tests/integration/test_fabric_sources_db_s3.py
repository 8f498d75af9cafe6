"""Database sources (another DataFlow URL, read-only) on a SQLite file and on PostgreSQL, and
S3-compatible object storage against moto's server on loopback: reads, change detection that
refreshes dependent products, writes refused, and the SSRF guard on the S3 client's connections."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from dataflow import DataFlow
from dataflow.errors import SourceError, SourceRefusedError
from dataflow.fabric import CloudSourceConfig, DatabaseSourceConfig
from dataflow.fabric.sources import ssrf

from .conftest import _backend_url
from .fabric_helpers import until


@pytest.fixture
async def db(tmp_path):
    db = DataFlow(f"sqlite:///{tmp_path}/main.db")
    yield db
    await db.stop()
    await db.close_async()


@pytest.fixture(params=["sqlite", "postgresql"])
async def other(request, tmp_path, tables):
    """Another database with an accounts table, written through its own DataFlow."""
    url = _backend_url(request.param, tmp_path / "other")  # skips (or fails in CI) without the server
    os.makedirs(tmp_path / "other", exist_ok=True)
    flow = DataFlow(url)
    table = tables("accounts")

    @flow.model
    class Account:
        name: str
        region: str = "eu"
        __tablename__ = table

    for name, region in (("ada", "eu"), ("bob", "us"), ("cy", "eu")):
        await flow.express.create("Account", {"name": name, "region": region})
    yield url, flow, table
    await flow.execute_raw(f'DROP TABLE IF EXISTS "{table}"')  # noqa: S608 - a test's own table
    await flow.close_async()


async def test_database_source_reads_and_refreshes(db, other):
    url, flow, table = other
    crm = db.source("crm", DatabaseSourceConfig(url=url, tables=[table], poll_interval=3600))

    @db.product("regions", depends_on=["crm"])
    async def regions(ctx):
        rows = await ctx.source("crm").fetch(table, {"order_by": "id"})
        return sorted({r["region"] for r in rows}), len(rows)

    rt = await db.start(port=0)
    await until(lambda: "regions" in rt.entries)
    assert rt.entries["regions"].value == (["eu", "us"], 3)
    assert [r["name"] for r in await crm.fetch(table, {"region": "eu", "order_by": "id"})] == ["ada", "cy"]
    assert await crm.query(f'SELECT COUNT(*) FROM "{table}" WHERE region = $1'  # noqa: S608
                           if url.startswith("postgresql") else
                           f'SELECT COUNT(*) FROM "{table}" WHERE region = ?', "us") == [(1,)]  # noqa: S608
    assert crm.names() == [table]

    # unchanged: a poll refreshes nothing; a row written elsewhere: the product follows
    assert await rt.poll_source(crm) is False and rt.computations["regions"] == 1
    await flow.express.create("Account", {"name": "dee", "region": "apac"})
    assert await rt.poll_source(crm) is True
    await until(lambda: rt.entries["regions"].value == (["apac", "eu", "us"], 4))
    assert rt.health()["sources"]["crm"]["healthy"] is True


async def test_database_source_is_read_only(db, other):
    url, flow, table = other
    before = _digest(url) if url.startswith("sqlite") else None
    crm = db.source("crm", DatabaseSourceConfig(url=url, tables=[table]))
    assert len(await crm.fetch(table)) == 3
    for sql in (f'DELETE FROM "{table}"', f'UPDATE "{table}" SET name = \'x\'',  # noqa: S608
                f'WITH d AS (DELETE FROM "{table}" RETURNING id) SELECT * FROM d',  # noqa: S608
                f'SELECT 1; DROP TABLE "{table}"', f'DROP TABLE "{table}"', "SELECT * INTO evil FROM x"):
        with pytest.raises(SourceError, match="read-only"):
            await crm.query(sql)
    for name in ("create", "update", "delete", "execute_raw", "bulk_create"):
        with pytest.raises(SourceError, match="read-only"):
            getattr(crm, name)
    # below the statement check, the database itself refuses to write in the source's reads
    with pytest.raises(SourceError, match="read-only"):
        await crm._read_only(lambda f: f.execute_raw(f'DELETE FROM "{table}"'))  # noqa: S608
    if url.startswith("postgresql"):  # a "read" with a side effect
        with pytest.raises(SourceError, match="read-only"):
            await crm.query(f"SELECT nextval(pg_get_serial_sequence('\"{table}\"', 'id'))")
    assert await flow.express.count("Account") == 3
    with pytest.raises(SourceError, match="no table"):
        await crm.fetch("nope")
    await crm.stop()
    if url.startswith("sqlite"):  # no tables named: every table (PostgreSQL's test db is shared)
        every = db.source("every", DatabaseSourceConfig(url=url))
        assert [(t, len(rows)) for t, rows in (await every.read()).items()] == [(table, 3)]
        await every.stop()
    if before is not None:  # the file was not even touched (no migration table, no schema change)
        assert _digest(url) == before


def _digest(url: str) -> str:
    with open(url.removeprefix("sqlite:///"), "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


# -- S3 on moto's server ----------------------------------------------------------------------------------
@pytest.fixture
def s3(monkeypatch):
    pytest.importorskip("aiobotocore")
    server_mod = pytest.importorskip("moto.server")
    import boto3

    import moto.settings

    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                 ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(k, v)
    # path-style requests to a named host: the bucket is in the path, not the host name
    monkeypatch.setattr(moto.settings, "S3_IGNORE_SUBDOMAIN_BUCKETNAME", True)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        client.create_bucket(Bucket="reports")
        client.put_object(Bucket="reports", Key="daily/a.json", Body=json.dumps({"a": 1}))
        client.put_object(Bucket="reports", Key="daily/b.csv", Body="id,x\n1,2\n")
        client.put_object(Bucket="reports", Key="other/c.json", Body="[]")
        yield url, port, client
    finally:
        server.stop()


async def test_s3_source_reads_polls_and_refreshes(db, s3):
    url, _, client = s3
    reports = db.source("reports", CloudSourceConfig(bucket="reports", prefix="daily/", endpoint_url=url,
                                                     allow_private=True, poll_interval=3600))

    @db.product("summary", depends_on=["reports"])
    async def summary(ctx):
        return await ctx.source("reports").read()

    rt = await db.start(port=0)
    await until(lambda: "summary" in rt.entries)
    assert rt.entries["summary"].value == {"a.json": {"a": 1}, "b.csv": [{"id": "1", "x": "2"}]}
    assert await reports.fetch("a.json") == {"a": 1} and reports.stats["not_modified"] == 1  # a 304
    requests = reports.stats["requests"]
    assert await rt.poll_source(reports) is False  # one listing, nothing downloaded
    assert reports.stats["requests"] == requests + 1 and rt.computations["summary"] == 1

    client.put_object(Bucket="reports", Key="daily/a.json", Body=json.dumps({"a": 2}))
    assert await rt.poll_source(reports) is True
    await until(lambda: rt.entries["summary"].value["a.json"] == {"a": 2})
    client.put_object(Bucket="reports", Key="daily/new.jsonl", Body='{"n": 1}\n{"n": 2}\n')
    assert await rt.poll_source(reports) is True  # an object added under the prefix
    await until(lambda: rt.entries["summary"].value.get("new.jsonl") == [{"n": 1}, {"n": 2}])
    with pytest.raises(SourceError, match="NoSuchKey"):
        await reports.fetch("missing.json")
    with pytest.raises(SourceError, match="object name"):
        await reports.fetch("../other/c.json")


async def test_s3_connections_go_through_the_guard(db, s3):
    url, port, _ = s3
    refused = db.source("refused", CloudSourceConfig(bucket="reports", prefix="daily/", endpoint_url=url))
    with pytest.raises(SourceRefusedError, match="loopback"):
        await refused.fetch("a.json")
    named = db.source("named", CloudSourceConfig(bucket="reports", prefix="daily/",
                                                 endpoint_url=f"http://storage.test:{port}"))
    answers = {"storage.test": ["127.0.0.1"]}

    async def stub(host, p):
        return answers[host]

    named.guard.resolver = stub
    named.guard.classify = lambda ip: None if str(ip) == "127.0.0.1" else ssrf.classify(ip)
    assert await named.fetch("a.json") == {"a": 1}
    assert named.guard.connections[-1] == ("storage.test", "127.0.0.1")
    await named.stop()
    answers["storage.test"] = ["169.254.169.254"]  # rebound: a new client resolves again, refused
    with pytest.raises(SourceRefusedError, match="metadata"):
        await named.fetch("b.csv")
    for s in (refused, named):
        await s.stop()
