"""DataFlow: annotated classes -> tables -> workflow nodes, on PostgreSQL, MySQL/MariaDB and SQLite.

Public names only.  The engine and the workflow runtime (which pull in asyncio) load on first
access of ``DataFlow`` / ``WorkflowBuilder`` / the runtimes, and database drivers load on first
use, so ``import dataflow`` stays well under 100 ms.
"""

from .errors import (BulkLoadError, ConfigurationError, DatabaseConnectionError, DatabaseError,
                     DataFlowError, FilterError, IntegrityError, ModelDefinitionError,
                     NodeExecutionError, NotFoundError, QueryError, TransactionConflictError,
                     UniqueViolationError, UnsupportedFeatureError, ValidationError, WorkflowError)
from .types import Field, Vector

__version__ = "0.1.0"

_LAZY = {
    "DataFlow": "dataflow.engine",
    "WorkflowBuilder": "dataflow.workflow", "Workflow": "dataflow.workflow",
    "LocalRuntime": "dataflow.workflow", "AsyncLocalRuntime": "dataflow.workflow",
    "RunResult": "dataflow.workflow",
    "Node": "dataflow.nodes.base", "Param": "dataflow.nodes.base", "RunContext": "dataflow.nodes.base",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dataflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DataFlow", "WorkflowBuilder", "Workflow", "LocalRuntime", "AsyncLocalRuntime", "RunResult",
    "Node", "Param", "RunContext", "Field", "Vector",
    "DataFlowError", "ConfigurationError", "ModelDefinitionError", "ValidationError", "FilterError",
    "UnsupportedFeatureError", "NotFoundError", "WorkflowError", "NodeExecutionError", "DatabaseError",
    "DatabaseConnectionError", "IntegrityError", "UniqueViolationError", "TransactionConflictError",
    "QueryError", "BulkLoadError",
]
