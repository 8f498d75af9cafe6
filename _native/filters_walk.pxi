# Included by filters.pyx (one compilation unit, so these calls stay direct C calls): the walker.
# Document level ($and/$or/$nor/$not, field names), then one field's operator dict, with the
# shape, depth and node-count checks; each operator is rendered by _op (filters_ops.pxi).

# -- document level ----------------------------------------------------------------------
cdef int _doc(_Compiler c, object filt, Py_ssize_t depth) except -1:
    cdef bint first = True
    cdef int dcode
    if type(filt) is not dict:
        raise TypeError(f"{c.path()}: expected a dict, got {type(filt).__name__}")
    if depth > C_MAX_DEPTH:
        raise ValueError(f"{c.path()}: filter nested deeper than {MAX_DEPTH} levels")
    if PyDict_GET_SIZE(filt) == 0:
        return c.w("1=1", 3)
    for key, value in (<dict>filt).items():
        if type(key) is not str:
            raise TypeError(f"{c.path()}: keys must be str, got {type(key).__name__}")
        if first:
            first = False
        else:
            c.w(" AND ", 5)
        c.push(key)
        if PyUnicode_GET_LENGTH(key) and PyUnicode_READ_CHAR(key, 0) == 36:  # '$'
            dcode = doc_code(<str>key)
            if dcode == D_AND or dcode == D_OR or dcode == D_NOR:
                _logical(c, dcode, value, depth)
            elif dcode == D_NOT:
                c.w("NOT COALESCE((", 14)
                _doc(c, value, depth + 1)
                c.w("), FALSE)", 9)
            elif dcode == D_REFUSED:
                raise ValueError(f"{c.path()}: operator {key} runs server-side code and is refused")
            else:
                raise ValueError(f"{c.path()}: unknown top-level operator {key}; use one of "
                                 f"$and, $or, $nor, $not, or a field name")
        else:
            _field(c, <str>key, value, depth)
        c.nseg -= 1
    return 0


cdef int _logical(_Compiler c, int op, object value, Py_ssize_t depth) except -1:
    cdef Py_ssize_t i = 0
    if type(value) is not list and type(value) is not tuple:
        raise TypeError(f"{c.path()}: expected a list of filter dicts, got {type(value).__name__}")
    if Py_SIZE(value) == 0:
        raise ValueError(f"{c.path()}: needs a non-empty list")
    if op == D_NOR:
        c.w("NOT COALESCE(", 13)
    c.w("(", 1)
    for item in value:
        if i:
            if op == D_AND:
                c.w(" AND ", 5)
            else:
                c.w(" OR ", 4)
        c.w("(", 1)
        c.push_index(i)
        _doc(c, item, depth + 1)
        c.nseg -= 1
        c.w(")", 1)
        i += 1
    c.w(")", 1)
    if op == D_NOR:
        c.w(", FALSE)", 8)
    return 0


# -- field level -------------------------------------------------------------------------
cdef int _field(_Compiler c, str name, object cond, Py_ssize_t depth) except -1:
    cdef PyObject* found = PyDict_GetItemWithError(c.spec._cols, name)
    cdef _Col col
    if found == NULL:
        valid = ", ".join(sorted(c.spec.columns))
        raise ValueError(f"{c.path()}: unknown field {name!r}; valid fields: {valid}")
    col = <_Col>found
    c.nodes += 1
    if c.nodes > C_MAX_NODES:
        raise ValueError(f"{c.path()}: filter has more than {MAX_NODES} predicates; use $in for long lists")
    if type(cond) is dict:
        return _ops(c, <dict>cond, col, depth, True)
    if cond is None:
        c.ws(col.qcol)
        return c.w(" IS NULL", 8)
    bound = c.value(cond, col.kind)
    c.ws(col.qcol)
    c.w(" = ", 3)
    return c.bind(bound)


cdef int _ops(_Compiler c, dict cond, _Col col, Py_ssize_t depth, bint top) except -1:
    cdef Py_ssize_t nparts
    cdef bint first = True
    cdef int code
    if PyDict_GET_SIZE(cond) == 0:
        raise ValueError(f"{c.path()}: empty operator dict")
    # a single key is one part (or an error); only longer dicts pay for the "$options" probe
    nparts = PyDict_GET_SIZE(cond)
    if nparts > 1 and "$options" in cond:
        nparts -= 1
    if nparts > 1:
        c.w("(", 1)
    for op, v in cond.items():
        if type(op) is not str or not PyUnicode_GET_LENGTH(op) or PyUnicode_READ_CHAR(op, 0) != 36:
            if top:
                raise TypeError(f"{c.path()}: expected operators like $gt in this dict, got key {op!r}"
                                f" (a dict is not a value; JSON equality is not supported)")
            raise TypeError(f"{c.path()}: expected operators like $gt in this dict, got key {op!r}")
        c.push(op)
        code = field_code(<str>op)
        if code == O_OPTIONS:
            if "$regex" not in cond:
                raise ValueError(f"{c.path()}: only valid next to $regex")
        else:
            if first:
                first = False
            else:
                c.w(" AND ", 5)
            _op(c, code, <str>op, v, col, cond, depth)
        c.nseg -= 1
    if nparts > 1:
        c.w(")", 1)
    return 0
