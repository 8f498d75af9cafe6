"""_native.params: bound forms per kind and dialect, refusals (type + message), decode round trips.

Every test runs against both implementations (the ``impl`` fixture).  Expected values and
messages are spelled out here, so the compiled module and the twin are each held to the contract,
not merely to each other (test_params_parity.py does the random cross-checking).
"""

from __future__ import annotations

import enum
import math
import sqlite3
import uuid
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.native.conftest import load_impl

UTC = timezone.utc
PG, MY, SL = 1, 2, 3
DIALECTS = (PG, MY, SL)
INT, FLOAT, BOOL, STR, BYTES, DATETIME, DATE, DECIMAL, UUID, JSON, VECTOR = range(1, 12)
U = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
NUL = "NUL character (\\x00) is not allowed in text"
SURR = "text contains a lone surrogate and is not valid Unicode"
NAIVE = "naive datetime (no tzinfo); attach a timezone, e.g. datetime.now(timezone.utc)"
NONFINITE = "NaN and Infinity cannot be stored faithfully on this database"


@pytest.fixture
def p(impl):
    return load_impl("params", impl)


def err(m, value, kind, dialect):
    with pytest.raises((TypeError, ValueError, OverflowError)) as info:
        m.coerce(value, kind, dialect)
    return type(info.value), str(info.value)


class Color(enum.IntEnum):
    RED = 3


class MyFloat(float):
    pass


class MyStr(str):
    pass


class NoOffset(tzinfo):
    def utcoffset(self, dt):
        return None


def nested_list(levels):
    v = []
    for _ in range(levels - 1):
        v = [v]
    return v


# -- module surface ------------------------------------------------------------------------------
PUBLIC = ("INT", "FLOAT", "BOOL", "STR", "BYTES", "DATETIME", "DATE", "DECIMAL", "UUID", "JSON",
          "VECTOR", "KIND_NAMES", "POSTGRESQL", "MYSQL", "SQLITE", "INT64_MIN", "INT64_MAX",
          "MYSQL_DECIMAL_SCALE", "MYSQL_DECIMAL_INT_DIGITS")
FUNCS = ("coerce", "coerce_row", "coerce_rows", "decode", "needs_decode", "decode_rows",
         "_check_text", "_check_json")


def test_constants_and_names(p):
    twin = load_impl("params", "python")
    for name in PUBLIC:
        assert getattr(p, name) == getattr(twin, name), name
    for name in FUNCS:
        assert callable(getattr(p, name))
    assert (p.INT, p.VECTOR, p.POSTGRESQL, p.SQLITE) == (1, 11, 1, 3)
    assert p.KIND_NAMES[p.DECIMAL] == "Decimal"


