"""Atomic bulk writes, transactions and the options of the document store.

Runs on the in-process MongoDB stand-in always (which has no transactions, so atomic writes
compensate there); the tests taking ``mdb`` also run on the server of DATAFLOW_TEST_MONGODB_URL;
the ``rs`` tests need that server to be a replica set or mongos and are skipped otherwise.
Which way a bulk write is made atomic is decided from the server's ``hello`` reply: that
decision is tested here on the stand-in behind a client reporting each topology.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest

from dataflow import AsyncLocalRuntime, DataFlow, WorkflowBuilder
from dataflow import errors as E
from dataflow.adapters import MongoDBAdapter
from dataflow.documents.client import topology_has_transactions
from dataflow.documents.standin import StandInClient, StandInDatabase

from .conftest import drop_all, mongodb_url

UTC = dt.timezone.utc


@pytest.fixture(params=["mongodb-standin", "mongodb"])
async def mdb(request):
    url, kw = mongodb_url(request.param)
    db = DataFlow(url, **kw)
    yield db
    await drop_all(db)


@pytest.fixture
async def rs():
    """A DataFlow on a real replica set / mongos (DATAFLOW_TEST_MONGODB_URL), else skipped."""
    url, kw = mongodb_url("mongodb")
    db = DataFlow(url, **kw)
    if not await db.driver.transactions_supported():
        await db.close_async()
        pytest.skip("the server of DATAFLOW_TEST_MONGODB_URL is standalone: transactions need a replica set")
    yield db
    await drop_all(db)


def _model(db, **dataflow):
    @db.model
    class Acct:
        email: str
        name: str = ""
        tier: str = "free"
        __tablename__ = f"accts_{uuid.uuid4().hex[:6]}"
        __dataflow__ = {"unique": ["email"], **dataflow}
    return Acct


# -- which way atomic writes go: hello -> transaction or compensation --------------------------
HELLO = {
    "standalone": {"ok": 1.0, "isWritablePrimary": True, "maxWireVersion": 21},
    "replica set": {"ok": 1.0, "isWritablePrimary": True, "setName": "rs0", "hosts": ["a:27017"]},
    "mongos": {"ok": 1.0, "isWritablePrimary": True, "msg": "isdbgrid"},
}


def test_topology_detection_from_hello():
    assert [topology_has_transactions(h) for h in HELLO.values()] == [False, True, True]
    assert not topology_has_transactions({"setName": ""})


class _SessionStarted(Exception):
    """What the topology client raises where a real client would start a session."""


class _Admin(StandInDatabase):
    def __init__(self, client, reply):
        super().__init__(client, client._c["admin"])
        self._reply = reply

    async def command(self, command, *a, **kw):
        if command == "hello":
            self._client.hellos += 1
            return dict(self._reply)
        return await super().command(command, *a, **kw)


class TopologyClient(StandInClient):
    """The stand-in's data behind a client that reports a given topology in ``hello`` (and is
    not flagged as the stand-in, so the driver decides as it would on that server)."""

    standin = False

    def __init__(self, topology):
        super().__init__()
        self.reply = HELLO[topology]
        self.hellos = self.sessions = 0

    @property
    def admin(self):
        return _Admin(self, self.reply)

    def start_session(self, **kw):
        self.sessions += 1
        raise _SessionStarted()


@pytest.mark.parametrize("topology", list(HELLO))
async def test_atomic_writes_use_a_transaction_exactly_where_the_server_has_them(topology):
    client = TopologyClient(topology)
    db = DataFlow(adapter=MongoDBAdapter("mongodb://h/topo", client=client))
    Acct = _model(db)
    x = db.express
    await x.create(Acct, {"email": "a@x"})
    writes = [
        lambda: x.bulk_create(Acct, [{"email": "b@x"}, {"email": "a@x"}]),
        lambda: db.load(Acct, [{"email": "c@x"}], progress=False),
        lambda: x.bulk_update(Acct, {"tier": "free"}, {"tier": "pro"}),
        lambda: x.bulk_delete(Acct, {"email": "zz"}),
        lambda: x.upsert(Acct, {"email": "a@x", "name": "A"}, conflict_on="email"),
    ]
    if topology == "standalone":
        with pytest.raises(E.BulkLoadError) as exc:
            await writes[0]()
        assert exc.value.rows_written == 0 and exc.value.failed_index == 1
        for w in writes[1:]:
            await w()
        assert client.sessions == 0                          # compensation, never a session
        assert sorted(r["email"] for r in await x.list(Acct)) == ["a@x", "c@x"]
        with pytest.raises(E.UnsupportedFeatureError, match="standalone .*replica set"):
            async with db.transaction():
                pass
    else:
        for w in writes:
            with pytest.raises(_SessionStarted):             # a session transaction, before any write
                await w()
        assert client.sessions == len(writes)
        with pytest.raises(_SessionStarted):
            async with db.transaction():
                pass
        assert [r["email"] for r in await x.list(Acct)] == ["a@x"]
    assert await x.bulk_create(Acct, [{"email": "n@x"}], atomic=False)   # not atomic: no session
    assert client.hellos == 1                                # asked once per instance
    await db.close_async()


# -- the fallback's guarantees (the stand-in; a real server takes the transaction path) ----------
async def test_atomic_bulk_writes_leave_nothing_and_non_atomic_report_exactly(mdb):
    Acct = _model(mdb)
    x = mdb.express
    await x.create(Acct, {"email": "dup@x"})
    rows = [{"email": f"u{i}@x"} for i in range(7)]
    rows.insert(5, {"email": "dup@x"})
    for label, call in (("bulk_create", lambda a: x.bulk_create(Acct, rows, batch_size=3, atomic=a)),
                        ("load", lambda a: mdb.load(Acct, rows, batch_size=3, atomic=a, progress=False))):
        with pytest.raises(E.BulkLoadError) as exc:
            await call(True)
        assert (exc.value.failed_index, exc.value.rows_written) == (5, 0), label
        assert await x.count(Acct) == 1, label
        with pytest.raises(E.BulkLoadError) as exc:
            await call(False)
        assert (exc.value.failed_index, exc.value.rows_written) == (5, 5), label
        assert await x.count(Acct) == 6, label
        await x.bulk_delete(Acct, {"email": {"$ne": "dup@x"}})


async def test_load_update_honours_update_fields_and_the_fields_given(mdb):
    Acct = _model(mdb)
    x = mdb.express
    await x.bulk_create(Acct, [{"email": "a@x", "name": "A", "tier": "pro"},
                               {"email": "b@x", "name": "B", "tier": "pro"}])
    rep = await mdb.load(Acct, [{"email": "a@x", "name": "A2", "tier": "gold"}, {"email": "c@x", "name": "C"}],
                         conflict_resolution="update", conflict_on="email", update_fields=["name"], progress=False)
    assert (rep["inserted"], rep["updated"]) == (1, 1)
    a = await x.find_one(Acct, {"email": "a@x"})
    assert (a["name"], a["tier"]) == ("A2", "pro")            # tier not in update_fields: kept
    assert (await x.find_one(Acct, {"email": "c@x"}))["tier"] == "free"   # a new row takes all
    # without update_fields: the fields each item gives, and only those
    await mdb.load(Acct, [{"email": "b@x", "tier": "gold"}, {"email": "a@x", "name": "A3", "tier": "x"}],
                   conflict_resolution="update", conflict_on="email", progress=False)
    b, a = await x.find_one(Acct, {"email": "b@x"}), await x.find_one(Acct, {"email": "a@x"})
    assert (b["name"], b["tier"], a["name"], a["tier"]) == ("B", "gold", "A3", "x")
    # bulk_create's update_cols: the same option on the record path
    await x.bulk_create(Acct, [{"email": "b@x", "name": "B2", "tier": "y"}], conflict_resolution="update",
                        conflict_on="email", update_cols=["tier"])
    b = await x.find_one(Acct, {"email": "b@x"})
    assert (b["name"], b["tier"]) == ("B", "y")
    with pytest.raises(E.ValidationError, match="update_fields"):
        await mdb.load(Acct, [{"email": "a@x"}], conflict_resolution="update", conflict_on="email",
                       update_fields=["nope"], progress=False)
    # return_ids: the SQL store's refusal, and ids in input order for an upsert on a key
    with pytest.raises(E.ValidationError, match="needs conflict_on"):
        await x.bulk_create(Acct, [{"email": "z@x"}], return_ids=True, conflict_resolution="skip")
    res = await x.bulk_create(Acct, [{"email": "z@x"}, {"email": "a@x"}], return_ids=True,
                              conflict_resolution="skip", conflict_on="email")
    assert res["ids"][1] == a["id"] and res["ids"][0] == (await x.find_one(Acct, {"email": "z@x"}))["id"]


# -- SQL-only features: refused at the call, saying why ------------------------------------------
async def test_sql_only_features_are_refused_at_the_call():
    db = DataFlow("mongodb://standin/refusals", testing=True)
    Acct = _model(db)
    for call in (Acct.query_builder, db.migration_plan, db.discover_schema,
                 lambda: db.discover_schema(use_real_inspection=False), db.register_schema_as_models):
        with pytest.raises(E.UnsupportedFeatureError, match="SQL databases only, not on MongoDB"):
            call()
    for coro in (lambda: db.migrate(), lambda: db.rollback_migration("1"), lambda: db.discover_schema_async(),
                 lambda: db.execute_raw("SELECT 1")):
        with pytest.raises(E.UnsupportedFeatureError, match="MongoDB"):
            await coro()
    with pytest.raises(E.UnsupportedFeatureError, match="isolation_level"):
        db.transaction("serializable")
    with pytest.raises(E.UnsupportedFeatureError, match="stand-in"):
        await db.run_in_transaction(lambda tx: None)
    for kw, why in (({"monitoring": True}, "pymongo.monitoring"), ({"echo": True}, "SQL statements")):
        with pytest.raises(E.UnsupportedFeatureError, match=why):
            DataFlow("mongodb://standin/refusals", testing=True, **kw)
    with pytest.raises(E.ConfigurationError, match="tenant predicate"):
        DataFlow("mongodb://standin/refusals", testing=True, tenant_isolation="rls")
    # a workflow's transaction scope fails at its node, before any node runs in it
    wf = WorkflowBuilder()
    wf.add_node("TransactionScopeNode", "tx", {"database": db.name})
    wf.add_node("AcctCreateNode", "c", {"email": "wf@x"})
    wf.add_connection("tx", "transaction_id", "c", "name")
    with pytest.raises(Exception) as exc:
        await AsyncLocalRuntime().execute_workflow_async(wf.build())
    err = exc.value if isinstance(exc.value, E.UnsupportedFeatureError) else exc.value.__cause__
    assert isinstance(err, E.UnsupportedFeatureError) and "stand-in" in str(err)
    assert await db.express.count(Acct) == 0
    await db.close_async()


async def test_existing_schema_mode_checks_indexes_and_auto_migrate_off_creates_none():
    adapter = MongoDBAdapter("mongodb://h/schema", testing=True)       # one stand-in, three instances
    name = f"accts_{uuid.uuid4().hex[:6]}"

    def define(db):
        @db.model
        class Acct:
            email: str
            __tablename__ = name
            __dataflow__ = {"unique": ["email"]}
        return Acct
    strict = DataFlow(adapter=adapter, existing_schema_mode=True, name=f"strict_{name}")
    define(strict)
    with pytest.raises(E.ConfigurationError, match=rf"{name}: unique index on \(email\)"):
        await strict.initialize()
    off = DataFlow(adapter=adapter, auto_migrate=False, name=f"off_{name}")
    define(off)
    await off.initialize()
    assert list(await adapter.database[name].index_information()) == []
    normal = DataFlow(adapter=adapter, name=f"normal_{name}")
    define(normal)
    await normal.initialize()                                            # creates the unique index
    strict2 = DataFlow(adapter=adapter, existing_schema_mode=True, name=f"strict2_{name}")
    define(strict2)
    await strict2.initialize()                                           # now it is there
    for d in (strict, off, normal, strict2):
        await d.close_async()


async def test_standin_cache_identity_is_private_to_its_instance():
    """Two stand-ins with the same URL hold different data: sharing one Redis must not make
    one serve the other's cached results."""
    from .test_cache import REDIS_URL, _redis_up
    if not _redis_up():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL} (CI=true)")
        pytest.skip("Redis not reachable")
    a, b = (DataFlow("mongodb://standin/same", testing=True, cache_enabled=True, redis_url=REDIS_URL,
                     name=f"ci{i}_{uuid.uuid4().hex[:6]}") for i in range(2))
    name = f"accts_{uuid.uuid4().hex[:6]}"
    for db in (a, b):
        @db.model
        class Acct:
            email: str
            __tablename__ = name
    await a.express.create("Acct", {"email": "only-in-a@x"})
    assert await a.express.count("Acct") == 1 and await a.express.count("Acct") == 1    # cached in Redis
    assert await b.express.count("Acct") == 0
    await a.close_async()
    await b.close_async()


