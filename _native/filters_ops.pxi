# Included by filters.pyx (one compilation unit): operator rendering -- one field operator to SQL
# through the spec's templates, and the list/JSON operands of $in/$nin and JSON $contains.

cdef str _VALID_OPS = ", ".join(FIELD_OPS)
cdef object _STR_KIND = STR_KIND
cdef object _check_json = None   # _native._pure.params._check_json, imported on first use


cdef int _tpl_open(_Compiler c, int slot, _Col col) except -1:
    """Write a template's prefix, the column and its middle (``_tpl_close`` writes the rest)."""
    t = c.spec._tpl[slot]
    if t is None:
        raise ValueError(f"{c.path()}: not supported on this database")
    c.ws(<str>(<tuple>t)[0])
    c.ws(col.qcol)
    return c.ws(<str>(<tuple>t)[1])


cdef inline int _tpl_close(_Compiler c, int slot) except -1:
    return c.ws(<str>(<tuple>c.spec._tpl[slot])[2])


cdef int _tpl(_Compiler c, int slot, _Col col, object bound) except -1:
    _tpl_open(c, slot, col)
    c.bind(bound)
    return _tpl_close(c, slot)


cdef int _op(_Compiler c, int code, str op, object v, _Col col, dict cond, Py_ssize_t depth) except -1:
    if code >= O_EQ and code <= O_LTE:
        if v is None:
            if code == O_EQ:
                c.ws(col.qcol)
                return c.w(" IS NULL", 8)
            raise ValueError(f"{c.path()}: cannot compare with None; use $exists or $null")
        bound = c.value(v, col.kind)
        c.ws(col.qcol)
        if code == O_EQ:
            c.w(" = ", 3)
        elif code == O_GT:
            c.w(" > ", 3)
        elif code == O_GTE:
            c.w(" >= ", 4)
        elif code == O_LT:
            c.w(" < ", 3)
        else:
            c.w(" <= ", 4)
        return c.bind(bound)
    if code == O_NE:
        if v is None:
            c.ws(col.qcol)
            return c.w(" IS NOT NULL", 12)
        bound = c.value(v, col.kind)
        c.w("(", 1)
        c.ws(col.qcol)
        c.w(" <> ", 4)
        c.bind(bound)
        c.w(" OR ", 4)
        c.ws(col.qcol)
        return c.w(" IS NULL)", 9)
    if code == O_IN or code == O_NIN:
        return _in(c, code == O_IN, v, col)
    if code == O_EXISTS or code == O_NULL:
        if type(v) is not bool:
            raise TypeError(f"{c.path()}: expected true or false, got {type(v).__name__}")
        c.ws(col.qcol)
        if (v is False) if code == O_EXISTS else (v is True):
            return c.w(" IS NULL", 8)
        return c.w(" IS NOT NULL", 12)
    if code == O_LIKE or code == O_ILIKE:
        _need_str(c, col, v)
        bound = c.value(v, _STR_KIND)
        # An explicit ESCAPE makes backslash the escape character on every dialect
        # (SQLite has none by default; PostgreSQL and MySQL default to backslash).
        _tpl(c, T_LIKE if code == O_LIKE else T_ILIKE, col, bound)
        c.w(" ESCAPE ", 8)
        return c.ws(c.spec.escape_literal)
    if code == O_REGEX:
        if type(v) is not str:
            raise TypeError(f"{c.path()}: expected a regular expression string, got {type(v).__name__}")
        if col.ckind != STR_KIND:
            raise ValueError(f"{c.path()}: $regex needs a text field")
        if PyUnicode_GET_LENGTH(v) > C_MAX_REGEX:
            raise ValueError(f"{c.path()}: regular expression longer than {MAX_REGEX} characters")
        opts = cond.get("$options", "")
        if type(opts) is not str or any(ch != "i" for ch in <str>opts):
            raise ValueError(f"{c.path_to(c.nseg - 1)}.$options: only the 'i' option is supported")
        bound = c.value(v, _STR_KIND)
        return _tpl(c, T_IREGEX if opts else T_REGEX, col, bound)
    if code == O_CONTAINS or code == O_STARTSWITH or code == O_ENDSWITH:
        if code == O_CONTAINS and col.ckind == JSON_KIND:
            return _json_contains(c, v, col)
        _need_str(c, col, v)
        c.value(v, _STR_KIND)
        esc = c.spec.like_escape
        text = (<str>v).replace(esc, esc + esc).replace("%", esc + "%").replace("_", esc + "_")
        if code == O_CONTAINS:
            text = "%" + text + "%"
        elif code == O_STARTSWITH:
            text = text + "%"
        else:
            text = "%" + text
        _tpl(c, T_LIKE, col, text)
        c.w(" ESCAPE ", 8)
        return c.ws(c.spec.escape_literal)
    if code == O_BETWEEN:
        if (type(v) is not list and type(v) is not tuple) or len(v) != 2:
            raise TypeError(f"{c.path()}: expected [low, high]")
        lo = v[0]
        hi = v[1]
        if lo is None or hi is None:
            raise ValueError(f"{c.path()}: bounds cannot be None")
        c.push_index(0)
        lo = c.value(lo, col.kind)
        c.nseg -= 1
        c.ws(col.qcol)
        c.w(" BETWEEN ", 9)
        c.bind(lo)
        c.push_index(1)
        hi = c.value(hi, col.kind)
        c.nseg -= 1
        c.w(" AND ", 5)
        return c.bind(hi)
    if code == O_NOT:
        if type(v) is not dict:
            raise TypeError(f"{c.path()}: expected an operator dict like {{'$gt': 5}}")
        if depth + 1 > C_MAX_DEPTH:
            raise ValueError(f"{c.path()}: filter nested deeper than {MAX_DEPTH} levels")
        c.w("NOT COALESCE((", 14)
        _ops(c, <dict>v, col, depth + 1, False)
        return c.w("), FALSE)", 9)
    if op in REFUSED_OPS:
        raise ValueError(f"{c.path()}: operator {op} runs server-side code and is refused")
    if op in ("$and", "$or", "$nor"):
        raise ValueError(f"{c.path()}: {op} belongs at document level, not inside a field")
    raise ValueError(f"{c.path()}: unknown operator {op}; valid operators: {_VALID_OPS}")


