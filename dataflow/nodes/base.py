"""The node contract shared by generated model nodes, built-in nodes and users' custom nodes.

A node class declares ``parameters`` (name -> Param) and implements ``async run(ctx, **params)``
returning a dict.  The workflow runtime only knows this contract, never the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ValidationError

_MISSING = object()


@dataclass(frozen=True)
class Param:
    """Declares one node parameter: its type (or tuple of types), default and whether required."""

    type: Any = object
    required: bool = False
    default: Any = _MISSING
    description: str = ""

    def has_default(self) -> bool:
        return self.default is not _MISSING


@dataclass
class RunContext:
    """What a running node may see: the run id, runtime inputs and a per-run state dict.

    ``state`` is shared by all nodes of one run (transaction scopes keep their handles here).
    ``node_id`` is the id of the node currently running (set per call by the runtime).
    """

    run_id: str
    inputs: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    node_id: str | None = None
    dependencies: frozenset = frozenset()
    #: async callables ``f(failed: bool)`` run once when the run ends, newest first
    #: (transaction scopes use it to roll back a scope that was never committed).
    finalizers: list = field(default_factory=list)

    def on_finish(self, callback) -> None:
        """Register ``async callback(failed: bool)`` to run when the workflow run ends."""
        self.finalizers.append(callback)


class Node:
    """Base class for every node.

    Subclass it, declare ``parameters`` and implement ``async def run(self, ctx, **params)``::

        class Double(Node):
            parameters = {"x": Param(int, required=True)}
            async def run(self, ctx, x):
                return {"result": 2 * x}

    ``validate`` is called by the runtime before ``run`` with the merged parameters; the
    default implementation applies defaults and checks required parameters.  ``strict``
    nodes reject parameters they do not declare.
    """

    parameters: ClassVar[dict[str, Param]] = {}
    strict: ClassVar[bool] = False
    #: Node type name used in WorkflowBuilder.add_node (defaults to the class name).
    type_name: ClassVar[str | None] = None
    #: runs statements on a database (model nodes): joins a transaction scope added before it
    database_node: ClassVar[bool] = False
    #: a transaction scope: when nothing is connected from it, every ``database_node`` added
    #: after it in the workflow depends on it (core.md, Transactions)
    scope_for_later_nodes: ClassVar[bool] = False

    def __init__(self, node_id: str = "", **config: Any):
        self.node_id = node_id
        self.config = config

    @classmethod
    def node_type(cls) -> str:
        return cls.type_name or cls.__name__

    def validate(self, params: dict) -> dict:
        out = dict(params)
        for name, spec in self.parameters.items():
            if name not in out:
                if spec.has_default():
                    dflt = spec.default
                    out[name] = dflt.copy() if isinstance(dflt, (list, dict, set)) else dflt
                elif spec.required:
                    raise ValidationError(
                        f"node {self.node_id!r} ({self.node_type()}) needs parameter {name!r}; "
                        f"pass it in add_node(...) or connect an output to it")
        if self.strict:
            unknown = [k for k in out if k not in self.parameters]
            if unknown:
                raise ValidationError(
                    f"node {self.node_id!r} ({self.node_type()}) does not take {', '.join(map(repr, unknown))}; "
                    f"valid parameters: {', '.join(sorted(self.parameters))}")
        return out

    async def run(self, ctx: RunContext, **params: Any) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.run is not implemented")
