"""The live-schema vocabulary shared by discovery, the diff and validation: tables, columns,
indexes and foreign keys as plain data, plus the public dict form of ``discover_schema``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Column:
    name: str
    type: str                   # as the database reports it (format_type / COLUMN_TYPE / declared)
    nullable: bool
    default: str | None = None  # the default as a SQL expression, None when there is none
    primary_key: bool = False
    autoincrement: bool = False

    def with_(self, **kw) -> "Column":
        return replace(self, **kw)


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple
    unique: bool = False
    primary: bool = False
    #: SQLite creates these for UNIQUE/PRIMARY KEY constraints; they cannot be created by name
    implicit: bool = False


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple
    ref_table: str
    ref_columns: tuple


@dataclass
class TableSchema:
    name: str
    columns: dict = field(default_factory=dict)        # name -> Column, in table order
    indexes: list = field(default_factory=list)        # Index (primary key index excluded)
    foreign_keys: list = field(default_factory=list)
    #: PostgreSQL: whether the tenant row-level-security policy is in force (None: not known or
    #: not applicable on this dialect)
    rls: bool | None = None

    @property
    def primary_key(self) -> tuple:
        return tuple(c.name for c in self.columns.values() if c.primary_key)

    def find_index(self, columns, unique: bool) -> Index | None:
        for ix in self.indexes:
            if tuple(ix.columns) == tuple(columns) and bool(ix.unique) == bool(unique):
                return ix
        return None

    def copy(self) -> "TableSchema":
        return TableSchema(self.name, dict(self.columns), list(self.indexes), list(self.foreign_keys), self.rls)

    def to_dict(self) -> dict:
        return {
            "columns": [{"name": c.name, "type": c.type, "nullable": c.nullable,
                         "primary_key": c.primary_key, "default": c.default,
                         "autoincrement": c.autoincrement} for c in self.columns.values()],
            "primary_key": list(self.primary_key),
            "indexes": [{"name": i.name, "columns": list(i.columns), "unique": i.unique}
                        for i in self.indexes],
            "foreign_keys": [{"name": f.name, "columns": list(f.columns), "ref_table": f.ref_table,
                              "ref_columns": list(f.ref_columns)} for f in self.foreign_keys],
        }


def from_dict(name: str, d: dict) -> TableSchema:
    """Inverse of ``TableSchema.to_dict`` (accepts the documented subset of keys)."""
    pk = set(d.get("primary_key") or ())
    cols = {}
    for c in d.get("columns", []):
        cols[c["name"]] = Column(c["name"], c.get("type", ""), bool(c.get("nullable", True)), c.get("default"),
                                 bool(c.get("primary_key")) or c["name"] in pk, bool(c.get("autoincrement")))
    idx = [Index(i["name"], tuple(i.get("columns") or i.get("fields") or ()), bool(i.get("unique")))
           for i in d.get("indexes", [])]
    fks = [ForeignKey(f.get("name", ""), tuple(f.get("columns", ())), f.get("ref_table", ""),
                      tuple(f.get("ref_columns", ()))) for f in d.get("foreign_keys", [])]
    return TableSchema(name, cols, idx, fks)
