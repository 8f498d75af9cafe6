"""Schema migrations and discovery: diff the models against the live schema, apply the
additive part automatically under a cross-process lock, keep a history with reverse DDL.

``diff`` plans (no I/O), ``discover`` reads the live schema, ``lock`` serialises migrators,
``history`` records what ran, ``apply`` ties them together for the engine.
"""

from .diff import Operation, Plan, build_plan
from .schema import Column, ForeignKey, Index, TableSchema

__all__ = ["Column", "ForeignKey", "Index", "Operation", "Plan", "TableSchema", "build_plan"]
