"""The immutable, built workflow: node specs, connections and everything the runtime precomputes.

``WorkflowBuilder.build()`` produces a ``Workflow``; runtimes only read it, so one workflow can
run many times (and concurrently) with no per-run analysis of its shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import WorkflowError

#: ``from_output`` that passes the whole result dict of the source node.
WHOLE = "*"


@dataclass(frozen=True)
class Connection:
    """One edge: ``from_node``'s output ``from_output`` (dotted path) feeds ``to_node``'s ``to_input``.

    ``to_input`` may be dotted too (``"filter.id"`` sets one key inside a dict parameter), or
    ``"*"`` to spread every key of the value into the target's parameters.
    """

    from_node: str
    from_output: str
    to_node: str
    to_input: str
    from_path: tuple = field(default=(), compare=False, repr=False)
    to_path: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def make(cls, from_node: str, from_output: str, to_node: str, to_input: str) -> "Connection":
        from_path = () if from_output == WHOLE else tuple(from_output.split("."))
        to_path = () if to_input == WHOLE else tuple(to_input.split("."))
        return cls(from_node, from_output, to_node, to_input, from_path, to_path)

    def describe(self) -> str:
        return f"{self.from_node}.{self.from_output} -> {self.to_node}.{self.to_input}"

    def extract(self, result: dict) -> Any:
        """The value this connection carries out of the source node's ``result``."""
        if not self.from_path:
            return result
        out = self.from_output
        if out in result:  # exact key wins, even if it contains dots
            return result[out]
        cur: Any = result
        for depth, seg in enumerate(self.from_path):
            try:
                if isinstance(cur, Mapping):
                    cur = cur[seg]
                elif isinstance(cur, (list, tuple)):
                    cur = cur[int(seg)]
                elif not seg.startswith("_") and hasattr(cur, seg):
                    cur = getattr(cur, seg)
                else:
                    raise LookupError(seg)
            except (LookupError, ValueError, TypeError):
                where = ".".join(self.from_path[:depth]) or "the result"
                if isinstance(cur, Mapping):
                    have = f"keys there: {', '.join(map(str, list(cur)[:20])) or '(none)'}"
                elif isinstance(cur, (list, tuple)):
                    have = f"it is a list of {len(cur)} items"
                else:
                    have = f"it is a {type(cur).__name__}"
                raise WorkflowError(
                    f"connection {self.describe()}: node {self.from_node!r} produced no {self.from_output!r} "
                    f"(no {seg!r} in {where}; {have}); check the output name or path") from None
        return cur

    def apply(self, params: dict, value: Any) -> None:
        """Put ``value`` into the target's merged ``params`` (a private copy)."""
        path = self.to_path
        if not path:
            if not isinstance(value, Mapping):
                raise WorkflowError(
                    f"connection {self.describe()}: '*' spreads a dict into the target's parameters, "
                    f"but the value is a {type(value).__name__}")
            params.update(value)
            return
        if len(path) == 1:
            params[path[0]] = value
            return
        cur = params
        for seg in path[:-1]:
            nxt = cur.get(seg)
            if nxt is None:
                nxt = {}
            elif isinstance(nxt, Mapping):
                nxt = dict(nxt)  # copy on write: static params are shared across runs
            else:
                raise WorkflowError(
                    f"connection {self.describe()}: parameter {seg!r} of node {self.to_node!r} is a "
                    f"{type(nxt).__name__}, not a dict, so {self.to_input!r} cannot be set")
            cur[seg] = nxt
            cur = nxt
        cur[path[-1]] = value


@dataclass(frozen=True)
class NodeSpec:
    """One node of a built workflow.  ``params`` is a read-only view of its static parameters."""

    node_id: str
    node_class: type
    _params: dict = field(repr=False)
    dependencies: frozenset = frozenset()
    incoming: tuple = ()
    dependents: tuple = ()
    #: top-level param name -> template renderer (empty when the node has no templates)
    templates: Mapping = field(default_factory=dict, repr=False)
    template_inputs: frozenset = frozenset()
    #: top-level params wholly replaced by a connection: their templates are never rendered
    connected_keys: frozenset = frozenset()

    @property
    def params(self) -> Mapping:
        return MappingProxyType(self._params)

    @property
    def type_name(self) -> str:
        nt = getattr(self.node_class, "node_type", None)
        return nt() if callable(nt) else self.node_class.__name__


def topological_order(node_ids: list[str], deps: dict[str, set]) -> list[str]:
    """Kahn's algorithm, stable on insertion order; raises WorkflowError naming a cycle."""
    indeg = {n: len(deps[n]) for n in node_ids}
    dependents: dict[str, list[str]] = {n: [] for n in node_ids}
    for n in node_ids:
        for d in deps[n]:
            dependents[d].append(n)
    ready = [n for n in node_ids if indeg[n] == 0]
    order: list[str] = []
    i = 0
    while i < len(ready):
        n = ready[i]
        i += 1
        order.append(n)
        for m in dependents[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(node_ids):
        left = [n for n in node_ids if indeg[n] > 0]
        raise WorkflowError(f"workflow has a cycle through nodes {', '.join(map(repr, left))}; "
                            f"connections must form a DAG")
    return order


class Workflow:
    """A built, immutable workflow.  Run it with ``LocalRuntime().execute(wf)`` any number of times.

    ``nodes`` maps node id -> ``NodeSpec`` in topological order; ``connections`` is a tuple of
    ``Connection``.  Static parameters were copied at build time, so editing the builder (or the
    dicts passed to it) afterwards does not change a built workflow.
    """

    __slots__ = ("workflow_id", "name", "nodes", "connections", "order", "template_inputs",
                 "_specs", "_roots", "_indegree", "_sequential", "_has_templates", "_index", "_frozen")

    def __init__(self, specs: list[NodeSpec], connections: tuple, workflow_id: str, name: str | None):
        set_ = object.__setattr__
        set_(self, "workflow_id", workflow_id)
        set_(self, "name", name or workflow_id)
        set_(self, "_specs", MappingProxyType({s.node_id: s for s in specs}))
        set_(self, "nodes", self._specs)
        set_(self, "connections", connections)
        order = tuple(s.node_id for s in specs)
        set_(self, "order", order)
        set_(self, "_index", MappingProxyType({n: i for i, n in enumerate(order)}))
        set_(self, "_roots", tuple(s.node_id for s in specs if not s.dependencies))
        set_(self, "_indegree", MappingProxyType({s.node_id: len(s.dependencies) for s in specs}))
        # Sequential: every node depends on the one before it, so no two are ever ready together
        # and the runtime can await them one by one with no tasks and no scheduler.
        set_(self, "_sequential", all(order[i - 1] in specs[i].dependencies for i in range(1, len(specs))))
        set_(self, "_has_templates", any(s.templates for s in specs))
        set_(self, "template_inputs", frozenset().union(*(s.template_inputs for s in specs)))
        set_(self, "_frozen", True)

    def __setattr__(self, name, value):
        raise AttributeError("Workflow is immutable; change the WorkflowBuilder and build() again")

    def __delattr__(self, name):
        raise AttributeError("Workflow is immutable")

    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, node_id) -> bool:
        return node_id in self._specs

    def __repr__(self) -> str:
        return (f"Workflow({self.workflow_id!r}, nodes={list(self.order)!r}, "
                f"connections={len(self.connections)})")

    def build(self) -> "Workflow":
        """Already built: returns itself (so ``runtime.execute(wf.build())`` works on either)."""
        return self