# -- datetimes: stored as UTC ISO text; ranges agree with SQL ------------------------------------
async def test_datetime_ranges_match_sql(mdb, tmp_path):
    sql = DataFlow(f"sqlite:///{tmp_path}/dt.db")
    plus2 = dt.timezone(dt.timedelta(hours=2))
    minus5 = dt.timezone(dt.timedelta(hours=-5))
    values = [dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
              dt.datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime(2024, 1, 1, 1, 30, tzinfo=plus2),
              dt.datetime(2023, 12, 31, 20, tzinfo=minus5), dt.datetime(1, 1, 1, tzinfo=UTC),
              dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), None]
    name = f"ev_{uuid.uuid4().hex[:6]}"
    for db in (mdb, sql):
        @db.model
        class Ev:
            k: int
            at: dt.datetime | None = None
            __tablename__ = name
        await db.express.bulk_create("Ev", [{"k": i, "at": v} for i, v in enumerate(values)])
    t = dt.datetime(2024, 1, 1, tzinfo=UTC)
    filters = [
        {"at": {"$gt": t}}, {"at": {"$gte": t}}, {"at": {"$lt": t}}, {"at": {"$lte": t}}, {"at": {"$ne": t}},
        {"at": {"$gt": dt.datetime(2024, 1, 1, 2, 0, tzinfo=plus2)}},          # the same instant as t
        {"at": {"$lt": dt.datetime(2023, 12, 31, 19, 0, 0, 1, tzinfo=minus5)}},
        {"at": {"$between": [dt.datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                             dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)]}},
        {"at": {"$in": [t, dt.datetime(2024, 1, 1, 1, 30, tzinfo=plus2)]}}, {"at": {"$nin": [t]}},
        {"at": None}, {"at": {"$null": False}}, {"$or": [{"at": {"$lt": dt.datetime(2, 1, 1, tzinfo=UTC)}},
                                                        {"at": {"$gt": dt.datetime(9999, 1, 1, tzinfo=UTC)}}]},
    ]
    for f in filters:
        got = [r["k"] for r in await mdb.express.list("Ev", f, order_by="k", limit=None)]
        want = [r["k"] for r in await sql.express.list("Ev", f, order_by="k", limit=None)]
        assert got == want, f
    rows = await mdb.express.list("Ev", order_by="k", limit=None)
    assert [r["at"] for r in rows] == values and all(r["at"] is None or r["at"].tzinfo for r in rows)
    order = [r["k"] for r in await mdb.express.list("Ev", {"at": {"$null": False}}, order_by="at", limit=None)]
    assert order == [r["k"] for r in await sql.express.list("Ev", {"at": {"$null": False}}, order_by="at", limit=None)]
    await sql.close_async()