# -- accepted values and their bound form --------------------------------------------------------
ACCEPT = [
    (5, INT, {PG: 5, MY: 5, SL: 5}),
    (2 ** 63 - 1, INT, {d: 2 ** 63 - 1 for d in DIALECTS}),
    (-(2 ** 63), INT, {d: -(2 ** 63) for d in DIALECTS}),
    (Color.RED, INT, {d: 3 for d in DIALECTS}),
    (1.5, FLOAT, {d: 1.5 for d in DIALECTS}),
    (2, FLOAT, {d: 2.0 for d in DIALECTS}),
    (True, BOOL, {PG: True, MY: 1, SL: 1}),
    (False, BOOL, {PG: False, MY: 0, SL: 0}),
    ("héllo ☃ 😀", STR, {d: "héllo ☃ 😀" for d in DIALECTS}),
    ("'; DROP TABLE users; --", STR, {d: "'; DROP TABLE users; --" for d in DIALECTS}),
    ("", STR, {d: "" for d in DIALECTS}),
    (b"\x00ab", BYTES, {d: b"\x00ab" for d in DIALECTS}),
    (bytearray(b"ab"), BYTES, {d: b"ab" for d in DIALECTS}),
    (memoryview(b"abc")[1:], BYTES, {d: b"bc" for d in DIALECTS}),
    (datetime(2024, 5, 17, 12, 34, 56, 789012, tzinfo=UTC), DATETIME,
     {PG: datetime(2024, 5, 17, 12, 34, 56, 789012, tzinfo=UTC),
      MY: datetime(2024, 5, 17, 12, 34, 56, 789012), SL: "2024-05-17T12:34:56.789012+00:00"}),
    (datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))), DATETIME,
     {PG: datetime(2023, 12, 31, 19, 30, tzinfo=UTC), MY: datetime(2023, 12, 31, 19, 30),
      SL: "2023-12-31T19:30:00.000000+00:00"}),
    (datetime(2024, 7, 1, 8, 0, tzinfo=ZoneInfo("America/New_York")), DATETIME,
     {PG: datetime(2024, 7, 1, 12, 0, tzinfo=UTC), MY: datetime(2024, 7, 1, 12, 0),
      SL: "2024-07-01T12:00:00.000000+00:00"}),
    (datetime(1, 1, 1, tzinfo=UTC), DATETIME,
     {PG: datetime(1, 1, 1, tzinfo=UTC), MY: datetime(1, 1, 1), SL: "0001-01-01T00:00:00.000000+00:00"}),
    (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), DATETIME,
     {PG: datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
      MY: datetime(9999, 12, 31, 23, 59, 59, 999999), SL: "9999-12-31T23:59:59.999999+00:00"}),
    (date(2024, 2, 29), DATE, {PG: date(2024, 2, 29), MY: date(2024, 2, 29), SL: "2024-02-29"}),
    (date(1, 1, 1), DATE, {PG: date(1, 1, 1), MY: date(1, 1, 1), SL: "0001-01-01"}),
    (Decimal("1.50"), DECIMAL, {PG: Decimal("1.50"), MY: Decimal("1.50"), SL: "1.50"}),
    (7, DECIMAL, {PG: Decimal(7), MY: Decimal(7), SL: "7"}),
    (Decimal("9" * 35 + "." + "9" * 30), DECIMAL,
     {PG: Decimal("9" * 35 + "." + "9" * 30), MY: Decimal("9" * 35 + "." + "9" * 30), SL: "9" * 35 + "." + "9" * 30}),
    (U, UUID, {PG: U, MY: str(U), SL: str(U)}),
    (str(U).upper(), UUID, {PG: U, MY: str(U), SL: str(U)}),
    ("{" + str(U) + "}", UUID, {PG: U, MY: str(U), SL: str(U)}),
    ("urn:uuid:" + str(U), UUID, {PG: U, MY: str(U), SL: str(U)}),
    (U.hex, UUID, {PG: U, MY: str(U), SL: str(U)}),
    ({"a": [1, 2.5, None, True, "x"], "b": {"c": ()}}, JSON,
     {d: '{"a":[1,2.5,null,true,"x"],"b":{"c":[]}}' for d in DIALECTS}),
    ([1, "two"], JSON, {d: '[1,"two"]' for d in DIALECTS}),
    ("text", JSON, {d: '"text"' for d in DIALECTS}),
    (nested_list(65), JSON, {d: "[" * 65 + "]" * 65 for d in DIALECTS}),
    ([0.5, 2], VECTOR, {d: b"\x00\x00\x00?\x00\x00\x00@" for d in DIALECTS}),  # float32 LE
]


@pytest.mark.parametrize("value,kind,expected", ACCEPT, ids=lambda x: repr(x)[:40])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_accepted(p, value, kind, expected, dialect):
    got = p.coerce(value, kind, dialect)
    want = expected[dialect]
    assert type(got) is type(want)
    assert got == want
    if isinstance(want, datetime):
        assert (got.tzinfo is None) == (want.tzinfo is None)    # naive UTC only for MySQL
        if dialect == PG:
            assert got is value                                  # asyncpg binds the instant as given


@pytest.mark.parametrize("kind", range(1, 12))
@pytest.mark.parametrize("dialect", DIALECTS)
def test_none_passes_through(p, kind, dialect):
    assert p.coerce(None, kind, dialect) is None
    assert p.coerce(None, 99, dialect) is None
    assert p.decode(None, kind, dialect) is None


