"""dataflow/dialects/flatten.py and SQLite's filter-shape limits (issue 15)."""

import pytest

from dataflow import DataFlow
from dataflow.dialects.sqlite import SQLiteDialect
from dataflow.errors import FilterError
from dataflow.dialects.flatten import flatten


def test_same_operator_nesting_is_spliced():
    f = {"$and": [{"$and": [{"a": 1}, {"$and": [{"b": 2}]}]}, {"c": 3}]}
    assert flatten(f) == {"a": 1, "b": 2, "c": 3}
    f = {"$or": [{"a": 1}, {"$or": [{"b": 2}, {"$or": [{"c": 3}]}]}]}
    assert flatten(f) == {"$or": [{"a": 1}, {"b": 2}, {"c": 3}]}
    assert flatten({"$nor": [{"$or": [{"a": 1}, {"b": 2}]}, {"c": 3}]}) == {"$nor": [{"a": 1}, {"b": 2}, {"c": 3}]}


def test_single_items_unwrapped_and_double_not_removed():
    assert flatten({"$and": [{"$or": [{"a": 1}]}]}) == {"a": 1}
    assert flatten({"$not": {"$not": {"a": 1}}}) == {"a": 1}
    assert flatten({"$not": {"$not": {"$not": {"a": 1}}}}) == {"$not": {"a": 1}}
    assert flatten({"a": {"$not": {"$not": {"$gt": 1}}}}) == {"a": {"$gt": 1}}
    assert flatten({"a": {"$not": {"$not": {"$not": {"$gt": 1}}}, "$lt": 9}}) == \
        {"a": {"$not": {"$gt": 1}, "$lt": 9}}   # inside a $not next to other operators too


def test_repeated_keys_stay_an_and_and_deepest_part_goes_first():
    f = {"$and": [{"a": 1}, {"$and": [{"a": 2}, {"$or": [{"b": 1}, {"$and": [{"c": 1}, {"d": 2}]}]}]}]}
    out = flatten(f)
    assert out == {"$and": [{"$or": [{"b": 1}, {"c": 1, "d": 2}]}, {"a": 1}, {"a": 2}]}


def test_unrecognised_shapes_untouched():
    for f in ({}, {"$and": []}, {"a": None}, {"a": {"$in": [1, 2]}}):
        assert flatten(f) == f


def _alternating(n):
    f = {"a": {"$gt": 0}}
    for i in range(n):
        f = {("$and" if i % 2 else "$or"): [{"b": i}, f]}
    return f


def test_sqlite_limits_are_data_and_flattening_fits_64_alternating_levels():
    d = SQLiteDialect()
    assert d.check_filter_shape(_alternating(18)) is None
    assert "too deeply" in d.check_filter_shape(_alternating(21))  # the parser overflows there
    assert "too deeply" in d.check_filter_shape(_alternating(64))
    assert d.check_filter_shape(flatten(_alternating(64))) is None


@pytest.fixture
def db():
    db = DataFlow(":memory:")

    @db.model
    class Deep:
        a: int
        b: int | None = None
    db.express_sync.create("Deep", {"a": 1, "b": 5})
    db.express_sync.create("Deep", {"a": 1, "b": 62})
    yield db
    db.close()


def test_deep_filters_run_on_sqlite(db):
    assert [r["b"] for r in db.express_sync.list("Deep", _alternating(63))] == [62]  # outermost $or
    nots = {"a": {"$gt": 0}}
    for _ in range(41):
        nots = {"$not": nots}
    assert db.express_sync.count("Deep", nots) == 0
    same = {"a": {"$gt": 0}}
    for i in range(60):
        same = {"$or": [{"b": 100 + i}, same]}
    assert db.express_sync.count("Deep", same) == 2


def test_too_deep_for_the_parser_is_a_filter_error_not_a_parser_error(db):
    f = {"a": 1}
    for i in range(20):                  # $nor cannot be flattened: 20 levels overflow the parser
        f = {"$nor": [f, {"b": i}]}
    with pytest.raises(FilterError, match="too deeply for sqlite"):
        db.express_sync.count("Deep", f)
