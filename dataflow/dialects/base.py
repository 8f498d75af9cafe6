"""What every dialect provides, as data plus small rendering methods.  No I/O here.

Dialect differences live on one class per dialect (postgresql.py, mysql.py, sqlite.py):
paramstyle, quoting, type map, filter templates, capability flags, DDL and upsert rendering.
Nothing outside dialects/ and drivers/ asks which dialect it is talking to.
"""

from __future__ import annotations

import functools

from dataflow import _native

from ..models.model import ModelInfo

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_filters = _native.load("filters")


class Dialect:
    name = "base"
    #: what makes the current transaction refuse writes (the fabric's read-only database sources)
    read_only_sql: str | None = None
    code = 0                      # _native.params dialect code
    paramstyle = "?"              # "$", "?" or "%s"
    quote_char = '"'
    ident_limit = 63
    supports_returning = True     # INSERT/UPDATE ... RETURNING
    supports_update_returning = True
    json_contains_mode = 0
    like_escape_literal = None
    filter_templates: dict = {}
    type_map: dict = {}
    select_for_update = " FOR UPDATE"
    #: largest number of bound parameters one statement may carry
    max_params = 32766
    #: the bulk loading path: "copy" | "load_data" | "sqlite" (dataflow.bulk.load._backend)
    bulk_path = "sqlite"
    #: what an upsert's affected-rows count adds per updated row (an inserted row adds 1, a row
    #: left alone 0); MySQL counts an update twice
    affected_per_update = 1

    # -- identifiers and placeholders --------------------------------------------------------
    def with_(self, **flags) -> "Dialect":
        """A copy of this (shared) dialect with instance flags set: one DataFlow's choices
        (pgvector columns, RLS policies) never leak into another's through the shared object."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.__dict__.update(flags)
        return clone

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
    @property
    def params(self):
        return K

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
        # coerce(v, kind, code) called directly by the compiler: no lambda frame per value
        return _filters.FilterSpec(cols, self.paramstyle, self.params.coerce, self.filter_templates,
                                   self.json_contains_mode, 1000, "\\", self.like_escape_literal,
                                   coerce_arg=self.code)

    #: The SQL parser's own limits on filter shape (None: the compiler's caps are enough).
    #: ``filter_nesting_cost``: what one level of each logical operator costs the parser (a
    #: field-level ``$not`` costs what ``$not`` does); ``max_filter_nesting``: the budget of the
    #: costliest path through a filter.  ``max_filter_depth`` only says the limits apply.
    max_filter_depth: int | None = None
    max_logical_list: int | None = None
    filter_nesting_cost: dict | None = None
    filter_sibling_cost: int = 0       # extra for a part that follows another (`x AND (` waits on the stack)
    max_filter_nesting: int | None = None

    def check_filter_shape(self, filt) -> str | None:
        """A problem string when ``filt`` exceeds this dialect's parser limits, else None."""
        if self.max_filter_depth is None or not filt:
            return None
        cost_of = self.filter_nesting_cost or {}
        worst = 0
        stack = [(filt, 0, True)]          # (node, cost so far, node is a document)
        while stack:
            node, cost, is_doc = stack.pop()
            worst = max(worst, cost)
            if isinstance(node, dict):
                for i, (key, value) in enumerate(node.items()):
                    step = cost_of.get(key, 0) + (self.filter_sibling_cost if i else 0)
                    if is_doc and key in ("$and", "$or", "$nor") and isinstance(value, (list, tuple)):
                        if len(value) > self.max_logical_list and any(isinstance(x, dict) for x in value[:1]):
                            return (f"a logical list of more than {self.max_logical_list} filters is not "
                                    f"supported on {self.name}; use $in for long lists of values")
                        stack += [(x, cost + step + (self.filter_sibling_cost if j else 0), True)
                                  for j, x in enumerate(value) if isinstance(x, dict)]
                    elif isinstance(value, dict) and (key == "$not" or (is_doc and key[:1] != "$")):
                        stack.append((value, cost + step, key == "$not" and is_doc))
        if self.max_filter_nesting is not None and worst > self.max_filter_nesting:
            return (f"this filter nests $and/$or/$not/$nor too deeply for {self.name}'s parser (each "
                    + ", ".join(f"{k} level counts {v}" for k, v in cost_of.items())
                    + f", a part after another {self.filter_sibling_cost} more; this one needs {worst}, "
                    f"the limit is {self.max_filter_nesting}); "
                    f"nested $and in $and, $or in $or and $not of $not are flattened first, so "
                    f"rewrite the alternating part, e.g. with $in")
        return None

    def fit_filter(self, filt, compiled, recompile):
        """-> (sql, params, problem): ``compiled`` when ``filt`` fits this dialect's parser, else
        ``recompile`` of the flattened filter (dialects/flatten.py: same rows) when that fits, else
        ``compiled`` and the problem."""
        problem = self.check_filter_shape(filt)
        if problem is None:
            return (*compiled, None)
        from .flatten import flatten

        flat = flatten(filt)
        if flat == filt or self.check_filter_shape(flat) is not None:
            return (*compiled, problem)
        return (*recompile(flat), None)

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
               returning: bool = False, guard: str | None = None) -> str:
        """INSERT ... on a conflict with ``conflict`` update ``update`` (empty: skip the row).
        ``guard``: a column whose existing value must equal the new row's for the update to
        apply (``tenant_id``: an upsert never touches another tenant's row)."""
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

    # -- transaction control (the drivers send these; rendering only) ---------------------------
    #: The standard isolation levels, as both server dialects spell them.
    isolation_levels = {"read_uncommitted": "READ UNCOMMITTED", "read_committed": "READ COMMITTED",
                        "repeatable_read": "REPEATABLE READ", "serializable": "SERIALIZABLE"}

    def isolation_key(self, level) -> str:
        """'Read Committed' / 'read-committed' / 'read_committed' -> 'read_committed' (checked)."""
        from ..errors import ValidationError
        key = str(level).lower().replace(" ", "_").replace("-", "_")
        if key not in self.isolation_levels:
            raise ValidationError(f"unknown isolation level {level!r} for {self.name}; use one of "
                                  f"{', '.join(self.isolation_levels)}")
        return key

    def begin_sql(self, isolation=None) -> list[str]:
        """The statements that open a transaction at ``isolation`` (None: the server default)."""
        if isolation is None:
            return ["BEGIN"]
        return [f"BEGIN ISOLATION LEVEL {self.isolation_levels[self.isolation_key(isolation)]}"]

    def savepoint_sql(self, name: str) -> str:
        return f"SAVEPOINT {name}"

    def rollback_to_sql(self, name: str) -> str:
        return f"ROLLBACK TO SAVEPOINT {name}"

    def release_sql(self, name: str) -> str:
        return f"RELEASE SAVEPOINT {name}"

    # -- migrations and discovery (used by dataflow.migrations; rendering only, no I/O) -----------
    #: how one migrator excludes the others: "advisory" (PostgreSQL transaction-scoped advisory
    #: lock), "get_lock" (MySQL session lock), "immediate" (SQLite BEGIN IMMEDIATE)
    migration_lock_mode = "advisory"
    #: ALTER can change a column's type / nullability in place (SQLite cannot: rebuild-table)
    alter_in_place = True
    #: type families: the lowercase base type name -> a dialect-neutral family
    type_families: dict = {}

    def type_family(self, sql_type: str) -> str:
        """'BIGINT' / 'bigint(20)' / 'timestamp with time zone' -> 'int' / 'datetime' ..."""
        t = (sql_type or "").strip().lower()
        base = t.split("(", 1)[0].strip()
        return self.type_families.get(t) or self.type_families.get(base) or base

    def discovery_sql(self, n_tables: int | None) -> dict:
        """Three queries (columns, indexes, foreign_keys), each optionally filtered to
        ``n_tables`` bound table names.  Row shapes:
        columns (table, column, type, nullable, default, ordinal, autoincrement, pk_position);
        indexes (table, index, unique, primary, column, position);
        foreign_keys (table, name, column, ref_table, ref_column, position)."""
        raise NotImplementedError

    def _in_tables(self, col: str, n: int | None, start: int = 1) -> str:
        if not n:
            return ""
        return f" AND {col} IN ({', '.join(self.placeholders(n, start))})"

    def column_sql(self, name: str, sql_type: str, nullable: bool, default_sql: str | None = None) -> str:
        out = f"{self.quote(name)} {sql_type}"
        if default_sql is not None:
            out += f" DEFAULT {default_sql}"
        return out + ("" if nullable else " NOT NULL")

    def add_column_sql(self, table: str, column_sql: str) -> str:
        return f"ALTER TABLE {self.quote(table)} ADD COLUMN {column_sql}"

    def drop_column_sql(self, table: str, name: str) -> str:
        return f"ALTER TABLE {self.quote(table)} DROP COLUMN {self.quote(name)}"

    def rename_column_sql(self, table: str, old: str, new: str) -> str:
        return f"ALTER TABLE {self.quote(table)} RENAME COLUMN {self.quote(old)} TO {self.quote(new)}"

    def drop_index_sql(self, table: str, name: str) -> str:
        return f"DROP INDEX {self.quote(name)}"

    def drop_table_sql(self, table: str, if_exists: bool = False) -> str:
        return f"DROP TABLE {'IF EXISTS ' if if_exists else ''}{self.quote(table)}"

    def alter_column_sql(self, table: str, name: str, sql_type: str, nullable: bool,
                         default_sql: str | None = None, *, type_changed: bool, null_changed: bool) -> list:
        """Change a column's type and/or nullability in place (dialects with alter_in_place)."""
        raise NotImplementedError

    def add_column_with_value(self, table: str, name: str, sql_type: str, value) -> list:
        """Add a NOT NULL column and fill existing rows with ``value`` (already coerced):
        add it nullable, fill it with a bound parameter, then set NOT NULL.
        Returns [(sql, params)]."""
        q = self.quote
        return [(self.add_column_sql(table, self.column_sql(name, sql_type, True)), ()),
                (f"UPDATE {q(table)} SET {q(name)} = {self.placeholder(1)}", (value,)),
                *[(s, ()) for s in self.alter_column_sql(table, name, sql_type, False,
                                                         type_changed=False, null_changed=True)]]

    def index_prep_sql(self, table: str, name: str, live_type: str, wanted_type: str, nullable: bool,
                       default_sql: str | None = None) -> list:
        """Statements needed before a column can be indexed (MySQL: TEXT -> VARCHAR)."""
        return []

    def history_table_sql(self, table: str) -> str:
        from ..models.fields import FieldInfo
        text = self.column_type(FieldInfo(name="ddl", kind=K.STR, nullable=False), False)
        ts = self.type_map[K.DATETIME]
        q = self.quote
        return (f"CREATE TABLE IF NOT EXISTS {q(table)} ({q('version')} VARCHAR(64) PRIMARY KEY, "
                f"{q('checksum')} VARCHAR(64) NOT NULL, {q('applied_at')} {ts} NOT NULL, "
                f"{q('ddl')} {text} NOT NULL, {q('reverse_ddl')} {text} NOT NULL, "
                f"{q('status')} VARCHAR(16) NOT NULL, {q('rolled_back_at')} {ts}){self.table_suffix()}")

    def is_lock_timeout(self, exc: BaseException) -> bool:
        """True when ``exc`` (a dataflow.errors.DatabaseError) is a DDL lock wait that timed out."""
        return False
