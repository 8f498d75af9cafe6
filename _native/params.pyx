# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled twin of ``_native/_pure/params.py``: value binding per dialect and row decoding.

``coerce_row`` runs on every write and ``decode_rows`` on every read, so kinds and dialects are
switched on as C ints, exact types take C fast paths (text scanned in place, datetimes formatted
and parsed with the datetime C API, JSON through orjson), and anything unusual falls back to code
that mirrors the twin line by line: same results, exception types and messages for every input.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.datetime cimport (PyDateTime_DATE_GET_HOUR, PyDateTime_DATE_GET_MICROSECOND,
                               PyDateTime_DATE_GET_MINUTE, PyDateTime_DATE_GET_SECOND,
                               PyDateTime_GET_DAY, PyDateTime_GET_MONTH, PyDateTime_GET_YEAR,
                               date_new, datetime_fold, datetime_new, datetime_tzinfo,
                               import_datetime)
from cpython.dict cimport PyDict_Copy, PyDict_GetItemWithError
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM
from cpython.object cimport PyObject, PyObject_GetItem
from cpython.unicode cimport (Py_UCS1, Py_UCS2, PyUnicode_1BYTE_DATA, PyUnicode_DATA,
                              PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_New)
from libc.math cimport isfinite
from libc.string cimport memchr, memcpy, strlen

import datetime as _dt
import uuid as _uuid
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

import orjson

cdef extern from "Python.h":
    object PyLong_FromString(const char* s, char** pend, int base)
    int PyObject_GenericSetAttr(object o, object name, object value) except -1
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)

import_datetime()

INT, FLOAT, BOOL, STR, BYTES, DATETIME, DATE, DECIMAL, UUID, JSON, VECTOR = range(1, 12)
KIND_NAMES = {INT: "int", FLOAT: "float", BOOL: "bool", STR: "str", BYTES: "bytes",
              DATETIME: "datetime", DATE: "date", DECIMAL: "Decimal", UUID: "UUID",
              JSON: "JSON", VECTOR: "vector"}
POSTGRESQL, MYSQL, SQLITE = 1, 2, 3

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
MYSQL_DECIMAL_SCALE = 30
MYSQL_DECIMAL_INT_DIGITS = 35

cdef enum:
    K_UNKNOWN = 0
    K_INT = 1
    K_FLOAT = 2
    K_BOOL = 3
    K_STR = 4
    K_BYTES = 5
    K_DATETIME = 6
    K_DATE = 7
    K_DECIMAL = 8
    K_UUID = 9
    K_JSON = 10
    K_VECTOR = 11
    D_OTHER = 0
    D_PG = 1
    D_MYSQL = 2
    D_SQLITE = 3

cdef object _UTC = _dt.timezone.utc
cdef object _timezone = _dt.timezone
cdef object _datetime = _dt.datetime
cdef object _date = _dt.date
cdef object _UUID = _uuid.UUID
cdef object _SAFE_UNKNOWN = _uuid.SafeUUID.unknown
cdef object _object_new = object.__new__
cdef object _fromisoformat = _dt.datetime.fromisoformat
cdef object _date_fromisoformat = _dt.date.fromisoformat
cdef object _dumps = orjson.dumps
cdef object _loads = orjson.loads
cdef object _Decimal = Decimal
cdef object _ONE = Decimal(1)
cdef object _TWO128 = 2 ** 128
cdef object _MASK64 = 2 ** 64 - 1
cdef object _INT64_MIN = INT64_MIN
cdef object _INT64_MAX = INT64_MAX
# Exact arithmetic for decode normalisation (the default 28-digit context would round silently).
cdef object _EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
# The twin tests kinds with ``==`` in this order; non-int kinds are normalised the same way.
cdef tuple _KIND_ORDER = (INT, STR, FLOAT, BOOL, DATETIME, JSON, DECIMAL, UUID, DATE, BYTES, VECTOR)
cdef object _py_check_json = None   # the twin's _check_json, for odd ``depth`` arguments only

cdef const char* _HEX = b"0123456789abcdef"

cdef str _MSG_NUL = "NUL character (\\x00) is not allowed in text"
cdef str _MSG_SURROGATE = "text contains a lone surrogate and is not valid Unicode"
cdef str _MSG_NAIVE = "naive datetime (no tzinfo); attach a timezone, e.g. datetime.now(timezone.utc)"
cdef str _MSG_UTC_RANGE = "datetime out of range when converted to UTC"