# -- a real replica set: transactions, atomic writes, the cache at commit ------------------------
async def test_transactions_on_a_replica_set(rs):
    Acct = _model(rs)
    x = rs.express
    async with rs.transaction():
        await x.create(Acct, {"email": "in@x"})
        await x.bulk_create(Acct, [{"email": "in@x"}, {"email": "new@x"}], conflict_resolution="skip")
    assert sorted(r["email"] for r in await x.list(Acct)) == ["in@x", "new@x"]
    with pytest.raises(RuntimeError):
        async with rs.transaction():
            await x.create(Acct, {"email": "gone@x"})
            raise RuntimeError("abort")
    assert await x.count(Acct, {"email": "gone@x"}) == 0
    with pytest.raises(E.BulkLoadError) as exc:
        await x.bulk_create(Acct, [{"email": "b1@x"}, {"email": "new@x"}])
    assert exc.value.rows_written == 0 and await x.count(Acct) == 2
    with pytest.raises(E.UnsupportedFeatureError, match="nested"):
        async with rs.transaction():
            async with rs.transaction():
                pass


async def test_the_cache_sees_a_transactions_writes_at_its_commit(rs):
    db = DataFlow(rs.config.url.raw, cache_enabled=True)
    try:
        Acct = _model(db)
        x = db.express
        a = await x.create(Acct, {"email": "a@x"})
        assert (await x.read(Acct, a["id"]))["tier"] == "free"
        assert (await x.read(Acct, a["id"]))["tier"] == "free"          # a hit
        async with db.transaction():
            await x.update(Acct, a["id"], {"tier": "pro"})
            assert (await x.read(Acct, a["id"]))["tier"] == "pro"       # inside: never the cache
        assert (await x.read(Acct, a["id"]))["tier"] == "pro"
        assert db.cache_stats()["hits"] >= 1
    finally:
        await drop_all(db)


