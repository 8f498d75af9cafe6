"""Hypothesis parity: the compiled _native.filters and its twin agree on every filter tree.

Random trees, valid and invalid (unknown/wrong-case/refused operators, wrong value types,
non-str keys, deep nesting), on three dialect specs: both give the same (sql, params) or the
same exception type and message.
"""

import datetime as dt
import math
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.conftest import both
from tests.native.test_filters import FilterKit

OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$like", "$ilike", "$regex",
       "$options", "$exists", "$null", "$not", "$contains", "$startswith", "$endswith", "$between",
       # invalid ones
       "$GT", "$In", "$foo", "$", "$and", "$or", "$where", "$function", "$expr", "$accumulator", "gt", ""]
DOC_OPS = ["$and", "$or", "$nor", "$not", "$AND", "$Or", "$where", "$expr", "$function",
           "$accumulator", "$bogus", "$"]
FIELDS = ["id", "age", "score", "status", "name", "active", "tags", "uid", "nope", "AGE"]

texts = st.text(alphabet=st.sampled_from("ab%_\\'\"\x00é日\ud800 i"), max_size=6)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2 ** 65, max_value=2 ** 65),
    st.integers(min_value=-3, max_value=40), st.floats(allow_nan=True, allow_infinity=True),
    texts, st.sampled_from(["active", "vip", "A%", "i", "", str(uuid.UUID(int=5))]),
    st.just(uuid.UUID(int=9)), st.just(b"x"), st.just(Decimal("1.5")),
    st.just(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)), st.just(dt.datetime(2020, 1, 1)),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.one_of(texts, st.integers(0, 3)), inner, max_size=2)), max_leaves=6)
lists = st.one_of(st.lists(scalars, max_size=5), st.lists(st.integers(-3, 40), min_size=1000, max_size=1003),
                  st.lists(st.one_of(st.none(), st.integers(0, 9)), max_size=5).map(tuple))


def op_value(op):
    if op in ("$in", "$nin"):
        return st.one_of(lists, values)
    if op == "$between":
        return st.one_of(st.tuples(scalars, scalars).map(list), values)
    if op in ("$exists", "$null"):
        return st.one_of(st.booleans(), scalars)
    if op == "$options":
        return st.one_of(st.sampled_from(["", "i", "ii", "im", "x"]), scalars)
    return values


def op_dicts(depth):
    def entry(op):
        if op == "$not" and depth > 0:
            return st.tuples(st.just(op), st.one_of(op_dicts(depth - 1), values))
        return st.tuples(st.just(op), op_value(op))
    keys = st.one_of(st.sampled_from(OPS), st.integers(0, 2))
    return st.lists(keys.flatmap(entry), max_size=3).map(dict)


def docs(depth):
    field_entry = st.tuples(st.one_of(st.sampled_from(FIELDS), st.integers(0, 1)),
                            st.one_of(op_dicts(2), values))
    if depth <= 0:
        return st.lists(field_entry, max_size=3).map(dict)
    sub = docs(depth - 1)
    doc_entry = st.sampled_from(DOC_OPS).flatmap(lambda op: st.tuples(
        st.just(op),
        st.one_of(st.lists(st.one_of(sub, values), max_size=3), sub, values)
        if op != "$not" else st.one_of(sub, values)))
    return st.lists(st.one_of(field_entry, field_entry, doc_entry), max_size=4).map(dict)


# -- mostly-valid trees: right value kinds per column, so most examples compile -------------------
clean_text = st.text(alphabet=st.sampled_from("abAZ%_\\' é日"), max_size=8)
KIND_VALUES = {
    "id": st.integers(-5, 10 ** 6), "age": st.integers(0, 120), "score": st.floats(-1e6, 1e6),
    "status": clean_text, "name": clean_text, "active": st.booleans(),
    "tags": st.recursive(st.one_of(st.integers(-9, 9), clean_text, st.booleans(), st.none()),
                         lambda i: st.lists(i, max_size=3), max_leaves=4),
    "uid": st.one_of(st.uuids(), st.uuids().map(str)),
}
TEXT_OPS = ["$like", "$ilike", "$regex", "$contains", "$startswith", "$endswith"]


