"""Annotations with meaning beyond a plain Python type: ``Vector(n)`` and ``Field(...)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_MISSING: Any = object()


class Vector:
    """``embedding: Vector(384)`` declares a float vector column of fixed dimension.

    Stored as pgvector ``vector(n)`` on PostgreSQL with the extension, else as a compact
    float32 blob; read back as a list of floats.
    """

    __slots__ = ("dim",)

    def __init__(self, dim: int):
        if type(dim) is not int or dim <= 0 or dim > 16000:
            from .errors import ModelDefinitionError
            raise ModelDefinitionError(f"Vector(dim) needs an int dimension between 1 and 16000, got {dim!r}")
        self.dim = dim

    def __repr__(self) -> str:
        return f"Vector({self.dim})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Vector) and other.dim == self.dim

    def __hash__(self) -> int:
        return hash(("Vector", self.dim))


@dataclass(frozen=True)
class Field:
    """Per-field options, used as the default value: ``name: str = Field(max_length=80, index=True)``.

    ``default`` / ``default_factory`` give the default; ``max_length`` sizes MySQL VARCHARs;
    ``index`` / ``unique`` add an index.  ``primary_key`` exists only to be refused on fields
    other than ``id`` with a clear message (the key must be ``id``).
    """

    default: Any = _MISSING
    default_factory: Any = None
    max_length: int | None = None
    index: bool = False
    unique: bool = False
    primary_key: bool = False


MISSING = _MISSING
