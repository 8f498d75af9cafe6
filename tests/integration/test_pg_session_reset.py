"""PostgreSQL: a pooled connection skips asyncpg's reset query only after plain statements, and
never hands session state to the next borrower (real PostgreSQL, issue 22).

asyncpg resets every returned connection with one more round trip (RESET ALL, unlock advisory
locks, UNLISTEN, CLOSE ALL).  The driver skips it when the connection ran only statements that
cannot have changed the session (``postgresql._session_kept``).  The property is checked
adversarially: with a pool of one connection, hypothesis interleaves plain operations with
every way we know to change a session -- SET and set_config by every path (raw SQL, raw SQL in
a transaction, driver-level SQL, a borrowed connection, a function that hides the change,
``SELECT 1; SET ...`` in one string, a leading comment), advisory locks, LISTEN -- and after each
step the next borrower must find the session exactly as a new connection has it."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow import DataFlow

from .conftest import PG_URL, _reachable

pytestmark = pytest.mark.skipif(not _reachable(PG_URL), reason="PostgreSQL not reachable")

# what the next borrower sees of the session; every field has a default a new connection shows
PROBE = ("SELECT current_setting('application_name'), current_setting('statement_timeout'), "
         "coalesce(current_setting('dataflow_test.mark', true), ''), "  # RESET ALL leaves a placeholder ''

         "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), "
         "(SELECT count(*) FROM pg_listening_channels())")


def _changers(fn: str, table: str) -> dict:
    """name -> async f(db): one way of changing the session, each through a different path."""
    async def raw(db, sql):
        await db.execute_raw(sql)

    async def in_tx(db, sql, how):
        async with db.transaction() as tx:
            await getattr(tx, how)(sql)

    async def driver_level(db, sql):
        await db.driver.execute(sql)

    async def borrowed(db, sql):
        async with db.driver.connection() as con:
            await con.execute(sql)

    async def borrowed_in_tx(db, sql):
        async with db.transaction():
            async with db.driver.connection() as con:
                await con.execute(sql)

    return {
        "raw SET": lambda db: raw(db, "SET application_name = 'leak'"),
        "raw set_config": lambda db: raw(db, "SELECT set_config('application_name', 'leak', false)"),
        "raw custom GUC": lambda db: raw(db, "SELECT set_config('dataflow_test.mark', 'leak', false)"),
        "raw advisory lock": lambda db: raw(db, "SELECT pg_advisory_lock(4242)"),
        "raw LISTEN": lambda db: raw(db, "LISTEN leak_channel"),
        "raw hidden in a function": lambda db: raw(db, f"SELECT {fn}()"),
        "raw two statements": lambda db: raw(db, f"UPDATE {table} SET name = name WHERE false; "
                                                  f"SET statement_timeout = 4321"),
        "tx SET": lambda db: in_tx(db, "SET application_name = 'leak'", "execute"),
        "tx set_config": lambda db: in_tx(db, "SELECT set_config('dataflow_test.mark', 'leak', false)", "fetch"),
        "tx hidden in a function": lambda db: in_tx(db, f"SELECT {fn}()", "fetchrow"),
        "tx advisory lock": lambda db: in_tx(db, "SELECT pg_advisory_lock(4243)", "fetch"),
        "driver SET": lambda db: driver_level(db, "SET statement_timeout = 1234"),
        "driver schema-qualified set_config":
            lambda db: driver_level(db, "select pg_catalog.set_config('application_name', 'leak', false)"),
        "driver two statements": lambda db: driver_level(db, "SELECT 1;SET application_name = 'leak'"),
        "driver comment first": lambda db: driver_level(db, "/* hi */ SET application_name = 'leak'"),
        "driver shared advisory lock": lambda db: driver_level(db, "SELECT pg_advisory_lock_shared(7)"),
        "borrowed connection": lambda db: borrowed(db, "SET application_name = 'leak'"),
        "borrowed inside a transaction": lambda db: borrowed_in_tx(db, "SET application_name = 'leak'"),
    }


async def _plain_ops(db, i):
    """Plain operations (the statements that skip the reset)."""
    x = db.express
    row = await x.create("Sess", {"name": f"n{i}"})
    assert (await x.read("Sess", row["id"]))["name"] == f"n{i}"
    await x.update("Sess", row["id"], {"name": f"m{i}"})
    assert len(await x.list("Sess", {"name": f"m{i}"})) == 1
    async with db.transaction() as tx:
        await x.create("Sess", {"name": f"t{i}"})
    await x.delete("Sess", row["id"])


@pytest.fixture
def env(tmp_path):
    """A DataFlow with ONE pooled connection (every borrower gets the same session), the
    session-changing function, and the fresh-session defaults to compare against."""
    suffix = uuid.uuid4().hex[:8]
    fn, table = f"df_hidden_set_{suffix}", f"sess_{suffix}"
    loop = asyncio.new_event_loop()
    db = DataFlow(PG_URL, pool_size=1)

    @db.model
    class Sess:
        name: str
        __tablename__ = table

    async def setup():
        await db.initialize()
        await db.execute_raw(
            f"CREATE FUNCTION {fn}() RETURNS int LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM set_config('application_name', 'leak', false); "
            f"PERFORM set_config('dataflow_test.mark', 'leak', false); RETURN 1; END $$")
        return await db.driver.fetchrow(PROBE)

    fresh = loop.run_until_complete(setup())
    assert fresh[3] == 0 and fresh[4] == 0 and fresh[0] != "leak"
    yield loop, db, (fn, table), tuple(fresh)

    async def teardown():
        await db.execute_raw(f"DROP FUNCTION IF EXISTS {fn}()")
        await db.execute_raw(f"DROP TABLE IF EXISTS {table}")
        await db.close_async()
    loop.run_until_complete(teardown())
    loop.close()


def test_every_changer_is_reset_for_the_next_borrower(env):
    loop, db, fn, fresh = env
    for name, change in _changers(*fn).items():
        loop.run_until_complete(change(db))
        after = tuple(loop.run_until_complete(db.driver.fetchrow(PROBE)))
        assert after == fresh, f"{name}: the next borrower saw {after}, a fresh session shows {fresh}"


def test_interleaved_sequences_never_leak(env):
    loop, db, fn, fresh = env
    changers = _changers(*fn)
    steps = st.lists(st.one_of(st.sampled_from(sorted(changers)), st.just("plain")), min_size=1, max_size=8)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(steps)
    def run(seq):
        for i, step in enumerate(seq):
            if step == "plain":
                loop.run_until_complete(_plain_ops(db, i))
            else:
                loop.run_until_complete(changers[step](db))
            after = tuple(loop.run_until_complete(db.driver.fetchrow(PROBE)))
            assert after == fresh, f"after {seq[:i + 1]}: {after} != {fresh}"

    run()


def test_plain_statements_skip_the_reset_query(env):
    """Seen from another connection: after plain statements the backend's last query is ours,
    after raw SQL it is asyncpg's reset query."""
    import asyncpg

    loop, db, fn, fresh = env

    async def check():
        watcher = await asyncpg.connect(PG_URL)
        try:
            (pid,) = await db.driver.fetchrow("SELECT pg_backend_pid()")
            last = "SELECT query FROM pg_stat_activity WHERE pid = $1"
            row = await db.express.create("Sess", {"name": "x"})
            await db.express.read("Sess", row["id"])
            assert (await watcher.fetchval(last, pid)).startswith("SELECT"), "a plain read was followed by a reset"
            async with db.transaction():
                await db.express.update("Sess", row["id"], {"name": "y"})
            assert await watcher.fetchval(last, pid) == "COMMIT"
            await db.execute_raw("SELECT 1")  # raw: reset after it
            assert "RESET ALL" in await watcher.fetchval(last, pid)
        finally:
            await watcher.close()

    loop.run_until_complete(check())


