"""_native.params.coerce_plan (source items + column plan -> coerced row tuples) and
_native.params.tsv_rows (coerced MySQL rows -> LOAD DATA text): both implementations, parity."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.conftest import both, load_impl

UTC = timezone.utc
NOW = datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
UID = uuid.UUID(int=7)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mod(impl):
    return load_impl("params", impl)


def _plan(P):
    kinds = [P.INT, P.STR, P.JSON, P.DATETIME, P.UUID]
    tup = ([0, 1, 2, None, None], [None, None, None, ("value", NOW), ("call", lambda: UID)], 3)
    dct = (["a", "b", "c", None, None], [None, ("value", "d"), ("value", None), ("value", NOW),
                                         ("call", lambda: UID)], -1)
    return kinds, tup, dct


@pytest.mark.parametrize("dialect", [1, 2, 3])
def test_equals_coerce_rows(impl, dialect):
    P = mod(impl)
    kinds, tup, dct = _plan(P)
    items = [(1, "a", {"x": 1}), (2, None, "s")]
    rows, stop = P.coerce_plan(items, kinds, dialect, *tup)
    flat = P.coerce_rows([it + (NOW, UID) for it in items], kinds, dialect, list("abcde"))
    assert stop == 2 and rows == [tuple(flat[:5]), tuple(flat[5:])]
    rows, stop = P.coerce_plan([{"a": 1}, {"a": 2, "b": "x", "c": [1]}], kinds, dialect, *dct)
    flat = P.coerce_rows([(1, "d", None, NOW, UID), (2, "x", [1], NOW, UID)], kinds, dialect, list("abcde"))
    assert stop == 2 and rows == [tuple(flat[:5]), tuple(flat[5:])]


@pytest.mark.parametrize("bad", [(3, "c", {"x": float("nan")}), (3, "c\x00", None), ("3", "c", None), (3, "c"),
                                 [3, "c", None], (True, "c", None)])
def test_off_plan_stops(impl, bad):
    P = mod(impl)
    kinds, tup, _ = _plan(P)
    rows, stop = P.coerce_plan([(1, "a", None), bad, (4, "d", None)], kinds, 3, *tup)
    assert stop == 1 and len(rows) == 1
    rows, stop = P.coerce_plan([(1, "a", None), bad, (4, "d", None)], kinds, 3, *tup, start=2)
    assert stop == 3 and rows[0][0] == 4


@pytest.mark.parametrize("bad", [{"b": "x"}, {"a": 1, "zz": 1}, {"a": 1, "c": "str"}])
def test_dict_off_plan_and_shapes(impl, bad):
    P = mod(impl)
    kinds, _, dct = _plan(P)
    shapes = [None, None, (dict, list), None, None]
    rows, stop = P.coerce_plan([{"a": 0}, bad], kinds, 3, *dct, shapes=shapes)
    assert stop == 1 and len(rows) == 1


@pytest.mark.parametrize("args,exc,msg", [
    (([], [1], 3, [0, 1], [None, None], 1), ValueError, "sources has 2 entries for 1 kinds"),
    (([], [99], 3, [0], [None], 1), ValueError, "unknown kind 99"),
    (([], [1], 3, [None], [None], 1), ValueError, "column 0 has neither a source nor a default"),
    (([], [1], 3, [0], [("call", 3)], 1), TypeError, "a 'call' default needs a callable"),
    (((), [1], 3, [0], [None], 1), TypeError, "items must be a list, got tuple"),
    (([], [1], 3, [0], [None], 1.0), TypeError, "width must be an int"),
])
def test_bad_arguments(impl, args, exc, msg):
    P = mod(impl)
    with pytest.raises(exc) as ei:
        P.coerce_plan(*args)
    assert msg in str(ei.value)


def test_tsv_rows_formats(impl):
    P = mod(impl)
    kinds = [P.INT, P.STR, P.FLOAT, P.BYTES, P.DATETIME, P.DATETIME, P.DATE, P.DECIMAL, P.UUID, P.JSON, P.BOOL]
    row = (-5, "a\tb\\c\nd\re\x00é", 0.1, b"\x00\xff", datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, 3, 4, 5, 7),
           date(2020, 1, 1), Decimal("1.50"), "00000000-0000-0000-0000-000000000007", '{"a":"x\\"y"}', 1)
    out = P.tsv_rows([row, (None,) * len(kinds)], kinds)
    assert out == ("-5\ta\\tb\\\\c\\nd\\re\\0é\t0.1\t00ff\t2024-01-02 03:04:05\t2024-01-02 03:04:05.000007\t"
                   "2020-01-01\t1.50\t00000000-0000-0000-0000-000000000007\t{\"a\":\"x\\\\\"y\"}\t1\n"
                   + "\t".join(["\\N"] * len(kinds)) + "\n").encode()


def test_tsv_rows_errors(impl):
    P = mod(impl)
    with pytest.raises(ValueError, match=r"row 1: expected 1 values, got 2"):
        P.tsv_rows([(1,), (1, 2)], [P.INT])
    with pytest.raises(TypeError, match="expected str for str, got int"):
        P.tsv_rows([(1,)], [P.STR])
    with pytest.raises(ValueError, match="unknown kind 0"):
        P.tsv_rows([], [0])


_val = st.one_of(st.none(), st.integers(-2 ** 70, 2 ** 70), st.text(max_size=5), st.floats(), st.booleans(),
                 st.datetimes(timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=3)))),
                 st.dictionaries(st.text(max_size=2), st.integers() | st.floats(), max_size=2), st.binary(max_size=3))


@SETTINGS
@given(items=st.lists(st.tuples(_val, _val, _val) | st.dictionaries(st.sampled_from("abcz"), _val, max_size=4),
                      max_size=6), dialect=st.sampled_from([1, 2, 3]), start=st.integers(0, 2))
def test_parity(items, dialect, start):
    nat, py = both("params")
    kinds, tup, dct = _plan(nat)
    for plan in (tup, dct):
        assert nat.coerce_plan(items, kinds, dialect, *plan, start=start) == \
            py.coerce_plan(items, kinds, dialect, *plan, start=start)


@SETTINGS
@given(rows=st.lists(st.tuples(st.integers(-2 ** 70, 2 ** 70), st.text(max_size=6), st.floats(), st.binary(max_size=4),
                               st.datetimes(), st.dates(), st.decimals(allow_nan=False, allow_infinity=False),
                               st.none() | st.text(max_size=3)), max_size=5))
def test_tsv_parity(rows):
    nat, py = both("params")
    kinds = [nat.INT, nat.STR, nat.FLOAT, nat.BYTES, nat.DATETIME, nat.DATE, nat.DECIMAL, nat.JSON]

    def run(m):
        try:
            return m.tsv_rows(rows, kinds)
        except Exception as exc:
            return type(exc), str(exc)
    assert run(nat) == run(py)


def test_tsv_lone_surrogate_same_error():
    nat, py = both("params")
    errs = []
    for m in (nat, py):
        with pytest.raises(UnicodeEncodeError) as ei:
            m.tsv_rows([("ok", "a\tb\ud800")], [m.STR, m.STR])
        errs.append(str(ei.value))
    assert errs[0] == errs[1]