# -- codes ---------------------------------------------------------------------------------------
cdef int _kind_slow(object kind) except -1:
    cdef int i
    for i in range(11):
        if kind == _KIND_ORDER[i]:
            return <int>(<object>_KIND_ORDER[i])
    return K_UNKNOWN


cdef inline int _kind(object kind) except -1:
    cdef int ovf = 0
    cdef long long k
    if type(kind) is int:
        k = PyLong_AsLongLongAndOverflow(kind, &ovf)
        if ovf == 0 and 1 <= k <= 11:
            return <int>k
        return K_UNKNOWN
    return _kind_slow(kind)


cdef int _dialect(object dialect) except -1:
    cdef int ovf = 0
    cdef long long k
    if type(dialect) is int:
        k = PyLong_AsLongLongAndOverflow(dialect, &ovf)
        if ovf == 0 and 1 <= k <= 3:
            return <int>k
        return D_OTHER
    if dialect == POSTGRESQL:
        return D_PG
    if dialect == MYSQL:
        return D_MYSQL
    if dialect == SQLITE:
        return D_SQLITE
    return D_OTHER


cdef inline object _item(object seq, Py_ssize_t i):
    """``seq[i]`` exactly as Python does it (bounds checked: the module is built without)."""
    return PyObject_GetItem(seq, i)


cdef inline str _tname(object v):
    return type(v).__name__


