"""The MySQL driver's own literals and result converters (``drivers/mysql_text``) against
pymysql's, on the real MariaDB: the same SQL text for every value, the same Python values back.

The driver sends statements without aiomysql's cursor and formats/parses datetimes in C
(issue 22); this is the check that nothing a user can see changed: hypothesis draws values of
every type a parameter can have (strings with quotes, backslashes and NULs; huge ints; dates
from year 1 to 9999 with and without microseconds), with the server in its default mode and in
NO_BACKSLASH_ESCAPES.  Then values round-trip through the server, read by our driver and by a
plain aiomysql cursor with pymysql's default converters, and a procedure's several result sets
leave the connection usable."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymysql import converters as C

from dataflow import DataFlow
from dataflow.drivers import mysql_text as T

from .conftest import _backend_url

_naive = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999))
_values = st.one_of(
    st.text(), st.text(alphabet="'\"\\\x00\n\r\x1a%s abc"), st.integers(), st.integers(-2**70, 2**70),
    st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.none(), _naive, st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False, places=6), st.binary(max_size=20),
    st.datetimes(timezones=st.just(dt.timezone.utc)), st.timedeltas(max_value=dt.timedelta(days=30)))


@pytest.fixture(scope="module")
def con():
    """One raw aiomysql connection (its escape_string honours the server's backslash mode)."""
    import aiomysql

    from .conftest import MY_URL, _reachable

    if not _reachable(MY_URL):
        pytest.skip("MariaDB not reachable")
    loop = asyncio.new_event_loop()
    c = loop.run_until_complete(aiomysql.connect(host="127.0.0.1", port=3306, user="root", db="test",
                                                 autocommit=True, charset="utf8mb4"))
    c.run = loop.run_until_complete
    yield c
    c.close()
    loop.close()


@pytest.mark.parametrize("mode", ["default", "NO_BACKSLASH_ESCAPES"])
def test_literals_are_pymysqls(con, mode):
    con.run(con.query("SET SESSION sql_mode = " + ("'NO_BACKSLASH_ESCAPES'" if mode != "default" else "DEFAULT")))
    assert bool(con.server_status & 512) == (mode != "default")  # SERVER_STATUS_NO_BACKSLASH_ESCAPES

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(_values, max_size=6))
    def check(values):
        for v in values:
            assert T.literal(con, v) == con.escape(v), v
        sql = "SELECT " + ", ".join(["%s"] * len(values)) + " -- 100%%" if values else "SELECT 1 -- 100%%"
        expect = sql % tuple(con.escape(v) for v in values) if values else sql
        assert T.interpolate(con, sql, values) == expect
        assert T.interpolate(con, sql, tuple(values)) == expect

    try:
        check()
    finally:
        con.run(con.query("SET SESSION sql_mode = DEFAULT"))


@settings(max_examples=800, deadline=None)
@given(_naive, st.integers(0, 6))
def test_datetime_text_parsed_as_pymysql_does(value, digits):
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if digits:
        text += "." + f"{value.microsecond:06d}"[:digits]
    assert T._datetime(text) == C.convert_datetime(text)
    assert T._date(text[:10]) == C.convert_date(text[:10])


@pytest.mark.parametrize("text", ["0000-00-00 00:00:00", "2026-02-30 10:00:00", "2026-00-01 00:00:00",
                                  "0000-00-00", "2026-13-01"])
def test_invalid_dates_come_back_as_pymysql_gives_them(text):
    conv = T._datetime if " " in text else T._date
    ref = C.convert_datetime if " " in text else C.convert_date
    assert conv(text) == ref(text)
    assert isinstance(conv(text), str)


async def test_values_round_trip_like_the_plain_cursor(tmp_path, tables):
    """Written through our literals, read by our driver and by a plain cursor (pymysql's
    converters): the same Python values, for the edge cases of every type."""
    import aiomysql

    db = DataFlow(_backend_url("mysql", tmp_path))
    t = tables("mytext")
    rows = [
        (1, "it's a \\ \"test\" \x00 %s %%", 2**62, 1.5e-300, True, dt.datetime(1, 1, 1), dt.date(9999, 12, 31),
         Decimal("-123456.000001"), b"\x00\xff'\\", dt.datetime(2026, 12, 7, 12, 0, 0, 1)),
        (2, "", -2**63, -0.0, False, dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.date(1000, 1, 1),
         Decimal("0"), b"", dt.datetime(2038, 1, 19, 3, 14, 7)),
        (3, None, None, None, None, None, None, None, None, None),
    ]
    raw = None
    try:
        await db.execute_raw(f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(100), i BIGINT, f DOUBLE, "
                             f"b TINYINT(1), d DATETIME(6), day DATE, n DECIMAL(20,6), bl VARBINARY(20), "
                             f"ts TIMESTAMP(6) NULL)")
        for r in rows:
            assert await db.execute_raw(f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", *r) == 1
        ours = await db.execute_raw(f"SELECT * FROM {t} ORDER BY id")
        raw = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", db="test", autocommit=True,
                                     charset="utf8mb4")
        async with raw.cursor() as cur:
            await cur.execute(f"SET time_zone = '+00:00'")
            await cur.execute(f"SELECT * FROM {t} ORDER BY id")
            theirs = [tuple(r) for r in await cur.fetchall()]
        assert ours == theirs
        assert ours[0][1] == rows[0][1] and ours[0][5] == rows[0][5] and ours[1][5] == rows[1][5]
        assert ours[0][9] == rows[0][9] and type(ours[0][5]) is dt.datetime and type(ours[0][6]) is dt.date
    finally:
        if raw is not None:
            raw.close()
        await db.execute_raw(f"DROP TABLE IF EXISTS {t}")
        await db.close_async()


async def test_procedure_results_leave_the_connection_usable(tmp_path, tables):
    """A CALL answers with several results; the first is returned and the rest are read off, so
    the next statement on that (only) connection is not 'out of sync'."""
    db = DataFlow(_backend_url("mysql", tmp_path), pool_size=1)
    proc = tables("myproc")
    try:
        await db.execute_raw(f"CREATE PROCEDURE {proc}() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END")
        for _ in range(3):
            assert await db.execute_raw(f"CALL {proc}()") >= 0
            assert await db.execute_raw("SELECT 41 + 1") == [(42,)]
        assert await db.driver.fetch(f"CALL {proc}()") in ([(1,)], ((1,),))
        assert await db.execute_raw("SELECT 'still in sync'") == [("still in sync",)]
    finally:
        await db.execute_raw(f"DROP PROCEDURE IF EXISTS {proc}")
        await db.close_async()
