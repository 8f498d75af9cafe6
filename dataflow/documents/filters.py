"""The one filter language (core.md, Filters) -> a MongoDB query document, with the same
checks and the same results as the SQL compiler (``_native.filters``).

Field names are resolved against the model (``id`` is ``_id``); values are coerced by the
field's kind exactly as on SQL and stored-form encoded (``codec``); the operators SQL has and
MongoDB spells differently are translated:

- ``$exists``/``$null`` mean IS [NOT] NULL, as on SQL: ``{"$eq": None}`` / ``{"$ne": None}``;
- ``$like``/``$ilike`` become anchored regular expressions (``%`` -> ``[\\s\\S]*``, ``_`` ->
  ``[\\s\\S]``, backslash escapes), ``$contains``/``$startswith``/``$endswith`` on text escaped
  literal ones; ``$contains`` on a JSON list is ``$elemMatch``; ``$between`` is ``$gte``+``$lte``;
- ``$not`` (field or document level) is ``$nor`` of the translated inner part: "not matched",
  NULL included, which is MongoDB's and DataFlow's semantics.

MongoDB's own NULL rules already match DataFlow's: ``$ne``/``$nin`` match null, ``None`` in
``$in`` matches null, ``$in: []`` matches nothing.  A few native operators pass through after
the field is checked (``$all $size $elemMatch $type $mod``).  Operators that run server-side code
(``$where $function $accumulator $expr``) are refused at any depth, before anything is sent --
``refuse_server_code`` also vets the adapter's schemaless filters, updates and pipelines.
"""

from __future__ import annotations

from ..errors import FilterError, UnsupportedFeatureError, ValidationError
from . import codec

K = codec.K
MAX_DEPTH = 64
MAX_NODES = 10_000
MAX_REGEX = 2_000
FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$like", "$ilike",
             "$regex", "$options", "$exists", "$null", "$not", "$contains", "$startswith",
             "$endswith", "$between")
NATIVE_OPS = ("$all", "$size", "$elemMatch", "$type", "$mod")
#: operators that run code on the server: refused in filters, updates and pipelines alike
SERVER_CODE = frozenset(("$where", "$function", "$accumulator"))
#: refused in the filter language (``$expr`` is not part of it, as on SQL)
REFUSED = SERVER_CODE | {"$expr"}
_CMP = ("$eq", "$gt", "$gte", "$lt", "$lte")
_META = set("\\^$.|?*+()[]{}")
_END = "(?![\\s\\S])"          # end of text (``$`` would also match before a final newline)
#: the deepest filter sent as it is; deeper ones are flattened first (BSON nesting limits)
FLATTEN_AT = 12


def refuse_server_code(value, where: str = "filter", refused=SERVER_CODE) -> None:
    """Raise ``ValidationError`` if any key at any depth of ``value`` runs server-side code."""
    stack = [(value, where, 0)]
    while stack:
        node, path, d = stack.pop()
        if d > 200:
            raise ValidationError(f"{path}: nested deeper than 200 levels")
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and k in refused:
                    raise ValidationError(f"{path}.{k}: operator {k} runs server-side code and is refused")
                if isinstance(v, (dict, list, tuple)):
                    stack.append((v, f"{path}.{k}", d + 1))
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                if isinstance(v, (dict, list, tuple)):
                    stack.append((v, f"{path}[{i}]", d + 1))


def regex_escape(text: str) -> str:
    """Literal text as a pattern both PCRE (the server) and Python ``re`` (the stand-in) read alike."""
    return "".join("\\" + c if c in _META else c for c in text)


def like_to_regex(pattern: str) -> str:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(regex_escape(pattern[i + 1]))
            i += 2
            continue
        out.append("[\\s\\S]*" if c == "%" else "[\\s\\S]" if c == "_" else regex_escape(c))
        i += 1
    out.append(_END)
    return "".join(out)


class Translator:
    """Built once per model: field -> (stored key, kind); ``standin`` refuses what the stand-in
    cannot evaluate (ordering Decimal128)."""

    def __init__(self, model, standin: bool = False):
        self.model = model
        self.fields = {n: ("_id" if n == "id" else n, f.kind) for n, f in model.fields.items()}
        self.standin = standin

    def translate(self, filt) -> dict:
        """The query document for ``filt`` (``{}`` for none); ``FilterError`` when it is wrong."""
        if filt is None:
            return {}
        if type(filt) is not dict:
            raise FilterError(f"{self.model.name}: filter must be a dict like {{'age': {{'$gte': 18}}}}, "
                              f"got {type(filt).__name__}")
        if not filt:
            return {}
        try:
            run = _Run(self)
            out = run.doc(filt, "filter", 0)
            if run.max_depth > FLATTEN_AT:
                from ..dialects.flatten import flatten
                out = _Run(self).doc(flatten(filt), "filter", 0)
            return out
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise FilterError(f"{self.model.name}: {exc}") from None


