"""Value binding and row decoding: the compiled ``_native.params`` against its pure-Python twin.

Both are on the hot path of every write (``coerce_row``) and read (``decode_rows``).  The row is a
typical 8-column model: int, str, str, int, float, bool, aware UTC datetime, small JSON dict.
``coerce_row`` is measured per dialect (the SQLite path formats the ISO datetime and the bool as
an int; PostgreSQL binds most values as they are).  ``decode_rows`` decodes 1,000 rows as SQLite
returns them: bool ints, ISO datetime strings, JSON text.  Ratios use the twin as denominator.
"""

from __future__ import annotations

import datetime as _dt

try:  # part of the package (python -m benchmarks) or run as a script
    from .timing import per_call as _per_call
except ImportError:  # pragma: no cover
    from timing import per_call as _per_call

GROUP_COERCE = "params coerce_row (8 cols)"
GROUP_DECODE = "params decode_rows 1k rows sqlite"
NAMES = ("id", "name", "email", "age", "score", "active", "created_at", "meta")
DIALECTS = (("postgresql", 1), ("mysql", 2), ("sqlite", 3))


def _row():
    return [12345, "Alice Example", "alice@example.com", 42, 3.75, True,
            _dt.datetime(2024, 5, 17, 12, 34, 56, 789012, tzinfo=_dt.timezone.utc),
            {"tags": ["a", "b"], "plan": "pro", "score": 7, "beta": False}]


def run(quick: bool) -> list[dict]:
    from dataflow import _native
    from dataflow._native._pure import params as pure

    try:
        native = _native.load("params", "native")
        if not str(getattr(native, "__file__", "")).endswith((".so", ".pyd")):
            raise ImportError("not compiled")
    except ImportError as exc:
        native, why = None, f"not built: {exc}"
    kinds = (pure.INT, pure.STR, pure.STR, pure.INT, pure.FLOAT, pure.BOOL, pure.DATETIME, pure.JSON)
    row = _row()
    rows = []

    def add(group, case, seconds, baseline, note=""):
        rows.append({"group": group, "case": case, "median_s": seconds, "baseline": baseline, "note": note})

    for dname, code in DIALECTS:
        base = f"python twin, {dname}"
        if native is None:
            add(GROUP_COERCE, f"native, {dname}", float("nan"), base, why)
        else:
            assert native.coerce_row(row, kinds, code, NAMES) == pure.coerce_row(row, kinds, code, NAMES)
            add(GROUP_COERCE, f"native, {dname}",
                _per_call(lambda: native.coerce_row(row, kinds, code, NAMES), quick), base)
        add(GROUP_COERCE, base, _per_call(lambda: pure.coerce_row(row, kinds, code, NAMES), quick), None)

    stored = []
    for i in range(1000):
        r = _row()
        r[0] = i
        r[6] = r[6] + _dt.timedelta(seconds=i)
        stored.append(tuple(pure.coerce_row(r, kinds, pure.SQLITE, NAMES)))
    base = "python twin"
    if native is None:
        add(GROUP_DECODE, "native", float("nan"), base, why)
    else:
        assert native.decode_rows(stored, NAMES, kinds, 3) == pure.decode_rows(stored, NAMES, kinds, 3)
        add(GROUP_DECODE, "native", _per_call(lambda: native.decode_rows(stored, NAMES, kinds, 3), quick), base)
    add(GROUP_DECODE, base, _per_call(lambda: pure.decode_rows(stored, NAMES, kinds, 3), quick), None)
    return rows


if __name__ == "__main__":  # pragma: no cover - manual runs
    import sys

    out = run("--full" not in sys.argv)
    by_case = {(r["group"], r["case"]): r["median_s"] for r in out}
    for r in out:
        ratio = ""
        if r["baseline"]:
            ratio = f"{by_case[(r['group'], r['baseline'])] / r['median_s']:6.1f}x"
        print(f"{r['group']:<36} {r['case']:<24} {r['median_s'] * 1e6:10.3f} us {ratio} {r['note']}")
