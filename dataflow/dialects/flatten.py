"""Flatten a filter dict without changing what it matches, so it renders shallower SQL.

SQLite's parser stack is fixed at build time; filters built by code often nest
``{"$and": [{"$and": [...]}, ...]}`` far deeper than their logic needs.  AND and OR are associative
and commutative in SQL's three-valued logic, and every negation the compiler emits is
``NOT COALESCE(x, FALSE)`` (NULL counts as false everywhere), so these rewrites keep the rows:

- a ``$and`` inside a ``$and`` (or a dict's implicit AND) is spliced into it; likewise ``$or`` in
  ``$or`` and ``$or`` items of ``$nor``;
- a one-item ``$and``/``$or`` is its item;
- ``{"$not": {"$not": X}}`` is X, at document and field level;
- the most nested part of an AND or OR goes first (cheaper for the parser, see ``_deepest_first``).

Pure: no dialect, no I/O.  It expects a filter the compiler has accepted; shapes it does not
recognise are returned as they are.
"""

from __future__ import annotations

__all__ = ["flatten"]


def flatten(filt: dict) -> dict:
    """The same filter with same-operator nesting removed (see module docstring)."""
    if type(filt) is not dict:
        return filt
    return _and(_conjuncts(filt))


def _items(value) -> bool:
    return type(value) in (list, tuple) and len(value) > 0 and all(type(x) is dict for x in value)


def _double_not(value) -> bool:
    return type(value) is dict and len(value) == 1 and type(value.get("$not")) is dict


def _conjuncts(doc: dict) -> list[dict]:
    """One-key dicts whose AND is ``doc``."""
    out: list[dict] = []
    for key, value in doc.items():
        if key == "$and" and _items(value):
            for item in value:
                out += _conjuncts(item)
        elif key == "$or" and _items(value):
            alts = [d for item in value for d in _disjuncts(item)]
            if len(alts) == 1:
                out += _conjuncts(alts[0])
            else:
                out.append({"$or": _deepest_first(alts)})
        elif key == "$nor" and _items(value):
            out.append({"$nor": _deepest_first([d for item in value for d in _disjuncts(item)])})
        elif key == "$not" and _double_not(value):
            out += _conjuncts(value["$not"])
        elif key == "$not" and type(value) is dict:
            out.append({"$not": flatten(value)})
        elif key[:1] != "$" and type(value) is dict:
            out.append({key: _field(value)})
        else:
            out.append({key: value})
    return out


def _disjuncts(doc: dict) -> list[dict]:
    """Dicts whose OR is ``doc``."""
    parts = _conjuncts(doc)
    if len(parts) == 1 and "$or" in parts[0]:
        return list(parts[0]["$or"])
    return [_and(parts)]


def _deepest_first(parts: list[dict]) -> list[dict]:
    """AND and OR commute: the most nested part goes first, where SQLite's parser has no
    pending ``x AND`` on its stack while it reads it."""
    return sorted(parts, key=lambda p: -_nesting(p))


def _nesting(node) -> int:
    if type(node) is dict:
        return 1 + max((_nesting(v) for v in node.values()), default=0)
    if type(node) in (list, tuple):
        return max((_nesting(v) for v in node), default=0)
    return 0


def _and(parts: list[dict]) -> dict:
    if len(parts) == 1:
        return parts[0]
    parts = _deepest_first(parts)
    keys = [next(iter(p)) for p in parts]
    if len(set(keys)) == len(keys):
        return {k: p[k] for k, p in zip(keys, parts)}   # one dict: an implicit AND, no parentheses
    return {"$and": parts}


def _field(cond: dict) -> dict:
    """A field's operator dict with ``$not`` of ``$not`` removed."""
    while len(cond) == 1 and _double_not(cond.get("$not")):
        cond = cond["$not"]["$not"]
    if type(cond.get("$not")) is dict:
        cond = {**cond, "$not": _field(cond["$not"])}
    return cond
