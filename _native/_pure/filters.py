"""Pure-Python twin of ``_native.filters``: MongoDB-style filter dict -> (sql, params).

Knows SQL, not DataFlow: the dialect layer hands in a ``FilterSpec`` (quoted column names and
kinds, placeholder style, operator templates, a value-coercion callable).  Values only ever
become parameters; identifiers only ever come from the spec.  Errors are ValueError/TypeError
whose message starts with the offending path (``filter.$or[3].age.$gte: ...``).

NULL semantics follow MongoDB: ``$ne``/``$nin``/``$not`` match NULL; ``None`` inside
``$in``/``$nin`` matches/excludes NULL; ``$in: []`` is false and ``$nin: []`` is true.
"""

from __future__ import annotations

import orjson

MAX_DEPTH = 64
MAX_NODES = 10_000
MAX_REGEX = 2_000
MAX_START = 2_147_483_647
FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$like", "$ilike",
             "$regex", "$options", "$exists", "$null", "$not", "$contains", "$startswith",
             "$endswith", "$between")
LOGICAL_OPS = ("$and", "$or", "$nor", "$not")
REFUSED_OPS = ("$where", "$function", "$expr", "$accumulator")
_CMP = {"$eq": " = ", "$gt": " > ", "$gte": " >= ", "$lt": " < ", "$lte": " <= "}
_TEMPLATE_KEYS = ("like", "ilike", "regex", "iregex", "json_contains", "in_array", "nin_array",
                  "in_json")
STR_KIND = 4
JSON_KIND = 10
JSON_IN_KINDS = (1, 2, 4, 9)  # int, float, str, uuid: safe to pass as one JSON array


def _split(template: str):
    """'{c} ~ {p}' -> ('', ' ~ ', '') : prefix, between column and param, suffix."""
    if type(template) is not str:
        raise TypeError(f"template must be a str, not {type(template).__name__}")
    ci = template.find("{c}")
    pi = template.find("{p}")
    if ci < 0 or pi < ci:
        raise ValueError(f"template {template!r} needs {{c}} before {{p}}")
    return template[:ci], template[ci + 3:pi], template[pi + 3:]


def _check_columns(columns) -> dict:
    """name -> (quoted identifier, kind); checked once here so compiling never meets bad data."""
    out = {}
    for name, col in dict(columns).items():
        if (type(name) is not str or type(col) not in (tuple, list) or len(col) != 2
                or type(col[0]) is not str or type(col[1]) is not int):
            raise TypeError(f"columns[{name!r}] must be (quoted identifier: str, kind: int), got {col!r}")
        out[name] = (col[0], col[1])
    return out


class FilterSpec:
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

    __slots__ = ("columns", "paramstyle", "coerce", "templates", "json_contains_mode",
                 "large_in", "like_escape", "escape_literal", "coerce_arg")

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


