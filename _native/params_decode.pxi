# Included by params.pyx (one compilation unit): driver values -> Python values, row decoding.

cdef object _py_float = float


# -- decode --------------------------------------------------------------------------------------
cdef object _decode_decimal(object value, int d):
    if type(value) is not _Decimal:
        value = _Decimal(str(value)) if type(value) is not float else _Decimal(repr(value))
    if d == D_MYSQL:
        # DECIMAL(65,30) pads 30 fractional digits: drop the padding, keep the value.
        if value == value.to_integral_value():
            return value.quantize(_ONE, context=_EXACT)
        return value.normalize(_EXACT)
    return value


cdef object _decode(object value, int kc, int d):
    """The twin's ``decode`` for a non-None value."""
    cdef char hex32[33]
    t = type(value)
    if kc == K_BOOL:
        return True if value else False
    if kc == K_DATETIME:
        if t is str:
            r = _parse_iso_utc(value)
            if r is not None:
                return r
            value = _fromisoformat(value)
            t = type(value)
        if t is _datetime:
            if datetime_tzinfo(value) is None:
                return datetime_new(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                    PyDateTime_GET_DAY(value), PyDateTime_DATE_GET_HOUR(value),
                                    PyDateTime_DATE_GET_MINUTE(value),
                                    PyDateTime_DATE_GET_SECOND(value),
                                    PyDateTime_DATE_GET_MICROSECOND(value), _UTC,
                                    datetime_fold(value))
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=_UTC)
        return value
    if kc == K_JSON:
        if t is str or t is bytes:
            return _loads(value)
        return value
    if kc == K_UUID:
        if t is _UUID:
            return value
        if t is str and _canonical_uuid(value, hex32):
            return _make_uuid(hex32)
        return _UUID(str(value))
    if kc == K_DATE:
        if t is str:
            r = _parse_iso_date(value)
            if r is not None:
                return r
            return _date_fromisoformat(value)
        return value
    if kc == K_DECIMAL:
        return _decode_decimal(value, d)
    if kc == K_FLOAT:
        if t is float:
            return value
        # the builtin called as an object: Cython's inlined float() words its errors differently
        return _py_float(value)
    if kc == K_BYTES:
        # only buffers become bytes: bytes(<int>) would allocate that many zero bytes
        return bytes(value) if t is bytearray or t is memoryview else value
    if kc == K_VECTOR:
        return _decode_vector(value)
    return value


cdef object _decode_vector(object value):
    """float32 blob (or pgvector text ``[1,2,3]``) -> list of float; other types pass through."""
    t = type(value)
    if t is bytes or t is bytearray or t is memoryview:
        return _vector().unpack(value)
    if t is str:
        text = value.strip()
        n = len(text)    # explicit indices: wraparound=False leaves negative ones undefined
        if n < 2 or text[0] != "[" or text[n - 1] != "]":
            raise ValueError("vector text must look like [1,2,3]")
        v = _vector()
        return v.unpack(v.pack([float(x) for x in text[1:n - 1].split(",")]))
    return value


cdef object _VECTOR_MODULE = None


cdef object _vector():
    """The compiled vector module (imported on first use: most rows have no vectors)."""
    global _VECTOR_MODULE
    if _VECTOR_MODULE is None:
        from dataflow._native import vector
        _VECTOR_MODULE = vector
    return _VECTOR_MODULE


def decode(value, kind, dialect):
    """Turn what ``dialect``'s driver returned for ``kind`` back into the Python type."""
    if value is None:
        return None
    return _decode(value, _kind(kind), _dialect(dialect))


cdef inline bint _needs(int kc, int d) noexcept:
    if kc == K_INT or kc == K_STR:
        return False
    if kc == K_VECTOR:
        return True
    if d == D_PG:
        return kc == K_JSON or kc == K_UUID
    if d == D_MYSQL:
        return not (kc == K_BYTES or kc == K_DATE)
    return True


def needs_decode(kind, dialect):
    """Whether values of ``kind`` come back from ``dialect`` in a type that needs converting."""
    return _needs(_kind(kind), _dialect(dialect))


def decode_rows(rows, names, kinds, dialect):
    """Rows (positional sequences) -> list of dicts with Python values, one pass."""
    cdef Py_ssize_t n = len(names), i, size
    cdef int d = _dialect(dialect)
    cdef int kc
    cdef list keys = []
    cdef list out = []
    cdef dict row_out
    cdef bint rt, rl
    cdef int* plan = <int*>PyMem_Malloc((n if n > 0 else 1) * sizeof(int))
    if plan == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            keys.append(_item(names, i))
            kc = _kind(_item(kinds, i))
            plan[i] = kc if _needs(kc, d) else K_UNKNOWN
        # Every row dict starts as a copy of this one: the key table is cloned in one step
        # and each store below replaces a value, so no row pays for inserts or a resize.
        template = dict.fromkeys(keys)
        for row in rows:
            row_out = PyDict_Copy(template)
            rt = type(row) is tuple
            rl = type(row) is list
            size = PyTuple_GET_SIZE(row) if rt else (PyList_GET_SIZE(row) if rl else 0)
            for i in range(n):
                if rt and i < size:
                    v = <object>PyTuple_GET_ITEM(row, i)
                elif rl and i < size:
                    v = <object>PyList_GET_ITEM(row, i)
                else:
                    v = _item(row, i)
                if plan[i] != K_UNKNOWN and v is not None:
                    v = _decode(v, plan[i], d)
                row_out[<object>PyList_GET_ITEM(keys, i)] = v
            out.append(row_out)
    finally:
        PyMem_Free(plan)
    return out
