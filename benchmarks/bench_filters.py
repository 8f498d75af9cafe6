"""Filter compile: the reference 5-predicate + $or filter to PostgreSQL (sql, params).

Peers in the same run: the compiled ``_native.filters``, its pure-Python twin, and SQLAlchemy Core
building ``select(t).where(and_(...))`` and compiling it for the postgresql dialect to a string
with parameters (``render_postcompile`` so the IN list is final, as ours is).  Each compile calls
the spec's ``coerce`` once per bound value; the native row uses the compiled ``_native.params``
when it is built (as production does) and says which coerce it used.
"""

from __future__ import annotations

try:  # part of the package (python -m benchmarks) or run as a script
    from .timing import per_call as _per_call
except ImportError:  # pragma: no cover
    from timing import per_call as _per_call

GROUP = "filter compile (reference 5-predicate + $or)"
BASE = "SQLAlchemy Core select().where().compile(postgresql)"
REFERENCE = {"age": {"$gte": 18}, "status": {"$in": ["active", "premium"]}, "name": {"$like": "A%"},
             "$or": [{"age": {"$lt": 30}}, {"status": "vip"}]}
TEMPLATES = {"like": "{c} LIKE {p}", "ilike": "{c} ILIKE {p}", "regex": "{c} ~ {p}",
             "iregex": "{c} ~* {p}", "json_contains": "{c} @> {p}::jsonb",
             "in_array": "{c} = ANY({p})", "nin_array": "NOT ({c} = ANY({p}))"}


def _spec(mod, params_mod):
    """As ``Dialect.filter_spec`` builds it: ``coerce(v, kind, dialect)`` called directly."""
    cols = {"id": ('"id"', 1), "age": ('"age"', 1), "status": ('"status"', 4), "name": ('"name"', 4)}
    return mod.FilterSpec(cols, "$", params_mod.coerce, TEMPLATES, 0, coerce_arg=params_mod.POSTGRESQL)


def _sqlalchemy_case():
    from sqlalchemy import Column, Integer, MetaData, String, Table, and_, or_, select
    from sqlalchemy.dialects import postgresql

    t = Table("users", MetaData(), Column("id", Integer, primary_key=True), Column("age", Integer),
              Column("status", String), Column("name", String))
    dialect = postgresql.dialect()

    def run():
        stmt = select(t).where(and_(t.c.age >= 18, t.c.status.in_(["active", "premium"]),
                                    t.c.name.like("A%"), or_(t.c.age < 30, t.c.status == "vip")))
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        return str(compiled), compiled.params

    return run


def run(quick: bool) -> list[dict]:
    from dataflow import _native
    from dataflow._native._pure import filters as pure_filters
    from dataflow._native._pure import params as pure_params

    rows = []

    def row(case, seconds, note=""):
        rows.append({"group": GROUP, "case": case, "median_s": seconds, "baseline": BASE, "note": note})

    try:
        native = _native.load("filters", "native")
        if not str(getattr(native, "__file__", "")).endswith((".so", ".pyd")):
            raise ImportError("not compiled")
    except ImportError as exc:
        native = None
        rows.append({"group": GROUP, "case": "native compile_filter", "median_s": float("nan"),
                     "baseline": BASE, "note": f"not built: {exc}"})
    if native is not None:
        try:
            nparams = _native.load("params", "native")
            which = "compiled"
        except ImportError:
            nparams, which = pure_params, "pure-Python"
        spec = _spec(native, nparams)
        expect = pure_filters.compile_filter(REFERENCE, _spec(pure_filters, pure_params))
        assert native.compile_filter(REFERENCE, spec) == expect
        row("native compile_filter", _per_call(lambda: native.compile_filter(REFERENCE, spec), quick),
            f"coerce: {which} _native.params (called 6 times per compile)")

    pspec = _spec(pure_filters, pure_params)
    row("python twin compile_filter", _per_call(lambda: pure_filters.compile_filter(REFERENCE, pspec), quick),
        "coerce: pure-Python _native.params")
    try:
        sa = _sqlalchemy_case()
    except ImportError as exc:
        rows.append({"group": GROUP, "case": BASE, "median_s": float("nan"), "baseline": None,
                     "note": f"sqlalchemy not installed: {exc}"})
    else:
        rows.append({"group": GROUP, "case": BASE, "median_s": _per_call(sa, quick), "baseline": None,
                     "note": "build + compile + str + params, render_postcompile=True"})
    return rows


if __name__ == "__main__":  # pragma: no cover - manual runs
    import sys

    for r in run("--full" not in sys.argv):
        print(f"{r['case']:<55} {r['median_s'] * 1e6:9.3f} us  {r['note']}")