cdef int _need_str(_Compiler c, _Col col, object v) except -1:
    if col.ckind != STR_KIND:
        raise ValueError(f"{c.path()}: this operator needs a text field")
    if type(v) is not str:
        raise TypeError(f"{c.path()}: expected str, got {type(v).__name__}")
    return 0


cdef int _json_contains(_Compiler c, object v, _Col col) except -1:
    global _check_json
    cdef int mode = c.spec._mode
    try:
        if _check_json is None:
            from dataflow._native._pure.params import _check_json as check
            _check_json = check
        _check_json(v)
        if mode == 0:
            bound = orjson.dumps([v]).decode()
        elif mode == 1:
            bound = orjson.dumps(v).decode()
        else:
            bound = v
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{c.path()}: {exc}") from None
    return _tpl(c, T_JSON_CONTAINS, col, bound)


cdef int _in(_Compiler c, bint positive, object v, _Col col) except -1:
    cdef list values = []
    cdef bint has_null = False
    cdef Py_ssize_t i = 0
    cdef list tpls = c.spec._tpl
    if type(v) is not list and type(v) is not tuple:
        raise TypeError(f"{c.path()}: expected a list, got {type(v).__name__}")
    kind = col.kind
    for item in v:
        if item is None:
            has_null = True
        else:
            c.push_index(i)
            values.append(c.value(item, kind))
            c.nseg -= 1
        i += 1
    if not values:
        if has_null:
            c.ws(col.qcol)
            return c.w(" IS NULL", 8) if positive else c.w(" IS NOT NULL", 12)
        return c.w("1=0", 3) if positive else c.w("1=1", 3)
    # the wrapper around the membership test
    if positive:
        if has_null:
            c.w("(", 1)
    elif has_null:
        c.w("(", 1)
        c.ws(col.qcol)
        c.w(" IS NOT NULL AND ", 17)
    else:
        c.w("(", 1)
        c.ws(col.qcol)
        c.w(" IS NULL OR ", 12)
    if tpls[T_IN_ARRAY] is not None:
        _tpl(c, T_IN_ARRAY if positive else T_NIN_ARRAY, col, values)
    elif (len(values) > c.spec._large_in and tpls[T_IN_JSON] is not None
          and (col.ckind == 1 or col.ckind == 2 or col.ckind == 4 or col.ckind == 9)):
        bound = orjson.dumps(values).decode()
        if not positive:
            c.w("NOT (", 5)
        _tpl(c, T_IN_JSON, col, bound)
        if not positive:
            c.w(")", 1)
    else:
        c.ws(col.qcol)
        if positive:
            c.w(" IN (", 5)
        else:
            c.w(" NOT IN (", 9)
        i = 0
        for x in values:
            if i:
                c.w(", ", 2)
            c.bind(x)
            i += 1
        c.w(")", 1)
    if positive:
        if has_null:
            c.w(" OR ", 4)
            c.ws(col.qcol)
            c.w(" IS NULL)", 9)
        return 0
    return c.w(")", 1)
