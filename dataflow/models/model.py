"""A @db.model class -> ModelInfo: the dialect-neutral description of one table.

Validates the class once at decoration time (key rule, options, annotations) so every
later error is about data, not about the model.
"""

from __future__ import annotations

import datetime
import sys
import typing
from dataclasses import dataclass, field

from dataflow import _native

from ..errors import ModelDefinitionError
from ..types import MISSING, Field
from .fields import FieldInfo, _unwrap_optional, build_field, managed_field
from .naming import is_identifier, shorten, table_name_for

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

IDENT_LIMIT = 63  # PostgreSQL's; MySQL allows 64, SQLite more: one name on every dialect
MANAGED = ("created_at", "updated_at")
OPTION_KEYS = {"indexes", "unique", "soft_delete", "multi_tenant", "append_only", "vector",
               "table_name", "primary_key", "renames"}
RESERVED = {"created_at", "updated_at", "deleted_at"}


@dataclass(frozen=True)
class IndexInfo:
    name: str
    fields: tuple
    unique: bool = False


@dataclass
class ModelInfo:
    """Everything DataFlow knows about one model.  Built once; treated as read-only."""

    name: str
    cls: type
    table: str
    fields: dict                       # name -> FieldInfo, in column order (id first)
    id_auto: bool
    indexes: tuple = ()
    soft_delete: bool = False
    append_only: bool = False
    #: rows belong to a tenant (a managed ``tenant_id`` column; every statement scoped to it)
    multi_tenant: bool = False
    columns: tuple = field(init=False)
    kinds: tuple = field(init=False)
    user_fields: tuple = field(init=False)   # fields a caller may set (not managed)
    json_shapes: dict = field(init=False)    # JSON fields with a declared container type -> check

    def __post_init__(self):
        from .fields import json_shape_check
        self.json_shapes = {n: c for n, f in self.fields.items() if (c := json_shape_check(f)) is not None}
        self.columns = tuple(self.fields)
        self.kinds = tuple(f.kind for f in self.fields.values())
        self.user_fields = tuple(n for n, f in self.fields.items() if not f.managed)

    @property
    def id_kind(self) -> int:
        return self.fields["id"].kind

    def field_names(self) -> list[str]:
        return list(self.fields)


def _hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:
        ns = dict(vars(sys.modules.get(cls.__module__, object())))
        raw = dict(getattr(cls, "__annotations__", {}))
        out = {}
        for k, v in raw.items():
            if isinstance(v, str):
                try:
                    v = eval(v, ns, dict(vars(cls)))  # noqa: S307 - the user's own annotation
                except Exception as exc:
                    raise ModelDefinitionError(f"{cls.__name__}.{k}: cannot resolve annotation {v!r} ({exc})") from None
            out[k] = v
        return out


def build_model(cls: type) -> ModelInfo:
    """Validate ``cls`` and describe it; raises ModelDefinitionError with the fix."""
    name = cls.__name__
    opts = dict(getattr(cls, "__dataflow__", None) or {})
    unknown = set(opts) - OPTION_KEYS
    if unknown:
        raise ModelDefinitionError(
            f"{name}.__dataflow__: unknown option(s) {sorted(unknown)}; valid: {sorted(OPTION_KEYS - {'primary_key', 'table_name'})}")
    if "primary_key" in opts:
        raise ModelDefinitionError(
            f"{name}: __dataflow__['primary_key'] is not supported; the primary key must be a field named 'id' "
            f"(rename {opts['primary_key']!r} to 'id')")
    tenant = bool(opts.get("multi_tenant"))
    table = getattr(cls, "__tablename__", None) or opts.get("table_name") or table_name_for(name)
    if not is_identifier(table):
        raise ModelDefinitionError(f"{name}: table name {table!r} must be letters, digits and underscores")
    table = shorten(table, IDENT_LIMIT)
    vectors = opts.get("vector") or {}
    if not isinstance(vectors, dict):
        raise ModelDefinitionError(f"{name}.__dataflow__['vector'] must be a dict of field -> dimension")
    hints = {k: v for k, v in _hints(cls).items() if not k.startswith("_")
             and typing.get_origin(v) is not typing.ClassVar and v is not typing.ClassVar}
    if not hints:
        raise ModelDefinitionError(f"{name}: a model needs annotated fields, e.g. `name: str`")
    fields: dict[str, FieldInfo] = {}
    for fname, ann in hints.items():
        if not is_identifier(fname) or len(fname) > IDENT_LIMIT:
            raise ModelDefinitionError(f"{name}.{fname}: field names must be identifiers up to {IDENT_LIMIT} characters")
        if fname == "tenant_id" and tenant:
            continue  # declared by a model written for a tenant-aware project: the managed column
        if fname in RESERVED:
            _check_managed_declaration(name, fname, ann, bool(opts.get("soft_delete")))
            continue  # the managed column below is the field: same column, same behaviour
        default = cls.__dict__.get(fname, MISSING)
        dim = vectors.get(fname)
        if dim is not None and (type(dim) is not int or dim <= 0):
            raise ModelDefinitionError(f"{name}.__dataflow__['vector'][{fname!r}] must be a positive int")
        fields[fname] = build_field(name, fname, ann, default, dim)
    unknown_vec = set(vectors) - set(fields)
    if unknown_vec:
        raise ModelDefinitionError(f"{name}.__dataflow__['vector'] names unknown field(s) {sorted(unknown_vec)}")
    if "id" in fields:
        idf = fields.pop("id")
        if idf.kind not in (K.INT, K.STR, K.UUID):
            raise ModelDefinitionError(f"{name}.id must be int, str or UUID, not {K.KIND_NAMES[idf.kind]}")
        if idf.nullable:
            raise ModelDefinitionError(f"{name}.id cannot be Optional")
        id_auto = idf.kind == K.INT
    else:
        keyish = [f for f in fields if f.endswith("_id") and isinstance(cls.__dict__.get(f), Field)
                  and cls.__dict__[f].primary_key]
        if keyish:
            raise ModelDefinitionError(f"{name}: the primary key must be named 'id', not {keyish[0]!r}")
        idf = FieldInfo(name="id", kind=K.INT, nullable=False)
        id_auto = True
    ordered = {"id": idf, **fields}
    if tenant:
        ordered["tenant_id"] = FieldInfo(name="tenant_id", kind=K.STR, nullable=False, max_length=128,
                                         managed=True)
    ordered["created_at"] = managed_field("created_at")
    ordered["updated_at"] = managed_field("updated_at")
    soft = bool(opts.get("soft_delete"))
    if soft:
        ordered["deleted_at"] = managed_field("deleted_at", nullable=True)
    indexes = _indexes(name, table, opts, ordered, tenant)
    return ModelInfo(name=name, cls=cls, table=table, fields=ordered, id_auto=id_auto,
                     indexes=tuple(indexes), soft_delete=soft, append_only=bool(opts.get("append_only")),
                     multi_tenant=tenant)


