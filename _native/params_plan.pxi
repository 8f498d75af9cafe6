# Included by params.pyx (one compilation unit): planned bulk items -> coerced tuples,
# and LOAD DATA text for MySQL.  The plan's argument checks live in plan_args.pxi.

# -- planned items -------------------------------------------------------------------------------
cdef class _Skip(Exception):
    pass


cdef object _UNSET = object()


cdef inline void _tset(tuple t, Py_ssize_t j, object v) noexcept:
    """Fill slot ``j`` of a fresh tuple (slots start NULL; a half-filled tuple is safe to free)."""
    Py_INCREF(v)
    PyTuple_SET_ITEM(t, j, v)


def coerce_plan(items, kinds, dialect, sources, defaults, width, start=0, *, shapes=None):
    """Source items + a per-column plan -> list of coerced row tuples; see the stub."""
    cdef tuple ks, srcs, defs, shp = None
    cdef Py_ssize_t ncols, j, i, n, p, found
    cdef int d = _dialect(dialect)
    cdef int* kc
    cdef int* fill
    cdef Py_ssize_t* pos
    cdef list out = []
    cdef tuple row
    cdef PyObject* hit
    if isinstance(kinds, str):
        raise TypeError("kinds must be a sequence of kind codes, not str")
    ks = tuple(kinds)
    ncols = len(ks)
    for k in ks:
        if _kind(k) == K_UNKNOWN:
            raise ValueError(f"unknown kind {k!r}")
    srcs, defs, shp = _plan_args(ncols, "kinds", sources, defaults, width, shapes, items, start)
    kc = <int*>PyMem_Malloc(ncols * sizeof(int) + 1)
    fill = <int*>PyMem_Malloc(ncols * sizeof(int) + 1)
    pos = <Py_ssize_t*>PyMem_Malloc(ncols * sizeof(Py_ssize_t) + 1)
    if kc == NULL or fill == NULL or pos == NULL:
        PyMem_Free(kc)
        PyMem_Free(fill)
        PyMem_Free(pos)
        raise MemoryError()
    try:
        for j in range(ncols):
            kc[j] = _kind(ks[j])
        fv = _plan_layout(srcs, defs, width >= 0, pos, fill)
        consts = [_UNSET] * ncols
        i = start
        n = len(<list>items)
        while i < n:
            item = <object>PyList_GET_ITEM(items, i)
            row = PyTuple_New(ncols)
            try:
                if width >= 0:
                    if type(item) is not tuple or PyTuple_GET_SIZE(item) != width:
                        raise _Skip()
                    for j in range(ncols):
                        p = pos[j]
                        if p >= 0:
                            v = <object>PyTuple_GET_ITEM(item, p)
                            if shp is not None and v is not None:
                                sh = <object>PyTuple_GET_ITEM(shp, j)
                                if sh is not None and type(v) not in <tuple>sh:
                                    raise _Skip()
                        elif fill[j] == F_VALUE:
                            # a constant is coerced once per call (coerce is pure)
                            c = <object>PyList_GET_ITEM(consts, j)
                            if c is _UNSET:
                                v = <object>PyTuple_GET_ITEM(fv, j)
                                c = None if v is None else _coerce(v, <object>PyTuple_GET_ITEM(ks, j), kc[j], d)
                                consts[j] = c
                            _tset(row, j, c)
                            continue
                        else:
                            v = (<object>PyTuple_GET_ITEM(fv, j))()
                        _tset(row, j, None if v is None else _coerce(v, <object>PyTuple_GET_ITEM(ks, j), kc[j], d))
                else:
                    if type(item) is not dict:
                        raise _Skip()
                    found = 0
                    for j in range(ncols):
                        k = <object>PyTuple_GET_ITEM(srcs, j)
                        hit = NULL if k is None else PyDict_GetItemWithError(item, k)
                        if hit == NULL:
                            if fill[j] == F_NONE:
                                raise _Skip()
                            v = <object>PyTuple_GET_ITEM(fv, j)
                            if fill[j] == F_CALL:
                                v = v()
                            else:
                                c = <object>PyList_GET_ITEM(consts, j)
                                if c is _UNSET:
                                    c = None if v is None else _coerce(v, <object>PyTuple_GET_ITEM(ks, j), kc[j], d)
                                    consts[j] = c
                                _tset(row, j, c)
                                continue
                        else:
                            found += 1
                            v = <object>hit
                            if shp is not None and v is not None:
                                sh = <object>PyTuple_GET_ITEM(shp, j)
                                if sh is not None and type(v) not in <tuple>sh:
                                    raise _Skip()
                        _tset(row, j, None if v is None else _coerce(v, <object>PyTuple_GET_ITEM(ks, j), kc[j], d))
                    if found != len(<dict>item):
                        raise _Skip()
            except Exception:
                break
            out.append(row)
            i += 1
    finally:
        PyMem_Free(kc)
        PyMem_Free(fill)
        PyMem_Free(pos)
    return out, i


# -- LOAD DATA text ------------------------------------------------------------------------------
cdef extern from "Python.h":
    const char* _utf8_and_size "PyUnicode_AsUTF8AndSize"(object o, Py_ssize_t* size)
    void PyErr_Clear()
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* ptype) except NULL
    void PyMem_Free_ "PyMem_Free"(void* p)
    int Py_DTSF_ADD_DOT_0

cdef extern from "stdio.h":
    int snprintf(char* s, size_t n, const char* fmt, ...)


