# Included by copybin.pyx: ``encode_plan`` -- source items (tuples or dicts) plus a per-column
# plan (where the value comes from, what fills it when absent) -> COPY BINARY rows in one C pass,
# without building a Python row per item.  It only takes the happy path: the first item it
# cannot encode as planned stops it, and the caller handles that item its own (slow, exact) way.
# The plan's argument checks live in plan_args.pxi.

cdef int _json_ok(object v, int depth) except -1:
    """1 when ``v`` is JSON that the checked write paths accept (no NaN/inf, no NUL or lone
    surrogate, str keys, JSON types only, nesting <= 64), else 0."""
    cdef Py_ssize_t n
    cdef const char* p
    if depth > 64:
        return 0
    t = type(v)
    if t is str:
        p = _utf8_and_size(v, &n)
        if p == NULL:
            PyErr_Clear()
            return 0
        return 0 if n and memchr(p, 0, n) != NULL else 1
    if t is float:
        return 0 if isnan(PyFloat_AS_DOUBLE(v)) or isinf(PyFloat_AS_DOUBLE(v)) else 1
    if t is dict:
        for k, item in (<dict>v).items():
            if type(k) is not str or not _json_ok(k, depth) or not _json_ok(item, depth + 1):
                return 0
        return 1
    if t is list:
        for item in <list>v:
            if not _json_ok(item, depth + 1):
                return 0
        return 1
    if t is tuple:
        for item in <tuple>v:
            if not _json_ok(item, depth + 1):
                return 0
        return 1
    return 1 if v is None or t is bool or t is int else 0


@cython.final
cdef class _Plan:
    cdef _Encoder enc
    cdef int ncols
    cdef Py_ssize_t width
    cdef Py_ssize_t* pos      # tuple mode: item position per column, -1 = not from the item
    cdef int* fill
    cdef tuple keys           # dict mode: key per column (None = not from the item)
    cdef tuple fills          # default value / factory per column
    cdef tuple shapes         # per column: None or the exact types an item's value must have

    def __cinit__(self, _Encoder enc, tuple srcs, tuple defs, Py_ssize_t width, tuple shapes):
        """``srcs``/``defs``/``shapes`` as checked by ``_plan_args``."""
        self.enc = enc
        self.ncols = enc.ncols
        self.width = width
        self.pos = <Py_ssize_t*>malloc(self.ncols * sizeof(Py_ssize_t))
        self.fill = <int*>malloc(self.ncols * sizeof(int))
        if self.pos == NULL or self.fill == NULL:
            raise MemoryError()
        self.fills = _plan_layout(srcs, defs, width >= 0, self.pos, self.fill)
        self.keys = srcs
        self.shapes = shapes

    def __dealloc__(self):
        free(self.pos)
        free(self.fill)

    cdef inline int put_fill(self, int j) except -1:
        cdef int f = self.fill[j]
        if f == F_VALUE:
            return self.put(j, <object>PyTuple_GET_ITEM(self.fills, j))
        if f == F_CALL:
            return self.put(j, (<object>PyTuple_GET_ITEM(self.fills, j))())
        raise KeyError(j)

    cdef inline int put_item(self, int j, object v) except -1:
        if self.shapes is not None and v is not None:
            shp = <object>PyTuple_GET_ITEM(self.shapes, j)
            if shp is not None and type(v) not in <tuple>shp:
                raise ValueError("value off its shape")
        return self.put(j, v)

    cdef inline int put(self, int j, object v) except -1:
        cdef int code = self.enc.codes[j]
        if v is not None and (code == T_JSONB or code == T_JSON):
            if not _json_ok(v, 0):
                raise ValueError("JSON value rejected")
            return _enc_json(self.enc.buf, _dumps(v), code == T_JSONB)
        return self.enc.put_value(j, v)

    cdef int encode_item(self, object item) except -1:
        cdef int j, ncols = self.ncols
        cdef Py_ssize_t p, found
        cdef PyObject* hit
        if self.width >= 0:
            if not PyTuple_CheckExact(item) or PyTuple_GET_SIZE(item) != self.width:
                raise ValueError("not a planned tuple")
            self.enc.buf.put_i16(<int16_t>ncols)
            for j in range(ncols):
                p = self.pos[j]
                if p >= 0:
                    self.put_item(j, <object>PyTuple_GET_ITEM(item, p))
                else:
                    self.put_fill(j)
            return 0
        if not PyDict_CheckExact(item):
            raise ValueError("not a dict")
        self.enc.buf.put_i16(<int16_t>ncols)
        found = 0
        for j in range(ncols):
            k = <object>PyTuple_GET_ITEM(self.keys, j)
            if k is None:
                self.put_fill(j)
                continue
            hit = PyDict_GetItemWithError(item, k)
            if hit == NULL:
                self.put_fill(j)
            else:
                found += 1
                self.put_item(j, <object>hit)
        if found != PyDict_Size(item):
            raise ValueError("unplanned key")
        return 0


def encode_plan(items, types, sources, defaults, width, start=0, *, bint header=False, shapes=None):
    cdef _Encoder enc = _Encoder(types, None)
    srcs, defs, shp = _plan_args(enc.ncols, "types", sources, defaults, width, shapes, items, start)
    cdef _Plan plan = _Plan(enc, srcs, defs, width, shp)
    cdef Py_ssize_t i, n, mark
    cdef _Buf buf = enc.buf
    if header:
        buf.write(PyBytes_AS_STRING(HEADER), 19)
    i = start
    n = PyList_GET_SIZE(items)
    while i < n:
        mark = buf.size
        try:
            plan.encode_item(<object>PyList_GET_ITEM(items, i))
        except Exception:
            buf.size = mark
            break
        i += 1
    return buf.take(), i
