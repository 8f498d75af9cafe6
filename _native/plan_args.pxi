# Included by params.pyx (``coerce_plan``) and copybin.pyx (``encode_plan``): the checks of a bulk
# "plan" -- sources, defaults, width, shapes, items, start -- written once, and the C arrays both
# hot loops read it from.  Runs once per call, never per row.
# Twin: ``_native/_pure/_plan.py`` (same checks, same order, same messages).

cdef enum:
    F_NONE = 0      # no default: the item must carry the value
    F_VALUE = 1     # constant default
    F_CALL = 2      # default factory, called per row


cdef tuple _plan_list(seq, str what, Py_ssize_t ncols, str unit):
    if isinstance(seq, str):
        raise TypeError(f"{what} must be a sequence, not str")
    out = tuple(seq)
    if len(out) != ncols:
        raise ValueError(f"{what} has {len(out)} entries for {ncols} {unit}")
    return out


cdef tuple _plan_args(Py_ssize_t ncols, str unit, sources, defaults, width, shapes, items, start):
    """Check a plan of ``ncols`` columns and the call's ``items``/``start`` -> (sources, defaults,
    shapes) as tuples; shapes is None when no column has one.  ``unit`` ("kinds" or "types")
    names the columns in messages."""
    cdef Py_ssize_t j
    cdef tuple srcs, defs, shp = None
    cdef bint tuples
    if type(width) is not int:
        raise TypeError("width must be an int")
    tuples = width >= 0
    srcs = _plan_list(sources, "sources", ncols, unit)
    defs = _plan_list(defaults, "defaults", ncols, unit)
    for j in range(ncols):
        s, df = srcs[j], defs[j]
        if s is not None and tuples and (type(s) is not int or not 0 <= s < width):
            raise ValueError(f"sources[{j}] must be a position in 0..{width - 1} for tuple items, got {s!r}")
        if df is not None:
            # <tuple> casts only after the exact-type and length checks
            if not (type(df) is tuple and len(<tuple>df) == 2 and (<tuple>df)[0] in ("value", "call")):
                raise ValueError(f"defaults[{j}] must be None, ('value', v) or ('call', f), got {df!r}")
            if (<tuple>df)[0] == "call" and not callable((<tuple>df)[1]):
                raise TypeError(f"defaults[{j}]: a 'call' default needs a callable")
        elif s is None:
            raise ValueError(f"column {j} has neither a source nor a default")
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


cdef tuple _plan_layout(tuple srcs, tuple defs, bint tuples, Py_ssize_t* pos, int* fill):
    """Fill ``pos`` (``tuples``, i.e. width >= 0: the item position per column, -1 = not from the
    item; always -1 for dict items) and ``fill``
    (F_NONE/F_VALUE/F_CALL per column) from a checked plan -> the default value or factory per
    column (None where there is none)."""
    cdef Py_ssize_t j
    cdef tuple df
    fills = []
    for j in range(len(srcs)):
        s, df = srcs[j], defs[j]
        pos[j] = s if (tuples and s is not None) else -1
        fill[j] = F_NONE if df is None else (F_VALUE if df[0] == "value" else F_CALL)
        fills.append(None if df is None else df[1])
    return tuple(fills)