def test_same_object_where_nothing_changes(p):
    s, big = "abc", 10 ** 12
    assert p.coerce(s, STR, SL) is s
    assert p.coerce(big, INT, SL) is big
    dt = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    assert p.coerce(dt, DATETIME, PG) is dt


# -- refusals ------------------------------------------------------------------------------------
REJECT = [
    (True, INT, None, TypeError, "expected int, got bool"),
    (1.0, INT, None, TypeError, "expected int, got float"),
    (3.7, INT, None, TypeError, "expected int, got float"),
    ("1", INT, None, TypeError, "expected int, got str"),
    (Decimal(1), INT, None, TypeError, "expected int, got Decimal"),
    (2 ** 63, INT, None, ValueError, "integer out of range for a 64-bit column"),
    (-(2 ** 63) - 1, INT, None, ValueError, "integer out of range for a 64-bit column"),
    (10 ** 100, INT, None, ValueError, "integer out of range for a 64-bit column"),
    (True, FLOAT, None, TypeError, "expected float, got bool"),
    ("1.5", FLOAT, None, TypeError, "expected float, got str"),
    (Decimal("1.5"), FLOAT, None, TypeError, "expected float, got Decimal"),
    (MyFloat(1.5), FLOAT, None, TypeError, "expected float, got MyFloat"),
    (10 ** 400, FLOAT, None, ValueError, "integer too large to convert to float"),
    (math.nan, FLOAT, (MY, SL), ValueError, NONFINITE),
    (math.inf, FLOAT, (MY, SL), ValueError, NONFINITE),
    (-math.inf, FLOAT, (MY, SL), ValueError, NONFINITE),
    (1, BOOL, None, TypeError, "expected bool, got int"),
    (0, BOOL, None, TypeError, "expected bool, got int"),
    ("true", BOOL, None, TypeError, "expected bool, got str"),
    ("a\x00b", STR, None, ValueError, NUL),
    ("\x00", STR, None, ValueError, NUL),
    ("é\x00", STR, None, ValueError, NUL),
    ("☃\x00", STR, None, ValueError, NUL),
    ("😀\x00", STR, None, ValueError, NUL),
    ("\ud800", STR, None, ValueError, SURR),
    ("ok \udfff", STR, None, ValueError, SURR),
    ("😀\ud83d", STR, None, ValueError, SURR),
    ("\ud800\x00", STR, None, ValueError, NUL),
    (b"x", STR, None, TypeError, "expected str, got bytes"),
    (MyStr("x"), STR, None, TypeError, "expected str, got MyStr"),
    (5, STR, None, TypeError, "expected str, got int"),
    ("x", BYTES, None, TypeError, "expected bytes, got str"),
    ([1], BYTES, None, TypeError, "expected bytes, got list"),
    (datetime(2024, 1, 1), DATETIME, None, ValueError, NAIVE),
    (datetime(2024, 1, 1, tzinfo=NoOffset()), DATETIME, None, ValueError, NAIVE),
    (date(2024, 1, 1), DATETIME, None, TypeError, "expected datetime, got date"),
    ("2024-01-01T00:00:00+00:00", DATETIME, None, TypeError, "expected datetime, got str"),
    (1700000000, DATETIME, None, TypeError, "expected datetime, got int"),
    (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), DATETIME, (MY, SL), ValueError,
     "datetime out of range when converted to UTC"),
    (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))), DATETIME, (MY, SL), ValueError,
     "datetime out of range when converted to UTC"),
    (datetime(2024, 1, 1, tzinfo=UTC), DATE, None, TypeError, "expected date, got datetime"),
    ("2024-01-01", DATE, None, TypeError, "expected date, got str"),
    (1.5, DECIMAL, None, TypeError, "expected Decimal or int, got float (floats are inexact; use Decimal)"),
    (True, DECIMAL, None, TypeError, "expected Decimal or int, got bool (floats are inexact; use Decimal)"),
    ("1.5", DECIMAL, None, TypeError, "expected Decimal or int, got str (floats are inexact; use Decimal)"),
    (Decimal("NaN"), DECIMAL, (MY, SL), ValueError, "non-finite Decimal cannot be stored on this database"),
    (Decimal("Infinity"), DECIMAL, None, ValueError, "non-finite Decimal cannot be stored on this database"),
    (Decimal("-Infinity"), DECIMAL, None, ValueError, "non-finite Decimal cannot be stored on this database"),
    (Decimal("0." + "1" * 31), DECIMAL, (MY,), ValueError, "Decimal has more than 30 digits after the point"),
    (Decimal("1" * 36), DECIMAL, (MY,), ValueError, "Decimal has more than 35 digits before the point"),
    (Decimal("1E+35"), DECIMAL, (MY,), ValueError, "Decimal has more than 35 digits before the point"),
    ("not-a-uuid", UUID, None, ValueError, "not a valid UUID string"),
    (str(U)[:-1] + "g", UUID, None, ValueError, "not a valid UUID string"),
    ("", UUID, None, ValueError, "not a valid UUID string"),
    (U.int, UUID, None, TypeError, "expected UUID, got int"),
    (U.bytes, UUID, None, TypeError, "expected UUID, got bytes"),
    ({"a": math.nan}, JSON, None, ValueError, "NaN and Infinity cannot be stored in JSON"),
    ([math.inf], JSON, None, ValueError, "NaN and Infinity cannot be stored in JSON"),
    ({"a\x00": 1}, JSON, None, ValueError, NUL),
    ({"a": "b\x00"}, JSON, None, ValueError, NUL),
    (["\ud800"], JSON, None, ValueError, SURR),
    ({"\udc00": 1}, JSON, None, ValueError, SURR),
    ({1: "a"}, JSON, None, TypeError, "JSON object keys must be str, got int"),
    ({None: "a"}, JSON, None, TypeError, "JSON object keys must be str, got NoneType"),
    ({MyStr("k"): 1}, JSON, None, TypeError, "JSON object keys must be str, got MyStr"),
    ({"a": {1, 2}}, JSON, None, TypeError,
     "set is not JSON-serializable (use dict, list, str, int, float, bool or None)"),
    (datetime(2024, 1, 1, tzinfo=UTC), JSON, None, TypeError,
     "datetime is not JSON-serializable (use dict, list, str, int, float, bool or None)"),
    ([Decimal(1)], JSON, None, TypeError,
     "Decimal is not JSON-serializable (use dict, list, str, int, float, bool or None)"),
    (Color.RED, JSON, None, TypeError,
     "Color is not JSON-serializable (use dict, list, str, int, float, bool or None)"),
    (nested_list(66), JSON, None, ValueError, "JSON value nested deeper than 64 levels"),
    ({"a": 1, 2: math.nan}, JSON, None, TypeError, "JSON object keys must be str, got int"),
    ({"a": math.nan, 2: 1}, JSON, None, ValueError, "NaN and Infinity cannot be stored in JSON"),
    (1, 99, None, ValueError, "unknown kind 99"),
    (1, 0, None, ValueError, "unknown kind 0"),
    (1, "int", None, ValueError, "unknown kind 'int'"),
]


