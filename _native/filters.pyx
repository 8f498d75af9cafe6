# cython: language_level=3, boundscheck=False, wraparound=False
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

cdef extern from *:
    """
    /* Operator name -> code by length and bytes: no hashing, no dict probe, no allocation. */
    #define DF_IS(lit) (memcmp(s, lit, sizeof(lit) - 1) == 0)
    static int df_field_code(const char *s, Py_ssize_t n) {
        switch (n) {
        case 3:
            if (DF_IS("$eq")) return 1; if (DF_IS("$gt")) return 2; if (DF_IS("$lt")) return 4;
            if (DF_IS("$ne")) return 6; if (DF_IS("$in")) return 7; return 0;
        case 4:
            if (DF_IS("$gte")) return 3; if (DF_IS("$lte")) return 5; if (DF_IS("$nin")) return 8;
            if (DF_IS("$not")) return 18; return 0;
        case 5:
            if (DF_IS("$like")) return 11; if (DF_IS("$null")) return 10; return 0;
        case 6:
            if (DF_IS("$ilike")) return 12; if (DF_IS("$regex")) return 13; return 0;
        case 7:
            return DF_IS("$exists") ? 9 : 0;
        case 8:
            if (DF_IS("$between")) return 17; if (DF_IS("$options")) return 19; return 0;
        case 9:
            if (DF_IS("$contains")) return 14; if (DF_IS("$endswith")) return 16; return 0;
        case 11:
            return DF_IS("$startswith") ? 15 : 0;
        }
        return 0;
    }
    static int df_doc_code(const char *s, Py_ssize_t n) {
        switch (n) {
        case 3: return DF_IS("$or") ? 2 : 0;
        case 4:
            if (DF_IS("$and")) return 1; if (DF_IS("$nor")) return 3; if (DF_IS("$not")) return 4;
            return 0;
        case 5: return DF_IS("$expr") ? 5 : 0;
        case 6: return DF_IS("$where") ? 5 : 0;
        case 9: return DF_IS("$function") ? 5 : 0;
        case 12: return DF_IS("$accumulator") ? 5 : 0;
        }
        return 0;
    }
    #undef DF_IS
    """
    int df_field_code(const char* s, Py_ssize_t n)
    int df_doc_code(const char* s, Py_ssize_t n)


cdef inline int field_code(str op):
    if not PyUnicode_IS_ASCII(op):
        return 0
    return df_field_code(<const char*>PyUnicode_DATA(op), PyUnicode_GET_LENGTH(op))


cdef inline int doc_code(str key):
    if not PyUnicode_IS_ASCII(key):
        return 0
    return df_doc_code(<const char*>PyUnicode_DATA(key), PyUnicode_GET_LENGTH(key))

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

# template slots (index into FilterSpec._tpl)
DEF T_LIKE = 0
DEF T_ILIKE = 1
DEF T_REGEX = 2
DEF T_IREGEX = 3
DEF T_JSON_CONTAINS = 4
DEF T_IN_ARRAY = 5
DEF T_NIN_ARRAY = 6
DEF T_IN_JSON = 7

# field operator codes
DEF O_EQ = 1
DEF O_GT = 2
DEF O_GTE = 3
DEF O_LT = 4
DEF O_LTE = 5
DEF O_NE = 6
DEF O_IN = 7
DEF O_NIN = 8
DEF O_EXISTS = 9
DEF O_NULL = 10
DEF O_LIKE = 11
DEF O_ILIKE = 12
DEF O_REGEX = 13
DEF O_CONTAINS = 14
DEF O_STARTSWITH = 15
DEF O_ENDSWITH = 16
DEF O_BETWEEN = 17
DEF O_NOT = 18
DEF O_OPTIONS = 19

# document-level operator codes
DEF D_AND = 1
DEF D_OR = 2
DEF D_NOR = 3
DEF D_NOT = 4
DEF D_REFUSED = 5

cdef dict _TPL_SLOTS = {k: i for i, k in enumerate(_TEMPLATE_KEYS)}
cdef str _VALID_OPS = ", ".join(FIELD_OPS)
cdef object _STR_KIND = STR_KIND
cdef object _check_json = None   # _native._pure.params._check_json, imported on first use


def _split(template):
    """'{c} ~ {p}' -> ('', ' ~ ', '') : prefix, between column and param, suffix."""
    if type(template) is not str:
        raise TypeError(f"template must be a str, not {type(template).__name__}")
    ci = template.find("{c}")
    pi = template.find("{p}")
    if ci < 0 or pi < ci:
        raise ValueError(f"template {template!r} needs {{c}} before {{p}}")
    return template[:ci], template[ci + 3:pi], template[pi + 3:]


