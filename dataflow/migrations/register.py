"""Discovered tables -> @db.model classes (so an existing database gets models and nodes),
and the models' own schema in the discovery format."""

from __future__ import annotations

import datetime as _dt
import keyword
import re
import typing
import uuid as _uuid
from decimal import Decimal

from ..models.model import IDENT_LIMIT
from ..models.naming import is_identifier
from .diff import desired_columns
from .discover import HISTORY_TABLE
from .schema import TableSchema, from_dict

_PY = {"int": int, "float": float, "bool": bool, "text": str, "bytes": bytes, "datetime": _dt.datetime,
       "date": _dt.date, "decimal": Decimal, "uuid": _uuid.UUID, "json": dict, "numeric": Decimal}
MANAGED = ("created_at", "updated_at", "deleted_at")


def model_schema(db) -> dict:
    """The registered models in the ``discover_schema`` format (what the tables should be)."""
    out = {}
    for m in db._models.values():
        cols = [{"name": n, "type": t, "nullable": f.nullable, "primary_key": n == "id", "default": None}
                for n, (f, t) in desired_columns(m, db.dialect).items()]
        out[m.table] = {"columns": cols, "primary_key": ["id"],
                        "indexes": [{"name": i.name, "columns": list(i.fields), "unique": i.unique}
                                    for i in m.indexes], "foreign_keys": []}
    return out


def class_name(table: str) -> str:
    name = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", table) if p) or "Table"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "T" + name
    return name


def _python_type(db, typ: str):
    if typ.upper() in ("BOOLEAN", "BOOL"):  # declared boolean on any dialect (SQLite stores INTEGER)
        return bool
    fam = db.dialect.type_family(typ)
    if fam == "numeric" and any(w in typ.upper() for w in ("DATETIME", "TIMESTAMP")):
        return _dt.datetime
    if fam == "numeric" and typ.upper() == "DATE":
        return _dt.date
    return _PY.get(fam, str)


def build_class(db, t: TableSchema):
    """A plain annotated class for table ``t``, or (None, reason)."""
    idc = t.columns.get("id")
    if idc is None or t.primary_key != ("id",):
        return None, "DataFlow models need a single-column primary key named id"
    id_type = _python_type(db, idc.type)
    if id_type not in (int, str, _uuid.UUID):
        return None, f"id is {idc.type}; DataFlow ids are int, str or UUID"
    ann: dict = {}
    ns: dict = {}
    if id_type is not int:
        ann["id"] = id_type
    for c in t.columns.values():
        if c.name == "id" or c.name in MANAGED:
            continue
        if not is_identifier(c.name) or len(c.name) > IDENT_LIMIT or keyword.iskeyword(c.name):
            return None, f"column {c.name!r} is not a usable field name"
        py = _python_type(db, c.type)
        if c.nullable:
            ann[c.name] = typing.Optional[py]
            ns[c.name] = None
        else:
            ann[c.name] = py
    uniques, indexes = [], []
    for ix in t.indexes:
        if not set(ix.columns) <= set(t.columns) or "id" == ix.columns:
            continue
        entry = {"fields": list(ix.columns), "unique": ix.unique}
        if not ix.implicit:
            entry["name"] = ix.name
        (uniques if ix.unique else indexes).append(entry)
    opts = {"table_name": t.name, "indexes": uniques + indexes}
    if "deleted_at" in t.columns:
        opts["soft_delete"] = True
    ns.update({"__annotations__": ann, "__dataflow__": opts, "__module__": __name__,
               "__doc__": f"Model generated from table {t.name}."})
    return type(class_name(t.name), (), ns), None


def register_schema(db, schema: dict, tables=None) -> dict:
    """Register a model per table of ``schema`` (the ``discover_schema`` dict)."""
    wanted = set(tables) if tables is not None else None
    out, skipped = {}, {}
    taken = {m.table for m in db._models.values()}
    for name, d in schema.items():
        if name == HISTORY_TABLE or (wanted is not None and name not in wanted) or name in taken:
            continue
        cls, why = build_class(db, from_dict(name, d) if isinstance(d, dict) else d)
        if cls is None:
            skipped[name] = why
            continue
        db.model(cls)
        out[cls.__name__] = cls
    if skipped:
        import warnings
        warnings.warn("register_schema_as_models skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()),
                      stacklevel=3)
    return out