@pytest.mark.parametrize("value,kind,dialects,etype,message", REJECT, ids=lambda x: repr(x)[:40])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_rejected(p, value, kind, dialects, etype, message, dialect):
    if dialects is not None and dialect not in dialects:
        p.coerce(value, kind, dialect)      # accepted on the other dialects
        return
    assert err(p, value, kind, dialect) == (etype, message)


def test_nan_kept_on_postgresql(p):
    assert math.isnan(p.coerce(math.nan, FLOAT, PG))
    assert p.coerce(math.inf, FLOAT, PG) == math.inf
    assert p.coerce(Decimal("NaN"), DECIMAL, PG).is_nan()


def test_cyclic_json_is_refused_not_overflowed(p):
    a = []
    a.append(a)
    assert err(p, a, JSON, SL) == (ValueError, "JSON value nested deeper than 64 levels")
    d = {}
    d["self"] = d
    assert err(p, d, JSON, PG) == (ValueError, "JSON value nested deeper than 64 levels")


def test_json_int_beyond_64_bits_is_orjsons_error(p):
    with pytest.raises(orjson.JSONEncodeError) as info:
        p.coerce([2 ** 70], JSON, SL)
    twin = load_impl("params", "python")
    with pytest.raises(orjson.JSONEncodeError) as info2:
        twin.coerce([2 ** 70], JSON, SL)
    assert str(info.value) == str(info2.value)


