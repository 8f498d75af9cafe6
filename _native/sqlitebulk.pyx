# distutils: libraries = dl
"""Many rows through one prepared SQLite INSERT, bound and stepped in C with the GIL released.

Why: ``sqlite3.Cursor.executemany`` holds the GIL while it binds every value, so a bulk load
cannot prepare batch k+1 on the event loop while batch k is written.  Here one short pass with
the GIL collects each value's C form (the UTF-8 of a ``str`` is borrowed, never copied), then
binding and ``sqlite3_step`` run without the GIL.  The connection is the caller's own
``sqlite3.Connection``: its handle is read from the object and every SQLite function is looked
up in the very library the ``_sqlite3`` module uses (``dlsym`` on that module), so both speak to
one copy of SQLite.  When that lookup fails (a Python whose ``_sqlite3`` hides its SQLite), the
call runs the twin's ``executemany`` path instead and ``backend()`` says so.  Results, errors and
the table state after an error match the twin (``_native/_pure/sqlitebulk.py``).
"""

import sys

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int64_t, uint64_t

# sqlite3 and the twin (which shares its checks and error mapping) load on first use, so that
# importing the compiled core stays as cheap as ``import dataflow`` needs it to be.
cdef object sqlite3 = None
cdef object _twin = None

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object o, Py_ssize_t* size) except NULL

cdef extern from "dlfcn.h" nogil:
    void* dlopen(const char* filename, int flag)
    void* dlsym(void* handle, const char* symbol)
    char* dlerror()
    int RTLD_NOW
    int RTLD_NOLOAD

cdef extern from *:
    """
    typedef struct df_sqlite3 df_sqlite3;
    typedef struct df_stmt df_stmt;
    /* The head of CPython's pysqlite_Connection: PyObject_HEAD, then the sqlite3 handle.
       Unchanged from Python 2.5 to 3.14; the handle is cross-checked before each use. */
    typedef struct { PyObject_HEAD df_sqlite3 *db; } df_pyconn;
    """
    ctypedef struct df_sqlite3
    ctypedef struct df_stmt
    ctypedef struct df_pyconn:
        df_sqlite3* db

ctypedef int (*f_prepare)(df_sqlite3*, const char*, int, df_stmt**, const char**) noexcept nogil
ctypedef int (*f_stmt_int)(df_stmt*) noexcept nogil
ctypedef int (*f_db_int)(df_sqlite3*) noexcept nogil
ctypedef const char* (*f_errmsg)(df_sqlite3*) noexcept nogil
ctypedef int (*f_bind_null)(df_stmt*, int) noexcept nogil
ctypedef int (*f_bind_i64)(df_stmt*, int, int64_t) noexcept nogil
ctypedef int (*f_bind_dbl)(df_stmt*, int, double) noexcept nogil
ctypedef int (*f_bind_text)(df_stmt*, int, const char*, uint64_t, void*, unsigned char) noexcept nogil
ctypedef int (*f_bind_blob)(df_stmt*, int, const void*, uint64_t, void*) noexcept nogil
ctypedef int (*f_version)() noexcept nogil

cdef struct Api:
    f_prepare prepare
    f_stmt_int step, reset, finalize, param_count, column_count
    f_db_int changes, total_changes, errcode, ext_errcode, autocommit
    f_errmsg errmsg
    f_bind_null bind_null
    f_bind_i64 bind_i64
    f_bind_dbl bind_dbl
    f_bind_text bind_text
    f_bind_blob bind_blob
    f_version version

cdef Api _api
cdef bint _ready = False
cdef str _backend = None

DEF T_NULL = 0
DEF T_INT = 1
DEF T_FLOAT = 2
DEF T_TEXT = 3
DEF T_BLOB = 4
DEF SQLITE_OK = 0
DEF SQLITE_ROW = 100
DEF SQLITE_DONE = 101
DEF SQLITE_UTF8 = 1

cdef struct Val:
    int t
    int64_t i
    double d
    const char* p
    uint64_t n


cdef void* _sym(void* h, const char* name, list missing):
    cdef void* p = dlsym(h, name)
    if p == NULL:
        missing.append(name.decode())
    return p