# -- text ----------------------------------------------------------------------------------------
cdef int _text_problem(str s) noexcept:
    """0: fine, 1: contains NUL (reported first, as the twin does), 2: contains a surrogate."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s), i
    cdef unsigned int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    cdef Py_UCS2* d2
    cdef Py_UCS4* d4
    cdef Py_UCS4 c
    cdef bint sur = False
    if kind == 1:
        return 1 if memchr(data, 0, n) != NULL else 0
    if kind == 2:
        d2 = <Py_UCS2*>data
        for i in range(n):
            c = d2[i]
            if c == 0:
                return 1
            if 0xD800 <= c <= 0xDFFF:
                sur = True
    else:
        d4 = <Py_UCS4*>data
        for i in range(n):
            c = d4[i]
            if c == 0:
                return 1
            if 0xD800 <= c <= 0xDFFF:
                sur = True
    return 2 if sur else 0


cdef int _raise_text(int problem) except -1:
    if problem == 1:
        raise ValueError(_MSG_NUL)
    raise ValueError(_MSG_SURROGATE)


def _check_text(v):
    """Refuse NUL and lone surrogates; return ``v``.  Same contract as the twin."""
    cdef int p
    if type(v) is str:
        p = _text_problem(v)
        if p:
            _raise_text(p)
        return v
    # Not an exact str: the twin's operations, so subclass hooks and errors agree.
    if "\x00" in v:
        raise ValueError(_MSG_NUL)
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(_MSG_SURROGATE) from None
    return v


# -- JSON ----------------------------------------------------------------------------------------
cdef int _json_check(object v, int depth) except -1:
    cdef int p
    if depth > 64:
        raise ValueError("JSON value nested deeper than 64 levels")
    t = type(v)
    if t is str:
        p = _text_problem(v)
        if p:
            _raise_text(p)
    elif t is float:
        if not isfinite(PyFloat_AS_DOUBLE(v)):
            raise ValueError("NaN and Infinity cannot be stored in JSON")
    elif t is dict:
        for k, item in (<dict>v).items():
            if type(k) is not str:
                raise TypeError(f"JSON object keys must be str, got {_tname(k)}")
            p = _text_problem(k)
            if p:
                _raise_text(p)
            _json_check(item, depth + 1)
    elif t is list:
        for item in <list>v:
            _json_check(item, depth + 1)
    elif t is tuple:
        for item in <tuple>v:
            _json_check(item, depth + 1)
    elif v is None or t is bool or t is int:
        pass
    else:
        raise TypeError(f"{_tname(v)} is not JSON-serializable (use dict, list, str, int, float, bool or None)")
    return 0


def _check_json(v, depth=0):
    """Reject what JSON cannot carry faithfully: NaN/inf, NUL, non-str keys, odd types."""
    global _py_check_json
    cdef int ovf = 0
    cdef long long dp
    if type(depth) is int:
        dp = PyLong_AsLongLongAndOverflow(depth, &ovf)
        if ovf > 0 or (ovf == 0 and dp > 64):
            raise ValueError("JSON value nested deeper than 64 levels")
        if ovf == 0 and dp >= 0:
            _json_check(v, <int>dp)
            return None
    # Negative or non-int depth: C recursion would not be bounded; use the twin itself.
    if _py_check_json is None:
        from dataflow._native._pure.params import _check_json as check
        _py_check_json = check
    return _py_check_json(v, depth)


cdef inline str _json_text(object value):
    b = _dumps(value)
    return PyUnicode_DecodeUTF8(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), NULL)


include "params_format.pxi"


# -- coerce --------------------------------------------------------------------------------------
cdef object _coerce_datetime_slow(object value, int d):
    if not isinstance(value, _datetime):
        raise TypeError(f"expected datetime, got {_tname(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(_MSG_NAIVE)
    if d == D_PG:
        return value
    try:
        utc = value.astimezone(_UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(_MSG_UTC_RANGE) from None
    if d == D_MYSQL:
        return utc
    return utc.isoformat(timespec="microseconds") + "+00:00"


cdef object _coerce_decimal(object value, int d):
    if type(value) is int:
        value = _Decimal(value)
    elif not isinstance(value, _Decimal):
        raise TypeError(f"expected Decimal or int, got {_tname(value)} (floats are inexact; use Decimal)")
    if not value.is_finite():
        if d == D_PG and value.is_nan():
            return value
        raise ValueError("non-finite Decimal cannot be stored on this database")
    if d == D_MYSQL:
        sign, digits, exp = value.as_tuple()
        if exp < -MYSQL_DECIMAL_SCALE:
            raise ValueError(f"Decimal has more than {MYSQL_DECIMAL_SCALE} digits after the point")
        if len(digits) + exp > MYSQL_DECIMAL_INT_DIGITS:
            raise ValueError(f"Decimal has more than {MYSQL_DECIMAL_INT_DIGITS} digits before the point")
        return value
    if d == D_SQLITE:
        return str(value)
    return value


cdef object _coerce_uuid(object value, int d):
    cdef char hex32[33]
    t = type(value)
    if isinstance(value, _UUID):
        u = value
    elif t is str:
        if d != D_PG and _canonical_uuid(value, hex32):
            return _uuid_text(hex32)
        try:
            u = _UUID(value)
        except ValueError:
            raise ValueError("not a valid UUID string") from None
    else:
        raise TypeError(f"expected UUID, got {_tname(value)}")
    if d == D_PG:
        return u
    if type(u) is _UUID:
        return _uuid_str(u)
    return str(u)


cdef object _coerce(object value, object kind, int kc, int d):
    """The twin's ``coerce`` for a non-None value; ``kc``/``d`` are the normalised codes."""
    cdef int ovf = 0
    cdef int p
    t = type(value)
    if kc == K_INT:
        if t is int:
            PyLong_AsLongLongAndOverflow(value, &ovf)
            if ovf:
                raise ValueError("integer out of range for a 64-bit column")
            return value
        if isinstance(value, int) and t is not bool:
            value = int(value)
        else:
            raise TypeError(f"expected int, got {_tname(value)}")
        if value < _INT64_MIN or value > _INT64_MAX:
            raise ValueError("integer out of range for a 64-bit column")
        return value
    if kc == K_STR:
        if t is not str:
            raise TypeError(f"expected str, got {_tname(value)}")
        p = _text_problem(value)
        if p:
            _raise_text(p)
        return value
    if kc == K_FLOAT:
        if t is float:
            if d != D_PG and not isfinite(PyFloat_AS_DOUBLE(value)):
                raise ValueError("NaN and Infinity cannot be stored faithfully on this database")
            return value
        if t is int:
            try:
                return float(value)   # finite whenever it does not overflow
            except OverflowError:
                raise ValueError("integer too large to convert to float") from None
        raise TypeError(f"expected float, got {_tname(value)}")
    if kc == K_BOOL:
        if t is not bool:
            raise TypeError(f"expected bool, got {_tname(value)}")
        if d == D_PG:
            return value
        return 1 if value is True else 0
    if kc == K_DATETIME:
        if t is _datetime:
            tz = datetime_tzinfo(value)
            if tz is None:
                raise ValueError(_MSG_NAIVE)
            if type(tz) is _timezone:       # fixed offset: utcoffset() is never None
                if d == D_PG:
                    return value
                if tz is not _UTC:
                    try:
                        value = value.astimezone(_UTC)
                    except OverflowError:
                        raise ValueError(_MSG_UTC_RANGE) from None
                if d == D_MYSQL:
                    return datetime_new(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                        PyDateTime_GET_DAY(value), PyDateTime_DATE_GET_HOUR(value),
                                        PyDateTime_DATE_GET_MINUTE(value),
                                        PyDateTime_DATE_GET_SECOND(value),
                                        PyDateTime_DATE_GET_MICROSECOND(value), None,
                                        datetime_fold(value))
                return _iso_utc(value)
        return _coerce_datetime_slow(value, d)
    if kc == K_JSON:
        _json_check(value, 0)
        return _json_text(value)
    if kc == K_DECIMAL:
        return _coerce_decimal(value, d)
    if kc == K_UUID:
        return _coerce_uuid(value, d)
    if kc == K_DATE:
        if t is _date:
            return _iso_date(value) if d == D_SQLITE else value
        if t is _datetime or not isinstance(value, _date) or isinstance(value, _datetime):
            raise TypeError(f"expected date, got {_tname(value)}")
        if d == D_SQLITE:
            return value.isoformat()
        return value
    if kc == K_BYTES:
        if t is bytes:
            return value
        if t is bytearray or t is memoryview:
            return bytes(value)
        raise TypeError(f"expected bytes, got {_tname(value)}")
    if kc == K_VECTOR:
        # float32 little-endian on every dialect (see the twin).
        return _vector().pack(value)
    raise ValueError(f"unknown kind {kind!r}")


