# Included by copybin.pyx: ``encode_plan`` -- source items (tuples or dicts) plus a per-column
# plan (where the value comes from, what fills it when absent) -> COPY BINARY rows in one C pass,
# without building a Python row per item.  It only takes the happy path: the first item it
# cannot encode as planned stops it, and the caller handles that item its own (slow, exact) way.

cdef enum:
    F_NONE = 0      # no default: the item must carry the value
    F_VALUE = 1     # constant default
    F_CALL = 2      # default factory, called per row


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
    cdef Py_ssize_t nkeys     # columns taken from the item
    cdef tuple shapes         # per column: None or the exact types an item's value must have

    def __cinit__(self, types, sources, defaults, width, shapes):
        cdef Py_ssize_t j
        self.enc = _Encoder(types, None)
        self.ncols = self.enc.ncols
        if type(width) is not int:
            raise TypeError("width must be an int")
        self.width = width
        srcs = _plan_list(sources, "sources", self.ncols)
        defs = _plan_list(defaults, "defaults", self.ncols)
        self.pos = <Py_ssize_t*>malloc(self.ncols * sizeof(Py_ssize_t))
        self.fill = <int*>malloc(self.ncols * sizeof(int))
        if self.pos == NULL or self.fill == NULL:
            raise MemoryError()
        fills = []
        self.nkeys = 0
        for j in range(self.ncols):
            s = srcs[j]
            self.pos[j] = -1
            if s is not None:
                self.nkeys += 1
                if width >= 0:
                    if type(s) is not int or not 0 <= s < width:
                        raise ValueError(f"sources[{j}] must be a position in 0..{width - 1} for tuple items, got {s!r}")
                    self.pos[j] = s
            d = defs[j]
            if d is None:
                self.fill[j] = F_NONE
                fills.append(None)
            elif type(d) is tuple and len(d) == 2 and d[0] in ("value", "call"):
                if d[0] == "call" and not callable(d[1]):
                    raise TypeError(f"defaults[{j}]: a 'call' default needs a callable")
                self.fill[j] = F_VALUE if d[0] == "value" else F_CALL
                fills.append(d[1])
            else:
                raise ValueError(f"defaults[{j}] must be None, ('value', v) or ('call', f), got {d!r}")
            if s is None and d is None:
                raise ValueError(f"column {j} has neither a source nor a default")
        self.keys = srcs
        self.fills = tuple(fills)
        self.shapes = None
        if shapes is not None:
            shp = _plan_list(shapes, "shapes", self.ncols)
            for j in range(self.ncols):
                if shp[j] is not None and (type(shp[j]) is not tuple or
                                           not all(isinstance(t, type) for t in shp[j])):
                    raise TypeError(f"shapes[{j}] must be None or a tuple of types")
            if any(x is not None for x in shp):
                self.shapes = shp

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


cdef tuple _plan_list(seq, str what, int ncols):
    if isinstance(seq, str):
        raise TypeError(f"{what} must be a sequence, not str")
    out = tuple(seq)
    if len(out) != ncols:
        raise ValueError(f"{what} has {len(out)} entries for {ncols} types")
    return out


def encode_plan(items, types, sources, defaults, width, start=0, *, bint header=False, shapes=None):
    cdef _Plan plan = _Plan(types, sources, defaults, width, shapes)
    cdef Py_ssize_t i, n, mark
    cdef _Buf buf = plan.enc.buf
    if not PyList_CheckExact(items):
        raise TypeError(f"items must be a list, got {_tname(items)}")
    if type(start) is not int or start < 0:
        raise ValueError("start must be a non-negative int")
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