def test_helpers(p):
    assert p._check_text("ok") == "ok"
    with pytest.raises(ValueError, match="NUL"):
        p._check_text("a\x00")
    with pytest.raises(ValueError, match="surrogate"):
        p._check_text("\ud800")
    assert p._check_json({"a": [1]}) is None
    assert p._check_json([], 64) is None
    with pytest.raises(ValueError, match="deeper than 64"):
        p._check_json([], 65)
    with pytest.raises(ValueError, match="deeper than 64"):
        p._check_json([[]], 64)
    with pytest.raises(ValueError, match="deeper than 64"):
        p._check_json(1, 10 ** 30)
    assert p._check_json(nested_list(70), -10) is None
    with pytest.raises(TypeError):
        p._check_text(b"x")


def test_kind_and_dialect_compare_by_value(p):
    assert p.coerce(5, 1.0, 3) == 5
    assert p.coerce(True, BOOL, 3.0) == 1
    assert p.coerce(True, BOOL, 9) == 1            # unknown dialect behaves as "not PostgreSQL"
    assert err(p, 1, 2 ** 70, 1) == (ValueError, f"unknown kind {2 ** 70}")


# -- rows ----------------------------------------------------------------------------------------
def test_coerce_row(p):
    kinds = (INT, STR, BOOL, DATETIME)
    names = ("id", "name", "ok", "at")
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert p.coerce_row((1, "a", True, at), kinds, SL, names) == [1, "a", 1, "2024-01-02T03:04:05.000000+00:00"]
    assert p.coerce_row([1, None, None, at], kinds, PG, names) == [1, None, None, at]
    with pytest.raises(TypeError) as info:
        p.coerce_row((1, "a", 1, at), kinds, SL, names)
    assert str(info.value) == "field 'ok': expected bool, got int"
    with pytest.raises(ValueError) as info:
        p.coerce_row((1, "a\x00", True, at), kinds, SL, names)
    assert str(info.value) == f"field 'name': {NUL}"
    with pytest.raises(orjson.JSONEncodeError) as info:
        p.coerce_row([[2 ** 70]], (JSON,), SL, ["j"])
    assert str(info.value).startswith("field 'j': ")
    with pytest.raises(IndexError):
        p.coerce_row((1,), kinds, SL, names)


def test_coerce_rows_flat_and_row_index(p):
    kinds = (INT, STR)
    names = ("id", "name")
    assert p.coerce_rows([(1, "a"), [2, "b"], (3, None)], kinds, SL, names) == [1, "a", 2, "b", 3, None]
    assert p.coerce_rows(iter([(1, "a")]), kinds, SL, names) == [1, "a"]
    assert p.coerce_rows([], kinds, SL, names) == []
    with pytest.raises(TypeError) as info:
        p.coerce_rows([(1, "a"), (2, "b"), ("3", "c")], kinds, SL, names, start_index=100)
    assert str(info.value) == "row 102, field 'id': expected int, got str"
    assert info.value.row_index == 102
    with pytest.raises(ValueError) as info:
        p.coerce_rows([(1, "a"), (2,)], kinds, SL, names)
    assert str(info.value) == "row 1: expected 2 values, got 1"
    assert info.value.row_index == 1
    with pytest.raises(ValueError) as info:
        p.coerce_rows([(1, "a"), (2, "b\x00")], kinds, SL, names, 5)
    assert str(info.value) == f"row 6, field 'name': {NUL}"
    assert info.value.row_index == 6


def test_coerce_rows_source_errors_propagate(p):
    def rows():
        yield (1, "a")
        raise KeyError("source broke")

    with pytest.raises(KeyError, match="source broke"):
        p.coerce_rows(rows(), (INT, STR), SL, ("id", "name"))