cdef class _TsvBuf:
    cdef char* data
    cdef Py_ssize_t size, cap

    def __cinit__(self):
        self.cap = 1 << 16
        self.size = 0
        self.data = <char*>PyMem_Malloc(self.cap)
        if self.data == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.data)

    cdef inline char* reserve(self, Py_ssize_t need) except NULL:
        cdef Py_ssize_t cap
        cdef char* p
        if self.size + need > self.cap:
            cap = self.cap * 2
            while cap < self.size + need:
                cap *= 2
            p = <char*>PyMem_Realloc(self.data, cap)
            if p == NULL:
                raise MemoryError()
            self.data = p
            self.cap = cap
        return self.data + self.size

    cdef inline int raw(self, const char* s, Py_ssize_t n) except -1:
        memcpy(self.reserve(n), s, n)
        self.size += n
        return 0

    cdef int text(self, object s, bint escape) except -1:
        cdef Py_ssize_t n, k
        cdef const char* p = _utf8_and_size(s, &n)
        cdef char* o
        cdef char c
        if p == NULL:
            PyErr_Clear()
            s.encode("utf-8")          # raises the UnicodeEncodeError the twin raises
            raise ValueError("text is not encodable as UTF-8")
        if not escape:
            return self.raw(p, n)
        o = self.reserve(2 * n)
        for k in range(n):
            c = p[k]
            if c == 92 or c == 9 or c == 10 or c == 13 or c == 0:
                o[0] = 92
                o[1] = 92 if c == 92 else (116 if c == 9 else (110 if c == 10 else (114 if c == 13 else 48)))
                o += 2
            else:
                o[0] = c
                o += 1
        self.size = o - self.data
        return 0


cdef int _tsv_value(_TsvBuf b, object v, int kc) except -1:
    cdef char tmp[48]
    cdef int n, ovf = 0, us
    cdef long long x
    cdef char* s
    cdef char* o
    cdef const char* p
    cdef Py_ssize_t k, size
    t = type(v)
    if kc == K_STR or kc == K_JSON:
        if t is not str:
            raise TypeError(f"expected str for {KIND_NAMES[kc]}, got {_tname(v)}")
        return b.text(v, True)
    if kc == K_FLOAT:
        if t is float:
            s = PyOS_double_to_string(PyFloat_AS_DOUBLE(v), b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
            try:
                b.raw(s, strlen(s))
            finally:
                PyMem_Free_(s)
            return 0
        return b.text(repr(v), False)
    if kc == K_BYTES or kc == K_VECTOR:
        if t is bytes:
            size = PyBytes_GET_SIZE(v)
            p = PyBytes_AS_STRING(v)
            o = b.reserve(2 * size)
            for k in range(size):
                o[2 * k] = _HEX[(<unsigned char>p[k]) >> 4]
                o[2 * k + 1] = _HEX[(<unsigned char>p[k]) & 15]
            b.size += 2 * size
            return 0
        return b.text(v.hex() if isinstance(v, (bytes, bytearray)) else bytes(v).hex(), False)
    if kc == K_DATETIME:
        if t is _datetime and datetime_tzinfo(v) is None and PyDateTime_GET_YEAR(v) >= 1000:
            us = PyDateTime_DATE_GET_MICROSECOND(v)
            n = snprintf(tmp, 48, "%04d-%02d-%02d %02d:%02d:%02d", PyDateTime_GET_YEAR(v),
                         PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v), PyDateTime_DATE_GET_HOUR(v),
                         PyDateTime_DATE_GET_MINUTE(v), PyDateTime_DATE_GET_SECOND(v))
            if us:
                n += snprintf(tmp + n, 48 - n, ".%06d", us)
            return b.raw(tmp, n)
        return b.text(v.isoformat(" "), False)
    if kc == K_DECIMAL:
        return b.text(format(v, "f") if isinstance(v, _Decimal) else str(v), False)
    if t is int:
        x = PyLong_AsLongLongAndOverflow(v, &ovf)
        if not ovf:
            n = snprintf(tmp, 48, "%lld", x)
            return b.raw(tmp, n)
    if t is str:
        return b.text(v, False)
    return b.text(str(v), False)


def tsv_rows(rows, kinds):
    """Rows of ``coerce(..., MYSQL)`` values -> LOAD DATA text (UTF-8 bytes); see the stub."""
    cdef tuple ks
    cdef Py_ssize_t w, j, i = 0
    cdef int* kc
    cdef _TsvBuf b = _TsvBuf()
    if isinstance(kinds, str):
        raise TypeError("kinds must be a sequence of kind codes, not str")
    ks = tuple(kinds)
    w = len(ks)
    kc = <int*>PyMem_Malloc(w * sizeof(int) + 1)
    if kc == NULL:
        raise MemoryError()
    try:
        for j in range(w):
            kc[j] = _kind(ks[j])
            if kc[j] == K_UNKNOWN:
                raise ValueError(f"unknown kind {ks[j]!r}")
        for row in rows:
            if len(row) != w:
                raise ValueError(f"row {i}: expected {w} values, got {len(row)}")
            for j in range(w):
                if j:
                    b.raw(b"\t", 1)
                v = row[j]
                if v is None:
                    b.raw(b"\\N", 2)
                else:
                    _tsv_value(b, v, kc[j])
            b.raw(b"\n", 1)
            i += 1
        return PyBytes_FromStringAndSize(b.data, b.size)
    finally:
        PyMem_Free(kc)
