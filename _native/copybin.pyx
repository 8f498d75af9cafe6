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
from cpython.dict cimport PyDict_CheckExact, PyDict_GetItemWithError, PyDict_Size
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check, PyFloat_CheckExact, PyFloat_FromDouble
from cpython.list cimport PyList_Check, PyList_CheckExact, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_Check, PyLong_CheckExact, PyLong_FromLongLong
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_Check, PyTuple_CheckExact, PyTuple_GET_ITEM, PyTuple_GET_SIZE
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


include "copybin_values.pxi"

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


include "plan_args.pxi"
include "copybin_plan.pxi"
include "copybin_decode.pxi"
