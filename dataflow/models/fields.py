"""Annotation -> FieldInfo: the Python type, its storage kind, nullability and default."""

from __future__ import annotations

import copy
import datetime as _dt
import types
import typing
import uuid as _uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dataflow import _native

from ..errors import ModelDefinitionError
from ..types import MISSING, Field, Vector

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_SIMPLE = {int: K.INT, float: K.FLOAT, bool: K.BOOL, str: K.STR, bytes: K.BYTES,
           _dt.datetime: K.DATETIME, _dt.date: K.DATE, Decimal: K.DECIMAL, _uuid.UUID: K.UUID,
           dict: K.JSON, list: K.JSON}
_PY_TYPES = {K.INT: int, K.FLOAT: float, K.BOOL: bool, K.STR: str, K.BYTES: bytes,
             K.DATETIME: _dt.datetime, K.DATE: _dt.date, K.DECIMAL: Decimal, K.UUID: _uuid.UUID,
             K.JSON: object, K.VECTOR: list}
_IMMUTABLE = (int, float, bool, str, bytes, Decimal, _uuid.UUID, _dt.date, type(None), tuple, frozenset)


@dataclass(frozen=True)
class FieldInfo:
    """One model field as the rest of DataFlow sees it."""

    name: str
    kind: int
    nullable: bool
    default: Any = MISSING            # MISSING: required unless nullable
    default_factory: Any = None
    max_length: int | None = None
    index: bool = False
    unique: bool = False
    dim: int | None = None           # vectors
    managed: bool = False            # created_at / updated_at / deleted_at: set by DataFlow
    annotation: Any = None

    @property
    def required(self) -> bool:
        return self.default is MISSING and self.default_factory is None and not self.nullable

    @property
    def py_type(self) -> type:
        return _PY_TYPES[self.kind]

    def make_default(self):
        """The default for a new row; mutable defaults are copied, never shared."""
        if self.default_factory is not None:
            return self.default_factory()
        if self.default is MISSING:
            return None
        if isinstance(self.default, _IMMUTABLE):
            return self.default
        return copy.deepcopy(self.default)


def _unwrap_optional(ann) -> tuple[Any, bool]:
    origin = typing.get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(ann))
        if len(args) != 1:
            raise ModelDefinitionError(f"union types other than Optional[T] are not supported: {ann!r}")
        return args[0], nullable
    return ann, False


def kind_of(ann, *, model: str, field: str, vector_dim: int | None) -> tuple[int, int | None]:
    """Map an annotation (already without Optional) to (kind, vector dim)."""
    if typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    if isinstance(ann, Vector):
        return K.VECTOR, ann.dim
    if ann in _SIMPLE:
        if vector_dim is not None:
            raise ModelDefinitionError(f"{model}.{field}: declared as a vector but annotated {ann!r}; use list[float] or Vector(n)")
        return _SIMPLE[ann], None
    origin = typing.get_origin(ann)
    if origin in (list, dict, typing.List, typing.Dict):
        if vector_dim is not None:
            if origin is list and typing.get_args(ann) in ((float,), ()):
                return K.VECTOR, vector_dim
            raise ModelDefinitionError(f"{model}.{field}: a vector field must be list[float] or Vector(n)")
        return K.JSON, None
    if ann is typing.Any:
        return K.JSON, None
    raise ModelDefinitionError(
        f"{model}.{field}: unsupported annotation {ann!r}; use int, float, bool, str, bytes, datetime, "
        f"date, Decimal, UUID, dict, list, list[T], Vector(n) or Optional of one of these")


