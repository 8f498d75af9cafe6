# cython: language_level=3, boundscheck=False, wraparound=False
# The compiler's state, output buffer and error path, and the entry point; the rest is included
# from filters_{codes,spec,walk,ops}.pxi and compiled as this one unit, so cdef calls stay direct.
"""Compiled twin of ``_native/_pure/filters.py``: MongoDB-style filter dict -> (sql, params).

Same names, results, exception types and messages as the twin (tests/native/ checks parity).
Speed comes from three things the twin cannot do: SQL is written straight into one ASCII byte
buffer (no intermediate strings), "$n" placeholders are formatted in C, and error paths
(``filter.$or[3].age.$gte``) are kept as a stack of borrowed pointers and rendered only when
something is raised.  Value coercion stays the caller's Python callable; it dominates the cost.
"""

cimport cython
from cpython.object cimport PyObject
from cpython.dict cimport PyDict_GetItemWithError
from cpython.long cimport PyLong_AsLongAndOverflow
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, strlen

import orjson

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    Py_UCS4 PyUnicode_READ_CHAR(object o, Py_ssize_t i)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    Py_ssize_t PyDict_GET_SIZE(object d)
    Py_ssize_t Py_SIZE(object o)

MAX_DEPTH = 64
MAX_NODES = 10_000
MAX_REGEX = 2_000
MAX_START = 2_147_483_647
FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$like", "$ilike",
             "$regex", "$options", "$exists", "$null", "$not", "$contains", "$startswith",
             "$endswith", "$between")
LOGICAL_OPS = ("$and", "$or", "$nor", "$not")
REFUSED_OPS = ("$where", "$function", "$expr", "$accumulator")
_TEMPLATE_KEYS = ("like", "ilike", "regex", "iregex", "json_contains", "in_array", "nin_array",
                  "in_json")
STR_KIND = 4
JSON_KIND = 10
JSON_IN_KINDS = (1, 2, 4, 9)  # int, float, str, uuid: safe to pass as one JSON array

DEF C_MAX_DEPTH = 64
DEF C_MAX_NODES = 10000
DEF C_MAX_REGEX = 2000
DEF C_MAX_START = 2147483647
DEF SEGMAX = 256        # path segments; depth <= 64 bounds real use to ~140
DEF INLINE = 512        # SQL bytes held in the compiler before the buffer moves to the heap

include "filters_codes.pxi"
include "filters_spec.pxi"