def _check_columns(columns):
    """name -> (quoted identifier, kind); checked once here so compiling never meets bad data."""
    out = {}
    for name, col in dict(columns).items():
        if (type(name) is not str or type(col) not in (tuple, list) or len(col) != 2
                or type(col[0]) is not str or type(col[1]) is not int):
            raise TypeError(f"columns[{name!r}] must be (quoted identifier: str, kind: int), got {col!r}")
        out[name] = (col[0], col[1])
    return out


@cython.final
cdef class _Col:
    """A column as the compiler reads it: typed, so no tuple unpacking on the hot path."""
    cdef str qcol
    cdef object kind      # the int handed to coerce
    cdef long ckind       # the same, for switches (-1 if it does not fit)


@cython.final
cdef class FilterSpec:
    """Everything the compiler needs to know about one table on one dialect.

    columns: field name -> (quoted SQL identifier, kind int)
    paramstyle: "$" (numbered $1..), "?" (qmark) or "%s" (format)
    coerce: callable(value, kind) -> bound value; raises TypeError/ValueError
    templates: op name -> "{c} ... {p} ..." strings (keys in _TEMPLATE_KEYS; missing = unsupported)
    json_contains_mode: how $contains on a JSON list binds: 0 json array [v], 1 json scalar, 2 raw
    large_in: lists longer than this use templates["in_json"] (one JSON array parameter) if set
    like_escape / escape_literal: the LIKE escape character and its SQL literal spelling
    """

    cdef readonly dict columns
    cdef readonly object paramstyle
    cdef readonly object coerce
    cdef readonly dict templates
    cdef readonly object json_contains_mode
    cdef readonly object large_in
    cdef readonly str like_escape
    cdef readonly str escape_literal
    cdef dict _cols          # name -> _Col
    cdef list _tpl           # slot -> (prefix, middle, suffix) or None
    cdef int _style          # 0 "$", 1 "?", 2 "%s"
    cdef int _mode
    cdef Py_ssize_t _large_in

    def __init__(self, columns, paramstyle, coerce, templates, json_contains_mode=0,
                 large_in=1000, like_escape="\\", escape_literal=None):
        if paramstyle not in ("$", "?", "%s"):
            raise ValueError(f"paramstyle must be '$', '?' or '%s', not {paramstyle!r}")
        self.columns = _check_columns(columns)
        self.paramstyle = paramstyle
        self.coerce = coerce
        unknown = set(templates) - set(_TEMPLATE_KEYS)
        if unknown:
            raise ValueError(f"unknown template keys: {sorted(unknown)}")
        self.templates = {k: _split(v) for k, v in templates.items()}
        if type(json_contains_mode) is not int or json_contains_mode not in (0, 1, 2):
            raise ValueError(f"json_contains_mode must be 0, 1 or 2, not {json_contains_mode!r}")
        self.json_contains_mode = json_contains_mode
        if type(large_in) is not int or large_in < 0:
            raise ValueError(f"large_in must be an int >= 0, not {large_in!r}")
        self.large_in = large_in
        if type(like_escape) is not str or len(like_escape) != 1:
            raise ValueError(f"like_escape must be one character, not {like_escape!r}")
        if escape_literal is not None and type(escape_literal) is not str:
            raise TypeError(f"escape_literal must be a str or None, not {type(escape_literal).__name__}")
        self.like_escape = like_escape
        # The SQL literal for the escape character (MySQL doubles backslashes in literals).
        self.escape_literal = escape_literal or "'" + like_escape.replace("'", "''") + "'"

        # -- compiled views of the above --------------------------------------------------------
        cdef _Col c
        self._cols = {}
        for name, (qcol, kind) in self.columns.items():
            c = _Col.__new__(_Col)
            c.qcol = qcol
            c.kind = kind
            c.ckind = kind if -1000 < kind < 1000 else -1
            self._cols[name] = c
        self._tpl = [None] * len(_TEMPLATE_KEYS)
        for k, t in self.templates.items():
            self._tpl[_TPL_SLOTS[k]] = t
        self._style = 0 if paramstyle == "$" else (1 if paramstyle == "?" else 2)
        self._mode = json_contains_mode
        self._large_in = min(large_in, 2 ** 62)