# -- after_commit hooks (what the cache and the fabric hang on) ----------------------------------
async def test_after_commit_fires_once_per_write_never_for_reads_or_failures(mdb):
    Acct = _model(mdb, soft_delete=True)
    t = Acct.__dataflow_model__.table
    commits = []
    off = mdb.after_commit(lambda tables: commits.append(set(tables)))
    x = mdb.express
    a = await x.create(Acct, {"email": "a@x"})
    await x.read(Acct, a["id"]), await x.list(Acct), await x.count(Acct), await x.find_one(Acct, {"email": "a@x"})
    assert commits == [{t}]
    with pytest.raises(E.UniqueViolationError):
        await x.create(Acct, {"email": "a@x"})
    with pytest.raises(E.BulkLoadError):
        await x.bulk_create(Acct, [{"email": "n@x"}, {"email": "a@x"}])
    assert commits == [{t}]                                       # failed writes report nothing
    await x.update(Acct, a["id"], {"name": "A"})
    await x.upsert(Acct, {"email": "a@x", "tier": "pro"}, conflict_on="email")
    await x.bulk_create(Acct, [{"email": f"b{i}@x"} for i in range(3)])
    await x.bulk_upsert(Acct, [{"email": "b0@x", "name": "B"}], conflict_on="email")
    await mdb.load(Acct, [{"email": "l@x"}], progress=False)
    await x.bulk_update(Acct, {"tier": "free"}, {"name": "F"})
    await x.bulk_delete(Acct, {"email": "l@x"})
    await x.delete(Acct, a["id"])
    await x.update(Acct, a["id"], {"deleted_at": None})          # restored
    assert commits == [{t}] * 10
    off()

    def boom(tables):
        raise ValueError("observer bug")
    off = mdb.after_commit(boom)
    assert (await x.create(Acct, {"email": "still@x"}))["email"] == "still@x"   # logged, not raised
    off()
    with pytest.raises(E.UnsupportedFeatureError, match="pymongo.monitoring"):
        mdb.on_statement(lambda sql, s, ok: None)


