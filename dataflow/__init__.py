"""DataFlow: annotated classes -> tables -> workflow nodes, on PostgreSQL, MySQL/MariaDB and SQLite.

Public names only.  Importing this package imports no database driver (drivers load on
first use), so ``import dataflow`` stays fast.
"""

from .engine import DataFlow
from .errors import (BulkLoadError, ConfigurationError, DatabaseConnectionError, DatabaseError,
                     DataFlowError, FilterError, IntegrityError, ModelDefinitionError,
                     NodeExecutionError, NotFoundError, QueryError, TransactionConflictError,
                     UniqueViolationError, UnsupportedFeatureError, ValidationError, WorkflowError)
from .nodes.base import Node, Param, RunContext
from .types import Field, Vector
from .workflow import AsyncLocalRuntime, LocalRuntime, RunResult, Workflow, WorkflowBuilder

__version__ = "0.1.0"

__all__ = [
    "DataFlow", "WorkflowBuilder", "Workflow", "LocalRuntime", "AsyncLocalRuntime", "RunResult",
    "Node", "Param", "RunContext", "Field", "Vector",
    "DataFlowError", "ConfigurationError", "ModelDefinitionError", "ValidationError", "FilterError",
    "UnsupportedFeatureError", "NotFoundError", "WorkflowError", "NodeExecutionError", "DatabaseError",
    "DatabaseConnectionError", "IntegrityError", "UniqueViolationError", "TransactionConflictError",
    "QueryError", "BulkLoadError",
]
