"""_native.copybin.encode_plan: source items + a column plan -> COPY rows in one pass.

Both implementations (``impl``), plus parity of bytes and stop index between native and twin.
The contract: the bytes equal ``encode_rows`` of the full rows the plan describes, and the first
item off the plan stops the pass without raising.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.conftest import both, load_impl

UTC = timezone.utc
NOW = datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
TYPES = ["int8", "text", "jsonb", "timestamptz", "uuid"]
UID = uuid.UUID(int=7)
TUPLE_PLAN = ([0, 1, 2, None, None], [None, None, None, ("value", NOW), ("call", lambda: UID)], 3)
DICT_PLAN = (["a", "b", "c", None, None], [None, ("value", "dflt"), ("value", None), ("value", NOW),
                                          ("call", lambda: UID)], -1)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mod(impl):
    return load_impl("copybin", impl)


def _full(cb, rows):
    return cb.encode_rows(rows, TYPES, header=False, trailer=False)


def test_tuples_equal_encode_rows(impl):
    cb = mod(impl)
    items = [(1, "a", {"x": [1, 2]}), (2, "b", "s"), (3, None, None)]
    data, stop = cb.encode_plan(items, TYPES, *TUPLE_PLAN)
    assert stop == 3
    expect = [(1, "a", orjson.dumps({"x": [1, 2]}), NOW, UID), (2, "b", orjson.dumps("s"), NOW, UID),
              (3, None, None, NOW, UID)]
    assert data == _full(cb, expect)
    head, _ = cb.encode_plan(items, TYPES, *TUPLE_PLAN, header=True)
    assert head == cb.HEADER + data


def test_dicts_fill_defaults(impl):
    cb = mod(impl)
    items = [{"a": 1, "b": "x", "c": [1]}, {"a": 2}, {"a": 3, "b": None}]
    data, stop = cb.encode_plan(items, TYPES, *DICT_PLAN)
    assert stop == 3
    assert data == _full(cb, [(1, "x", b"[1]", NOW, UID), (2, "dflt", None, NOW, UID), (3, None, None, NOW, UID)])


@pytest.mark.parametrize("bad", [
    (4, "d", {"x": float("nan")}), (4, "d", {"x": "a\x00b"}), (4, "d", {1: 2}), (4, "d", {"x": object()}),
    (4, "d", "\ud800"), (4, "d", 2 ** 70), [4, "d", None], (4, "d"), ("4", "d", None), (4, 5, None),
])
def test_tuple_item_off_plan_stops(impl, bad):
    cb = mod(impl)
    items = [(1, "a", None), (2, "b", None), bad, (5, "e", None)]
    data, stop = cb.encode_plan(items, TYPES, *TUPLE_PLAN)
    assert stop == 2
    assert data == _full(cb, [(1, "a", None, NOW, UID), (2, "b", None, NOW, UID)])
    rest, stop2 = cb.encode_plan(items, TYPES, *TUPLE_PLAN, start=3)
    assert stop2 == 4 and rest == _full(cb, [(5, "e", None, NOW, UID)])


@pytest.mark.parametrize("bad", [{"b": "x"}, {"a": 1, "zz": 2}, {"a": "1"}, (1, "a", None), {"a": 1, "c": {1, 2}}])
def test_dict_item_off_plan_stops(impl, bad):
    cb = mod(impl)
    data, stop = cb.encode_plan([{"a": 0}, bad], TYPES, *DICT_PLAN)
    assert stop == 1 and data == _full(cb, [(0, "dflt", None, NOW, UID)])


def test_factory_raising_stops(impl):
    cb = mod(impl)

    def boom():
        raise RuntimeError("x")
    data, stop = cb.encode_plan([(1, "a", None)], TYPES, [0, 1, 2, None, None],
                                [None, None, None, ("value", NOW), ("call", boom)], 3)
    assert (data, stop) == (b"", 0)


def test_shapes(impl):
    cb = mod(impl)
    shapes = [None, None, (dict,), None, None]
    items = [{"a": 1, "c": {"k": 1}}, {"a": 2, "c": None}, {"a": 3}, {"a": 4, "c": [1]}]
    _, stop = cb.encode_plan(items, TYPES, *DICT_PLAN, shapes=shapes)
    assert stop == 3
    _, stop = cb.encode_plan(items, TYPES, *DICT_PLAN)
    assert stop == 4


@pytest.mark.parametrize("args,exc,msg", [
    (([], ["int8"], [0, 1], [None, None], 1), ValueError, "sources has 2 entries for 1 types"),
    (([], ["int8"], [0], [None, None], 1), ValueError, "defaults has 2 entries for 1 types"),
    (([], ["int8"], [3], [None], 1), ValueError, "sources[0] must be a position in 0..0"),
    (([], ["int8"], [None], [None], 1), ValueError, "column 0 has neither a source nor a default"),
    (([], ["int8"], [0], [("x", 1)], 1), ValueError, "defaults[0] must be None"),
    (([], ["int8"], [0], [("call", 1)], 1), TypeError, "a 'call' default needs a callable"),
    (([], ["int8"], [0], [None], "1"), TypeError, "width must be an int"),
    (((), ["int8"], [0], [None], 1), TypeError, "items must be a list, got tuple"),
    (([], ["nope"], [0], [None], 1), ValueError, "unknown type 'nope'"),
    (([], ["int8"], "a", [None], 1), TypeError, "sources must be a sequence, not str"),
])
def test_bad_arguments(impl, args, exc, msg):
    cb = mod(impl)
    with pytest.raises(exc) as ei:
        cb.encode_plan(*args)
    assert msg in str(ei.value)


def test_types_read_once(impl):
    """``types`` may be a one-shot iterable (the twin used to read it twice)."""
    cb = mod(impl)
    items = [(1, "a", None)]
    assert cb.encode_plan(items, iter(TYPES), *TUPLE_PLAN) == cb.encode_plan(items, TYPES, *TUPLE_PLAN)


def test_bad_start_and_shapes(impl):
    cb = mod(impl)
    with pytest.raises(ValueError, match="start must be a non-negative int"):
        cb.encode_plan([], ["int8"], [0], [None], 1, -1)
    with pytest.raises(TypeError, match=r"shapes\[0\] must be None or a tuple of types"):
        cb.encode_plan([], ["int8"], [0], [None], 1, shapes=[dict])


_json = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3) | st.integers(), c,
                                                                         max_size=3), max_leaves=8)
_item = st.tuples(st.one_of(st.integers(-2 ** 64, 2 ** 64), st.none(), st.text(max_size=2)),
                  st.one_of(st.text(max_size=6), st.none(), st.integers()), _json)


@SETTINGS
@given(items=st.lists(_item | st.lists(st.integers(), max_size=3).map(tuple), max_size=6), start=st.integers(0, 3))
def test_parity_tuples(items, start):
    nat, py = both("copybin")
    assert nat.encode_plan(items, TYPES, *TUPLE_PLAN, start=start) == py.encode_plan(items, TYPES, *TUPLE_PLAN,
                                                                                   start=start)


@SETTINGS
@given(items=st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]),
                                      st.one_of(st.integers(-5, 5), st.text(max_size=3), _json)), max_size=6))
def test_parity_dicts(items):
    nat, py = both("copybin")
    shapes = [None, None, (dict, list), None, None]
    assert nat.encode_plan(items, TYPES, *DICT_PLAN) == py.encode_plan(items, TYPES, *DICT_PLAN)
    assert nat.encode_plan(items, TYPES, *DICT_PLAN, shapes=shapes) == py.encode_plan(items, TYPES, *DICT_PLAN,
                                                                                      shapes=shapes)