async def test_a_load_cut_short_leaves_nothing(mdb):
    """A source that raises, a cancelled load and a timed-out load: with atomic=True nothing
    stays (the compensation on the stand-in / standalone, the abort in a transaction)."""
    import asyncio
    Acct = _model(mdb)
    x = mdb.express

    def raising():
        for i in range(300):
            if i == 234:
                raise RuntimeError("disk on fire")
            yield {"email": f"r{i}@x"}
    with pytest.raises(E.BulkLoadError) as exc:
        await mdb.load(Acct, raising(), batch_size=50, progress=False)
    assert (exc.value.failed_index, exc.value.rows_written) == (234, 0) and await x.count(Acct) == 0
    with pytest.raises(E.BulkLoadError) as exc:
        await mdb.load(Acct, raising(), batch_size=50, atomic=False, progress=False)
    assert exc.value.rows_written == 200 == await x.count(Acct)
    await x.bulk_delete(Acct, {}, confirmed=True)

    started = asyncio.Event()

    async def slow():
        for i in range(100_000):
            if i == 120:
                started.set()
            if i % 50 == 49:
                await asyncio.sleep(0.01)
            yield {"email": f"s{i}@x"}
    task = asyncio.ensure_future(mdb.load(Acct, slow(), batch_size=30, progress=False))
    await started.wait()                     # some batches are written by now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await x.count(Acct) == 0
    with pytest.raises(E.BulkLoadError) as exc:
        await mdb.load(Acct, slow(), batch_size=30, timeout=0.1, progress=False)
    assert isinstance(exc.value.cause, TimeoutError) and exc.value.rows_written == 0
    assert await x.count(Acct) == 0


# -- the transaction path's plumbing, on the stand-in behind sessions that record their calls ----
class _Session:
    """Records what the driver asks of a session; the stand-in ignores it, so nothing is really
    rolled back here (what an abort undoes is tested on a real replica set above)."""

    def __init__(self, client):
        self.client, self.calls = client, []

    async def start_transaction(self):
        self.calls.append("start")

    async def commit_transaction(self):
        self.calls.append("commit")
        fail = self.client.fail_commits.pop(0) if self.client.fail_commits else None
        if fail:
            from pymongo.errors import OperationFailure
            exc = OperationFailure("commit failed", code=112)
            exc._error_labels = {fail}
            raise exc

    async def abort_transaction(self):
        self.calls.append("abort")

    async def end_session(self):
        self.calls.append("end")


