"""Pure-Python reference evaluator for DataFlow filters: the oracle of the differential tests.

``matches(row, filt)`` decides whether one row (a dict of Python values) satisfies a filter in
the DataFlow filter language (spec/core.md, "Filters"); ``select(rows, filt, key)`` returns the
set of ``row[key]`` of the matching rows.  It knows nothing about SQL, so the same answer is the
expected result on every backend -- agreeing with it on SQLite, PostgreSQL and MySQL means the
three databases return identical results.

Semantics implemented (MongoDB's, as documented for DataFlow)
--------------------------------------------------------------
* Two-valued logic: a predicate on a NULL (``None``) column is simply false, except where stated
  below.  ``$and``/``$or`` are ``all``/``any``; ``$nor`` is ``not any``; ``$not`` (field level or
  document level) is ``not inner`` -- so ``$not`` and ``$nor`` MATCH rows where the inner
  predicate is false because the column is NULL (SQL: ``NOT COALESCE(inner, FALSE)``).
* ``{"f": None}`` and ``{"f": {"$eq": None}}`` match NULL only; ``{"f": v}`` never matches NULL.
* ``$ne: v`` matches every row whose value differs from ``v`` INCLUDING NULL rows;
  ``$ne: None`` matches the non-NULL rows.
* ``$in``: value is one of the non-None members; ``None`` in the list also matches NULL.
  ``$in: []`` matches nothing.
* ``$nin`` is the exact negation of ``$in``: NULL rows match unless ``None`` is in the list.
  ``$nin: []`` matches everything (NULL rows included).
* ``$gt/$gte/$lt/$lte/$between`` never match NULL; ``$between: [lo, hi]`` is ``lo <= x <= hi``.
  Strings compare by code point (C collation), datetimes by instant.
* Equality is exact: no trailing-space padding, case-sensitive, no type juggling.
* ``$exists: b`` / ``$null: b``: ``(x is not None) == b`` / ``(x is None) == b``.
* ``$like`` / ``$ilike``: SQL LIKE patterns over the whole value: ``%`` any run, ``_`` exactly one
  character, backslash escapes the next character (the PostgreSQL/MySQL default).  ``$like`` is
  case-sensitive; ``$ilike`` compares ``str.lower()`` of both sides (full Unicode).
* ``$regex``: Python ``re.search`` (unanchored); ``$options: "i"`` -> ``re.IGNORECASE``.
  Tests only use patterns whose meaning is the same in POSIX ARE, PCRE and Python.
* ``$contains``/``$startswith``/``$endswith`` on text: plain substring / prefix / suffix,
  case-sensitive, with ``%``, ``_`` and ``\\`` taken literally.  ``$contains`` on a JSON list field:
  list membership (``v in list``).
"""

from __future__ import annotations

import re

LOGICAL = ("$and", "$or", "$nor")


class ReferenceError_(ValueError):
    """The filter is outside what the reference understands (a bug in the test, not in DataFlow)."""


def like_to_regex(pattern: str, escape: str = "\\") -> str:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def like(value: str, pattern: str, ci: bool = False) -> bool:
    if ci:
        value, pattern = value.lower(), pattern.lower()
    return re.fullmatch(like_to_regex(pattern), value, re.DOTALL) is not None


def _eq(x, v) -> bool:
    if x is None or v is None:
        return False
    if type(x) is bool or type(v) is bool:
        return type(x) is type(v) and x == v
    return x == v


def _in(x, values) -> bool:
    if x is None:
        return any(v is None for v in values)
    return any(_eq(x, v) for v in values if v is not None)


def _op(x, op: str, v, cond: dict) -> bool:
    if op == "$eq":
        return x is None if v is None else _eq(x, v)
    if op == "$ne":
        return x is not None if v is None else not _eq(x, v)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if x is None:
            return False
        return {"$gt": x > v, "$gte": x >= v, "$lt": x < v, "$lte": x <= v}[op]
    if op == "$between":
        return x is not None and v[0] <= x <= v[1]
    if op == "$in":
        return _in(x, v)
    if op == "$nin":
        return not _in(x, v)
    if op == "$exists":
        return (x is not None) == v
    if op == "$null":
        return (x is None) == v
    if op == "$like":
        return x is not None and like(x, v)
    if op == "$ilike":
        return x is not None and like(x, v, ci=True)
    if op == "$regex":
        flags = re.IGNORECASE if "i" in cond.get("$options", "") else 0
        return x is not None and re.search(v, x, flags) is not None
    if op == "$contains":
        if x is None:
            return False
        if isinstance(x, list):
            return any(_eq(item, v) for item in x)
        return isinstance(x, str) and isinstance(v, str) and v in x
    if op == "$startswith":
        return x is not None and x.startswith(v)
    if op == "$endswith":
        return x is not None and x.endswith(v)
    if op == "$not":
        return not _field(x, v)
    raise ReferenceError_(f"reference does not know operator {op}")


def _field(x, cond) -> bool:
    if isinstance(cond, dict):
        return all(_op(x, op, v, cond) for op, v in cond.items() if op != "$options")
    if cond is None:
        return x is None
    return _eq(x, cond)


def matches(row: dict, filt: dict | None) -> bool:
    if not filt:
        return True
    for key, value in filt.items():
        if key in LOGICAL:
            results = [matches(row, sub) for sub in value]
            ok = all(results) if key == "$and" else any(results)
            if key == "$nor":
                ok = not ok
        elif key == "$not":
            ok = not matches(row, value)
        elif key.startswith("$"):
            raise ReferenceError_(f"reference does not know top-level operator {key}")
        else:
            if key not in row:
                raise ReferenceError_(f"unknown field {key}")
            ok = _field(row[key], value)
        if not ok:
            return False
    return True


def select(rows, filt, key: str = "k") -> set:
    return {r[key] for r in rows if matches(r, filt)}