# -- decode --------------------------------------------------------------------------------------
ROUND_TRIP = [
    (5, INT), (-(2 ** 63), INT), (1.25, FLOAT), (True, BOOL), (False, BOOL), ("héllo 😀", STR),
    (b"\x00\xff", BYTES),
    (datetime(2024, 5, 17, 12, 34, 56, 789012, tzinfo=UTC), DATETIME),
    (datetime(2024, 5, 17, 12, 34, 56, tzinfo=timezone(timedelta(hours=-7))), DATETIME),
    (datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York")), DATETIME),
    (datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")), DATETIME),
    (datetime(1, 1, 1, tzinfo=UTC), DATETIME),
    (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), DATETIME),
    (date(2024, 2, 29), DATE), (date(1, 1, 1), DATE), (date(9999, 12, 31), DATE),
    (Decimal("123.456"), DECIMAL), (Decimal("-0.000001"), DECIMAL), (Decimal(10) ** 30, DECIMAL),
    (U, UUID), (uuid.UUID(int=0), UUID), (uuid.UUID(int=2 ** 128 - 1), UUID),
    ({"a": [1, 2.5, None, True, "x"], "nested": {"k": []}}, JSON), ([], JSON), ("s", JSON),
]


@pytest.mark.parametrize("value,kind", ROUND_TRIP, ids=lambda x: repr(x)[:40])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_round_trip(p, value, kind, dialect):
    bound = p.coerce(value, kind, dialect)
    if kind == JSON and dialect == PG:
        bound = bound.encode()       # asyncpg hands jsonb back as text; bytes must work too
    back = p.decode(bound, kind, dialect)
    assert type(back) is type(value)
    if kind == DATETIME:
        # Same instant (== is False across zones for an ambiguous wall time, by PEP 495).
        assert back.utcoffset() is not None
        assert back - value == timedelta(0) and back.timestamp() == value.timestamp()
        if dialect != PG:
            assert back.tzinfo is UTC
    else:
        assert back == value


def test_decode_mysql_decimal_normalisation(p):
    assert str(p.decode(Decimal("1.500000000000000000000000000000"), DECIMAL, MY)) == "1.5"
    assert str(p.decode(Decimal("12.000000000000000000000000000000"), DECIMAL, MY)) == "12"
    assert str(p.decode(Decimal("100.000000000000000000000000000000"), DECIMAL, MY)) == "100"
    big = "12345678901234567890123456789012345"
    assert str(p.decode(Decimal(big + "." + "0" * 30), DECIMAL, MY)) == big
    frac = "1234567890123456789012345678901.5"
    assert str(p.decode(Decimal(frac + "0" * 29), DECIMAL, MY)) == frac
    assert str(p.decode(Decimal("1.50"), DECIMAL, SL)) == "1.50"
    assert p.decode("1.50", DECIMAL, SL) == Decimal("1.50")
    assert str(p.decode(1.1, DECIMAL, SL)) == "1.1"
    assert p.decode(3, DECIMAL, SL) == Decimal(3)


def test_decode_driver_forms(p):
    assert p.decode(1, BOOL, SL) is True and p.decode(0, BOOL, MY) is False
    naive = datetime(2024, 1, 2, 3, 4, 5)
    assert p.decode(naive, DATETIME, MY) == naive.replace(tzinfo=UTC)
    assert p.decode("2024-01-02 03:04:05", DATETIME, SL) == naive.replace(tzinfo=UTC)
    assert p.decode("2024-01-02T03:04:05+02:00", DATETIME, SL) == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert p.decode(str(U).upper(), UUID, SL) == U
    assert p.decode(U.hex, UUID, SL) == U
    assert p.decode(str(U), UUID, SL).is_safe == uuid.SafeUUID.unknown
    assert p.decode("2024-02-29", DATE, SL) == date(2024, 2, 29)
    assert p.decode("20240229", DATE, SL) == date(2024, 2, 29)
    assert p.decode(memoryview(b"ab"), BYTES, PG) == b"ab"
    assert p.decode(2, FLOAT, SL) == 2.0 and type(p.decode(2, FLOAT, SL)) is float
    assert p.decode(b'{"a":1}', JSON, PG) == {"a": 1}
    assert p.decode({"a": 1}, JSON, PG) == {"a": 1}


@pytest.mark.parametrize("text", ["2024-02-30T00:00:00.000000+00:00", "2023-02-29T00:00:00.000000+00:00",
                                  "2024-01-01T24:00:00.000000+00:00", "0000-01-01T00:00:00.000000+00:00",
                                  "2024-13-01T00:00:00.000000+00:00", "2024-01-01T00:60:00.000000+00:00",
                                  "garbage"])
def test_decode_bad_datetime_text_is_fromisoformats_error(p, text):
    with pytest.raises(ValueError) as info:
        p.decode(text, DATETIME, SL)
    with pytest.raises(ValueError) as ref:
        datetime.fromisoformat(text)
    assert str(info.value) == str(ref.value)


def test_decode_bad_values_raise(p):
    with pytest.raises(ValueError, match="badly formed"):
        p.decode("nope", UUID, SL)
    with pytest.raises(ValueError):
        p.decode("2024-02-30", DATE, SL)
    with pytest.raises(orjson.JSONDecodeError):
        p.decode("{", JSON, SL)


NEEDS = {
    PG: {JSON, UUID, VECTOR},
    MY: {FLOAT, BOOL, DATETIME, DECIMAL, UUID, JSON, VECTOR},
    SL: {FLOAT, BOOL, BYTES, DATETIME, DATE, DECIMAL, UUID, JSON, VECTOR},
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_needs_decode(p, dialect):
    assert {k for k in range(1, 12) if p.needs_decode(k, dialect)} == NEEDS[dialect]


def test_decode_rows(p):
    names = ("id", "ok", "at", "meta", "u")
    kinds = (INT, BOOL, DATETIME, JSON, UUID)
    rows = [(1, 1, "2024-01-02T03:04:05.000006+00:00", '{"a":[1]}', str(U)),
            [2, None, None, None, None]]
    out = p.decode_rows(rows, names, kinds, SL)
    assert out == [{"id": 1, "ok": True, "at": datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                    "meta": {"a": [1]}, "u": U},
                   {"id": 2, "ok": None, "at": None, "meta": None, "u": None}]
    assert list(out[0]) == list(names)
    assert p.decode_rows([], names, kinds, SL) == []
    assert p.decode_rows([(1, 2)], (), (), SL) == [{}]
    with pytest.raises(IndexError):
        p.decode_rows([(1,)], ("a", "b"), (INT, INT), SL)


def test_decode_rows_sqlite3_rows(p):
    con = sqlite3.connect(":memory:")
    con.row_factory = sqlite3.Row
    con.execute("CREATE TABLE t (id INTEGER, ok INTEGER, at TEXT, meta TEXT)")
    bound = p.coerce_rows([(1, True, datetime(2024, 1, 2, tzinfo=UTC), {"k": "v"}),
                           (2, False, None, [1, 2])],
                          (INT, BOOL, DATETIME, JSON), SL, ("id", "ok", "at", "meta"))
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [bound[:4], bound[4:]])
    rows = con.execute("SELECT id, ok, at, meta FROM t ORDER BY id").fetchall()
    out = p.decode_rows(rows, ("id", "ok", "at", "meta"), (INT, BOOL, DATETIME, JSON), SL)
    assert out == [{"id": 1, "ok": True, "at": datetime(2024, 1, 2, tzinfo=UTC), "meta": {"k": "v"}},
                   {"id": 2, "ok": False, "at": None, "meta": [1, 2]}]


def test_decode_rows_duplicate_names_keep_last_value(p):
    assert p.decode_rows([(1, 2)], ("a", "a"), (INT, INT), SL) == [{"a": 2}]


@pytest.mark.parametrize("impl", ["native", "python"])
def test_decode_bytes_never_allocates_from_an_int(impl):
    """Found by the parity test: decode(6737197547, BYTES) built a 6.7 GB bytes object."""
    from dataflow import _native
    p = _native.load("params", impl)
    assert p.decode(10 ** 12, p.BYTES, p.POSTGRESQL) == 10 ** 12
    assert p.decode(bytearray(b"ab"), p.BYTES, p.POSTGRESQL) == b"ab"
    assert p.decode(memoryview(b"ab"), p.BYTES, p.SQLITE) == b"ab"
