# Included by copybin.pyx (one compilation unit, so the C-level calls stay direct):
# per-type value encoders.

# ----------------------------------------------------------------------------- value encoders

cdef inline int64_t _ordinal(int y, int m, int d) noexcept:
    cdef int64_t yy = y - 1
    cdef int64_t days = yy * 365 + yy // 4 - yy // 100 + yy // 400 + _DAYS_BEFORE_MONTH[m] + d
    if m > 2 and (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)):
        days += 1
    return days


cdef inline int64_t _dt_micros(object v) noexcept:
    cdef int64_t days = _ordinal(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                                 PyDateTime_GET_DAY(v)) - EPOCH_ORDINAL
    return ((days * 86400 + PyDateTime_DATE_GET_HOUR(v) * 3600 + PyDateTime_DATE_GET_MINUTE(v) * 60
             + PyDateTime_DATE_GET_SECOND(v)) * 1000000 + PyDateTime_DATE_GET_MICROSECOND(v))


cdef int _enc_int(_Buf b, int code, object v) except -1:
    cdef int overflow = 0
    cdef long long x
    if not PyLong_CheckExact(v) and (not PyLong_Check(v) or PyBool_Check(v)):
        raise TypeError(f"expected int for {TYPES[code]}, got {_tname(v)}")
    x = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow:
        raise ValueError(f"value out of range for {TYPES[code]}")
    if code == T_INT8:
        return b.field_i64(x)
    if code == T_INT4:
        if x < -2147483648LL or x > 2147483647LL:
            raise ValueError("value out of range for int4")
        return b.field_i32(<int32_t>x)
    if x < -32768 or x > 32767:
        raise ValueError("value out of range for int2")
    return b.field_i16(<int16_t>x)


cdef double _int_to_double(object v, str name) except? -1.0:
    try:
        return float(v)
    except OverflowError:
        raise ValueError(f"value out of range for {name}") from None


cdef inline double _as_double(object v, int code) except? -1.0:
    if PyFloat_Check(v):
        return PyFloat_AS_DOUBLE(v)
    if PyLong_Check(v) and not PyBool_Check(v):
        return _int_to_double(v, TYPES[code])
    raise TypeError(f"expected float or int for {TYPES[code]}, got {_tname(v)}")


cdef inline int _put_float4(_Buf b, double x) except -1:
    cdef float f = <float>x
    if isinf(f) and not isinf(x):
        raise ValueError("value out of range for float4")
    return b.field_f32(f)


cdef int _utf8_error(object v) except -1:
    PyErr_Clear()
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"text is not encodable as UTF-8: {exc.reason} at position {exc.start}") from None
    raise ValueError("text is not encodable as UTF-8")


cdef inline const char* _utf8(object v, Py_ssize_t* size) except NULL:
    cdef const char* p = _utf8_and_size(v, size)
    if p == NULL:
        _utf8_error(v)
    if size[0] and memchr(p, 0, size[0]) != NULL:
        raise ValueError("NUL character not allowed in text")
    return p


