"""SQLite: ? placeholders, TEXT timestamps in fixed-width UTC ISO-8601 (text order = time order),
JSON in TEXT, a registered REGEXP, JSON-array parameters for long IN lists."""

from __future__ import annotations

from dataflow import _native

from .base import Dialect

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations


class SQLiteDialect(Dialect):
    name = "sqlite"
    read_only_sql = "PRAGMA query_only = ON"  # per connection; the source's DataFlow only reads
    code = K.SQLITE
    paramstyle = "?"
    quote_char = '"'
    ident_limit = 128
    json_contains_mode = 2
    max_params = 32766
    #: how db.load and bulk writes reach this database: the native SQLite writer (dataflow/bulk/insert.py)
    bulk_path = "sqlite"
    filter_templates = {
        "like": "{c} LIKE {p}", "ilike": "df_lower({c}) LIKE df_lower({p})",
        "regex": "{c} REGEXP {p}", "iregex": "{c} REGEXP ('(?i)' || {p})",
        "json_contains": "EXISTS (SELECT 1 FROM json_each({c}) WHERE json_each.value = {p})",
        "in_json": "{c} IN (SELECT value FROM json_each({p}))",
    }
    type_map = {K.INT: "INTEGER", K.FLOAT: "REAL", K.BOOL: "INTEGER", K.STR: "TEXT",
                K.BYTES: "BLOB", K.DATETIME: "TEXT", K.DATE: "TEXT", K.DECIMAL: "TEXT",
                K.UUID: "TEXT", K.JSON: "TEXT", K.VECTOR: "BLOB"}
    no_limit = "-1"
    # SQLite's LALR parser stack (YYSTACKDEPTH 100) is fixed at compile time: deeper filters fail
    # in the parser ("parser stack overflow"), so refuse them first with a FilterError.  Costs
    # measured on SQLite 3.40 with the compiler's rendering (parentheses per $and/$or level,
    # NOT COALESCE((..), FALSE) per $not/$nor): the parser overflows after 44 levels of $and/$or
    # (22 when each nested part follows a sibling), 18 of $not, 14 of $nor; the budget keeps a margin for the costliest leaf (a json_each subquery).
    max_filter_depth = 64
    max_logical_list = 500
    filter_nesting_cost = {"$and": 2, "$or": 2, "$not": 5, "$nor": 7}
    filter_sibling_cost = 2
    max_filter_nesting = 76
    select_for_update = ""  # the single connection is already exclusive in a transaction

    def id_column(self, model) -> str:
        if model.id_auto:
            return f'{self.quote("id")} INTEGER PRIMARY KEY'
        return f'{self.quote("id")} TEXT PRIMARY KEY NOT NULL'

    def upsert(self, table, columns, conflict, update, rows=1, returning=False, guard=None):
        sql = self.insert(table, columns, rows)
        target = ", ".join(self.quote(c) for c in conflict)
        if update:
            sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in update)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
            if guard:
                sql += f" WHERE {self.quote(guard)} = excluded.{self.quote(guard)}"
        else:  # an empty target skips a conflict on any unique key
            sql += f" ON CONFLICT ({target}) DO NOTHING" if target else " ON CONFLICT DO NOTHING"
        if returning:
            sql += " RETURNING *"
        return sql

    # -- connection and transactions -------------------------------------------------------------
    #: SQLite transactions are serializable, which satisfies every weaker level
    isolation_levels = {"deferred": "BEGIN", "immediate": "BEGIN IMMEDIATE", "exclusive": "BEGIN EXCLUSIVE",
                        "serializable": "BEGIN", "repeatable_read": "BEGIN", "read_committed": "BEGIN",
                        "read_uncommitted": "BEGIN"}

    def begin_sql(self, isolation=None) -> list[str]:
        return ["BEGIN" if isolation is None else self.isolation_levels[self.isolation_key(isolation)]]

    def busy_timeout_sql(self, seconds: float) -> str:
        """How long a statement waits for another connection's write lock."""
        return f"PRAGMA busy_timeout={int(seconds * 1000)}"

    def connect_sql(self, path: str, busy_timeout: float) -> list[str]:
        """Run once per new connection: WAL for files, FK checks, case-sensitive LIKE."""
        out = ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"] if path != ":memory:" else []
        return out + ["PRAGMA foreign_keys=ON", "PRAGMA case_sensitive_like=ON", self.busy_timeout_sql(busy_timeout)]

    # -- migrations and discovery --------------------------------------------------------------
    migration_lock_mode = "immediate"
    alter_in_place = False  # type / NOT NULL / drop changes go through the rebuild-table procedure

    def type_family(self, sql_type):
        # SQLite's own type-affinity rules (https://sqlite.org/datatype3.html 3.1)
        t = (sql_type or "").upper()
        if "INT" in t:
            return "int"
        if "CHAR" in t or "CLOB" in t or "TEXT" in t:
            return "text"
        if "BLOB" in t or not t:
            return "bytes"
        if "REAL" in t or "FLOA" in t or "DOUB" in t:
            return "float"
        return "numeric"

    def discovery_sql(self, n_tables):
        f = self._in_tables
        tables = "FROM sqlite_master m {join} WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        return {
            "columns": ("SELECT m.name, p.name, p.type, NOT p.\"notnull\", p.dflt_value, p.cid, "
                        "(p.pk = 1 AND upper(p.type) = 'INTEGER' AND (SELECT count(*) FROM "
                        "pragma_table_info(m.name) q WHERE q.pk > 0) = 1), p.pk "
                        + tables.format(join="JOIN pragma_table_info(m.name) p") + f("m.name", n_tables)
                        + " ORDER BY m.name, p.cid"),
            "indexes": ("SELECT m.name, il.name, il.\"unique\", il.origin = 'pk', ii.name, ii.seqno "
                        + tables.format(join="JOIN pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii")
                        + f("m.name", n_tables) + " ORDER BY m.name, il.name, ii.seqno"),
            "foreign_keys": ("SELECT m.name, 'fk_' || m.name || '_' || fk.id, fk.\"from\", fk.\"table\", fk.\"to\", "
                             "fk.seq " + tables.format(join="JOIN pragma_foreign_key_list(m.name) fk")
                             + f("m.name", n_tables) + " ORDER BY m.name, fk.id, fk.seq"),
        }

    def literal(self, value) -> str:
        """A coerced SQLite value as a SQL literal (ALTER TABLE ... DEFAULT cannot take parameters)."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return str(int(value))
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return "X'" + bytes(value).hex() + "'"
        return "'" + str(value).replace("'", "''") + "'"

    def add_column_with_value(self, table, name, sql_type, value):
        # SQLite fills existing rows from a constant DEFAULT in one step (no table rewrite)
        return [(self.add_column_sql(table, self.column_sql(name, sql_type, False, self.literal(value))), ())]

    def rebuild_table_sql(self, table: str, columns: list, copy: list, indexes: list, uniques: list,
                          foreign_keys: list, pk: tuple) -> list:
        """The rebuild-table procedure (https://sqlite.org/lang_altertable.html section 7), run by
        the caller inside one transaction with foreign keys off: create the new shape, copy
        the rows, drop the old table, rename, recreate indexes, check foreign keys.

        ``columns``: rendered column definitions; ``copy``: [(new_column, old_column)];
        ``indexes``: [(name, columns, unique)]; ``uniques``/``pk``: column tuples for table
        constraints; ``foreign_keys``: [(columns, ref_table, ref_columns)]."""
        q = self.quote
        tmp = f"_dataflow_new_{table}"[:120]
        parts = list(columns)
        if len(pk) > 1:
            parts.append(f"PRIMARY KEY ({', '.join(q(c) for c in pk)})")
        for cols in uniques:
            parts.append(f"UNIQUE ({', '.join(q(c) for c in cols)})")
        for cols, ref, refcols in foreign_keys:
            target = f" ({', '.join(q(c) for c in refcols)})" if refcols and all(refcols) else ""
            parts.append(f"FOREIGN KEY ({', '.join(q(c) for c in cols)}) REFERENCES {q(ref)}{target}")
        out = [f"CREATE TABLE {q(tmp)} ({', '.join(parts)})"]
        if copy:
            out.append(f"INSERT INTO {q(tmp)} ({', '.join(q(n) for n, _ in copy)}) "
                       f"SELECT {', '.join(q(o) for _, o in copy)} FROM {q(table)}")
        out.append(f"DROP TABLE {q(table)}")
        out.append(f"ALTER TABLE {q(tmp)} RENAME TO {q(table)}")
        for name, cols, unique in indexes:
            out.append(f"CREATE {'UNIQUE ' if unique else ''}INDEX {q(name)} ON {q(table)} "
                       f"({', '.join(q(c) for c in cols)})")
        out.append("PRAGMA foreign_key_check")
        return out
