# Included by copybin.pyx (one compilation unit): COPY BINARY stream -> rows, for export.

# ----------------------------------------------------------------------------- decoding

cdef inline int _need(Py_ssize_t n, Py_ssize_t size, str t) except -1:
    if size != n:
        raise ValueError(f"expected {n} bytes for {t}, got {size}")
    return 0


cdef object _dec_numeric(const char* p, Py_ssize_t size):
    cdef int ndigits, weight, dscale, k, g, exp
    cdef uint16_t sign
    if size < 8:
        raise ValueError(f"expected at least 8 bytes for numeric, got {size}")
    ndigits = <int16_t>_get16(p)
    weight = <int16_t>_get16(p + 2)
    sign = _get16(p + 4)
    dscale = _get16(p + 6)
    if ndigits < 0 or size != 8 + 2 * ndigits:
        raise ValueError("malformed numeric")
    if sign == 0xC000:
        return Decimal("NaN")
    if sign == 0xD000:
        return Decimal("Infinity")
    if sign == 0xF000:
        return Decimal("-Infinity")
    if sign != 0 and sign != 0x4000:
        raise ValueError("malformed numeric")
    if ndigits == 0:
        return Decimal((0, (0,), -dscale))
    parts = []
    for k in range(ndigits):
        g = <int16_t>_get16(p + 8 + 2 * k)
        if g < 0 or g > 9999:
            raise ValueError("malformed numeric")
        parts.append("%04d" % g)
    s = "".join(parts)
    exp = (weight - ndigits + 1) * 4
    if exp < -dscale:
        s = s[:len(s) - (-dscale - exp)]
    elif exp > -dscale:
        s += "0" * (exp + dscale)
    s = s.lstrip("0") or "0"
    return Decimal((1 if sign == 0x4000 else 0, tuple(map(int, s)), -dscale))


cdef object _dec_value(int code, const char* p, Py_ssize_t size):
    cdef str t = TYPES[code]
    cdef int64_t us
    cdef int32_t days
    cdef uint32_t u32
    cdef uint64_t u64
    cdef float f
    cdef double d
    cdef Py_ssize_t k
    cdef int dim
    if code == T_INT2:
        _need(2, size, t)
        return <int16_t>_get16(p)
    if code == T_INT4:
        _need(4, size, t)
        return <int32_t>_get32(p)
    if code == T_INT8:
        _need(8, size, t)
        return PyLong_FromLongLong(<int64_t>_get64(p))
    if code == T_FLOAT4:
        _need(4, size, t)
        u32 = _get32(p)
        memcpy(&f, &u32, 4)
        return PyFloat_FromDouble(f)
    if code == T_FLOAT8:
        _need(8, size, t)
        u64 = _get64(p)
        memcpy(&d, &u64, 8)
        return PyFloat_FromDouble(d)
    if code == T_BOOL:
        _need(1, size, t)
        return p[0] != 0
    if code == T_TEXT:
        return PyUnicode_DecodeUTF8(<char*>p, size, NULL)
    if code == T_BYTEA:
        return PyBytes_FromStringAndSize(p, size)
    if code == T_TIMESTAMPTZ or code == T_TIMESTAMP:
        _need(8, size, t)
        us = <int64_t>_get64(p)
        if us == INT64_MAX or us == INT64_MIN:
            raise ValueError("infinite timestamp cannot be represented as datetime")
        try:
            return (_EPOCH_UTC if code == T_TIMESTAMPTZ else _EPOCH) + timedelta(microseconds=us)
        except OverflowError:
            raise ValueError("timestamp out of range for datetime") from None
    if code == T_DATE:
        _need(4, size, t)
        days = <int32_t>_get32(p)
        if days == 2147483647 or days == -2147483648:
            raise ValueError("infinite date cannot be represented as date")
        try:
            return _EPOCH_DATE + timedelta(days=days)
        except OverflowError:
            raise ValueError("date out of range for date") from None
    if code == T_NUMERIC:
        return _dec_numeric(p, size)
    if code == T_UUID:
        _need(16, size, t)
        return _UUID(bytes=PyBytes_FromStringAndSize(p, 16))
    if code == T_JSON:
        return _loads(PyBytes_FromStringAndSize(p, size))
    if code == T_JSONB:
        if size < 1 or p[0] != 1:
            raise ValueError("unsupported jsonb version")
        return _loads(PyBytes_FromStringAndSize(p + 1, size - 1))
    if size < 4:
        raise ValueError(f"expected at least 4 bytes for vector, got {size}")
    dim = <int16_t>_get16(p)
    if dim < 0 or size != 4 + 4 * dim:
        raise ValueError("malformed vector")
    out = []
    for k in range(dim):
        u32 = _get32(p + 4 + 4 * k)
        memcpy(&f, &u32, 4)
        out.append(PyFloat_FromDouble(f))
    return out


def decode(data, types):
    cdef tuple ts = _check_types(types)
    cdef bytes raw = bytes(data)
    cdef const char* buf = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t total = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t pos, i = 0, j, ncols = len(ts)
    cdef int32_t size
    cdef int16_t count
    cdef uint32_t ext
    cdef bytes codes = bytes([_CODES[t] for t in ts])
    cdef const unsigned char* cp = <const unsigned char*>PyBytes_AS_STRING(codes)
    cdef list rows = []
    if total < 19 or raw[:11] != _HEADER_SIG:
        raise ValueError("not a PostgreSQL COPY BINARY stream (bad signature)")
    ext = _get32(buf + 15)
    if <uint64_t>19 + ext > <uint64_t>total:
        raise ValueError("truncated COPY BINARY data in header extension")
    pos = 19 + ext
    while True:
        if pos + 2 > total:
            raise ValueError(f"truncated COPY BINARY data at offset {pos}: missing trailer")
        count = <int16_t>_get16(buf + pos)
        pos += 2
        if count == -1:
            if pos != total:
                raise ValueError(f"unexpected data after COPY BINARY trailer at offset {pos}")
            return rows
        if count != ncols:
            raise ValueError(f"tuple {i} has {count} fields, expected {ncols}")
        row = [None] * ncols
        for j in range(ncols):
            if pos + 4 > total:
                raise ValueError(f"truncated COPY BINARY data at offset {pos}")
            size = <int32_t>_get32(buf + pos)
            pos += 4
            if size == -1:
                row[j] = None
                continue
            if size < 0 or pos + size > total:
                raise ValueError(f"truncated COPY BINARY data at offset {pos}")
            try:
                row[j] = _dec_value(cp[j], buf + pos, size)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"tuple {i}, column {j} ({ts[j]}): {exc}") from exc
            pos += size
        rows.append(tuple(row))
        i += 1
