"""Property-based isolation check (hypothesis) on real SQLite, PostgreSQL and MariaDB.

Several tenants run random sequences of create / read / update / delete / list / count /
upsert / bulk create / bulk update / bulk delete concurrently, each in its own task.  Ids are
drawn from a pool holding every tenant's ids, so a sequence keeps trying to reach other
tenants' rows.  After every step the tenant's rows (read back through DataFlow) must equal an
in-memory model of what that tenant did; at the end the stored rows are checked with raw SQL:
every row carries the tenant that wrote it.  Any cross-tenant read or write fails the test."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow import DataFlow
from dataflow.errors import UniqueViolationError

from .conftest import _backend_url

TENANTS = ("acme", "beta", "gamma")
EMAILS = [f"e{i}@x" for i in range(6)]
OPS_RUN = {"count": 0}

_op = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(EMAILS), st.integers(0, 9)),
    st.tuples(st.just("read"), st.integers(0, 40)),
    st.tuples(st.just("update"), st.integers(0, 40), st.integers(0, 9)),
    st.tuples(st.just("delete"), st.integers(0, 40)),
    st.tuples(st.just("list"), st.integers(0, 9)),
    st.tuples(st.just("count"), st.integers(0, 9)),
    st.tuples(st.just("upsert"), st.sampled_from(EMAILS), st.integers(0, 9)),
    st.tuples(st.just("bulk_create"), st.lists(st.sampled_from(EMAILS), min_size=1, max_size=4, unique=True)),
    st.tuples(st.just("bulk_update"), st.integers(0, 9), st.integers(0, 9)),
    st.tuples(st.just("bulk_delete"), st.integers(0, 9)),
)


async def _tenant_run(db, tenant, ops, pool, owner):
    """Run ``ops`` for ``tenant`` and check every result against the in-memory model."""
    x = db.express
    mine: dict[int, dict] = {}                  # id -> {"email", "score"}
    async with db.tenant(tenant):
        for op in ops:
            kind = op[0]
            OPS_RUN["count"] += 1
            if kind == "create":
                _, email, score = op
                if any(r["email"] == email for r in mine.values()):
                    with pytest.raises(UniqueViolationError):
                        await x.create("Acct", {"email": email, "score": score})
                else:
                    row = await x.create("Acct", {"email": email, "score": score})
                    assert row["tenant_id"] == tenant
                    mine[row["id"]] = {"email": email, "score": score}
                    pool.append(row["id"])
                    owner[row["id"]] = tenant
            elif kind == "read":
                rid = pool[op[1] % len(pool)] if pool else 1
                got = await x.read("Acct", rid)
                assert (got is not None) == (rid in mine), (tenant, rid, owner.get(rid))
                if got is not None:
                    assert got["tenant_id"] == tenant and got["email"] == mine[rid]["email"]
            elif kind == "update":
                rid = pool[op[1] % len(pool)] if pool else 1
                got = await x.update("Acct", rid, {"score": op[2]})
                assert (got is not None) == (rid in mine), (tenant, rid, owner.get(rid))
                if got is not None:
                    mine[rid]["score"] = op[2]
            elif kind == "delete":
                rid = pool[op[1] % len(pool)] if pool else 1
                assert await x.delete("Acct", rid) == (rid in mine)
                mine.pop(rid, None)
            elif kind == "list":
                rows = await x.list("Acct", {"$or": [{"score": {"$gte": op[1]}}, {"score": {"$lt": 0}}]}, limit=1000)
                assert sorted(r["id"] for r in rows) == sorted(i for i, r in mine.items() if r["score"] >= op[1])
            elif kind == "count":
                assert await x.count("Acct", {"$not": {"score": op[1]}}) == sum(
                    1 for r in mine.values() if r["score"] != op[1])
            elif kind == "upsert":
                _, email, score = op
                row = await x.upsert("Acct", {"email": email, "score": score}, conflict_on="email")
                assert row["tenant_id"] == tenant
                if row["id"] not in mine:
                    pool.append(row["id"])
                    owner[row["id"]] = tenant
                mine[row["id"]] = {"email": email, "score": score}
            elif kind == "bulk_create":
                emails = [e for e in op[1] if not any(r["email"] == e for r in mine.values())]
                if emails:
                    await x.bulk_create("Acct", [{"email": e, "score": 5} for e in emails])
                    for r in await x.list("Acct", {"email": {"$in": emails}}, limit=1000):
                        mine[r["id"]] = {"email": r["email"], "score": 5}
                        pool.append(r["id"])
                        owner[r["id"]] = tenant
            elif kind == "bulk_update":
                res = await x.bulk_update("Acct", {"score": {"$lte": op[1]}}, {"score": op[2]})
                hit = [i for i, r in mine.items() if r["score"] <= op[1]]
                assert res["updated"] == len(hit)
                for i in hit:
                    mine[i]["score"] = op[2]
            elif kind == "bulk_delete":
                res = await x.bulk_delete("Acct", {"score": op[1]})
                hit = [i for i, r in mine.items() if r["score"] == op[1]]
                assert res["deleted"] == len(hit)
                for i in hit:
                    del mine[i]
            # after every step: this tenant's rows are exactly the model's
            rows = await x.list("Acct", limit=1000)
            assert {r["id"]: (r["email"], r["score"]) for r in rows} == {
                i: (r["email"], r["score"]) for i, r in mine.items()}
            assert all(r["tenant_id"] == tenant for r in rows)
            await asyncio.sleep(0)                                 # interleave the tenants
    return mine


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_random_interleavings_never_cross_tenants(backend, tmp_path):
    url = _backend_url(backend, tmp_path)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.lists(_op, min_size=10, max_size=30), min_size=len(TENANTS), max_size=len(TENANTS)))
    def run(seqs):
        asyncio.run(_one(url, seqs))

    before = OPS_RUN["count"]
    run()
    ran = OPS_RUN["count"] - before
    print(f"\n{backend}: {ran} tenant operations checked")
    assert ran >= 100


async def _one(url, seqs):
    table = f"t_tnp_{uuid.uuid4().hex[:8]}"
    db = DataFlow(url, multi_tenant=True)

    @db.model
    class Acct:
        email: str
        score: int = 0
        __tablename__ = table
        __dataflow__ = {"unique": ["email"]}
    try:
        await db.initialize()
        pool: list = []
        owner: dict = {}
        models = await asyncio.gather(*[_tenant_run(db, t, ops, pool, owner) for t, ops in zip(TENANTS, seqs)])
        q = db.dialect.quote
        stored = await db.execute_raw(f"SELECT {q('id')}, {q('tenant_id')}, {q('email')}, {q('score')} FROM {q(table)}")
        expect = {i: (t, r["email"], r["score"]) for t, m in zip(TENANTS, models) for i, r in m.items()}
        assert {r[0]: (r[1], r[2], r[3]) for r in stored} == expect
    finally:
        await db.execute_raw(db.dialect.drop_table_sql(table, if_exists=True))
        await db.close_async()