class SessionClient(TopologyClient):
    def __init__(self):
        super().__init__("replica set")
        self.made, self.fail_commits = [], []

    def start_session(self, **kw):
        self.made.append(_Session(self))
        return self.made[-1]


async def test_transaction_path_plumbing(monkeypatch):
    from dataflow.documents import standin
    monkeypatch.setattr(standin, "_no_session", lambda session: None)   # the fake sessions pass
    client = SessionClient()
    db = DataFlow(adapter=MongoDBAdapter("mongodb://h/txp", client=client), cache_enabled=True)
    Acct = _model(db)

    @db.model
    class Note:
        text: str
        __tablename__ = f"notes_{uuid.uuid4().hex[:6]}"
    t, n = Acct.__dataflow_model__.table, Note.__dataflow_model__.table
    commits = []
    db.after_commit(lambda tables: commits.append(set(tables)))
    x = db.express
    await x.create(Acct, {"email": "a@x"})
    assert commits == [{t}] and client.made == []             # single-document writes: no session
    # an atomic bulk write is its own transaction: a failure aborts it, nothing is compensated
    with pytest.raises(E.BulkLoadError) as exc:
        await x.bulk_create(Acct, [{"email": "b@x"}, {"email": "a@x"}])
    assert exc.value.rows_written == 0 and client.made[-1].calls == ["start", "abort", "end"]
    assert await x.count(Acct, {"email": "b@x"}, cache=False) == 1   # (the fake kept it: no delete ran)
    assert commits == [{t}]
    rep = await x.bulk_create(Acct, [{"email": "c@x"}])
    assert rep["inserted"] == 1 and client.made[-1].calls == ["start", "commit", "end"]
    assert commits == [{t}] * 2                               # once, at the commit
    # db.transaction(): every collection written reaches after_commit once, at the commit
    await x.count(Acct)
    async with db.transaction():
        await x.create(Acct, {"email": "d@x"})
        await x.create(Note, {"text": "hi"})
        # skip inside a transaction never provokes a duplicate-key error (it would abort it)
        rep = await x.bulk_create(Acct, [{"email": "a@x"}, {"email": "e@x"}, {"email": "e@x"}],
                                  conflict_resolution="skip")
        assert (rep["inserted"], rep["skipped"]) == (1, 2)
        hits = db.cache_stats()["hits"]
        await x.count(Acct), await x.count(Acct)
        assert db.cache_stats()["hits"] == hits                # never the cache inside
        assert commits == [{t}] * 2
    assert commits[-1] == {t, n} and len(commits) == 3
    assert client.made[-1].calls == ["start", "commit", "end"]
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await x.create(Note, {"text": "undone"})
            raise RuntimeError("abort")
    assert client.made[-1].calls == ["start", "abort", "end"] and len(commits) == 3
    with pytest.raises(E.UnsupportedFeatureError, match="nested"):
        async with db.transaction():
            async with db.transaction():
                pass
    # run_in_transaction retries a TransientTransactionError; a lost commit answer says so
    client.fail_commits = ["TransientTransactionError"]
    runs = []
    assert await db.run_in_transaction(lambda tx: _append(runs, x.create(Note, {"text": "r"}))) == "ok"
    assert len(runs) == 2
    client.fail_commits = ["UnknownTransactionCommitResult"]
    with pytest.raises(E.OutcomeUnknownError):
        async with db.transaction():
            await x.create(Note, {"text": "?"})
    # a workflow's transaction scope: begin, the nodes joined, commit
    wf = WorkflowBuilder()
    wf.add_node("TransactionScopeNode", "tx", {"database": db.name})
    wf.add_node("AcctCreateNode", "c", {"email": "wf@x"})
    wf.add_node("TransactionCommitNode", "commit")
    wf.add_connection("tx", "transaction_id", "c", "name")
    wf.add_connection("c", "id", "commit", "after")
    before = len(client.made)
    res, _ = await AsyncLocalRuntime().execute_workflow_async(wf.build())
    assert res["commit"]["status"] == "committed" and len(client.made) == before + 1
    assert client.made[-1].calls == ["start", "commit", "end"] and commits[-1] == {t}
    await db.close_async()


async def _append(runs, create):
    runs.append(await create)
    return "ok"
