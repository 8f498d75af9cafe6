"""_native.params parity: random values of many types (most of them wrong for the kind) x kinds x
dialects give the same result, or the same exception type and message, on both implementations.

Results are compared by type and repr (so 1 vs True vs 1.0, NaN, -0.0, tz and fold all count).
"""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.conftest import both

SETTINGS = settings(max_examples=int(__import__("os").environ.get("PARAMS_PARITY_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
UTC = timezone.utc


def outcome(fn, *args):
    try:
        r = fn(*args)
    except Exception as exc:  # noqa: BLE001 - the point is to compare whatever is raised
        return ("raise", type(exc), str(exc), getattr(exc, "row_index", None))
    return ("ok", type(r), _repr(r))


def _repr(r):
    if isinstance(r, uuid.UUID):
        return repr(r), r.is_safe
    if isinstance(r, list):
        return [(type(x), _repr(x)) for x in r]
    if isinstance(r, dict):
        return [(k, type(v), _repr(v)) for k, v in r.items()]
    return repr(r)


def same(fn_name, *args):
    native, python = both("params")
    a = outcome(getattr(native, fn_name), *args)
    b = outcome(getattr(python, fn_name), *args)
    assert a == b, (fn_name, args)
    return a


# -- strategies ----------------------------------------------------------------------------------
any_char = st.characters(codec=None, exclude_categories=())     # includes NUL and lone surrogates
texts = st.one_of(st.text(max_size=12), st.text(any_char, max_size=12),
                  st.sampled_from(["", "\x00", "a\x00", "é\x00", "\ud800", "日\udfff", "😀\x00\ud800"]))
offsets = st.builds(timezone, st.builds(timedelta, minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59)))
tzs = st.one_of(st.none(), st.just(UTC), offsets)
datetimes = st.one_of(st.datetimes(timezones=tzs),
                      st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 2), timezones=offsets),
                      st.datetimes(min_value=datetime(9999, 12, 30), timezones=offsets))
decimals = st.one_of(st.decimals(allow_nan=True, allow_infinity=True, places=None),
                     st.decimals(allow_nan=False, allow_infinity=False, places=35),
                     st.sampled_from([Decimal("1E+40"), Decimal("0E-40"), Decimal("-0"), Decimal("sNaN"),
                                      Decimal("9" * 35 + "." + "9" * 30), Decimal("1" * 36)]))
uuids = st.uuids()
uuid_texts = st.one_of(uuids.map(str), uuids.map(lambda u: str(u).upper()), uuids.map(lambda u: u.hex),
                       uuids.map(lambda u: "{" + str(u) + "}"), uuids.map(lambda u: str(u)[:-1] + "x"),
                       uuids.map(lambda u: str(u).replace("-", "_")))
ints = st.one_of(st.integers(), st.integers(-(2 ** 64), 2 ** 64),
                 st.sampled_from([2 ** 63 - 1, 2 ** 63, -(2 ** 63), -(2 ** 63) - 1, 10 ** 400]))
floats = st.floats(allow_nan=True, allow_infinity=True)
json_leaf = st.one_of(st.none(), st.booleans(), ints, floats, texts, st.just(Decimal(1)), st.just({1, 2}))
json_like = st.recursive(
    json_leaf,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.lists(kids, max_size=3).map(tuple),
                           st.dictionaries(st.one_of(texts, st.integers(0, 3)), kids, max_size=4)),
    max_leaves=12)
values = st.one_of(st.none(), st.booleans(), ints, floats, texts, st.binary(max_size=8),
                   st.binary(max_size=8).map(bytearray), st.binary(max_size=8).map(memoryview),
                   datetimes, st.dates(), decimals, uuids, uuid_texts, json_like)
kinds = st.one_of(st.integers(0, 12), st.sampled_from([1.0, True, "int", 2 ** 70, -1]))
dialects = st.one_of(st.integers(0, 4), st.sampled_from([1.0, 3.0, "sqlite"]))

# What drivers hand back, plus garbage.
iso_texts = st.one_of(
    datetimes.map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(timespec="microseconds") + "+00:00"),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00\Z"),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    st.dates().map(str))
stored = st.one_of(values, iso_texts, json_like.map(lambda v: repr(v)), st.sampled_from(['{"a":1}', "[1,2]", "{"]))


# -- tests ---------------------------------------------------------------------------------------
@SETTINGS
@given(values, kinds, dialects)
def test_coerce_parity(value, kind, dialect):
    same("coerce", value, kind, dialect)


@SETTINGS
@given(values, st.integers(1, 11), st.integers(1, 3))
def test_coerce_parity_known_kinds(value, kind, dialect):
    same("coerce", value, kind, dialect)


@SETTINGS
@given(stored, st.one_of(st.integers(0, 12), st.just(1.0)), dialects)
def test_decode_parity(value, kind, dialect):
    same("decode", value, kind, dialect)


@SETTINGS
@given(kinds, dialects)
def test_needs_decode_parity(kind, dialect):
    same("needs_decode", kind, dialect)


@SETTINGS
@given(json_like, st.one_of(st.integers(-3, 70), st.just(10 ** 20)))
def test_check_json_parity(value, depth):
    same("_check_json", value, depth)


@SETTINGS
@given(texts)
def test_check_text_parity(value):
    same("_check_text", value)


row_kinds = st.lists(st.integers(1, 11), min_size=1, max_size=5)


@SETTINGS
@given(row_kinds.flatmap(lambda ks: st.tuples(
    st.just(tuple(ks)), st.lists(st.lists(values, min_size=len(ks) - 1, max_size=len(ks) + 1), max_size=5))),
    st.integers(1, 3), st.integers(0, 1000), st.booleans())
def test_coerce_rows_parity(kr, dialect, start, as_tuples):
    ks, rows = kr
    names = tuple(f"c{i}" for i in range(len(ks)))
    if as_tuples:
        rows = [tuple(r) for r in rows]
    same("coerce_rows", rows, ks, dialect, names, start)
    for row in rows:
        if len(row) >= len(ks):
            same("coerce_row", row, ks, dialect, names)


@SETTINGS
@given(row_kinds.flatmap(lambda ks: st.tuples(
    st.just(tuple(ks)), st.lists(st.tuples(*[values for _ in ks]), max_size=5))), st.integers(1, 3))
def test_coerce_then_decode_rows_parity(kr, dialect):
    """Rows that bind fine decode identically; rows that do not fail identically."""
    native, python = both("params")
    ks, rows = kr
    names = tuple(f"c{i}" for i in range(len(ks)))
    bound = same("coerce_rows", rows, ks, dialect, names)
    if bound[0] == "ok":
        flat = python.coerce_rows(rows, ks, dialect, names)
        w = len(ks)
        stored_rows = [tuple(flat[i:i + w]) for i in range(0, len(flat), w)]
        same("decode_rows", stored_rows, names, ks, dialect)


@SETTINGS
@given(st.lists(st.lists(stored, min_size=3, max_size=3).map(tuple), max_size=6),
       st.lists(st.integers(0, 12), min_size=3, max_size=3), st.integers(1, 3))
def test_decode_rows_parity(rows, ks, dialect):
    same("decode_rows", rows, ("a", "b", "c"), ks, dialect)


def test_float_nan_repr_distinguishes():
    assert outcome(lambda: math.nan) != outcome(lambda: 1.0)
    assert outcome(lambda: date(2024, 1, 1))[0] == "ok"
