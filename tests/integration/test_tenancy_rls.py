"""tenant_isolation="rls" on a real PostgreSQL, as a role that is not a superuser (superusers
bypass row-level security): policies ENABLEd and FORCEd on tenant tables, the tenant set per
transaction with set_config(..., true), so raw SQL run through DataFlow is confined too and
nothing survives on a pooled connection."""

from __future__ import annotations

import uuid

import pytest

from dataflow import DataFlow
from dataflow.errors import TenantRequiredError

from .conftest import PG_URL, _backend_url

ROLE = "df_rls_app"


@pytest.fixture
async def rls_db(tmp_path):
    admin_url = _backend_url("postgresql", tmp_path)
    import asyncpg
    from urllib.parse import urlsplit
    u = urlsplit(admin_url)
    admin = await asyncpg.connect(host=u.hostname, port=u.port or 5432, user=u.username or "postgres",
                                  database=u.path.lstrip("/") or "postgres")
    await admin.execute(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') "
                        f"THEN CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$")
    await admin.execute(f"GRANT ALL ON SCHEMA public TO {ROLE}")
    await admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ROLE}")
    url = admin_url.replace(f"{u.username or 'postgres'}@", f"{ROLE}@", 1)
    table = f"t_rls_{uuid.uuid4().hex[:8]}"
    db = DataFlow(url, multi_tenant=True, tenant_isolation="rls", pool_size=2)

    @db.model
    class Note:
        body: str
        __tablename__ = table
    await db.initialize()
    yield db, table, admin, url
    async with db.all_tenants():
        await db.execute_raw(f'DROP TABLE IF EXISTS "{table}"')
    await db.close_async()
    await admin.close()


async def test_policies_are_enabled_and_forced(rls_db):
    db, table, admin, _ = rls_db
    row = await admin.fetchrow("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1", table)
    assert tuple(row) == (True, True)
    assert await admin.fetchval("SELECT count(*) FROM pg_policies WHERE tablename = $1", table) == 1
    assert await admin.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1", ROLE) is False


async def test_raw_sql_inside_a_tenant_sees_only_that_tenant(rls_db):
    db, table, admin, _ = rls_db
    for t in ("acme", "beta", "beta"):
        async with db.tenant(t):
            await db.express.create("Note", {"body": f"of {t}"})
    async with db.tenant("beta"):
        rows = await db.execute_raw(f'SELECT "tenant_id", "body" FROM "{table}"')   # no WHERE at all
        assert sorted(rows) == [("beta", "of beta"), ("beta", "of beta")]
        async with db.transaction() as tx:
            assert await tx.fetchval(f'SELECT count(*) FROM "{table}"') == 2
            # a raw write naming another tenant is refused by the policy's WITH CHECK
            with pytest.raises(Exception):
                async with db.transaction() as sp:
                    await sp.execute(f'INSERT INTO "{table}" ("body", "tenant_id", "created_at", "updated_at") '
                                     f"VALUES ('x', 'acme', now(), now())")
    async with db.all_tenants():
        assert len(await db.execute_raw(f'SELECT * FROM "{table}"')) == 3
    assert await admin.fetchval(f'SELECT count(*) FROM "{table}"') == 3


async def test_raw_sql_on_a_tenant_table_without_a_tenant_is_refused(rls_db):
    db, table, admin, _ = rls_db
    with pytest.raises(TenantRequiredError):
        await db.execute_raw(f'SELECT * FROM "{table}"')
    with pytest.raises(TenantRequiredError):
        async with db.transaction() as tx:
            await tx.fetch(f'SELECT * FROM "{table}"')
    assert await db.execute_raw("SELECT 1") == [(1,)]                 # other SQL is not affected


async def test_nothing_leaks_to_the_next_user_of_a_pooled_connection(rls_db):
    db, table, admin, url = rls_db
    async with db.tenant("acme"):
        await db.express.create("Note", {"body": "secret"})
        async with db.transaction() as tx:
            assert await tx.fetchval("SELECT current_setting('dataflow.tenant_id', true)") == "acme"
    # every pooled connection, borrowed raw: the setting is gone, and RLS shows nothing
    seen = []
    for _ in range(4):
        async with db.driver.connection() as con:
            seen.append(await con.fetchval("SELECT coalesce(current_setting('dataflow.tenant_id', true), '')"))
            assert await con.fetchval(f'SELECT count(*) FROM "{table}"') == 0
    assert set(seen) == {""}
    # a plain connection of the same role, with no DataFlow settings, sees no tenant's rows
    import asyncpg
    con = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
    try:
        assert await con.fetchval(f'SELECT count(*) FROM "{table}"') == 0
    finally:
        await con.close()


async def test_rls_switched_on_later_adds_the_policy_to_an_existing_table(rls_db):
    """A tenant table created without RLS gets the policy when a DataFlow with
    tenant_isolation="rls" first uses it (auto-migrate), and raw SQL is then confined."""
    _, _, admin, url = rls_db
    table = f"t_rls_late_{uuid.uuid4().hex[:8]}"

    def make(**kw):
        db = DataFlow(url, multi_tenant=True, pool_size=2, **kw)

        @db.model
        class Memo:
            body: str
            __tablename__ = table
        return db

    plain = make()
    try:
        for t in ("acme", "beta"):
            async with plain.tenant(t):
                await plain.express.create("Memo", {"body": f"of {t}"})
        assert await admin.fetchval("SELECT relrowsecurity FROM pg_class WHERE relname = $1", table) is False
    finally:
        await plain.close_async()
    rls = make(tenant_isolation="rls")
    try:
        from dataflow.migrations.apply import plan
        assert [o.action for o in await plan(rls)] == ["enable_rls"]
        await rls.initialize()
        async with rls.tenant("beta"):
            assert await rls.execute_raw(f'SELECT "body" FROM "{table}"') == [("of beta",)]
        row = await admin.fetchrow("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1",
                                   table)
        assert tuple(row) == (True, True)
        assert not (await plan(rls)).operations
    finally:
        async with rls.all_tenants():
            await rls.execute_raw(f'DROP TABLE IF EXISTS "{table}"')
        await rls.close_async()