def coerce(value, kind, dialect):
    """Check ``value`` against ``kind`` and convert it to what ``dialect``'s driver binds.

    ``None`` passes through (NOT NULL is the database's job).
    """
    if value is None:
        return None
    return _coerce(value, kind, _kind(kind), _dialect(dialect))


def coerce_row(values, kinds, dialect, names):
    """Coerce one row; errors are prefixed with the field name: ``field 'age': expected int``."""
    cdef Py_ssize_t n = len(kinds), i = 0
    cdef int d = _dialect(dialect)
    cdef list out = []
    cdef bint vt = type(values) is tuple, vl = type(values) is list, kt = type(kinds) is tuple
    try:
        for i in range(n):
            if vt and i < PyTuple_GET_SIZE(values):
                v = <object>PyTuple_GET_ITEM(values, i)
            elif vl and i < PyList_GET_SIZE(values):
                v = <object>PyList_GET_ITEM(values, i)
            else:
                v = _item(values, i)
            k = <object>PyTuple_GET_ITEM(kinds, i) if kt else _item(kinds, i)
            if v is None:
                out.append(None)
            else:
                out.append(_coerce(v, k, _kind(k), d))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"field {_item(names, i)!r}: {exc}") from None
    return out


def coerce_rows(rows, kinds, dialect, names, start_index=0):
    """Coerce many rows (sequences aligned with ``kinds``) into one flat parameter list.

    Errors say ``row {i}, field 'x': ...`` and carry ``.row_index`` (i counts from
    ``start_index``) so bulk loaders can report the failing row exactly.
    """
    cdef list out = []
    cdef Py_ssize_t width = len(kinds), r = 0, i = 0, size
    cdef int d = _dialect(dialect)
    cdef bint kt = type(kinds) is tuple, rt, rl
    for row in rows:
        size = len(row)
        if size != width:
            exc = ValueError(f"row {start_index + r}: expected {width} values, got {len(row)}")
            exc.row_index = start_index + r
            raise exc
        rt = type(row) is tuple
        rl = type(row) is list
        try:
            for i in range(width):
                if rt and i < PyTuple_GET_SIZE(row):
                    v = <object>PyTuple_GET_ITEM(row, i)
                elif rl and i < PyList_GET_SIZE(row):
                    v = <object>PyList_GET_ITEM(row, i)
                else:
                    v = _item(row, i)
                k = <object>PyTuple_GET_ITEM(kinds, i) if kt else _item(kinds, i)
                if v is None:
                    out.append(None)
                else:
                    out.append(_coerce(v, k, _kind(k), d))
        except (TypeError, ValueError) as exc:
            err = type(exc)(f"row {start_index + r}, field {_item(names, i)!r}: {exc}")
            err.row_index = start_index + r
            raise err from None
        r += 1
    return out


include "params_decode.pxi"


include "plan_args.pxi"
include "params_plan.pxi"