def build_field(model: str, name: str, ann, default, vector_dim: int | None) -> FieldInfo:
    opts = default if isinstance(default, Field) else None
    if opts is not None:
        default = opts.default
        if opts.primary_key and name != "id":
            raise ModelDefinitionError(
                f"{model}.{name}: primary_key=True is not supported; the primary key must be the field "
                f"named 'id' (rename {name!r} to 'id', or keep it as a plain unique column with unique=True)")
        if opts.default is not MISSING and opts.default_factory is not None:
            raise ModelDefinitionError(f"{model}.{name}: give default or default_factory, not both")
    inner, nullable = _unwrap_optional(ann)
    kind, dim = kind_of(inner, model=model, field=name, vector_dim=vector_dim)
    if default is None:
        nullable = True
    elif default is not MISSING:
        _check_default(model, name, kind, default)
    max_length = opts.max_length if opts else None
    if max_length is not None and (type(max_length) is not int or max_length <= 0):
        raise ModelDefinitionError(f"{model}.{name}: max_length must be a positive int")
    return FieldInfo(name=name, kind=kind, nullable=nullable, default=default,
                     default_factory=opts.default_factory if opts else None,
                     max_length=max_length, index=bool(opts and opts.index),
                     unique=bool(opts and opts.unique), dim=dim, annotation=ann)


def _check_default(model, name, kind, default):
    ok = {K.INT: lambda v: type(v) is int, K.FLOAT: lambda v: type(v) in (int, float),
          K.BOOL: lambda v: type(v) is bool, K.STR: lambda v: type(v) is str,
          K.BYTES: lambda v: type(v) is bytes, K.JSON: lambda v: isinstance(v, (dict, list, str, int, float, bool)),
          K.DECIMAL: lambda v: isinstance(v, (Decimal, int)) and type(v) is not bool,
          K.UUID: lambda v: isinstance(v, _uuid.UUID),
          K.DATETIME: lambda v: isinstance(v, _dt.datetime),
          K.DATE: lambda v: isinstance(v, _dt.date) and not isinstance(v, _dt.datetime),
          K.VECTOR: lambda v: isinstance(v, (list, tuple))}[kind]
    if not ok(default):
        raise ModelDefinitionError(
            f"{model}.{name}: default {type(default).__name__} does not match the annotation ({K.KIND_NAMES[kind]})")


def managed_field(name: str, nullable: bool = False) -> FieldInfo:
    return FieldInfo(name=name, kind=K.DATETIME, nullable=nullable, default=None if nullable else MISSING,
                     managed=True)


_SCALARS = {str: (str,), int: (int,), float: (float, int), bool: (bool,), dict: (dict,), list: (list,)}


def json_shape_check(f: FieldInfo):
    """For JSON fields annotated list / list[T] / dict / dict[str, T]: a function returning a
    problem string (or None) so ``tags: list[str]`` refuses ``"a,b"`` or ``[1, 2]``."""
    if f.kind == K.VECTOR and f.dim:
        return _vector_dim_check(f.dim)
    if f.kind != K.JSON or f.annotation is None:
        return None
    ann, _ = _unwrap_optional(f.annotation)
    if typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    origin = typing.get_origin(ann) or ann
    args = typing.get_args(ann)
    if origin in (list, typing.List):
        elem = _SCALARS.get(args[0]) if args else None

        def check_list(v, elem=elem, name=getattr(args[0], "__name__", "") if args else ""):
            if type(v) is not list and type(v) is not tuple:
                return f"expected a list, got {type(v).__name__}"
            if elem is not None:
                for i, item in enumerate(v):
                    if type(item) not in elem or (elem == (int,) and type(item) is bool):
                        return f"item {i}: expected {name}, got {type(item).__name__}"
            return None
        return check_list
    if origin in (dict, typing.Dict):
        def check_dict(v):
            if type(v) is not dict:
                return f"expected a dict, got {type(v).__name__}"
            return None
        return check_dict
    return None


def _vector_dim_check(dim: int):
    """Vector fields: the declared dimension, no NaN/inf/empty (before any SQL, on every dialect)."""
    from dataflow import _native
    validate = _native.load("vector").validate

    def check_vector(v):
        try:
            validate(v, dim)
        except (TypeError, ValueError) as exc:
            return str(exc)
        return None
    return check_vector