def _check_managed_declaration(model: str, fname: str, ann, soft_delete: bool) -> None:
    """A model may declare created_at/updated_at/deleted_at (as other projects' models do), typed
    as a datetime; DataFlow still sets them."""
    try:
        inner, _ = _unwrap_optional(ann)
    except ModelDefinitionError:
        inner = None
    if not (isinstance(inner, type) and issubclass(inner, datetime.datetime)):
        raise ModelDefinitionError(
            f"{model}.{fname}: {fname} is managed by DataFlow and holds a datetime; annotate it "
            f"`{fname}: datetime` (or remove it: DataFlow adds it anyway), not {getattr(ann, '__name__', ann)!r}")
    if fname == "deleted_at" and not soft_delete:
        raise ModelDefinitionError(
            f"{model}.deleted_at: deleted_at is the soft-delete column DataFlow manages; add "
            f"__dataflow__ = {{'soft_delete': True}} to the model, or give the field another name")


def _indexes(model, table, opts, fields, tenant=False) -> list[IndexInfo]:
    """The model's indexes.  On a tenant model a unique key holds per tenant: it is the index
    (tenant_id, *key), so two tenants may own the same email."""
    out: list[IndexInfo] = []
    seen = set()

    def add(fnames, unique, iname=None):
        fnames = tuple(fnames)
        if tenant and unique and fnames[:1] != ("tenant_id",):
            fnames = ("tenant_id", *fnames)
        for f in fnames:
            if f not in fields:
                raise ModelDefinitionError(f"{model}: index on unknown field {f!r}; fields: {', '.join(fields)}")
        iname = iname or shorten(f"{'uq' if unique else 'ix'}_{table}_{'_'.join(fnames)}", IDENT_LIMIT)
        if not is_identifier(iname):
            raise ModelDefinitionError(f"{model}: index name {iname!r} must be letters, digits and underscores")
        if (fnames, unique) in seen:
            return
        seen.add((fnames, unique))
        out.append(IndexInfo(iname, fnames, unique))

    if tenant:
        # every statement filters on the tenant and lists order by id: one index serves both
        add(["tenant_id", "id"], False)
    for f in fields.values():
        if f.unique:
            add([f.name], True)
        elif f.index:
            add([f.name], False)
    for item in opts.get("indexes") or []:
        if not isinstance(item, dict) or "fields" not in item:
            raise ModelDefinitionError(f"{model}.__dataflow__['indexes'] entries look like "
                                       "{'name': 'ix_x', 'fields': ['a', 'b'], 'unique': False}")
        extra = set(item) - {"name", "fields", "unique"}
        if extra:
            raise ModelDefinitionError(f"{model}: index option(s) {sorted(extra)} not understood")
        flds = item["fields"]
        if isinstance(flds, str):
            flds = [flds]
        add(flds, bool(item.get("unique")), item.get("name"))
    for u in opts.get("unique") or []:
        add([u] if isinstance(u, str) else list(u), True)
    return out