cdef int _enc_bytea(_Buf b, object v) except -1:
    cdef Py_buffer view
    if PyBytes_Check(v):
        return b.field_bytes(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
    if PyByteArray_Check(v):
        return b.field_bytes(PyByteArray_AS_STRING(v), PyByteArray_GET_SIZE(v))
    if PyMemoryView_Check(v):
        if not v.c_contiguous:
            raise ValueError("memoryview for bytea must be C-contiguous")
        PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
        try:
            b.field_bytes(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return 0
    raise TypeError(f"expected bytes, bytearray or memoryview for bytea, got {_tname(v)}")


cdef int _enc_timestamptz(_Buf b, object v) except -1:
    cdef int64_t off = 0
    if not PyDateTime_Check(v):
        raise TypeError(f"expected datetime for timestamptz, got {_tname(v)}")
    tz = datetime_tzinfo(v)
    if tz is not _UTC:
        delta = None if tz is None else v.utcoffset()
        if delta is None:
            raise ValueError("naive datetime for timestamptz; attach a tzinfo (e.g. datetime.timezone.utc)")
        off = ((<int64_t>PyDateTime_DELTA_GET_DAYS(delta) * 86400 + PyDateTime_DELTA_GET_SECONDS(delta))
               * 1000000 + PyDateTime_DELTA_GET_MICROSECONDS(delta))
    return b.field_i64(_dt_micros(v) - off)


cdef int _enc_numeric(_Buf b, object v) except -1:
    cdef Py_ssize_t n, k, lead, trail, ngroups, g
    cdef int64_t exp, p, p_min, p_max, weight, dscale
    cdef int sign
    cdef int* groups
    cdef char* out
    cdef int[4] scale = [1, 10, 100, 1000]
    if isinstance(v, Decimal):
        tup = v.as_tuple()
    elif PyLong_Check(v) and not PyBool_Check(v):
        tup = Decimal(v).as_tuple()
    else:
        raise TypeError(f"expected Decimal or int for numeric, got {_tname(v)}")
    sign = tup[0]
    digits = <tuple>tup[1]
    pyexp = tup[2]
    if pyexp == "F":
        raise ValueError("Infinity is not supported for numeric")
    if pyexp == "n" or pyexp == "N":
        out = b.reserve(12)
        _put32(out, 8)
        _put32(out + 4, 0)
        _put16(out + 8, 0xC000)
        _put16(out + 10, 0)
        b.size += 12
        return 0
    if pyexp < -0x3FFF:
        raise ValueError("value out of range for numeric")
    exp = pyexp
    dscale = -exp if exp < 0 else 0
    n = PyTuple_GET_SIZE(digits)
    lead = 0
    while lead < n and (<object>PyTuple_GET_ITEM(digits, lead)) == 0:
        lead += 1
    if lead == n:
        out = b.reserve(12)
        _put32(out, 8)
        _put64(out + 4, <uint64_t>dscale)
        b.size += 12
        return 0
    trail = 0
    while (<object>PyTuple_GET_ITEM(digits, n - 1 - trail)) == 0:
        trail += 1
    p_min = exp + trail
    p_max = exp + n - 1 - lead
    weight = p_max // 4 if p_max >= 0 else -((-p_max + 3) // 4)
    if weight > 0x7FFF:
        raise ValueError("value out of range for numeric")
    ngroups = weight - (p_min // 4 if p_min >= 0 else -((-p_min + 3) // 4)) + 1
    groups = <int*>malloc(ngroups * sizeof(int))
    if groups == NULL:
        raise MemoryError()
    try:
        memset(groups, 0, ngroups * sizeof(int))
        p = p_max
        for k in range(lead, n - trail):
            g = weight - (p // 4 if p >= 0 else -((-p + 3) // 4))
            groups[g] += <int>(<object>PyTuple_GET_ITEM(digits, k)) * scale[((p % 4) + 4) % 4]
            p -= 1
        out = b.reserve(12 + 2 * ngroups)
        _put32(out, <uint32_t>(8 + 2 * ngroups))
        _put16(out + 4, <uint16_t>ngroups)
        _put16(out + 6, <uint16_t>weight)
        _put16(out + 8, 0x4000 if sign else 0)
        _put16(out + 10, <uint16_t>dscale)
        for k in range(ngroups):
            _put16(out + 12 + 2 * k, <uint16_t>groups[k])
        b.size += 12 + 2 * ngroups
    finally:
        free(groups)
    return 0


cdef int _enc_uuid(_Buf b, object v) except -1:
    if isinstance(v, _UUID):
        raw = v.bytes
    elif PyUnicode_Check(v):
        raw = _UUID(v).bytes
    else:
        raise TypeError(f"expected UUID or str for uuid, got {_tname(v)}")
    return b.field_bytes(PyBytes_AS_STRING(raw), 16)


cdef int _enc_json(_Buf b, object v, bint jsonb) except -1:
    cdef const char* p
    cdef Py_ssize_t n
    cdef char* out
    if PyUnicode_Check(v):
        p = _utf8(v, &n)
    elif PyBytes_Check(v):
        p = PyBytes_AS_STRING(v)
        n = PyBytes_GET_SIZE(v)
    elif PyByteArray_Check(v):
        p = PyByteArray_AS_STRING(v)
        n = PyByteArray_GET_SIZE(v)
    else:
        try:
            raw = _dumps(v)
        except TypeError as exc:
            raise TypeError(f"cannot serialize {_tname(v)} as JSON: {exc}") from None
        p = PyBytes_AS_STRING(raw)
        n = PyBytes_GET_SIZE(raw)
    if not jsonb:
        return b.field_bytes(p, n)
    if n + 1 > MAX_FIELD:
        raise ValueError("value too large for COPY (2 GiB or more)")
    out = b.reserve(5 + n)
    _put32(out, <uint32_t>(n + 1))
    out[4] = 1
    memcpy(out + 5, p, n)
    b.size += 5 + n
    return 0


cdef int _enc_vector(_Buf b, object v) except -1:
    cdef Py_ssize_t n = 0, k
    cdef double* vals = NULL
    cdef Py_buffer view
    cdef const char* src
    cdef char* out
    cdef float f
    cdef uint32_t u
    cdef double x
    if PyList_Check(v) or PyTuple_Check(v):
        n = len(v)
        vals = <double*>malloc((n if n else 1) * sizeof(double))
        if vals == NULL:
            raise MemoryError()
        try:
            for k in range(n):
                item = v[k]
                if PyFloat_Check(item):
                    vals[k] = PyFloat_AS_DOUBLE(item)
                elif PyLong_Check(item) and not PyBool_Check(item):
                    try:
                        vals[k] = float(item)
                    except OverflowError:
                        raise ValueError("vector element out of range for float4") from None
                else:
                    raise TypeError(f"vector elements must be float or int, got {_tname(item)}")
            _write_vector(b, vals, n)
        finally:
            free(vals)
        return 0
    if not PyObject_CheckBuffer(v):
        raise TypeError(f"expected list, tuple or float32/float64 buffer for vector, got {_tname(v)}")
    PyObject_GetBuffer(v, &view, PyBUF_RECORDS_RO)
    try:
        fmt = view.format.decode("ascii") if view.format != NULL else "B"
        if view.ndim != 1 or (fmt != "f" and fmt != "d"):
            raise TypeError(f"vector buffer must be 1-D float32 or float64, got format {fmt!r} with {view.ndim} dimensions")
        if not PyBuffer_IsContiguous(&view, b'C'):
            raise ValueError("vector buffer must be contiguous")
        n = view.shape[0]
        vals = <double*>malloc((n if n else 1) * sizeof(double))
        if vals == NULL:
            raise MemoryError()
        src = <const char*>view.buf
        if fmt == "f":
            for k in range(n):
                vals[k] = (<const float*>src)[k]
        else:
            for k in range(n):
                vals[k] = (<const double*>src)[k]
        _write_vector(b, vals, n)
    finally:
        free(vals)
        PyBuffer_Release(&view)
    return 0


cdef int _write_vector(_Buf b, double* vals, Py_ssize_t n) except -1:
    cdef Py_ssize_t k
    cdef float f
    cdef uint32_t u
    cdef char* out
    if n == 0:
        raise ValueError("vector must have at least 1 dimension")
    if n > 16000:
        raise ValueError("vector has more than 16000 dimensions")
    for k in range(n):
        if isnan(vals[k]):
            raise ValueError("NaN not allowed in vector")
        if isinf(vals[k]):
            raise ValueError("infinite value not allowed in vector")
    for k in range(n):
        f = <float>vals[k]
        if isinf(f):
            raise ValueError("vector element out of range for float4")
    out = b.reserve(8 + 4 * n)
    _put32(out, <uint32_t>(4 + 4 * n))
    _put16(out + 4, <uint16_t>n)
    _put16(out + 6, 0)
    for k in range(n):
        f = <float>vals[k]
        memcpy(&u, &f, 4)
        _put32(out + 8 + 4 * k, u)
    b.size += 8 + 4 * n
    return 0


cdef int _enc_value(_Buf b, int code, object v) except -1:
    """Append one non-NULL field (length + payload) of type ``code``."""
    cdef const char* p
    cdef Py_ssize_t n
    if code == T_INT8 or code == T_INT4 or code == T_INT2:
        return _enc_int(b, code, v)
    elif code == T_TEXT:
        if not PyUnicode_Check(v):
            raise TypeError(f"expected str for text, got {_tname(v)}")
        p = _utf8(v, &n)
        return b.field_bytes(p, n)
    elif code == T_FLOAT8:
        if PyFloat_CheckExact(v):
            return b.field_f64(PyFloat_AS_DOUBLE(v))
        return b.field_f64(_as_double(v, code))
    elif code == T_BOOL:
        if v is True:
            p = b.reserve(5)
            _put32(<char*>p, 1)
            (<char*>p)[4] = 1
            b.size += 5
            return 0
        if v is False:
            p = b.reserve(5)
            _put32(<char*>p, 1)
            (<char*>p)[4] = 0
            b.size += 5
            return 0
        raise TypeError(f"expected bool for bool, got {_tname(v)}")
    elif code == T_TIMESTAMPTZ:
        return _enc_timestamptz(b, v)
    elif code == T_JSONB:
        return _enc_json(b, v, True)
    elif code == T_JSON:
        return _enc_json(b, v, False)
    elif code == T_FLOAT4:
        return _put_float4(b, _as_double(v, code))
    elif code == T_BYTEA:
        return _enc_bytea(b, v)
    elif code == T_TIMESTAMP:
        if not PyDateTime_Check(v):
            raise TypeError(f"expected datetime for timestamp, got {_tname(v)}")
        if datetime_tzinfo(v) is not None:
            raise ValueError("aware datetime for timestamp; use timestamptz or drop the tzinfo")
        return b.field_i64(_dt_micros(v))
    elif code == T_DATE:
        if not PyDate_Check(v) or PyDateTime_Check(v):
            raise TypeError(f"expected date for date, got {_tname(v)}")
        return b.field_i32(<int32_t>(_ordinal(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                                               PyDateTime_GET_DAY(v)) - EPOCH_ORDINAL))
    elif code == T_NUMERIC:
        return _enc_numeric(b, v)
    elif code == T_UUID:
        return _enc_uuid(b, v)
    else:
        return _enc_vector(b, v)