cdef int _resolve() except -1:
    """Find SQLite's functions in the library ``_sqlite3`` is linked with (once)."""
    global _ready, _backend, sqlite3, _twin
    if _backend is not None:
        return 0
    import _sqlite3
    import sqlite3 as _sq
    from dataflow._native._pure import sqlitebulk as _tw
    sqlite3, _twin = _sq, _tw
    path = getattr(_sqlite3, "__file__", None)
    if not path or not (3, 8) <= sys.version_info[:2] <= (3, 14) or sys.implementation.name != "cpython":
        _backend = f"pysqlite executemany (no C access on {sys.implementation.name} {sys.version.split()[0]})"
        return 0
    bpath = path.encode()
    cdef void* h = dlopen(bpath, RTLD_NOW | RTLD_NOLOAD)
    if h == NULL:
        _backend = f"pysqlite executemany (dlopen of {path} failed)"
        return 0
    cdef list missing = []
    _api.prepare = <f_prepare>_sym(h, b"sqlite3_prepare_v2", missing)
    _api.step = <f_stmt_int>_sym(h, b"sqlite3_step", missing)
    _api.reset = <f_stmt_int>_sym(h, b"sqlite3_reset", missing)
    _api.finalize = <f_stmt_int>_sym(h, b"sqlite3_finalize", missing)
    _api.param_count = <f_stmt_int>_sym(h, b"sqlite3_bind_parameter_count", missing)
    _api.column_count = <f_stmt_int>_sym(h, b"sqlite3_column_count", missing)
    _api.changes = <f_db_int>_sym(h, b"sqlite3_changes", missing)
    _api.total_changes = <f_db_int>_sym(h, b"sqlite3_total_changes", missing)
    _api.errcode = <f_db_int>_sym(h, b"sqlite3_errcode", missing)
    _api.ext_errcode = <f_db_int>_sym(h, b"sqlite3_extended_errcode", missing)
    _api.autocommit = <f_db_int>_sym(h, b"sqlite3_get_autocommit", missing)
    _api.errmsg = <f_errmsg>_sym(h, b"sqlite3_errmsg", missing)
    _api.bind_null = <f_bind_null>_sym(h, b"sqlite3_bind_null", missing)
    _api.bind_i64 = <f_bind_i64>_sym(h, b"sqlite3_bind_int64", missing)
    _api.bind_dbl = <f_bind_dbl>_sym(h, b"sqlite3_bind_double", missing)
    _api.bind_text = <f_bind_text>_sym(h, b"sqlite3_bind_text64", missing)
    _api.bind_blob = <f_bind_blob>_sym(h, b"sqlite3_bind_blob64", missing)
    _api.version = <f_version>_sym(h, b"sqlite3_libversion_number", missing)
    if missing:
        _backend = f"pysqlite executemany ({path} does not export {', '.join(missing[:3])})"
        return 0
    v = _api.version()
    expected = sqlite3.sqlite_version_info
    if (v // 1000000, v // 1000 % 1000, v % 1000) != tuple(expected):
        _backend = f"pysqlite executemany (found SQLite {v}, Python reports {sqlite3.sqlite_version})"
        return 0
    _ready = True
    _backend = f"sqlite3 C API {sqlite3.sqlite_version}, GIL released while stepping"
    return 0


def backend():
    """Which path ``insert_rows`` takes here: the C API, or the twin's executemany (and why)."""
    _resolve()
    return _backend


cdef df_sqlite3* _handle(connection) except? NULL:
    """The connection's sqlite3 handle, checked against what pysqlite itself reports."""
    cdef df_sqlite3* db = (<df_pyconn*><PyObject*>connection).db
    if db == NULL:
        return NULL                    # closed: let the twin path raise pysqlite's own error
    if (_api.total_changes(db) != connection.total_changes
            or (_api.autocommit(db) == 0) != connection.in_transaction):
        return NULL
    return db


cdef object _raise(df_sqlite3* db, object row_index):
    """The exception pysqlite raises for the connection's current error (same class, text and
    ``sqlite_errorcode``/``sqlite_errorname``), plus ``row_index``."""
    return _twin._error(_api.errcode(db), _api.ext_errcode(db),
                        (<bytes>_api.errmsg(db)).decode("utf-8", "replace"), row_index)


def insert_rows(connection, sql, rows, start=0, on_release=None):
    """Execute ``sql`` once per row of ``rows``; return the summed change count; see the stub."""
    cdef Py_ssize_t nrows, width, r, j, k
    cdef Val* vals = NULL
    cdef Val* v
    cdef df_sqlite3* db
    cdef df_stmt* stmt = NULL
    cdef const char* tail = NULL
    cdef const char* csql
    cdef Py_ssize_t nsql, slen = 0
    cdef int rc = SQLITE_OK, ovf = 0, failed_at = -1
    cdef long long changes = 0
    _resolve()
    rows, width = _twin._check(connection, sql, rows, start, on_release)
    nrows = len(rows)
    if nrows == 0:
        return 0
    if not _ready or not _twin._plain_dml(sql):
        return _twin.insert_rows(connection, sql, rows, start, on_release)
    db = _handle(connection)
    if db == NULL:
        return _twin.insert_rows(connection, sql, rows, start, on_release)
    vals = <Val*>PyMem_Malloc(nrows * width * sizeof(Val) + 1)
    if vals == NULL:
        raise MemoryError()
    try:
        # pass 1, GIL held: each value's C form (validated like the twin, before any write)
        k = 0
        for r in range(nrows):
            row = <tuple>rows[r]
            for j in range(width):
                x = <object>PyTuple_GET_ITEM(row, j)
                v = &vals[k]
                k += 1
                t = type(x)
                if x is None:
                    v.t = T_NULL
                elif t is int or t is bool:
                    v.t = T_INT
                    v.i = PyLong_AsLongLongAndOverflow(x, &ovf)
                    if ovf:
                        raise _twin._bad_value(start + r, j, x)
                elif t is float:
                    v.t = T_FLOAT
                    v.d = PyFloat_AS_DOUBLE(x)
                elif t is str:
                    v.t = T_TEXT
                    try:
                        v.p = PyUnicode_AsUTF8AndSize(x, &slen)
                    except UnicodeEncodeError:
                        raise _twin._bad_value(start + r, j, x) from None
                    v.n = <uint64_t>slen
                elif t is bytes:
                    v.t = T_BLOB
                    v.p = PyBytes_AS_STRING(x)
                    v.n = <uint64_t>PyBytes_GET_SIZE(x)
                else:
                    raise _twin._bad_value(start + r, j, x)
        bsql = sql.encode("utf-8")
        csql = PyBytes_AS_STRING(bsql)
        nsql = PyBytes_GET_SIZE(bsql)
        with nogil:
            rc = _api.prepare(db, csql, <int>nsql + 1, &stmt, &tail)
        # Anything but one plain DML statement with ``width`` parameters takes pysqlite's own
        # path, so odd SQL fails (or runs) exactly as it does in the twin.
        if (rc != SQLITE_OK or stmt == NULL or _api.column_count(stmt) != 0
                or _api.param_count(stmt) != width or not _twin._blank(bsql[tail - csql:])):
            return _twin.insert_rows(connection, sql, rows, start, on_release)
        if on_release is not None:
            on_release()
        # pass 2, GIL released: bind, step, reset -- one row at a time, stop at the first error
        with nogil:
            k = 0
            for r in range(nrows):
                for j in range(width):
                    v = &vals[k]
                    k += 1
                    if v.t == T_NULL:
                        rc = _api.bind_null(stmt, <int>j + 1)
                    elif v.t == T_INT:
                        rc = _api.bind_i64(stmt, <int>j + 1, v.i)
                    elif v.t == T_FLOAT:
                        rc = _api.bind_dbl(stmt, <int>j + 1, v.d)
                    elif v.t == T_TEXT:
                        rc = _api.bind_text(stmt, <int>j + 1, v.p, v.n, NULL, SQLITE_UTF8)
                    else:
                        rc = _api.bind_blob(stmt, <int>j + 1, v.p, v.n, NULL)
                    if rc != SQLITE_OK:
                        break
                if rc == SQLITE_OK:
                    rc = _api.step(stmt)
                    while rc == SQLITE_ROW:
                        rc = _api.step(stmt)
                if rc != SQLITE_DONE:
                    _api.reset(stmt)
                    failed_at = <int>r
                    break
                changes += _api.changes(db)
                _api.reset(stmt)
        if failed_at >= 0:
            raise _raise(db, start + failed_at)
        return changes
    finally:
        if stmt != NULL:
            _api.finalize(stmt)
        PyMem_Free(vals)