@pytest.mark.parametrize("sql,kept", [
    ("SELECT 1", True), ("  insert into t values ($1)", True), ("WITH a AS (SELECT 1) SELECT * FROM a", True),
    ("BEGIN ISOLATION LEVEL SERIALIZABLE", True), ("SAVEPOINT sp_1", True), ("ROLLBACK TO SAVEPOINT sp_1", True),
    ("SELECT 1;", True), ("SELECT 1;\n", True),
    ("SET search_path TO x", False), ("RESET ALL", False), ("LISTEN c", False), ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", False),
    ("PREPARE p AS SELECT 1", False), ("CREATE TEMP TABLE t (a int)", False), ("DO $$ BEGIN END $$", False),
    ("CALL p()", False), ("SELECT set_config('a.b', '1', false)", False), ("SELECT PG_ADVISORY_LOCK(1)", False),
    ("SELECT pg_try_advisory_lock(1)", False), ("SELECT dblink_connect('x')", False),
    ("SELECT 1; SET a = 1", False), ("-- c\nSET a = 1", False), ("/* c */ SELECT 1", False),
    ("SELECTED", False), ("", False),
])
def test_classification(sql, kept):
    from dataflow.drivers.postgresql import _session_kept

    assert _session_kept(sql) is kept


def test_raw_sql_is_never_kept():
    from dataflow.drivers.base import RAW_SQL
    from dataflow.drivers.postgresql import _session_kept

    token = RAW_SQL.set(True)
    try:
        assert not _session_kept("SELECT 1")
    finally:
        RAW_SQL.reset(token)
    assert _session_kept("SELECT 1")


def test_a_trigger_on_a_model_table_turns_the_skip_off(tmp_path):
    """A trigger runs inside DataFlow's own plain INSERT, where no statement text shows what it
    does: a model table with a trigger makes the driver reset every connection again.  The
    control (the skip forced back on) shows the leak the check prevents."""
    suffix = uuid.uuid4().hex[:8]
    table, fn = f"trig_{suffix}", f"df_trig_set_{suffix}"
    loop = asyncio.new_event_loop()

    def make():
        db = DataFlow(PG_URL, pool_size=1)

        @db.model
        class Trig:
            name: str
            __tablename__ = table
        return db

    async def run():
        first = make()
        await first.initialize()
        fresh = tuple(await first.driver.fetchrow(PROBE))
        await first.execute_raw(
            f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM set_config('application_name', 'leak', false); RETURN NEW; END $$")
        await first.execute_raw(f"CREATE TRIGGER t_{suffix} BEFORE INSERT ON {table} "
                                f"FOR EACH ROW EXECUTE FUNCTION {fn}()")
        await first.close_async()
        db = make()
        try:
            await db.initialize()
            assert db.driver.keep_sessions is False
            await db.express.create("Trig", {"name": "a"})
            assert tuple(await db.driver.fetchrow(PROBE)) == fresh
            db.driver.keep_sessions = True          # the control: what the check prevents
            await db.express.create("Trig", {"name": "b"})
            leaked = tuple(await db.driver.fetchrow(PROBE))
            assert leaked[0] == "leak", leaked
        finally:
            await db.execute_raw(f"DROP TABLE IF EXISTS {table}")
            await db.execute_raw(f"DROP FUNCTION IF EXISTS {fn}()")
            await db.close_async()
        plain = make()                              # no trigger: the skip is on
        try:
            await plain.initialize()
            assert plain.driver.keep_sessions is True
        finally:
            await plain.execute_raw(f"DROP TABLE IF EXISTS {table}")
            await plain.close_async()

    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
