# Included by filters.pyx (one compilation unit): FilterSpec, one table on one dialect, validated
# and split into typed views once, so compiling never meets malformed configuration.

cdef dict _TPL_SLOTS = {k: i for i, k in enumerate(_TEMPLATE_KEYS)}


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
    coerce_arg: when not None, coerce is called as coerce(value, kind, coerce_arg) (e.g. the
        dialect code of _native.params.coerce: no lambda frame per bound value)
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
    cdef readonly object coerce_arg
    cdef dict _cols          # name -> _Col
    cdef list _tpl           # slot -> (prefix, middle, suffix) or None
    cdef int _style          # 0 "$", 1 "?", 2 "%s"
    cdef int _mode
    cdef Py_ssize_t _large_in

    def __init__(self, columns, paramstyle, coerce, templates, json_contains_mode=0,
                 large_in=1000, like_escape="\\", escape_literal=None, coerce_arg=None):
        if paramstyle not in ("$", "?", "%s"):
            raise ValueError(f"paramstyle must be '$', '?' or '%s', not {paramstyle!r}")
        self.columns = _check_columns(columns)
        self.paramstyle = paramstyle
        self.coerce = coerce
        self.coerce_arg = coerce_arg
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