class _Compiler:
    __slots__ = ("spec", "params", "n", "nodes", "style")

    def __init__(self, spec: FilterSpec, start: int):
        self.spec = spec
        self.params = []
        self.n = start
        self.nodes = 0
        self.style = spec.paramstyle

    def bind(self, value) -> str:
        self.params.append(value)
        if self.style == "$":
            p = "$" + str(self.n)
            self.n += 1
            return p
        return self.style

    def count(self, path):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ValueError(f"{path}: filter has more than {MAX_NODES} predicates; use $in for long lists")

    # -- document level -------------------------------------------------------------------
    def doc(self, filt, path: str, depth: int) -> str:
        if type(filt) is not dict:
            raise TypeError(f"{path}: expected a dict, got {type(filt).__name__}")
        if depth > MAX_DEPTH:
            raise ValueError(f"{path}: filter nested deeper than {MAX_DEPTH} levels")
        parts = []
        for key, value in filt.items():
            if type(key) is not str:
                raise TypeError(f"{path}: keys must be str, got {type(key).__name__}")
            if key[:1] == "$":
                sub = path + "." + key
                if key == "$and" or key == "$or" or key == "$nor":
                    parts.append(self.logical(key, value, sub, depth))
                elif key == "$not":
                    parts.append("NOT COALESCE((" + self.doc(value, sub, depth + 1) + "), FALSE)")
                elif key in REFUSED_OPS:
                    raise ValueError(f"{sub}: operator {key} runs server-side code and is refused")
                else:
                    raise ValueError(f"{sub}: unknown top-level operator {key}; use one of "
                                     f"$and, $or, $nor, $not, or a field name")
            else:
                parts.append(self.field(key, value, path + "." + key, depth))
        if not parts:
            return "1=1"
        if len(parts) == 1:
            return parts[0]
        return " AND ".join(parts)

    def logical(self, op, value, path, depth) -> str:
        if type(value) is not list and type(value) is not tuple:
            raise TypeError(f"{path}: expected a list of filter dicts, got {type(value).__name__}")
        if not value:
            raise ValueError(f"{path}: needs a non-empty list")
        subs = []
        for i, item in enumerate(value):
            subs.append("(" + self.doc(item, f"{path}[{i}]", depth + 1) + ")")
        if op == "$and":
            return "(" + " AND ".join(subs) + ")"
        joined = "(" + " OR ".join(subs) + ")"
        if op == "$nor":
            return "NOT COALESCE(" + joined + ", FALSE)"
        return joined

    # -- field level ----------------------------------------------------------------------
    def column(self, name, path):
        col = self.spec.columns.get(name)
        if col is None:
            valid = ", ".join(sorted(self.spec.columns))
            raise ValueError(f"{path}: unknown field {name!r}; valid fields: {valid}")
        return col

    def value(self, v, kind, path):
        try:
            spec = self.spec
            if spec.coerce_arg is None:
                return spec.coerce(v, kind)
            return spec.coerce(v, kind, spec.coerce_arg)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{path}: {exc}") from None

    def field(self, name, cond, path, depth) -> str:
        qcol, kind = self.column(name, path)
        self.count(path)
        if type(cond) is dict:
            if not cond:
                raise ValueError(f"{path}: empty operator dict")
            parts = []
            for op in cond:
                if type(op) is not str or op[:1] != "$":
                    raise TypeError(f"{path}: expected operators like $gt in this dict, got key {op!r}"
                                    f" (a dict is not a value; JSON equality is not supported)")
                if op == "$options":
                    if "$regex" not in cond:
                        raise ValueError(f"{path}.$options: only valid next to $regex")
                    continue
                parts.append(self.op(op, cond[op], qcol, kind, cond, path + "." + op, depth))
            return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
        if cond is None:
            return qcol + " IS NULL"
        return qcol + " = " + self.bind(self.value(cond, kind, path))

    def op(self, op, v, qcol, kind, cond, path, depth) -> str:
        cmp = _CMP.get(op)
        if cmp is not None:
            if v is None:
                if op == "$eq":
                    return qcol + " IS NULL"
                raise ValueError(f"{path}: cannot compare with None; use $exists or $null")
            return qcol + cmp + self.bind(self.value(v, kind, path))
        if op == "$ne":
            if v is None:
                return qcol + " IS NOT NULL"
            return "(" + qcol + " <> " + self.bind(self.value(v, kind, path)) + " OR " + qcol + " IS NULL)"
        if op == "$in" or op == "$nin":
            return self.in_(op == "$in", v, qcol, kind, path)
        if op == "$exists" or op == "$null":
            if type(v) is not bool:
                raise TypeError(f"{path}: expected true or false, got {type(v).__name__}")
            is_null = (not v) if op == "$exists" else v
            return qcol + (" IS NULL" if is_null else " IS NOT NULL")
        if op == "$like" or op == "$ilike":
            self.need_str(kind, v, path)
            # An explicit ESCAPE makes backslash the escape character on every dialect
            # (SQLite has none by default; PostgreSQL and MySQL default to backslash).
            return (self.tpl("like" if op == "$like" else "ilike", qcol, self.bind(self.value(v, STR_KIND, path)), path)
                    + " ESCAPE " + self.spec.escape_literal)
        if op == "$regex":
            if type(v) is not str:
                raise TypeError(f"{path}: expected a regular expression string, got {type(v).__name__}")
            if kind != STR_KIND:
                raise ValueError(f"{path}: $regex needs a text field")
            if len(v) > MAX_REGEX:
                raise ValueError(f"{path}: regular expression longer than {MAX_REGEX} characters")
            opts = cond.get("$options", "")
            if type(opts) is not str or any(c != "i" for c in opts):
                raise ValueError(f"{path[:-7]}.$options: only the 'i' option is supported")
            return self.tpl("iregex" if opts else "regex", qcol, self.bind(self.value(v, STR_KIND, path)), path)
        if op == "$contains" or op == "$startswith" or op == "$endswith":
            if op == "$contains" and kind == JSON_KIND:
                return self.json_contains(v, qcol, path)
            self.need_str(kind, v, path)
            self.value(v, STR_KIND, path)
            esc = self.spec.like_escape
            text = v.replace(esc, esc + esc).replace("%", esc + "%").replace("_", esc + "_")
            if op == "$contains":
                text = "%" + text + "%"
            elif op == "$startswith":
                text = text + "%"
            else:
                text = "%" + text
            return self.tpl("like", qcol, self.bind(text), path) + " ESCAPE " + self.spec.escape_literal
        if op == "$between":
            if (type(v) is not list and type(v) is not tuple) or len(v) != 2:
                raise TypeError(f"{path}: expected [low, high]")
            if v[0] is None or v[1] is None:
                raise ValueError(f"{path}: bounds cannot be None")
            lo = self.bind(self.value(v[0], kind, path + "[0]"))
            hi = self.bind(self.value(v[1], kind, path + "[1]"))
            return qcol + " BETWEEN " + lo + " AND " + hi
        if op == "$not":
            if type(v) is not dict:
                raise TypeError(f"{path}: expected an operator dict like {{'$gt': 5}}")
            if depth + 1 > MAX_DEPTH:
                raise ValueError(f"{path}: filter nested deeper than {MAX_DEPTH} levels")
            inner = self.field_ops(v, qcol, kind, path, depth + 1)
            return "NOT COALESCE((" + inner + "), FALSE)"
        if op in REFUSED_OPS:
            raise ValueError(f"{path}: operator {op} runs server-side code and is refused")
        if op in ("$and", "$or", "$nor"):
            raise ValueError(f"{path}: {op} belongs at document level, not inside a field")
        raise ValueError(f"{path}: unknown operator {op}; valid operators: {', '.join(FIELD_OPS)}")

    def field_ops(self, cond, qcol, kind, path, depth):
        if not cond:
            raise ValueError(f"{path}: empty operator dict")
        parts = []
        for op in cond:
            if type(op) is not str or op[:1] != "$":
                raise TypeError(f"{path}: expected operators like $gt in this dict, got key {op!r}")
            if op == "$options":
                if "$regex" not in cond:
                    raise ValueError(f"{path}.$options: only valid next to $regex")
                continue
            parts.append(self.op(op, cond[op], qcol, kind, cond, path + "." + op, depth))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def need_str(self, kind, v, path):
        if kind != STR_KIND:
            raise ValueError(f"{path}: this operator needs a text field")
        if type(v) is not str:
            raise TypeError(f"{path}: expected str, got {type(v).__name__}")

    def tpl(self, key, qcol, p, path):
        t = self.spec.templates.get(key)
        if t is None:
            raise ValueError(f"{path}: not supported on this database")
        return t[0] + qcol + t[1] + p + t[2]

    def json_contains(self, v, qcol, path):
        mode = self.spec.json_contains_mode
        try:
            from dataflow._native._pure.params import _check_json
            _check_json(v)
            if mode == 0:
                bound = orjson.dumps([v]).decode()
            elif mode == 1:
                bound = orjson.dumps(v).decode()
            else:
                bound = v
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{path}: {exc}") from None
        return self.tpl("json_contains", qcol, self.bind(bound), path)

    def in_(self, positive, v, qcol, kind, path):
        if type(v) is not list and type(v) is not tuple:
            raise TypeError(f"{path}: expected a list, got {type(v).__name__}")
        values = []
        has_null = False
        for i, item in enumerate(v):
            if item is None:
                has_null = True
            else:
                values.append(self.value(item, kind, f"{path}[{i}]"))
        if not values:
            if has_null:
                return qcol + (" IS NULL" if positive else " IS NOT NULL")
            return "1=0" if positive else "1=1"
        t = self.spec.templates
        if "in_array" in t:
            key = "in_array" if positive else "nin_array"
            member = self.tpl(key, qcol, self.bind(list(values)), path)
        elif len(values) > self.spec.large_in and "in_json" in t and kind in JSON_IN_KINDS:
            member = self.tpl("in_json", qcol, self.bind(orjson.dumps(values).decode()), path)
            if not positive:
                member = "NOT (" + member + ")"
        else:
            marks = ", ".join([self.bind(x) for x in values])
            member = qcol + (" IN (" if positive else " NOT IN (") + marks + ")"
        if positive:
            return "(" + member + " OR " + qcol + " IS NULL)" if has_null else member
        if has_null:
            return "(" + qcol + " IS NOT NULL AND " + member + ")"
        return "(" + qcol + " IS NULL OR " + member + ")"


def compile_filter(filt, spec: FilterSpec, start: int = 1, path: str = "filter"):
    """Compile ``filt`` to ``(sql, params)``; ``sql`` is "" for an empty filter.

    ``start`` is the first placeholder number for the "$" style (so a filter can follow
    SET parameters in an UPDATE).
    """
    if not isinstance(spec, FilterSpec):
        raise TypeError(f"spec must be a FilterSpec, got {type(spec).__name__}")
    if type(start) is not int:
        raise TypeError(f"start must be an int, got {type(start).__name__}")
    if start < 1 or start > MAX_START:
        raise ValueError(f"start must be between 1 and {MAX_START}, got {start}")
    if type(path) is not str:
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    if filt is None:
        return "", []
    if type(filt) is not dict:
        raise TypeError(f"{path}: expected a dict, got {type(filt).__name__}")
    if not filt:
        return "", []
    c = _Compiler(spec, start)
    sql = c.doc(filt, path, 0)
    return sql, c.params
