"""_native.copybin against a real PostgreSQL: golden bytes from the server, and round trips.

Golden: the server's own ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` must equal our encoding
of the same value.  Round trips: our bytes -> ``COPY FROM`` -> SELECT / ``COPY TO`` -> ``decode``.
Skipped when the server is unreachable, unless CI=true (then it fails).
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import struct
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from dataflow.testing.fixtures import pgvector_server  # noqa: F401  (a fixture)
from tests.native.conftest import impl, load_impl  # noqa: F401  (impl is a fixture)

asyncpg = pytest.importorskip("asyncpg")

URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
UTC = timezone.utc
pytestmark = pytest.mark.postgres


async def _probe():
    conn = await asyncpg.connect(URL, timeout=5)
    await conn.close()


@pytest.fixture(scope="module")
def server():
    try:
        asyncio.run(_probe())
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL at {URL} unreachable and CI=true: {exc!r}")
        pytest.skip(f"PostgreSQL at {URL} unreachable: {exc!r}")
    return URL


def run(coro_fn, url=None):
    async def main():
        conn = await asyncpg.connect(url or URL)
        try:
            return await coro_fn(conn)
        finally:
            await conn.close()
    return asyncio.run(main())


def table_name():
    return f"copybin_{uuid.uuid4().hex[:12]}"


async def server_copy(conn, query: str) -> bytes:
    out = io.BytesIO()
    await conn.copy_from_query(query, output=out, format="binary")
    return out.getvalue()


# ----------------------------------------------------------------------------- golden bytes

GOLDEN = [
    ("int2", -32768, "(-32768)::int2"),
    ("int2", 32767, "32767::int2"),
    ("int4", -2147483648, "(-2147483648)::int4"),
    ("int4", 0, "0::int4"),
    ("int8", 2 ** 63 - 1, "9223372036854775807::int8"),
    ("int8", -(2 ** 63), "(-9223372036854775808)::int8"),
    ("float4", 1.5, "1.5::float4"),
    ("float4", math.nan, "'NaN'::float4"),
    ("float4", math.inf, "'Infinity'::float4"),
    ("float4", 3.4028234663852886e38, "'3.4028235e38'::float4"),
    ("float4", 1e-45, "'1e-45'::float4"),
    ("float8", -0.0, "'-0'::float8"),
    ("float8", 0.1, "0.1::float8"),
    ("float8", 5e-324, "'4.9406564584124654e-324'::float8"),
    ("float8", 1.7976931348623157e308, "'1.7976931348623157e308'::float8"),
    ("float8", math.nan, "'NaN'::float8"),
    ("float8", -math.inf, "'-Infinity'::float8"),
    ("bool", True, "true"),
    ("bool", False, "false"),
    ("text", "", "''::text"),
    ("text", "héllo ☃ 𝄞 it's", "'héllo ☃ 𝄞 it''s'::text"),
    ("bytea", b"\x00\xff\x10", "'\\x00ff10'::bytea"),
    ("bytea", b"", "''::bytea"),
    ("timestamptz", datetime(2020, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), "'2020-05-06 07:08:09.123456+00'::timestamptz"),
    ("timestamptz", datetime(2020, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
     "'2020-01-01 12:00:00+05:30'::timestamptz"),
    ("timestamptz", datetime(1, 1, 1, tzinfo=UTC), "'0001-01-01 00:00:00+00'::timestamptz"),
    ("timestamptz", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "'9999-12-31 23:59:59.999999+00'::timestamptz"),
    ("timestamp", datetime(1999, 12, 31, 23, 59, 59, 999999), "'1999-12-31 23:59:59.999999'::timestamp"),
    ("timestamp", datetime(1, 1, 1), "'0001-01-01'::timestamp"),
    ("date", date(1, 1, 1), "'0001-01-01'::date"),
    ("date", date(2000, 1, 1), "'2000-01-01'::date"),
    ("date", date(9999, 12, 31), "'9999-12-31'::date"),
    ("numeric", Decimal("1.500"), "1.500::numeric"),
    ("numeric", Decimal("-12345.6789"), "(-12345.6789)::numeric"),
    ("numeric", Decimal("0.00"), "0.00::numeric"),
    ("numeric", Decimal("-0"), "'-0'::numeric"),
    ("numeric", Decimal("1E+5"), "100000::numeric"),
    ("numeric", Decimal("1.50E+3"), "'1.50E+3'::numeric"),
    ("numeric", Decimal("0.0001"), "0.0001::numeric"),
    ("numeric", Decimal("1E-100"), "'1e-100'::numeric"),
    ("numeric", Decimal("NaN"), "'NaN'::numeric"),
    ("numeric", 10 ** 20, "100000000000000000000::numeric"),
    ("numeric", Decimal("123456789012345678901234567890.123456789012345678901234567890"),
     "123456789012345678901234567890.123456789012345678901234567890::numeric"),
    ("numeric", Decimal("-0.000000000000000000000000000001"), "(-0.000000000000000000000000000001)::numeric"),
    ("numeric", Decimal("9999.9999"), "9999.9999::numeric"),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678"), "'12345678-1234-5678-1234-567812345678'::uuid"),
    ("uuid", "00000000-0000-0000-0000-000000000000", "'00000000-0000-0000-0000-000000000000'::uuid"),
    ("jsonb", '{"a": 1, "b": [true, null]}', "'{\"a\": 1, \"b\": [true, null]}'::jsonb"),
    ("json", '{"b":[1,2]}', "'{\"b\":[1,2]}'::json"),
    ("json", {"b": [1, 2]}, "'{\"b\":[1,2]}'::json"),
    ("text", None, "NULL::text"),
]


@pytest.mark.parametrize("t,value,sql", GOLDEN, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOLDEN)])
def test_golden_bytes_match_server(server, impl, t, value, sql):
    m = load_impl("copybin", impl)
    expected = run(lambda conn: server_copy(conn, f"SELECT {sql}"))
    assert m.encode_rows([(value,)], [t]) == expected
    decoded = m.decode(expected, [t])[0][0]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(decoded)
    elif t == "numeric" and isinstance(value, Decimal) and value.is_nan():
        assert decoded.is_nan()
    elif t in ("json", "jsonb"):
        assert decoded == (orjson.loads(value) if isinstance(value, str) else value)
    elif t == "uuid":
        assert decoded == uuid.UUID(str(value))
    else:
        assert decoded == _expected(t, value)
        assert type(decoded) is type(value) or t == "numeric"
    if t == "numeric" and isinstance(value, Decimal) and not value.is_nan() and value.as_tuple().exponent <= 0:
        assert str(decoded) == str(value.copy_abs() if value.is_zero() else value)


# ----------------------------------------------------------------------------- round trips

COLUMNS = [("id", "int4"), ("c_int2", "int2"), ("c_int8", "int8"), ("c_float4", "float4"),
           ("c_float8", "float8"), ("c_bool", "bool"), ("c_text", "text"), ("c_bytea", "bytea"),
           ("c_tstz", "timestamptz"), ("c_ts", "timestamp"), ("c_date", "date"),
           ("c_numeric", "numeric"), ("c_uuid", "uuid"), ("c_jsonb", "jsonb"), ("c_json", "json")]
NAMES = [c for c, _ in COLUMNS]
TYPES = [t for _, t in COLUMNS]

ROWS = [
    (0, -32768, -(2 ** 63), -3.4028234663852886e38, -1.7976931348623157e308, False, "", b"",
     datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 1), date(1, 1, 1), Decimal("-0.000000000000000000001"),
     uuid.UUID(int=0), {}, []),
    (1, 32767, 2 ** 63 - 1, 3.4028234663852886e38, 1.7976931348623157e308, True, "x" * 10000, bytes(range(256)),
     datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999),
     date(9999, 12, 31), Decimal("99999999999999999999999999999999999999.99999999999999999999"),
     uuid.UUID(int=2 ** 128 - 1), {"nested": {"list": [1, 2.5, "s", None, True]}}, {"k": "é☃"}),
    (2, 0, 0, math.nan, math.inf, False, "NUL-free ünïcødé 𝄞", b"\x00", datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=-8))),
     datetime(2000, 1, 1), date(2000, 1, 1), Decimal("NaN"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "[1, 2]", b'{"raw": true}'),
    (3, 1, -1, 1e-45, 5e-324, True, "'quoted' \\ \t\n", memoryview(b"mv"), datetime(2024, 2, 29, 12, tzinfo=UTC),
     datetime(2024, 2, 29, 12), date(2024, 2, 29), 10 ** 40, uuid.uuid4(), [1, [2, [3]]], "null"),
    (4,) + (None,) * 14,
]


def _expected(t, v):
    """What the server gives back for input ``v`` of type ``t`` (asyncpg's decoding)."""
    if v is None:
        return None
    if t == "float4":
        return struct.unpack(">f", struct.pack(">f", v))[0]
    if t == "bytea":
        return bytes(v)
    if t == "uuid":
        return uuid.UUID(str(v))
    if t == "numeric":
        return Decimal(v)
    if t in ("json", "jsonb"):
        return orjson.loads(v) if isinstance(v, (str, bytes)) else v
    return v


def _same(a, b):
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    if isinstance(b, Decimal) and b.is_nan():
        return isinstance(a, Decimal) and a.is_nan()
    return a == b


def _check_rows(got_rows, json_is_text):
    assert len(got_rows) == len(ROWS)
    for got, want in zip(got_rows, ROWS):
        for (name, t), a, v in zip(COLUMNS, got, want):
            if json_is_text and t in ("json", "jsonb") and a is not None:
                a = orjson.loads(a)
            assert _same(a, _expected(t, v)), (name, a, v)


async def _round_trip(conn, m, source_bytes_or_iter):
    name = table_name()
    cols = ", ".join(f"{c} {t}" for c, t in COLUMNS)
    await conn.execute(f"CREATE TEMP TABLE {name} ({cols})")
    try:
        await conn.copy_to_table(name, source=source_bytes_or_iter, columns=NAMES, format="binary")
        fetched = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {name} ORDER BY id")]
        exported = await server_copy(conn, f"SELECT * FROM {name} ORDER BY id")
        return fetched, exported
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")


def test_round_trip_encode_rows(server, impl):
    m = load_impl("copybin", impl)
    data = m.encode_rows(ROWS, TYPES)
    fetched, exported = run(lambda conn: _round_trip(conn, m, io.BytesIO(data)))
    _check_rows(fetched, json_is_text=True)
    _check_rows(m.decode(exported, TYPES), json_is_text=False)


def test_round_trip_dict_rows_and_chunks(server, impl):
    m = load_impl("copybin", impl)
    dict_rows = [{k: v for k, v in zip(NAMES, r) if v is not None} for r in ROWS]

    async def chunks():
        for chunk in m.iter_chunks(dict_rows, TYPES, NAMES, chunk_bytes=512):
            yield chunk
    fetched, exported = run(lambda conn: _round_trip(conn, m, chunks()))
    _check_rows(fetched, json_is_text=True)
    _check_rows(m.decode(exported, TYPES), json_is_text=False)


def test_round_trip_columns_numpy(server, impl):
    np = pytest.importorskip("numpy")
    m = load_impl("copybin", impl)
    n = 10000
    ids = np.arange(n, dtype=np.int64)
    vals = np.linspace(-1e6, 1e6, n)
    flags = ids % 3 == 0
    data = m.encode_columns([ids, ids.astype(np.int32) - 5000, vals, vals.astype(np.float32), flags,
                             [f"t{i}" for i in range(n)]],
                            ["int8", "int4", "float8", "float4", "bool", "text"])

    async def go(conn):
        name = table_name()
        await conn.execute(f"CREATE TEMP TABLE {name} (a int8, b int4, c float8, d float4, e bool, f text)")
        try:
            await conn.copy_to_table(name, source=io.BytesIO(data), format="binary")
            return await conn.fetchrow(f"SELECT count(*), sum(a), sum(b), sum(c), sum(d::float8), "
                                       f"count(*) FILTER (WHERE e), max(f) FROM {name}")
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
    row = run(go)
    assert row[0] == n and row[1] == int(ids.sum()) and row[2] == int((ids - 5000).sum())
    assert row[3] == pytest.approx(float(vals.sum()), abs=1e-3)
    assert row[4] == pytest.approx(float(vals.astype(np.float32).astype(np.float64).sum()), abs=1e-3)
    assert row[5] == int(flags.sum()) and row[6] == "t9999"


def test_server_rejects_nothing_we_accept_for_extremes(server, impl):
    """Values at the edge of what we accept load without a server error (numeric scale/weight)."""
    m = load_impl("copybin", impl)
    values = [Decimal("1E-16383"), Decimal("9" * 1000), Decimal("-" + "1" * 500 + "." + "2" * 500)]
    data = m.encode_rows([(v,) for v in values], ["numeric"])

    async def go(conn):
        name = table_name()
        await conn.execute(f"CREATE TEMP TABLE {name} (v numeric)")
        try:
            await conn.copy_to_table(name, source=io.BytesIO(data), format="binary")
            got = [r[0] for r in await conn.fetch(f"SELECT v FROM {name}")]
            exported = await server_copy(conn, f"SELECT v FROM {name}")
            return got, exported
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
    got, exported = run(go)
    assert got == values
    assert exported == data
    assert [r[0] for r in m.decode(exported, ["numeric"])] == values


# ----------------------------------------------------------------------------- vector (pgvector)

VECTOR_EXPECTED = (b"\x00\x01" + (12 + 4).to_bytes(4, "big") + b"\x00\x03\x00\x00"
                   + b"\x3f\x80\x00\x00" + b"\xc0\x00\x00\x00" + b"\x3e\x80\x00\x00")


def test_vector_layout_hand_computed(impl):
    m = load_impl("copybin", impl)
    assert m.encode_rows([([1.0, -2, 0.25],)], ["vector"]) == m.HEADER + VECTOR_EXPECTED + m.TRAILER


def test_vector_server(pgvector_server, impl):
    """Golden bytes and a round trip against a PostgreSQL with pgvector (started in a temp dir
    by dataflow.testing, or DATAFLOW_TEST_PGVECTOR_URL)."""
    m = load_impl("copybin", impl)

    async def go(conn):
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        expected = await server_copy(conn, "SELECT '[1,-2,0.25]'::vector")
        name = table_name()
        await conn.execute(f"CREATE TEMP TABLE {name} (v vector(3))")
        try:
            await conn.copy_to_table(name, source=io.BytesIO(m.encode_rows([([1.0, -2, 0.25],)], ["vector"])),
                                     format="binary")
            text = await conn.fetchval(f"SELECT v::text FROM {name}")
            return expected, text
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
    result = run(go, pgvector_server)
    expected, text = result
    assert expected == m.HEADER + VECTOR_EXPECTED + m.TRAILER
    assert text == "[1,-2,0.25]"