@cython.final
@cython.no_gc_clear
cdef class _Compiler:
    """One compilation: output buffer, params, placeholder counter, node count, error path."""
    cdef FilterSpec spec
    cdef object coerce
    cdef object coerce_arg   # None: coerce(v, kind); else coerce(v, kind, coerce_arg)
    cdef list params
    cdef Py_ssize_t n
    cdef Py_ssize_t nodes
    cdef int style
    # output: ASCII bytes in buf; a non-ASCII piece flushes buf into chunks (rare)
    cdef char* buf
    cdef Py_ssize_t blen
    cdef Py_ssize_t bcap
    cdef list chunks
    cdef char inline_buf[INLINE]
    # error path: root + segments; seg NULL means "[idx]", else "." + seg (borrowed str)
    cdef str root
    cdef int nseg
    cdef PyObject* segs[SEGMAX]
    cdef Py_ssize_t idxs[SEGMAX]

    def __cinit__(self):
        self.buf = self.inline_buf
        self.bcap = INLINE

    def __dealloc__(self):
        if self.buf != self.inline_buf:
            free(self.buf)

    cdef void reset(self):
        self.spec = None
        self.coerce = None
        self.coerce_arg = None
        self.params = None
        self.chunks = None
        self.root = None
        self.blen = 0
        self.nseg = 0
        self.nodes = 0
        if self.buf != self.inline_buf and self.bcap > 65536:
            free(self.buf)
            self.buf = self.inline_buf
            self.bcap = INLINE

    # -- output ------------------------------------------------------------------------------
    cdef int grow(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap = self.bcap * 2
        cdef char* nb
        while cap < self.blen + need:
            cap *= 2
        if self.buf == self.inline_buf:
            nb = <char*>malloc(cap)
            if nb == NULL:
                raise MemoryError()
            memcpy(nb, self.buf, self.blen)
        else:
            nb = <char*>realloc(self.buf, cap)
            if nb == NULL:
                raise MemoryError()
        self.buf = nb
        self.bcap = cap
        return 0

    cdef inline int w(self, const char* s, Py_ssize_t k) except -1:
        if self.blen + k > self.bcap:
            self.grow(k)
        memcpy(self.buf + self.blen, s, k)
        self.blen += k
        return 0

    cdef inline int wc(self, const char* s) except -1:
        return self.w(s, strlen(s))

    cdef inline int ws(self, str s) except -1:
        if PyUnicode_IS_ASCII(s):
            return self.w(<const char*>PyUnicode_DATA(s), PyUnicode_GET_LENGTH(s))
        if self.chunks is None:
            self.chunks = []
        self.chunks.append(self.flush())
        self.chunks.append(s)
        return 0

    cdef str flush(self):
        cdef object out = PyUnicode_New(self.blen, 127)
        memcpy(PyUnicode_DATA(out), self.buf, self.blen)
        self.blen = 0
        return <str>out

    cdef str result(self):
        if self.chunks is None:
            return self.flush()
        self.chunks.append(self.flush())
        return "".join(self.chunks)

    cdef int bind(self, object value) except -1:
        cdef char digits[24]
        cdef Py_ssize_t i = 24, v
        self.params.append(value)
        if self.style == 0:
            v = self.n
            self.n += 1
            while True:
                i -= 1
                digits[i] = <char>(48 + v % 10)
                v //= 10
                if v == 0:
                    break
            i -= 1
            digits[i] = 36  # '$'
            return self.w(digits + i, 24 - i)
        if self.style == 1:
            return self.w("?", 1)
        return self.w("%s", 2)

    # -- error paths -------------------------------------------------------------------------
    cdef inline int push(self, object seg) except -1:
        if self.nseg >= SEGMAX:
            raise ValueError(f"{self.path()}: filter nested deeper than {MAX_DEPTH} levels")
        self.segs[self.nseg] = <PyObject*>seg
        self.nseg += 1
        return 0

    cdef inline int push_index(self, Py_ssize_t i) except -1:
        if self.nseg >= SEGMAX:
            raise ValueError(f"{self.path()}: filter nested deeper than {MAX_DEPTH} levels")
        self.segs[self.nseg] = NULL
        self.idxs[self.nseg] = i
        self.nseg += 1
        return 0

    cdef str path_to(self, int upto):
        cdef list parts = [self.root]
        cdef int i
        for i in range(upto):
            if self.segs[i] == NULL:
                parts.append(f"[{self.idxs[i]}]")
            else:
                parts.append(".")
                parts.append(<str>self.segs[i])
        return "".join(parts)

    cdef str path(self):
        return self.path_to(self.nseg)

    cdef object value(self, object v, object kind):
        try:
            if self.coerce_arg is None:
                return self.coerce(v, kind)
            return self.coerce(v, kind, self.coerce_arg)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{self.path()}: {exc}") from None


include "filters_walk.pxi"
include "filters_ops.pxi"


cdef _Compiler _spare = None   # one compiler kept for reuse (taken, so re-entry makes another)


def compile_filter(filt, spec, start=1, path="filter"):
    """Compile ``filt`` to ``(sql, params)``; ``sql`` is "" for an empty filter.

    ``start`` is the first placeholder number for the "$" style (so a filter can follow
    SET parameters in an UPDATE).
    """
    global _spare
    cdef _Compiler c
    cdef int overflow = 0
    cdef long cstart
    if not isinstance(spec, FilterSpec):
        raise TypeError(f"spec must be a FilterSpec, got {type(spec).__name__}")
    if type(start) is not int:
        raise TypeError(f"start must be an int, got {type(start).__name__}")
    cstart = PyLong_AsLongAndOverflow(start, &overflow)
    if overflow or cstart < 1 or cstart > C_MAX_START:
        raise ValueError(f"start must be between 1 and {MAX_START}, got {start}")
    if type(path) is not str:
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    if filt is None:
        return "", []
    if type(filt) is not dict:
        raise TypeError(f"{path}: expected a dict, got {type(filt).__name__}")
    if PyDict_GET_SIZE(filt) == 0:
        return "", []
    c = _spare
    if c is None:
        c = _Compiler.__new__(_Compiler)
    else:
        _spare = None
    c.spec = <FilterSpec>spec
    c.coerce = (<FilterSpec>spec).coerce
    c.coerce_arg = (<FilterSpec>spec).coerce_arg
    c.style = (<FilterSpec>spec)._style
    c.params = []
    c.n = cstart
    c.root = path
    _doc(c, filt, 0)
    sql = c.result()
    params = c.params
    c.reset()
    _spare = c
    return sql, params