def valid_cond(field, depth, dict_only=False):
    v = KIND_VALUES[field]
    ops = [st.tuples(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), v),
           st.tuples(st.sampled_from(["$in", "$nin"]),
                     st.one_of(st.lists(st.one_of(v, v, v, st.none()), max_size=5),
                               st.lists(v, min_size=1001, max_size=1002))),
           st.tuples(st.sampled_from(["$exists", "$null"]), st.booleans()),
           st.tuples(st.just("$between"), st.tuples(v, v).map(list))]
    if field in ("status", "name"):
        ops.append(st.tuples(st.sampled_from(TEXT_OPS), clean_text))
        ops.append(st.tuples(st.just("$options"), st.sampled_from(["", "i"])))
    if field == "tags":
        ops.append(st.tuples(st.just("$contains"), v))
    if depth > 0:
        ops.append(st.tuples(st.just("$not"), valid_cond(field, depth - 1, True)))
    as_dict = st.lists(st.one_of(*ops), min_size=1, max_size=3).map(dict)
    return as_dict if dict_only else st.one_of(as_dict, as_dict, v, st.none())


def valid_docs(depth):
    field_entry = st.sampled_from(list(KIND_VALUES)).flatmap(
        lambda f: st.tuples(st.just(f), valid_cond(f, 2)))
    if depth <= 0:
        return st.lists(field_entry, min_size=1, max_size=3).map(dict)
    sub = valid_docs(depth - 1)
    doc_entry = st.sampled_from(["$and", "$or", "$nor", "$not"]).flatmap(lambda op: st.tuples(
        st.just(op), sub if op == "$not" else st.lists(sub, min_size=1, max_size=3)))
    return st.lists(st.one_of(field_entry, field_entry, doc_entry), min_size=1, max_size=4).map(dict)


filters = st.one_of(valid_docs(3), valid_docs(3), valid_docs(2), docs(3), values)


def outcome(mod, filt, spec, start):
    try:
        sql, params = mod.compile_filter(filt, spec, start)
    except Exception as exc:  # noqa: BLE001 - parity compares whatever escapes
        return ("raise", type(exc), str(exc))
    return ("ok", sql, params)


def same(a, b):
    """Equality that treats NaN as equal to NaN (params may carry float('nan') on PostgreSQL)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture(scope="module")
def kit():
    native, pure = both("filters")
    return FilterKit(native), FilterKit(pure)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(filt=filters, dialect=st.sampled_from(["pg", "mysql", "sqlite"]),
       start=st.one_of(st.just(1), st.integers(-2, 2 ** 32)))
def test_random_trees_agree(kit, filt, dialect, start):
    native, pure = kit
    a = outcome(native.mod, filt, native.specs[dialect], start)
    b = outcome(pure.mod, filt, pure.specs[dialect], start)
    assert same(a, b), (a, b)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(OPS[:19]), scalars), min_size=1, max_size=4),
       field=st.sampled_from(FIELDS[:8]), dialect=st.sampled_from(["pg", "mysql", "sqlite"]))
def test_operator_dicts_agree(kit, ops, field, dialect):
    native, pure = kit
    filt = {"$or": [{field: dict(ops)}, {"$not": {field: dict(ops[:1])}}]}
    a = outcome(native.mod, filt, native.specs[dialect], 1)
    b = outcome(pure.mod, filt, pure.specs[dialect], 1)
    assert same(a, b), (a, b)


@settings(max_examples=100, deadline=None)
@given(columns=st.dictionaries(st.one_of(texts, st.integers(0, 2)),
                               st.one_of(st.tuples(texts, st.integers(-2, 12)), scalars), max_size=3),
       paramstyle=st.sampled_from(["$", "?", "%s", ":x", None]),
       templates=st.dictionaries(st.sampled_from(["like", "regex", "in_array", "in_json", "bad"]),
                                 st.one_of(st.sampled_from(["{c} ~ {p}", "{p}{c}", "{c}", "f({c}, {p})"]),
                                           scalars), max_size=3),
       mode=st.one_of(st.integers(-1, 3), scalars), large_in=st.one_of(st.integers(-1, 5), scalars),
       esc=st.one_of(st.sampled_from(["\\", "!", "", "ab"]), scalars),
       lit=st.one_of(st.none(), st.sampled_from(["'!'", ""]), scalars))
def test_spec_construction_agrees(kit, columns, paramstyle, templates, mode, large_in, esc, lit):
    native, pure = kit
    outs = []
    for m in (native.mod, pure.mod):
        try:
            s = m.FilterSpec(columns, paramstyle, None, templates, mode, large_in, esc, lit)
            outs.append(("ok", s.columns, s.paramstyle, s.templates, s.json_contains_mode, s.large_in,
                         s.like_escape, s.escape_literal))
        except Exception as exc:  # noqa: BLE001
            outs.append(("raise", type(exc), str(exc)))
    assert same(outs[0], outs[1]), outs
