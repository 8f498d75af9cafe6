# Included by params.pyx (one compilation unit): datetime/date ISO text and UUID text, formatted
# and parsed in C for coerce (SQLite/MySQL text) and decode (what the drivers return as text).

# -- formatting and parsing ----------------------------------------------------------------------
cdef inline void _put(Py_UCS1* p, int v, int width) noexcept:
    cdef int i
    for i in range(width - 1, -1, -1):
        p[i] = <Py_UCS1>(48 + v % 10)
        v //= 10


cdef str _iso_utc(object dt):
    """``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` from an exact datetime's fields (already UTC)."""
    cdef str s = PyUnicode_New(32, 127)
    cdef Py_UCS1* p = PyUnicode_1BYTE_DATA(s)
    _put(p, PyDateTime_GET_YEAR(dt), 4)
    p[4] = 45
    _put(p + 5, PyDateTime_GET_MONTH(dt), 2)
    p[7] = 45
    _put(p + 8, PyDateTime_GET_DAY(dt), 2)
    p[10] = 84
    _put(p + 11, PyDateTime_DATE_GET_HOUR(dt), 2)
    p[13] = 58
    _put(p + 14, PyDateTime_DATE_GET_MINUTE(dt), 2)
    p[16] = 58
    _put(p + 17, PyDateTime_DATE_GET_SECOND(dt), 2)
    p[19] = 46
    _put(p + 20, PyDateTime_DATE_GET_MICROSECOND(dt), 6)
    memcpy(p + 26, b"+00:00", 6)
    return s


cdef str _iso_date(object d):
    cdef str s = PyUnicode_New(10, 127)
    cdef Py_UCS1* p = PyUnicode_1BYTE_DATA(s)
    _put(p, PyDateTime_GET_YEAR(d), 4)
    p[4] = 45
    _put(p + 5, PyDateTime_GET_MONTH(d), 2)
    p[7] = 45
    _put(p + 8, PyDateTime_GET_DAY(d), 2)
    return s


cdef inline int _digits(const Py_UCS1* p, int n) noexcept:
    """Value of n ASCII digits, or -1."""
    cdef int v = 0, i
    cdef Py_UCS1 c
    for i in range(n):
        c = p[i]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (c - 48)
    return v


cdef inline bint _valid_ymd(int y, int m, int d) noexcept:
    cdef int dim
    if y < 1 or m < 1 or m > 12 or d < 1:
        return False
    if m == 2:
        dim = 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    elif m == 4 or m == 6 or m == 9 or m == 11:
        dim = 30
    else:
        dim = 31
    return d <= dim


cdef object _parse_iso_utc(str s):
    """The exact form ``_iso_utc`` writes -> aware UTC datetime; None for anything else."""
    if PyUnicode_GET_LENGTH(s) != 32 or PyUnicode_KIND(s) != 1:
        return None
    cdef const Py_UCS1* p = PyUnicode_1BYTE_DATA(s)
    if (p[4] != 45 or p[7] != 45 or p[10] != 84 or p[13] != 58 or p[16] != 58 or p[19] != 46
            or p[26] != 43 or p[27] != 48 or p[28] != 48 or p[29] != 58 or p[30] != 48 or p[31] != 48):
        return None
    cdef int y = _digits(p, 4), mo = _digits(p + 5, 2), d = _digits(p + 8, 2)
    cdef int h = _digits(p + 11, 2), mi = _digits(p + 14, 2), sec = _digits(p + 17, 2)
    cdef int us = _digits(p + 20, 6)
    if (not _valid_ymd(y, mo, d) or h < 0 or h > 23 or mi < 0 or mi > 59 or sec < 0 or sec > 59
            or us < 0):
        return None
    return datetime_new(y, mo, d, h, mi, sec, us, _UTC, 0)


cdef object _parse_iso_date(str s):
    if PyUnicode_GET_LENGTH(s) != 10 or PyUnicode_KIND(s) != 1:
        return None
    cdef const Py_UCS1* p = PyUnicode_1BYTE_DATA(s)
    if p[4] != 45 or p[7] != 45:
        return None
    cdef int y = _digits(p, 4), mo = _digits(p + 5, 2), d = _digits(p + 8, 2)
    if not _valid_ymd(y, mo, d):
        return None
    return date_new(y, mo, d)


cdef inline int _hexval(Py_UCS1 c) noexcept:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef bint _canonical_uuid(str s, char* hex32) noexcept:
    """True for ``8-4-4-4-12`` ASCII hex; fills ``hex32`` (33 bytes) with lowercase digits."""
    if PyUnicode_GET_LENGTH(s) != 36 or PyUnicode_KIND(s) != 1:
        return False
    cdef const Py_UCS1* p = PyUnicode_1BYTE_DATA(s)
    cdef int i, j = 0, v
    for i in range(36):
        if i == 8 or i == 13 or i == 18 or i == 23:
            if p[i] != 45:
                return False
            continue
        v = _hexval(p[i])
        if v < 0:
            return False
        hex32[j] = _HEX[v]
        j += 1
    hex32[32] = 0
    return True


cdef str _uuid_text(const char* hex32):
    cdef str s = PyUnicode_New(36, 127)
    cdef Py_UCS1* p = PyUnicode_1BYTE_DATA(s)
    memcpy(p, hex32, 8)
    p[8] = 45
    memcpy(p + 9, hex32 + 8, 4)
    p[13] = 45
    memcpy(p + 14, hex32 + 12, 4)
    p[18] = 45
    memcpy(p + 19, hex32 + 16, 4)
    p[23] = 45
    memcpy(p + 24, hex32 + 20, 12)
    return s


cdef object _make_uuid(const char* hex32):
    """uuid.UUID(hex) without its Python __init__: the same two slots it would set."""
    n = PyLong_FromString(hex32, NULL, 16)
    u = _object_new(_UUID)
    PyObject_GenericSetAttr(u, "int", n)
    PyObject_GenericSetAttr(u, "is_safe", _SAFE_UNKNOWN)
    return u


cdef str _uuid_str(object u):
    """str(u) for an exact uuid.UUID, formatted in C from its 128-bit int."""
    cdef char hex32[33]
    cdef unsigned long long hi, lo
    cdef int i
    n = u.int
    if type(n) is not int or n < 0 or n >= _TWO128:
        return str(u)
    hi = (n >> 64)
    lo = (n & _MASK64)
    for i in range(15, -1, -1):
        hex32[i] = _HEX[hi & 15]
        hi >>= 4
        hex32[16 + i] = _HEX[lo & 15]
        lo >>= 4
    hex32[32] = 0
    return _uuid_text(hex32)
