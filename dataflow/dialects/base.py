"""What every dialect provides, as data plus small rendering methods.  No I/O here.

Dialect differences live on one class per dialect (postgresql.py, mysql.py, sqlite.py):
paramstyle, quoting, type map, filter templates, capability flags, DDL and upsert rendering.
Nothing outside dialects/ and drivers/ asks which dialect it is talking to.
"""

from __future__ import annotations

import functools

import _native
from _native._pure import params as K

from ..models.model import ModelInfo

_filters = _native.load("filters")


class Dialect:
    name = "base"
    code = 0                      # _native.params dialect code
    paramstyle = "?"              # "$", "?" or "%s"
    quote_char = '"'
    ident_limit = 63
    supports_returning = True     # INSERT/UPDATE ... RETURNING
    supports_update_returning = True
    supports_array_in = False
    json_contains_mode = 0
    like_escape_literal = None
    filter_templates: dict = {}
    type_map: dict = {}
    select_for_update = " FOR UPDATE"
    transactional_ddl = True      # DDL can run inside a transaction (MySQL commits implicitly)
    #: largest number of bound parameters one statement may carry
    max_params = 32766

    # -- identifiers and placeholders --------------------------------------------------------
    def quote(self, ident: str) -> str:
        """Quote an identifier that was already checked against the model (never user text)."""
        q = self.quote_char
        return q + ident.replace(q, q + q) + q

    def placeholder(self, i: int) -> str:
        """The i-th (1-based) placeholder."""
        return self.paramstyle if self.paramstyle != "$" else f"${i}"

    def placeholders(self, n: int, start: int = 1) -> list[str]:
        if self.paramstyle == "$":
            return [f"${i}" for i in range(start, start + n)]
        return [self.paramstyle] * n

    # -- values ------------------------------------------------------------------------------
    @functools.cached_property
    def params(self):
        return _native.load("params")

    def coerce(self, value, kind: int):
        return self.params.coerce(value, kind, self.code)

    @functools.cached_property
    def coerce_fn(self):
        p, code = self.params, self.code
        coerce = p.coerce
        return lambda v, k: coerce(v, k, code)

    # -- filters -----------------------------------------------------------------------------
    def filter_spec(self, model: ModelInfo):
        cols = {n: (self.quote(n), f.kind) for n, f in model.fields.items()}
        return _filters.FilterSpec(cols, self.paramstyle, self.coerce_fn, self.filter_templates,
                                   self.json_contains_mode, 1000, "\\", self.like_escape_literal)

    #: The SQL parser's own limits on filter shape (None: the compiler's caps are enough).
    max_filter_depth: int | None = None
    max_logical_list: int | None = None

    def check_filter_shape(self, filt) -> str | None:
        """A problem string when ``filt`` exceeds this dialect's parser limits, else None."""
        if self.max_filter_depth is None or not filt:
            return None
        stack = [(filt, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > self.max_filter_depth:
                return f"filters nested deeper than {self.max_filter_depth} levels are not supported on {self.name}"
            if isinstance(node, dict):
                for key, value in node.items():
                    stack.append((value, depth + 1))
            elif isinstance(node, (list, tuple)):
                if len(node) > self.max_logical_list and any(isinstance(x, dict) for x in node[:1]):
                    return (f"a logical list of more than {self.max_logical_list} filters is not supported on "
                            f"{self.name}; use $in for long lists of values")
                for value in node:
                    if isinstance(value, (dict, list, tuple)):
                        stack.append((value, depth))
        return None

    # -- DDL ---------------------------------------------------------------------------------
    def column_type(self, f, indexed: bool) -> str:
        return self.type_map[f.kind]

    def id_column(self, model: ModelInfo) -> str:
        raise NotImplementedError

    def table_suffix(self) -> str:
        return ""

    def create_table(self, model: ModelInfo) -> list[str]:
        """CREATE TABLE plus its indexes, all idempotent (IF NOT EXISTS)."""
        indexed = {f for ix in model.indexes for f in ix.fields}
        cols = [self.id_column(model)]
        for name, f in model.fields.items():
            if name == "id":
                continue
            null = "" if f.nullable else " NOT NULL"
            cols.append(f"{self.quote(name)} {self.column_type(f, name in indexed)}{null}")
        stmts = [f"CREATE TABLE IF NOT EXISTS {self.quote(model.table)} ({', '.join(cols)}){self.table_suffix()}"]
        for ix in model.indexes:
            stmts.append(self.create_index(model.table, ix))
        return stmts

    def create_index(self, table: str, ix) -> str:
        cols = ", ".join(self.quote(c) for c in ix.fields)
        uniq = "UNIQUE " if ix.unique else ""
        return f"CREATE {uniq}INDEX IF NOT EXISTS {self.quote(ix.name)} ON {self.quote(table)} ({cols})"

    # -- DML ---------------------------------------------------------------------------------
    def insert(self, table: str, columns, rows: int = 1, returning: str | None = None) -> str:
        """INSERT of ``rows`` rows; ``returning`` is a column to return (if supported)."""
        qcols = ", ".join(self.quote(c) for c in columns)
        n = len(columns)
        groups = []
        for r in range(rows):
            groups.append("(" + ", ".join(self.placeholders(n, 1 + r * n)) + ")")
        sql = f"INSERT INTO {self.quote(table)} ({qcols}) VALUES {', '.join(groups)}"
        if returning and self.supports_returning:
            sql += f" RETURNING {self.quote(returning)}"
        return sql

    def upsert(self, table: str, columns, conflict: list[str], update: list[str], rows: int = 1,
               returning: bool = False, created_marker: str | None = None) -> str:
        raise NotImplementedError

    def limit_offset(self, limit, offset) -> str:
        out = ""
        if limit is not None:
            out += f" LIMIT {int(limit)}"
        if offset:
            if limit is None:
                out += f" LIMIT {self.no_limit}"
            out += f" OFFSET {int(offset)}"
        return out

    no_limit = "ALL"