class _Run:
    __slots__ = ("t", "nodes", "max_depth")

    def __init__(self, t: Translator):
        self.t = t
        self.nodes = 0
        self.max_depth = 0

    def doc(self, filt, path, depth) -> dict:
        if type(filt) is not dict:
            raise TypeError(f"{path}: expected a dict, got {type(filt).__name__}")
        if depth > MAX_DEPTH:
            raise ValueError(f"{path}: filter nested deeper than {MAX_DEPTH} levels")
        self.max_depth = max(self.max_depth, depth)
        parts = []
        for key, value in filt.items():
            if type(key) is not str:
                raise TypeError(f"{path}: keys must be str, got {type(key).__name__}")
            sub = path + "." + key
            if key[:1] == "$":
                if key in ("$and", "$or", "$nor"):
                    parts.append(self.logical(key, value, sub, depth))
                elif key == "$not":
                    parts.append({"$nor": [self.doc(value, sub, depth + 1)]})
                elif key in REFUSED:
                    raise ValueError(f"{sub}: operator {key} runs server-side code and is refused")
                else:
                    raise ValueError(f"{sub}: unknown top-level operator {key}; use one of "
                                     f"$and, $or, $nor, $not, or a field name")
            else:
                parts.append(self.field(key, value, sub, depth))
        return _and(parts)

    def logical(self, op, value, path, depth) -> dict:
        if type(value) is not list and type(value) is not tuple:
            raise TypeError(f"{path}: expected a list of filter dicts, got {type(value).__name__}")
        if not value:
            raise ValueError(f"{path}: needs a non-empty list")
        return {op: [self.doc(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]}

    # -- field level -----------------------------------------------------------------------------
    def column(self, name, path):
        col = self.t.fields.get(name)
        if col is None:
            raise ValueError(f"{path}: unknown field {name!r}; valid fields: {', '.join(sorted(self.t.fields))}")
        return col

    def value(self, v, kind, path):
        try:
            return codec.encode(v, kind)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{path}: {exc}") from None

    def field(self, name, cond, path, depth) -> dict:
        key, kind = self.column(name, path)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ValueError(f"{path}: filter has more than {MAX_NODES} predicates; use $in for long lists")
        if type(cond) is dict:
            return self.field_ops(cond, key, kind, path, depth)
        if cond is None:
            return {key: None}
        return self.eq(key, kind, self.value(cond, kind, path))

    def eq(self, key, kind, v) -> dict:
        if kind == K.JSON and not isinstance(v, list):
            # equality with a JSON scalar/object is equality, not "an array holding it" (SQL's)
            return {"$and": [{key: {"$eq": v}}, {key: {"$not": {"$type": "array"}}}]}
        return {key: {"$eq": v}}

    def field_ops(self, cond, key, kind, path, depth) -> dict:
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
            parts.append(self.op(op, cond[op], key, kind, cond, path + "." + op, depth))
        return _and(parts)

    def op(self, op, v, key, kind, cond, path, depth) -> dict:
        if op in _CMP:
            if v is None:
                if op == "$eq":
                    return {key: None}
                raise ValueError(f"{path}: cannot compare with None; use $exists or $null")
            if op == "$eq":
                return self.eq(key, kind, self.value(v, kind, path))
            self.orderable(kind, path)
            return {key: {op: self.value(v, kind, path)}}
        if op == "$ne":
            if v is None:
                return {key: {"$ne": None}}
            val = self.value(v, kind, path)
            return {key: {"$ne": val}} if kind != K.JSON else {"$nor": [self.eq(key, kind, val)]}
        if op == "$in" or op == "$nin":
            if type(v) is not list and type(v) is not tuple:
                raise TypeError(f"{path}: expected a list, got {type(v).__name__}")
            vals = [None if x is None else self.value(x, kind, f"{path}[{i}]") for i, x in enumerate(v)]
            return {key: {op: vals}}
        if op == "$exists" or op == "$null":
            if type(v) is not bool:
                raise TypeError(f"{path}: expected true or false, got {type(v).__name__}")
            is_null = (not v) if op == "$exists" else v
            return {key: {"$eq": None} if is_null else {"$ne": None}}
        if op == "$like" or op == "$ilike":
            self.need_str(kind, v, path)
            self.value(v, K.STR, path)
            return {key: _regex(like_to_regex(v), "i" if op == "$ilike" else "")}
        if op == "$regex":
            if type(v) is not str:
                raise TypeError(f"{path}: expected a regular expression string, got {type(v).__name__}")
            if kind != K.STR:
                raise ValueError(f"{path}: $regex needs a text field")
            if len(v) > MAX_REGEX:
                raise ValueError(f"{path}: regular expression longer than {MAX_REGEX} characters")
            opts = cond.get("$options", "")
            if type(opts) is not str or any(c != "i" for c in opts):
                raise ValueError(f"{path[:-7]}.$options: only the 'i' option is supported")
            self.value(v, K.STR, path)
            return {key: _regex(v, opts)}
        if op == "$contains" or op == "$startswith" or op == "$endswith":
            if op == "$contains" and kind == K.JSON:
                return {key: {"$elemMatch": {"$eq": self.value(v, K.JSON, path)}}}
            self.need_str(kind, v, path)
            self.value(v, K.STR, path)
            text = regex_escape(v)
            rx = text if op == "$contains" else "^" + text if op == "$startswith" else text + _END
            return {key: _regex(rx, "")}
        if op == "$between":
            if (type(v) is not list and type(v) is not tuple) or len(v) != 2:
                raise TypeError(f"{path}: expected [low, high]")
            if v[0] is None or v[1] is None:
                raise ValueError(f"{path}: bounds cannot be None")
            self.orderable(kind, path)
            return {key: {"$gte": self.value(v[0], kind, path + "[0]"),
                          "$lte": self.value(v[1], kind, path + "[1]")}}
        if op == "$not":
            if type(v) is not dict:
                raise TypeError(f"{path}: expected an operator dict like {{'$gt': 5}}")
            if depth + 1 > MAX_DEPTH:
                raise ValueError(f"{path}: filter nested deeper than {MAX_DEPTH} levels")
            self.max_depth = max(self.max_depth, depth + 1)
            return {"$nor": [self.field_ops(v, key, kind, path, depth + 1)]}
        if op in NATIVE_OPS:
            refuse_server_code(v, path, REFUSED)
            return {key: {op: v}}
        if op in REFUSED:
            raise ValueError(f"{path}: operator {op} runs server-side code and is refused")
        if op in ("$and", "$or", "$nor"):
            raise ValueError(f"{path}: {op} belongs at document level, not inside a field")
        raise ValueError(f"{path}: unknown operator {op}; valid operators: {', '.join(FIELD_OPS + NATIVE_OPS)}")

    def need_str(self, kind, v, path):
        if kind != K.STR:
            raise ValueError(f"{path}: this operator needs a text field")
        if type(v) is not str:
            raise TypeError(f"{path}: expected str, got {type(v).__name__}")

    def orderable(self, kind, path):
        if kind == K.DECIMAL and self.t.standin:
            raise UnsupportedFeatureError(
                f"{path}: the MongoDB stand-in cannot order Decimal128 values (mongomock); "
                f"range filters on Decimal fields need a real server")


def _regex(rx: str, opts: str) -> dict:
    return {"$regex": rx, "$options": opts} if opts else {"$regex": rx}


def _and(parts: list) -> dict:
    if not parts:
        return {}
    if len(parts) == 1:
        return parts[0]
    return {"$and": parts}


# -- schemaless (MongoDBAdapter): native queries, plus DataFlow's text/NULL operators ---------------
_TEXT_OPS = ("$like", "$ilike", "$contains", "$startswith", "$endswith", "$between", "$null")


def native_filter(filt, where: str = "filter") -> dict:
    """A native MongoDB query for collections without a model: passed through as it is, after
    server-side code is refused at every depth; DataFlow's own ``$like``/``$ilike``/``$contains``/
    ``$startswith``/``$endswith``/``$between``/``$null`` are translated as for models (values are
    not coerced: there is no model to say their types)."""
    if filt is None:
        return {}
    if not isinstance(filt, dict):
        raise FilterError(f"{where} must be a dict, got {type(filt).__name__}")
    refuse_server_code(filt, where)
    return _native_doc(filt)


def _native_doc(node):
    if isinstance(node, list):
        return [_native_doc(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    extra = []
    for k, v in node.items():
        if isinstance(v, dict) and not k.startswith("$") and any(op in v for op in _TEXT_OPS):
            extra.append(_native_field(k, v))
        else:
            out[k] = _native_doc(v)
    if extra:
        parts = ([out] if out else []) + extra
        return parts[0] if len(parts) == 1 else {"$and": parts}
    return out


def _native_field(key, cond) -> dict:
    parts = []
    rest = {}
    for op, v in cond.items():
        if op in ("$like", "$ilike", "$contains", "$startswith", "$endswith") and not isinstance(v, str):
            raise FilterError(f"filter.{key}.{op}: expected str, got {type(v).__name__}")
        if op in ("$like", "$ilike"):
            parts.append({key: _regex(like_to_regex(v), "i" if op == "$ilike" else "")})
        elif op == "$contains":
            parts.append({"$or": [{key: _regex(regex_escape(v), "")}, {key: {"$elemMatch": {"$eq": v}}}]})
        elif op == "$startswith":
            parts.append({key: _regex("^" + regex_escape(v), "")})
        elif op == "$endswith":
            parts.append({key: _regex(regex_escape(v) + _END, "")})
        elif op == "$between":
            if not isinstance(v, (list, tuple)) or len(v) != 2:
                raise FilterError(f"filter.{key}.$between: expected [low, high]")
            parts.append({key: {"$gte": v[0], "$lte": v[1]}})
        elif op == "$null":
            parts.append({key: {"$eq": None} if v else {"$ne": None}})
        else:
            rest[op] = _native_doc(v)
    if rest:
        parts.insert(0, {key: rest})
    return _and(parts)