@cython.final
@cython.no_gc_clear
cdef class _Compiler:
    """One compilation: output buffer, params, placeholder counter, node count, error path."""
    cdef FilterSpec spec
    cdef object coerce
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
            return self.coerce(v, kind)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{self.path()}: {exc}") from None

    # -- document level ----------------------------------------------------------------------
    cdef int doc(self, object filt, Py_ssize_t depth) except -1:
        cdef bint first = True
        cdef int dcode
        if type(filt) is not dict:
            raise TypeError(f"{self.path()}: expected a dict, got {type(filt).__name__}")
        if depth > C_MAX_DEPTH:
            raise ValueError(f"{self.path()}: filter nested deeper than {MAX_DEPTH} levels")
        if PyDict_GET_SIZE(filt) == 0:
            return self.w("1=1", 3)
        for key, value in (<dict>filt).items():
            if type(key) is not str:
                raise TypeError(f"{self.path()}: keys must be str, got {type(key).__name__}")
            if first:
                first = False
            else:
                self.w(" AND ", 5)
            self.push(key)
            if PyUnicode_GET_LENGTH(key) and PyUnicode_READ_CHAR(key, 0) == 36:  # '$'
                dcode = doc_code(<str>key)
                if dcode == D_AND or dcode == D_OR or dcode == D_NOR:
                    self.logical(dcode, value, depth)
                elif dcode == D_NOT:
                    self.w("NOT COALESCE((", 14)
                    self.doc(value, depth + 1)
                    self.w("), FALSE)", 9)
                elif dcode == D_REFUSED:
                    raise ValueError(f"{self.path()}: operator {key} runs server-side code and is refused")
                else:
                    raise ValueError(f"{self.path()}: unknown top-level operator {key}; use one of "
                                     f"$and, $or, $nor, $not, or a field name")
            else:
                self.field(<str>key, value, depth)
            self.nseg -= 1
        return 0

    cdef int logical(self, int op, object value, Py_ssize_t depth) except -1:
        cdef Py_ssize_t i = 0
        if type(value) is not list and type(value) is not tuple:
            raise TypeError(f"{self.path()}: expected a list of filter dicts, got {type(value).__name__}")
        if Py_SIZE(value) == 0:
            raise ValueError(f"{self.path()}: needs a non-empty list")
        if op == D_NOR:
            self.w("NOT COALESCE(", 13)
        self.w("(", 1)
        for item in value:
            if i:
                if op == D_AND:
                    self.w(" AND ", 5)
                else:
                    self.w(" OR ", 4)
            self.w("(", 1)
            self.push_index(i)
            self.doc(item, depth + 1)
            self.nseg -= 1
            self.w(")", 1)
            i += 1
        self.w(")", 1)
        if op == D_NOR:
            self.w(", FALSE)", 8)
        return 0

    # -- field level -------------------------------------------------------------------------
    cdef int field(self, str name, object cond, Py_ssize_t depth) except -1:
        cdef PyObject* found = PyDict_GetItemWithError(self.spec._cols, name)
        cdef _Col col
        if found == NULL:
            valid = ", ".join(sorted(self.spec.columns))
            raise ValueError(f"{self.path()}: unknown field {name!r}; valid fields: {valid}")
        col = <_Col>found
        self.nodes += 1
        if self.nodes > C_MAX_NODES:
            raise ValueError(f"{self.path()}: filter has more than {MAX_NODES} predicates; use $in for long lists")
        if type(cond) is dict:
            return self.ops(<dict>cond, col, depth, True)
        if cond is None:
            self.ws(col.qcol)
            return self.w(" IS NULL", 8)
        bound = self.value(cond, col.kind)
        self.ws(col.qcol)
        self.w(" = ", 3)
        return self.bind(bound)

    cdef int ops(self, dict cond, _Col col, Py_ssize_t depth, bint top) except -1:
        cdef Py_ssize_t nparts
        cdef bint first = True
        cdef int code
        if PyDict_GET_SIZE(cond) == 0:
            raise ValueError(f"{self.path()}: empty operator dict")
        # a single key is one part (or an error); only longer dicts pay for the "$options" probe
        nparts = PyDict_GET_SIZE(cond)
        if nparts > 1 and "$options" in cond:
            nparts -= 1
        if nparts > 1:
            self.w("(", 1)
        for op, v in cond.items():
            if type(op) is not str or not PyUnicode_GET_LENGTH(op) or PyUnicode_READ_CHAR(op, 0) != 36:
                if top:
                    raise TypeError(f"{self.path()}: expected operators like $gt in this dict, got key {op!r}"
                                    f" (a dict is not a value; JSON equality is not supported)")
                raise TypeError(f"{self.path()}: expected operators like $gt in this dict, got key {op!r}")
            self.push(op)
            code = field_code(<str>op)
            if code == O_OPTIONS:
                if "$regex" not in cond:
                    raise ValueError(f"{self.path()}: only valid next to $regex")
            else:
                if first:
                    first = False
                else:
                    self.w(" AND ", 5)
                self.op(code, <str>op, v, col, cond, depth)
            self.nseg -= 1
        if nparts > 1:
            self.w(")", 1)
        return 0

    cdef int tpl_open(self, int slot, _Col col) except -1:
        """Write a template's prefix, the column and its middle; return the slot for tpl_close."""
        t = self.spec._tpl[slot]
        if t is None:
            raise ValueError(f"{self.path()}: not supported on this database")
        self.ws(<str>(<tuple>t)[0])
        self.ws(col.qcol)
        return self.ws(<str>(<tuple>t)[1])

    cdef inline int tpl_close(self, int slot) except -1:
        return self.ws(<str>(<tuple>self.spec._tpl[slot])[2])

    cdef int tpl(self, int slot, _Col col, object bound) except -1:
        self.tpl_open(slot, col)
        self.bind(bound)
        return self.tpl_close(slot)

    cdef int op(self, int code, str op, object v, _Col col, dict cond, Py_ssize_t depth) except -1:
        if code >= O_EQ and code <= O_LTE:
            if v is None:
                if code == O_EQ:
                    self.ws(col.qcol)
                    return self.w(" IS NULL", 8)
                raise ValueError(f"{self.path()}: cannot compare with None; use $exists or $null")
            bound = self.value(v, col.kind)
            self.ws(col.qcol)
            if code == O_EQ:
                self.w(" = ", 3)
            elif code == O_GT:
                self.w(" > ", 3)
            elif code == O_GTE:
                self.w(" >= ", 4)
            elif code == O_LT:
                self.w(" < ", 3)
            else:
                self.w(" <= ", 4)
            return self.bind(bound)
        if code == O_NE:
            if v is None:
                self.ws(col.qcol)
                return self.w(" IS NOT NULL", 12)
            bound = self.value(v, col.kind)
            self.w("(", 1)
            self.ws(col.qcol)
            self.w(" <> ", 4)
            self.bind(bound)
            self.w(" OR ", 4)
            self.ws(col.qcol)
            return self.w(" IS NULL)", 9)
        if code == O_IN or code == O_NIN:
            return self.in_(code == O_IN, v, col)
        if code == O_EXISTS or code == O_NULL:
            if type(v) is not bool:
                raise TypeError(f"{self.path()}: expected true or false, got {type(v).__name__}")
            self.ws(col.qcol)
            if (v is False) if code == O_EXISTS else (v is True):
                return self.w(" IS NULL", 8)
            return self.w(" IS NOT NULL", 12)
        if code == O_LIKE or code == O_ILIKE:
            self.need_str(col, v)
            bound = self.value(v, _STR_KIND)
            # An explicit ESCAPE makes backslash the escape character on every dialect
            # (SQLite has none by default; PostgreSQL and MySQL default to backslash).
            self.tpl(T_LIKE if code == O_LIKE else T_ILIKE, col, bound)
            self.w(" ESCAPE ", 8)
            return self.ws(self.spec.escape_literal)
        if code == O_REGEX:
            if type(v) is not str:
                raise TypeError(f"{self.path()}: expected a regular expression string, got {type(v).__name__}")
            if col.ckind != STR_KIND:
                raise ValueError(f"{self.path()}: $regex needs a text field")
            if PyUnicode_GET_LENGTH(v) > C_MAX_REGEX:
                raise ValueError(f"{self.path()}: regular expression longer than {MAX_REGEX} characters")
            opts = cond.get("$options", "")
            if type(opts) is not str or any(c != "i" for c in <str>opts):
                raise ValueError(f"{self.path_to(self.nseg - 1)}.$options: only the 'i' option is supported")
            bound = self.value(v, _STR_KIND)
            return self.tpl(T_IREGEX if opts else T_REGEX, col, bound)
        if code == O_CONTAINS or code == O_STARTSWITH or code == O_ENDSWITH:
            if code == O_CONTAINS and col.ckind == JSON_KIND:
                return self.json_contains(v, col)
            self.need_str(col, v)
            self.value(v, _STR_KIND)
            esc = self.spec.like_escape
            text = (<str>v).replace(esc, esc + esc).replace("%", esc + "%").replace("_", esc + "_")
            if code == O_CONTAINS:
                text = "%" + text + "%"
            elif code == O_STARTSWITH:
                text = text + "%"
            else:
                text = "%" + text
            self.tpl(T_LIKE, col, text)
            self.w(" ESCAPE ", 8)
            return self.ws(self.spec.escape_literal)
        if code == O_BETWEEN:
            if (type(v) is not list and type(v) is not tuple) or len(v) != 2:
                raise TypeError(f"{self.path()}: expected [low, high]")
            lo = v[0]
            hi = v[1]
            if lo is None or hi is None:
                raise ValueError(f"{self.path()}: bounds cannot be None")
            self.push_index(0)
            lo = self.value(lo, col.kind)
            self.nseg -= 1
            self.ws(col.qcol)
            self.w(" BETWEEN ", 9)
            self.bind(lo)
            self.push_index(1)
            hi = self.value(hi, col.kind)
            self.nseg -= 1
            self.w(" AND ", 5)
            return self.bind(hi)
        if code == O_NOT:
            if type(v) is not dict:
                raise TypeError(f"{self.path()}: expected an operator dict like {{'$gt': 5}}")
            if depth + 1 > C_MAX_DEPTH:
                raise ValueError(f"{self.path()}: filter nested deeper than {MAX_DEPTH} levels")
            self.w("NOT COALESCE((", 14)
            self.ops(<dict>v, col, depth + 1, False)
            return self.w("), FALSE)", 9)
        if op in REFUSED_OPS:
            raise ValueError(f"{self.path()}: operator {op} runs server-side code and is refused")
        if op in ("$and", "$or", "$nor"):
            raise ValueError(f"{self.path()}: {op} belongs at document level, not inside a field")
        raise ValueError(f"{self.path()}: unknown operator {op}; valid operators: {_VALID_OPS}")

    cdef int need_str(self, _Col col, object v) except -1:
        if col.ckind != STR_KIND:
            raise ValueError(f"{self.path()}: this operator needs a text field")
        if type(v) is not str:
            raise TypeError(f"{self.path()}: expected str, got {type(v).__name__}")
        return 0

    cdef int json_contains(self, object v, _Col col) except -1:
        global _check_json
        cdef int mode = self.spec._mode
        try:
            if _check_json is None:
                from _native._pure.params import _check_json as check
                _check_json = check
            _check_json(v)
            if mode == 0:
                bound = orjson.dumps([v]).decode()
            elif mode == 1:
                bound = orjson.dumps(v).decode()
            else:
                bound = v
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{self.path()}: {exc}") from None
        return self.tpl(T_JSON_CONTAINS, col, bound)

    cdef int in_(self, bint positive, object v, _Col col) except -1:
        cdef list values = []
        cdef bint has_null = False
        cdef Py_ssize_t i = 0
        cdef list tpls = self.spec._tpl
        if type(v) is not list and type(v) is not tuple:
            raise TypeError(f"{self.path()}: expected a list, got {type(v).__name__}")
        kind = col.kind
        for item in v:
            if item is None:
                has_null = True
            else:
                self.push_index(i)
                values.append(self.value(item, kind))
                self.nseg -= 1
            i += 1
        if not values:
            if has_null:
                self.ws(col.qcol)
                return self.w(" IS NULL", 8) if positive else self.w(" IS NOT NULL", 12)
            return self.w("1=0", 3) if positive else self.w("1=1", 3)
        # the wrapper around the membership test
        if positive:
            if has_null:
                self.w("(", 1)
        elif has_null:
            self.w("(", 1)
            self.ws(col.qcol)
            self.w(" IS NOT NULL AND ", 17)
        else:
            self.w("(", 1)
            self.ws(col.qcol)
            self.w(" IS NULL OR ", 12)
        if tpls[T_IN_ARRAY] is not None:
            self.tpl(T_IN_ARRAY if positive else T_NIN_ARRAY, col, values)
        elif (len(values) > self.spec._large_in and tpls[T_IN_JSON] is not None
              and (col.ckind == 1 or col.ckind == 2 or col.ckind == 4 or col.ckind == 9)):
            bound = orjson.dumps(values).decode()
            if not positive:
                self.w("NOT (", 5)
            self.tpl(T_IN_JSON, col, bound)
            if not positive:
                self.w(")", 1)
        else:
            self.ws(col.qcol)
            if positive:
                self.w(" IN (", 5)
            else:
                self.w(" NOT IN (", 9)
            i = 0
            for x in values:
                if i:
                    self.w(", ", 2)
                self.bind(x)
                i += 1
            self.w(")", 1)
        if positive:
            if has_null:
                self.w(" OR ", 4)
                self.ws(col.qcol)
                self.w(" IS NULL)", 9)
            return 0
        return self.w(")", 1)


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
    c.style = (<FilterSpec>spec)._style
    c.params = []
    c.n = cstart
    c.root = path
    c.doc(filt, 0)
    sql = c.result()
    params = c.params
    c.reset()
    _spare = c
    return sql, params
