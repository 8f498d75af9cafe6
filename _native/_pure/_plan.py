"""A bulk "plan", shared by the twins' ``params.coerce_plan`` and ``copybin.encode_plan``: the
argument checks (the compiled side has them once too, in ``_native/plan_args.pxi``) and the walk
over the items, which stops at the first item off the plan.

Private helper, not a twin: it has no compiled counterpart and no stub.
"""

from __future__ import annotations


def _plan_list(seq, what, ncols, unit):
    if isinstance(seq, str):
        raise TypeError(f"{what} must be a sequence, not str")
    out = tuple(seq)
    if len(out) != ncols:
        raise ValueError(f"{what} has {len(out)} entries for {ncols} {unit}")
    return out


def check_args(ncols, unit, sources, defaults, width, shapes, items, start):
    """Check a plan of ``ncols`` columns and the call's ``items``/``start`` -> (sources, defaults,
    shapes) as tuples; shapes is None when no column has one.  ``unit`` ("kinds" or "types")
    names the columns in messages."""
    if type(width) is not int:
        raise TypeError("width must be an int")
    srcs = _plan_list(sources, "sources", ncols, unit)
    defs = _plan_list(defaults, "defaults", ncols, unit)
    for j in range(ncols):
        s, df = srcs[j], defs[j]
        if s is not None and width >= 0 and (type(s) is not int or not 0 <= s < width):
            raise ValueError(f"sources[{j}] must be a position in 0..{width - 1} for tuple items, got {s!r}")
        if df is not None and not (type(df) is tuple and len(df) == 2 and df[0] in ("value", "call")):
            raise ValueError(f"defaults[{j}] must be None, ('value', v) or ('call', f), got {df!r}")
        if df is not None and df[0] == "call" and not callable(df[1]):
            raise TypeError(f"defaults[{j}]: a 'call' default needs a callable")
        if s is None and df is None:
            raise ValueError(f"column {j} has neither a source nor a default")
    shp = None
    if shapes is not None:
        shp = _plan_list(shapes, "shapes", ncols, unit)
        for j in range(ncols):
            if shp[j] is not None and (type(shp[j]) is not tuple or not all(isinstance(t, type) for t in shp[j])):
                raise TypeError(f"shapes[{j}] must be None or a tuple of types")
        if all(x is None for x in shp):
            shp = None
    if type(items) is not list:
        raise TypeError(f"items must be a list, got {type(items).__name__}")
    if type(start) is not int or start < 0:
        raise ValueError("start must be a non-negative int")
    return srcs, defs, shp


class Skip(Exception):
    """The item is not on the planned fast path."""


def walk(items, start, srcs, width, taken, filled, row, out):
    """Append ``row(values)`` to ``out`` for each item of ``items[start:]`` on the plan -> the index
    of the first item not taken (``len(items)`` when all were).

    ``values[j]`` is ``taken(j, v)`` for the value ``v`` the item carries for column ``j`` (at
    position ``srcs[j]`` of a tuple of exactly ``width`` values, or under key ``srcs[j]`` of a
    dict when ``width < 0``) and ``filled(j)`` for one it does not.  An item off the plan (wrong
    type or width, a key not in ``srcs``), or one for which ``taken``/``filled`` raise anything
    (``Skip`` for "no default"), stops the walk without raising.
    """
    missing = object()
    i, n = start, len(items)
    while i < n:
        item = items[i]
        try:
            if width >= 0:
                if type(item) is not tuple or len(item) != width:
                    raise Skip
                vals = [filled(j) if s is None else taken(j, item[s]) for j, s in enumerate(srcs)]
            else:
                if type(item) is not dict:
                    raise Skip
                found = 0
                vals = []
                for j, k in enumerate(srcs):
                    v = missing if k is None else item.get(k, missing)
                    if v is missing:
                        vals.append(filled(j))
                    else:
                        found += 1
                        vals.append(taken(j, v))
                if found != len(item):
                    raise Skip
        except Exception:
            break
        out.append(row(vals))
        i += 1
    return i
