"""MySQL/MariaDB: %s placeholders (client-side binding by PyMySQL), binary collation so text
comparisons are case-sensitive like PostgreSQL and SQLite, DATETIME(6) in UTC, ON DUPLICATE KEY."""

from __future__ import annotations

from dataflow import _native

from .base import Dialect

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

VARCHAR_MAX_INDEXED = 255
VARCHAR_MAX = 16383


class MySQLDialect(Dialect):
    name = "mysql"
    code = K.MYSQL
    paramstyle = "%s"
    quote_char = "`"
    ident_limit = 64
    supports_returning = False
    supports_update_returning = False
    json_contains_mode = 1
    like_escape_literal = "'\\\\'"
    max_params = 1_000_000          # PyMySQL binds client-side: the limit is max_allowed_packet
    #: how db.load and bulk writes reach this database: LOAD DATA or packet-sized INSERTs (dataflow/bulk/mysql.py)
    bulk_path = "load_data"
    affected_per_update = 2
    filter_templates = {
        "like": "{c} LIKE {p}", "ilike": "LOWER({c}) LIKE LOWER({p})",
        "regex": "{c} REGEXP {p}", "iregex": "{c} REGEXP CONCAT('(?i)', {p})",
        "json_contains": "JSON_CONTAINS({c}, {p})",
    }
    type_map = {K.INT: "BIGINT", K.FLOAT: "DOUBLE", K.BOOL: "TINYINT(1)", K.STR: "TEXT",
                K.BYTES: "LONGBLOB", K.DATETIME: "DATETIME(6)", K.DATE: "DATE",
                K.DECIMAL: "DECIMAL(65,30)", K.UUID: "CHAR(36)", K.JSON: "JSON", K.VECTOR: "LONGBLOB"}
    no_limit = "18446744073709551615"
    collation = "utf8mb4_nopad_bin"

    def column_type(self, f, indexed: bool) -> str:
        if f.kind == K.STR:
            if indexed:
                return f"VARCHAR({min(f.max_length or VARCHAR_MAX_INDEXED, VARCHAR_MAX_INDEXED * 3)})"
            if f.max_length and f.max_length <= VARCHAR_MAX:
                return f"VARCHAR({f.max_length})"
            return "LONGTEXT"
        return self.type_map[f.kind]

    def id_column(self, model) -> str:
        f = model.fields["id"]
        if model.id_auto:
            return f"{self.quote('id')} BIGINT AUTO_INCREMENT PRIMARY KEY"
        typ = "CHAR(36)" if f.kind == K.UUID else "VARCHAR(255)"
        return f"{self.quote('id')} {typ} PRIMARY KEY"

    def table_suffix(self) -> str:
        # NO PAD binary collation: comparisons are exact (case- and trailing-space-sensitive)
        # like PostgreSQL and SQLite.  MariaDB >= 10.2 has it; MySQL 8 would need utf8mb4_0900_bin.
        return f" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={self.collation}"

    def create_index(self, table, ix) -> str:
        cols = ", ".join(self.quote(c) for c in ix.fields)
        uniq = "UNIQUE " if ix.unique else ""
        return f"CREATE {uniq}INDEX IF NOT EXISTS {self.quote(ix.name)} ON {self.quote(table)} ({cols})"

    def upsert(self, table, columns, conflict, update, rows=1, returning=False, guard=None):
        sql = self.insert(table, columns, rows)
        if update and guard:
            # no WHERE on ON DUPLICATE KEY UPDATE: each column keeps its value unless the guard
            # column (never itself updated) matches
            g = self.quote(guard)
            sets = ", ".join(f"{self.quote(c)} = IF({g} = VALUES({g}), VALUES({self.quote(c)}), {self.quote(c)})"
                             for c in update)
        elif update:
            sets = ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in update)
        else:  # "skip": a no-op assignment keeps the existing row and reports 0 affected
            key = self.quote(conflict[0] if conflict else "id")
            sets = f"{key} = {key}"
        return sql + f" ON DUPLICATE KEY UPDATE {sets}"

    # -- transactions, sessions, loading ----------------------------------------------------------
    def begin_sql(self, isolation=None) -> list[str]:
        if isolation is None:
            return ["BEGIN"]
        return [f"SET TRANSACTION ISOLATION LEVEL {self.isolation_levels[self.isolation_key(isolation)]}", "BEGIN"]

    def kill_sql(self, thread_id: int) -> str:
        """Stop a cancelled statement's server thread (its connection is being discarded)."""
        return f"KILL CONNECTION {int(thread_id)}"

    def load_data_sql(self, table: str, targets: list, sets: list) -> str:
        """LOAD DATA LOCAL INFILE (the file name is parameter 1) of our TSV: tab-separated,
        backslash escapes, ``targets`` column names or @variables, ``sets`` assignments."""
        return (f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.quote(table)} CHARACTER SET utf8mb4 "
                f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                f"({', '.join(targets)})" + (" SET " + ", ".join(sets) if sets else ""))

    # -- migrations and discovery --------------------------------------------------------------
    migration_lock_mode = "get_lock"
    #: the migration lock: a named session lock (name, timeout in whole seconds) on a pinned connection
    migration_get_lock_sql = "SELECT GET_LOCK(%s, %s)"
    migration_release_lock_sql = "SELECT RELEASE_LOCK(%s)"
    type_families = {"tinyint(1)": "bool", "bool": "bool", "boolean": "bool",
                     "bigint": "int", "int": "int", "integer": "int", "smallint": "int", "mediumint": "int",
                     "tinyint": "int", "double": "float", "float": "float", "real": "float",
                     "varchar": "text", "char": "text", "text": "text", "tinytext": "text", "mediumtext": "text",
                     "longtext": "text", "json": "text",  # MariaDB's JSON is LONGTEXT
                     "char(36)": "uuid", "blob": "bytes", "longblob": "bytes", "mediumblob": "bytes",
                     "tinyblob": "bytes", "varbinary": "bytes", "binary": "bytes",
                     "datetime": "datetime", "timestamp": "datetime", "date": "date",
                     "decimal": "decimal", "numeric": "decimal"}

    def type_family(self, sql_type):
        t = (sql_type or "").strip().lower().replace(" unsigned", "")
        if t.startswith("tinyint(1)"):
            return "bool"
        return super().type_family(t)

    def discovery_sql(self, n_tables):
        f = self._in_tables
        return {
            "columns": ("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'YES', COLUMN_DEFAULT, "
                        "ORDINAL_POSITION, EXTRA LIKE '%%auto_increment%%', 0 FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = DATABASE()" + f("TABLE_NAME", n_tables)
                        + " ORDER BY TABLE_NAME, ORDINAL_POSITION"),
            "indexes": ("SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE = 0, INDEX_NAME = 'PRIMARY', COLUMN_NAME, "
                        "SEQ_IN_INDEX FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()"
                        + f("TABLE_NAME", n_tables) + " ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"),
            "foreign_keys": ("SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, "
                             "REFERENCED_COLUMN_NAME, ORDINAL_POSITION FROM information_schema.KEY_COLUMN_USAGE "
                             "WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL"
                             + f("TABLE_NAME", n_tables) + " ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"),
        }

    def drop_index_sql(self, table, name):
        return f"DROP INDEX {self.quote(name)} ON {self.quote(table)}"

    def alter_column_sql(self, table, name, sql_type, nullable, default_sql=None, *, type_changed, null_changed):
        # MODIFY restates the whole column, so the default is carried over explicitly
        return [f"ALTER TABLE {self.quote(table)} MODIFY COLUMN {self.column_sql(name, sql_type, nullable, default_sql)}"]

    def index_prep_sql(self, table, name, live_type, wanted_type, nullable, default_sql=None):
        # TEXT/BLOB columns cannot be indexed whole; strict mode makes this MODIFY fail rather
        # than truncate a longer value, so it never loses data
        live, wanted = live_type.lower(), wanted_type.lower()
        if live.split("(")[0] in ("text", "tinytext", "mediumtext", "longtext", "json") and wanted.startswith("varchar"):
            return [f"ALTER TABLE {self.quote(table)} MODIFY COLUMN {self.column_sql(name, wanted_type, nullable, default_sql)}"]
        return []
