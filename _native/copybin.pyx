# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled PostgreSQL COPY BINARY encoder (rows or columns -> bytes) and decoder (export).

C-level on the hot path: one malloc'd growable buffer, big-endian writes by shifts, type dispatch
by a per-column int code, exact-type fast paths, datetime fields via the C API.  The twin in
``_native/_pure/copybin.py`` defines the behaviour; this file must match it byte for byte.
"""

cimport cython
from cpython.bool cimport PyBool_Check
from cpython.buffer cimport (PyBUF_RECORDS_RO, PyBUF_SIMPLE, PyBuffer_IsContiguous,
                             PyBuffer_Release, PyObject_CheckBuffer, PyObject_GetBuffer)
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_Check, PyByteArray_GET_SIZE
from cpython.bytes cimport (PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize,
                            PyBytes_GET_SIZE)
from cpython.datetime cimport (PyDate_Check, PyDateTime_Check, PyDateTime_DATE_GET_HOUR,
                               PyDateTime_DATE_GET_MICROSECOND, PyDateTime_DATE_GET_MINUTE,
                               PyDateTime_DATE_GET_SECOND, PyDateTime_DELTA_GET_DAYS,
                               PyDateTime_DELTA_GET_MICROSECONDS, PyDateTime_DELTA_GET_SECONDS,
                               PyDateTime_GET_DAY, PyDateTime_GET_MONTH, PyDateTime_GET_YEAR,
                               PyDelta_Check, datetime_tzinfo, import_datetime)
from cpython.dict cimport PyDict_CheckExact, PyDict_GetItemWithError
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check, PyFloat_CheckExact, PyFloat_FromDouble
from cpython.list cimport PyList_Check, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_Check, PyLong_CheckExact, PyLong_FromLongLong
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeUTF8
from libc.math cimport isinf, isnan
from libc.stdint cimport INT64_MAX, INT64_MIN, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcpy, memset, strcmp

import uuid as _uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import orjson

cdef extern from "Python.h":
    # Declared without an except clause: NULL means "fall back to the cold path".
    const char* _utf8_and_size "PyUnicode_AsUTF8AndSize"(object o, Py_ssize_t* size)
    void PyErr_Clear()
    bint PyMemoryView_Check(object o)

import_datetime()

TYPES = ("int2", "int4", "int8", "float4", "float8", "bool", "text", "bytea", "timestamptz",
         "timestamp", "date", "numeric", "uuid", "jsonb", "json", "vector")
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

cdef enum:
    T_INT2 = 0
    T_INT4 = 1
    T_INT8 = 2
    T_FLOAT4 = 3
    T_FLOAT8 = 4
    T_BOOL = 5
    T_TEXT = 6
    T_BYTEA = 7
    T_TIMESTAMPTZ = 8
    T_TIMESTAMP = 9
    T_DATE = 10
    T_NUMERIC = 11
    T_UUID = 12
    T_JSONB = 13
    T_JSON = 14
    T_VECTOR = 15

cdef enum:
    EPOCH_ORDINAL = 730120
    MAX_FIELD = 0x7FFFFFFF

cdef dict _CODES = {name: i for i, name in enumerate(TYPES)}
cdef object _UTC = timezone.utc
cdef object _UUID = _uuid.UUID
cdef object _dumps = orjson.dumps
cdef object _loads = orjson.loads
cdef object _EPOCH = datetime(2000, 1, 1)
cdef object _EPOCH_UTC = datetime(2000, 1, 1, tzinfo=timezone.utc)
cdef object _EPOCH_DATE = date(2000, 1, 1)
cdef frozenset _BUFFER_FORMATS = frozenset("bBhHiIlLqQfd?")
cdef frozenset _INT_FORMATS = frozenset("bBhHiIlLqQ")
cdef bytes _HEADER_SIG = HEADER[:11]
cdef int[13] _DAYS_BEFORE_MONTH = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]


# ----------------------------------------------------------------------------- byte buffer

cdef inline void _put16(char* p, uint16_t v) noexcept nogil:
    p[0] = <char>(v >> 8)
    p[1] = <char>v


cdef inline void _put32(char* p, uint32_t v) noexcept nogil:
    p[0] = <char>(v >> 24)
    p[1] = <char>(v >> 16)
    p[2] = <char>(v >> 8)
    p[3] = <char>v


cdef inline void _put64(char* p, uint64_t v) noexcept nogil:
    _put32(p, <uint32_t>(v >> 32))
    _put32(p + 4, <uint32_t>v)


cdef inline uint16_t _get16(const char* p) noexcept nogil:
    cdef const uint8_t* u = <const uint8_t*>p
    return <uint16_t>((u[0] << 8) | u[1])


cdef inline uint32_t _get32(const char* p) noexcept nogil:
    cdef const uint8_t* u = <const uint8_t*>p
    return (<uint32_t>u[0] << 24) | (<uint32_t>u[1] << 16) | (<uint32_t>u[2] << 8) | u[3]


cdef inline uint64_t _get64(const char* p) noexcept nogil:
    return (<uint64_t>_get32(p) << 32) | _get32(p + 4)


@cython.final
cdef class _Buf:
    """A malloc'd byte buffer grown geometrically; bytes are copied out once per result/chunk."""
    cdef char* data
    cdef Py_ssize_t size
    cdef Py_ssize_t cap

    def __cinit__(self, Py_ssize_t cap=65536):
        self.data = <char*>malloc(cap)
        if self.data == NULL:
            raise MemoryError()
        self.size = 0
        self.cap = cap

    def __dealloc__(self):
        free(self.data)

    cdef int _grow(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap = self.cap * 2
        while cap < self.size + need:
            cap *= 2
        cdef char* p = <char*>realloc(self.data, cap)
        if p == NULL:
            raise MemoryError()
        self.data = p
        self.cap = cap
        return 0

    cdef inline char* reserve(self, Py_ssize_t need) except NULL:
        """Pointer to ``need`` writable bytes at the end; advance ``size`` after writing."""
        if self.size + need > self.cap:
            self._grow(need)
        return self.data + self.size

    cdef inline int write(self, const char* src, Py_ssize_t n) except -1:
        cdef char* p = self.reserve(n)
        memcpy(p, src, n)
        self.size += n
        return 0

    cdef inline int put_i16(self, int16_t v) except -1:
        _put16(self.reserve(2), <uint16_t>v)
        self.size += 2
        return 0

    cdef inline int put_i32(self, int32_t v) except -1:
        _put32(self.reserve(4), <uint32_t>v)
        self.size += 4
        return 0

    cdef inline int field_i16(self, int16_t v) except -1:
        cdef char* p = self.reserve(6)
        _put32(p, 2)
        _put16(p + 4, <uint16_t>v)
        self.size += 6
        return 0

    cdef inline int field_i32(self, int32_t v) except -1:
        cdef char* p = self.reserve(8)
        _put32(p, 4)
        _put32(p + 4, <uint32_t>v)
        self.size += 8
        return 0

    cdef inline int field_i64(self, int64_t v) except -1:
        cdef char* p = self.reserve(12)
        _put32(p, 8)
        _put64(p + 4, <uint64_t>v)
        self.size += 12
        return 0

    cdef inline int field_f64(self, double v) except -1:
        cdef uint64_t u
        memcpy(&u, &v, 8)
        return self.field_i64(<int64_t>u)

    cdef inline int field_f32(self, float v) except -1:
        cdef uint32_t u
        memcpy(&u, &v, 4)
        return self.field_i32(<int32_t>u)

    cdef inline int field_bytes(self, const char* src, Py_ssize_t n) except -1:
        if n > MAX_FIELD:
            raise ValueError("value too large for COPY (2 GiB or more)")
        cdef char* p = self.reserve(4 + n)
        _put32(p, <uint32_t>n)
        memcpy(p + 4, src, n)
        self.size += 4 + n
        return 0

    cdef bytes take(self):
        cdef bytes out = PyBytes_FromStringAndSize(self.data, self.size)
        self.size = 0
        return out


# ----------------------------------------------------------------------------- validation

cdef tuple _check_types(types):
    if isinstance(types, str):
        raise TypeError("types must be a sequence of type names, not str")
    types = tuple(types)
    if not types:
        raise ValueError("types must not be empty")
    if len(types) > 32767:
        raise ValueError("too many columns (at most 32767)")
    for t in types:
        if t not in TYPES:
            raise ValueError(f"unknown type {t!r}; supported: {', '.join(TYPES)}")
    return types


cdef tuple _labels(tuple types, names):
    if names is None:
        return types
    if isinstance(names, str):
        raise TypeError("names must be a sequence of keys, not str")
    names = tuple(names)
    if len(names) != len(types):
        raise ValueError(f"names has {len(names)} entries for {len(types)} types")
    return names


cdef object _row_error(exc, Py_ssize_t i, Py_ssize_t j, label):
    cls = TypeError if isinstance(exc, TypeError) else ValueError
    if j >= 0:
        new = cls(f"row {i}, column {j} ({label}): {exc}")
    else:
        new = cls(f"row {i}: {exc}")
    new.row_index = i
    new.column_index = j if j >= 0 else None
    return new


cdef inline str _tname(v):
    return type(v).__name__


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


# ----------------------------------------------------------------------------- row encoding

@cython.final
cdef class _Encoder:
    """Per-call state: type codes resolved once, keys for dict rows, labels for errors."""
    cdef _Buf buf
    cdef int ncols
    cdef int* codes
    cdef tuple labels
    cdef tuple names
    cdef Py_ssize_t row
    cdef Py_ssize_t col

    def __cinit__(self, types, names):
        cdef tuple ts = _check_types(types)
        self.labels = _labels(ts, names)
        self.names = None if names is None else self.labels
        self.ncols = len(ts)
        self.codes = <int*>malloc(self.ncols * sizeof(int))
        if self.codes == NULL:
            raise MemoryError()
        for j in range(self.ncols):
            self.codes[j] = _CODES[ts[j]]
        self.buf = _Buf()
        self.row = 0
        self.col = -1

    def __dealloc__(self):
        free(self.codes)

    cdef inline int put_value(self, int j, object v) except -1:
        cdef char* p
        if v is None:
            p = self.buf.reserve(4)
            _put32(p, 0xFFFFFFFF)
            self.buf.size += 4
            return 0
        return _enc_value(self.buf, self.codes[j], v)

    cdef int encode_row(self, object row) except -1:
        cdef Py_ssize_t j, n
        cdef int ncols = self.ncols
        cdef PyObject* item
        self.col = -1
        if PyTuple_Check(row):
            n = PyTuple_GET_SIZE(row)
            if n != ncols:
                raise ValueError(f"expected {ncols} values, got {n}")
            self.buf.put_i16(<int16_t>ncols)
            for j in range(ncols):
                self.col = j
                self.put_value(j, <object>PyTuple_GET_ITEM(row, j))
        elif PyList_Check(row):
            n = PyList_GET_SIZE(row)
            if n != ncols:
                raise ValueError(f"expected {ncols} values, got {n}")
            self.buf.put_i16(<int16_t>ncols)
            for j in range(ncols):
                self.col = j
                # a value's encoder may run Python code that mutates the list: re-check
                if j >= PyList_GET_SIZE(row):
                    raise ValueError("row list changed size during encoding")
                self.put_value(j, <object>PyList_GET_ITEM(row, j))
        elif isinstance(row, dict):
            if self.names is None:
                raise ValueError("dict rows need names")
            self.buf.put_i16(<int16_t>ncols)
            if PyDict_CheckExact(row):
                for j in range(ncols):
                    item = PyDict_GetItemWithError(row, self.names[j])
                    self.col = j
                    self.put_value(j, None if item == NULL else <object>item)
            else:
                values = [row.get(k) for k in self.names]
                for j in range(ncols):
                    self.col = j
                    self.put_value(j, values[j])
        else:
            raise TypeError(f"expected tuple, list or dict row, got {_tname(row)}")
        return 0

    cdef int encode_one(self, object row) except -1:
        """Encode one row; errors become ValueError/TypeError naming row and column."""
        cdef Py_ssize_t start = self.buf.size
        try:
            self.encode_row(row)
        except (ValueError, TypeError) as exc:
            self.buf.size = start
            raise _row_error(exc, self.row, self.col,
                             self.labels[self.col] if self.col >= 0 else None) from exc
        self.row += 1
        return 0


def encode_rows(rows, types, names=None, *, bint header=True, bint trailer=True):
    cdef _Encoder enc = _Encoder(types, names)
    if header:
        enc.buf.write(PyBytes_AS_STRING(HEADER), 19)
    for row in rows:
        enc.encode_one(row)
    if trailer:
        enc.buf.write(b"\xff\xff", 2)
    return enc.buf.take()


# Buffer column kinds for encode_columns' typed fast path.
cdef enum:
    K_OBJ = 0
    K_SIGNED = 1
    K_UNSIGNED = 2
    K_FLOAT = 3
    K_BOOL = 4


cdef class _Column:
    cdef object values       # list/tuple when kind == K_OBJ
    cdef object mv           # memoryview kept alive (and released) for buffer kinds
    cdef Py_buffer view
    cdef bint has_view
    cdef int kind
    cdef Py_ssize_t length

    def __dealloc__(self):
        if self.has_view:
            PyBuffer_Release(&self.view)

    cdef void release(self):
        if self.has_view:
            PyBuffer_Release(&self.view)
            self.has_view = False
        if self.mv is not None:
            self.mv.release()
            self.mv = None


cdef _Column _make_column(object col, int code):
    cdef _Column c = _Column()
    c.kind = K_OBJ
    if PyList_Check(col) or PyTuple_Check(col):
        c.values = col
        c.length = len(col)
        return c
    try:
        m = memoryview(col)
    except TypeError:
        c.values = list(col)
        c.length = len(c.values)
        return c
    fmt = m.format
    if m.ndim == 1 and fmt in _BUFFER_FORMATS:
        if code in (T_INT2, T_INT4, T_INT8) and fmt in _INT_FORMATS:
            c.kind = K_SIGNED if fmt in "bhilq" else K_UNSIGNED
        elif code in (T_FLOAT4, T_FLOAT8) and fmt != "?":
            c.kind = K_FLOAT if fmt in "fd" else (K_SIGNED if fmt in "bhilq" else K_UNSIGNED)
        elif code == T_BOOL and fmt == "?":
            c.kind = K_BOOL
        if c.kind == K_OBJ:
            c.values = m.tolist()
            m.release()
            c.length = len(c.values)
            return c
        PyObject_GetBuffer(m, &c.view, PyBUF_RECORDS_RO)
        c.has_view = True
        c.mv = m
        c.length = c.view.shape[0]
        return c
    m.release()
    c.values = list(col)
    c.length = len(c.values)
    return c


cdef inline int64_t _read_signed(const char* p, Py_ssize_t size) noexcept:
    if size == 8:
        return (<const int64_t*>p)[0]
    if size == 4:
        return (<const int32_t*>p)[0]
    if size == 2:
        return (<const int16_t*>p)[0]
    return (<const signed char*>p)[0]


cdef inline uint64_t _read_unsigned(const char* p, Py_ssize_t size) noexcept:
    if size == 8:
        return (<const uint64_t*>p)[0]
    if size == 4:
        return (<const uint32_t*>p)[0]
    if size == 2:
        return (<const uint16_t*>p)[0]
    return (<const uint8_t*>p)[0]


cdef int _put_buffered(_Buf b, int code, _Column c, Py_ssize_t i) except -1:
    """Encode element ``i`` of a typed buffer column without creating a Python object."""
    cdef const char* p = <const char*>c.view.buf + i * c.view.strides[0]
    cdef Py_ssize_t size = c.view.itemsize
    cdef int64_t s
    cdef uint64_t u
    cdef double x
    cdef char* out
    if c.kind == K_BOOL:
        out = b.reserve(5)
        _put32(out, 1)
        out[4] = 1 if (<const uint8_t*>p)[0] else 0
        b.size += 5
        return 0
    if c.kind == K_FLOAT:
        x = (<const float*>p)[0] if size == 4 else (<const double*>p)[0]
    elif c.kind == K_SIGNED:
        s = _read_signed(p, size)
        if code == T_INT8:
            return b.field_i64(s)
        if code == T_INT4:
            if s < -2147483648LL or s > 2147483647LL:
                raise ValueError("value out of range for int4")
            return b.field_i32(<int32_t>s)
        if code == T_INT2:
            if s < -32768 or s > 32767:
                raise ValueError("value out of range for int2")
            return b.field_i16(<int16_t>s)
        x = <double>s
    else:
        u = _read_unsigned(p, size)
        if code == T_INT8 or code == T_INT4 or code == T_INT2:
            if (code == T_INT8 and u > 9223372036854775807ULL) or (code == T_INT4 and u > 2147483647ULL) \
                    or (code == T_INT2 and u > 32767):
                raise ValueError(f"value out of range for {TYPES[code]}")
            if code == T_INT8:
                return b.field_i64(<int64_t>u)
            if code == T_INT4:
                return b.field_i32(<int32_t>u)
            return b.field_i16(<int16_t>u)
        x = <double>u
    if code == T_FLOAT8:
        return b.field_f64(x)
    return _put_float4(b, x)


def encode_columns(columns, types, *, bint header=True, bint trailer=True):
    cdef tuple ts = _check_types(types)
    cdef _Encoder enc = _Encoder(ts, None)
    cdef list cols = []
    cdef _Column c
    cdef Py_ssize_t i, n, j, ncols
    cdef PyObject** colptrs
    try:
        j = 0
        for col in columns:
            cols.append(_make_column(col, _CODES[ts[j]] if j < len(ts) else T_TEXT))
            j += 1
        ncols = len(cols)
        if ncols != len(ts):
            raise ValueError(f"got {ncols} columns for {len(ts)} types")
        n = (<_Column>cols[0]).length
        for j in range(ncols):
            c = cols[j]
            if c.length != n:
                raise ValueError(f"all columns must have the same length: column 0 has {n}, column {j} has {c.length}")
        if header:
            enc.buf.write(PyBytes_AS_STRING(HEADER), 19)
        colptrs = <PyObject**>malloc(ncols * sizeof(PyObject*))
        if colptrs == NULL:
            raise MemoryError()
        try:
            for j in range(ncols):
                colptrs[j] = <PyObject*>cols[j]
            try:
                for i in range(n):
                    enc.row = i
                    enc.col = -1
                    enc.buf.put_i16(<int16_t>ncols)
                    for j in range(ncols):
                        enc.col = j
                        c = <_Column>colptrs[j]
                        if c.kind == K_OBJ:
                            enc.put_value(j, c.values[i])
                        else:
                            _put_buffered(enc.buf, enc.codes[j], c, i)
            except (ValueError, TypeError) as exc:
                raise _row_error(exc, enc.row, enc.col,
                                 enc.labels[enc.col] if enc.col >= 0 else None) from exc
        finally:
            free(colptrs)
        if trailer:
            enc.buf.write(b"\xff\xff", 2)
        return enc.buf.take()
    finally:
        for c in cols:
            c.release()


def iter_chunks(rows, types, names=None, chunk_bytes=1 << 20):
    cdef _Encoder enc = _Encoder(types, names)
    if type(chunk_bytes) is not int or chunk_bytes < 1:
        raise ValueError("chunk_bytes must be a positive int")
    return _chunks(enc, iter(rows), chunk_bytes)


def _chunks(_Encoder enc, it, Py_ssize_t chunk_bytes):
    enc.buf.write(PyBytes_AS_STRING(HEADER), 19)
    for row in it:
        enc.encode_one(row)
        if enc.buf.size >= chunk_bytes:
            yield enc.buf.take()
    enc.buf.write(b"\xff\xff", 2)
    yield enc.buf.take()


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

