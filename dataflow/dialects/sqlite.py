"""SQLite: ? placeholders, TEXT timestamps in fixed-width UTC ISO-8601 (text order = time order),
JSON in TEXT, a registered REGEXP, JSON-array parameters for long IN lists."""

from __future__ import annotations

from _native._pure import params as K

from .base import Dialect


class SQLiteDialect(Dialect):
    name = "sqlite"
    code = K.SQLITE
    paramstyle = "?"
    quote_char = '"'
    ident_limit = 128
    json_contains_mode = 2
    max_params = 32766
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
    # SQLite's LALR parser stack (YYSTACKDEPTH 100) and expression depth (1000) are fixed at
    # compile time: deeper filters fail in the parser, so refuse them first with a FilterError.
    max_filter_depth = 24
    max_logical_list = 500
    select_for_update = ""  # the single connection is already exclusive in a transaction

    def id_column(self, model) -> str:
        f = model.fields["id"]
        if model.id_auto:
            return f'{self.quote("id")} INTEGER PRIMARY KEY'
        return f'{self.quote("id")} TEXT PRIMARY KEY NOT NULL'

    def upsert(self, table, columns, conflict, update, rows=1, returning=False, created_marker=None):
        sql = self.insert(table, columns, rows)
        target = ", ".join(self.quote(c) for c in conflict)
        if update:
            sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in update)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
        if returning:
            sql += " RETURNING *"
        return sql
