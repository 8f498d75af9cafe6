"""FilterSpec(coerce_arg=...): the compiler calls ``coerce(value, kind, coerce_arg)`` directly
(what ``Dialect.filter_spec`` does, saving a lambda frame per bound value).  Both implementations,
same SQL, params and error messages as the two-argument form."""

import pytest

from dataflow._native._pure import params as P
from tests.native.conftest import load_impl
from tests.native.test_filters import PG_TEMPLATES, REFERENCE

COLS = {"id": ('"id"', P.INT), "age": ('"age"', P.INT), "status": ('"status"', P.STR), "name": ('"name"', P.STR)}


def _specs(m):
    lam = m.FilterSpec(COLS, "$", lambda v, k: P.coerce(v, k, P.POSTGRESQL), PG_TEMPLATES, 0)
    direct = m.FilterSpec(COLS, "$", P.coerce, PG_TEMPLATES, 0, coerce_arg=P.POSTGRESQL)
    return lam, direct


def test_same_sql_and_params(impl):
    m = load_impl("filters", impl)
    lam, direct = _specs(m)
    assert direct.coerce_arg == P.POSTGRESQL and lam.coerce_arg is None
    got = m.compile_filter(REFERENCE, direct)
    assert got == m.compile_filter(REFERENCE, lam)
    assert got[1] == [18, ["active", "premium"], "A%", 30, "vip"]


def test_errors_name_the_path(impl):
    m = load_impl("filters", impl)
    _, direct = _specs(m)
    with pytest.raises((TypeError, ValueError), match=r"filter\.\$or\[0\]\.age\.\$lt: "):
        m.compile_filter({"$or": [{"age": {"$lt": "not a number"}}]}, direct)


def test_the_arg_reaches_coerce(impl):
    m = load_impl("filters", impl)
    seen = []

    def coerce(v, k, arg):
        seen.append(arg)
        return v

    spec = m.FilterSpec(COLS, "?", coerce, {}, 0, coerce_arg="dialect-x")
    assert m.compile_filter({"age": 3, "name": "a"}, spec) == ('"age" = ? AND "name" = ?', [3, "a"])
    assert seen == ["dialect-x", "dialect-x"]


def test_both_implementations_agree():
    pure = load_impl("filters", "python")
    native = load_impl("filters", "native")
    assert (native.compile_filter(REFERENCE, _specs(native)[1])
            == pure.compile_filter(REFERENCE, _specs(pure)[1]))
