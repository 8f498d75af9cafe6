"""Workflow builder, immutable built graph and the sync/async runtimes.

Knows the node contract (``dataflow.nodes``), never the database engine.
"""

from .builder import WorkflowBuilder
from .graph import Connection, NodeSpec, Workflow
from .result import RunResult
from .runtime import AsyncLocalRuntime, LocalRuntime

__all__ = ["WorkflowBuilder", "Workflow", "LocalRuntime", "AsyncLocalRuntime", "RunResult",
           "Connection", "NodeSpec"]
