"""WorkflowBuilder: the mutable side.  Every mistake it can see is raised here, not at run time.

Node types resolve through the registry at ``add_node`` time, endpoints and cycles are checked at
``add_connection`` time, and ``build()`` precomputes everything the runtime needs.
"""

from __future__ import annotations

import itertools
from typing import Any

from ..errors import WorkflowError
from ..nodes import registry
from ..nodes.base import Node
from .graph import WHOLE, Connection, NodeSpec, Workflow, topological_order
from .templates import compile_params

_ids = itertools.count(1)


def _copy_containers(value: Any) -> Any:
    """Copy dicts/lists/tuples/sets recursively; leave other objects (clients, models) shared."""
    if isinstance(value, dict):
        return {k: _copy_containers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_containers(v) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_copy_containers(v) for v in value)
    if isinstance(value, set):
        return {_copy_containers(v) for v in value}
    return value


class WorkflowBuilder:
    """Collects nodes and connections, then ``build()`` returns an immutable ``Workflow``.

    Example::

        wf = WorkflowBuilder()
        wf.add_node("UserCreateNode", "create", {"name": "${name}", "email": "a@x.io"})
        wf.add_node("UserReadNode", "read")
        wf.add_connection("create", "id", "read", "id")
        results, run_id = LocalRuntime().execute(wf.build(), parameters={"name": "Alice"})
    """

    def __init__(self, workflow_id: str | None = None, name: str | None = None):
        self.workflow_id = workflow_id
        self.name = name
        self._nodes: dict[str, tuple[type, dict]] = {}
        self._connections: list[Connection] = []
        self._deps: dict[str, set[str]] = {}
        self._built: Workflow | None = None  # cache for runtime.execute(builder)

    # -- nodes -------------------------------------------------------------------------------
    def add_node(self, node_type: Any, node_id: Any = None, params: dict | None = None, **kwargs: Any) -> str:
        """Add a node and return its id.

        ``node_type`` is a registered type name (``"UserCreateNode"``, resolved now through the
        registry, honouring ``params["db_instance"]``), a ``Node`` subclass or a ``Node`` instance
        (its ``config`` becomes static parameters).  Parameters come from ``params`` and/or
        keyword arguments (``add_node(MyNode, "n", x=1)``); keywords win.
        """
        # Kailash legacy order add_node("id", NodeClass, ...): accept it, it is unambiguous.
        if isinstance(node_type, str) and isinstance(node_id, type) and issubclass(node_id, Node):
            node_type, node_id = node_id, node_type
        if not isinstance(node_id, str) or not node_id:
            raise WorkflowError(f"node id must be a non-empty string, not {node_id!r}: "
                                f"add_node(node_type, node_id, params)")
        if node_id in self._nodes:
            raise WorkflowError(f"duplicate node id {node_id!r}; every node in a workflow needs its own id")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            raise WorkflowError(f"params for node {node_id!r} must be a dict, not {type(params).__name__}")
        if kwargs:
            params = {**params, **kwargs}
        cls = self._resolve(node_type, node_id, params)
        if isinstance(node_type, Node):
            params = {**node_type.config, **params}
        self._nodes[node_id] = (cls, _copy_containers(params))
        self._deps[node_id] = set()
        self._built = None
        return node_id

    @staticmethod
    def _resolve(node_type: Any, node_id: str, params: dict) -> type:
        if isinstance(node_type, type):
            if issubclass(node_type, Node):
                return node_type
            raise WorkflowError(f"node {node_id!r}: {node_type.__name__} is not a dataflow Node subclass")
        if isinstance(node_type, Node):
            return type(node_type)
        if isinstance(node_type, str):
            db = params.get("db_instance")
            if db is not None and not isinstance(db, str):
                db = getattr(db, "name", None)  # a DataFlow instance: resolve by its name
            return registry.resolve(node_type, db)
        raise WorkflowError(f"node {node_id!r}: node type must be a type name or a Node subclass, "
                            f"not {type(node_type).__name__}")

    # -- connections -------------------------------------------------------------------------
    def add_connection(self, from_node: str, from_output: str, to_node: str, to_input: str) -> "WorkflowBuilder":
        """Feed ``from_node``'s output ``from_output`` into ``to_node``'s parameter ``to_input``.

        ``from_output`` may be a dotted path into the result (``"records.0.id"``) or ``"*"`` for
        the whole result dict; ``to_input`` may be dotted (``"filter.id"``) or ``"*"`` (spread a
        dict into the parameters).  Connection values override static and runtime parameters.
        """
        for label, value in (("from_output", from_output), ("to_input", to_input)):
            if not isinstance(value, str) or (value != WHOLE and "" in value.split(".")):
                raise WorkflowError(f"{label} must be a non-empty output/parameter name or dotted path, "
                                    f"not {value!r}")
        for label, nid in (("source", from_node), ("target", to_node)):
            if nid not in self._nodes:
                hint = ""
                if from_output in self._nodes and to_node not in self._nodes:
                    hint = (f"; the arguments are (from_node, from_output, to_node, to_input): did you mean "
                            f"add_connection({from_node!r}, {to_node!r}, {from_output!r}, {to_input!r})?")
                known = ", ".join(map(repr, self._nodes)) or "(none yet)"
                raise WorkflowError(f"connection {from_node}.{from_output} -> {to_node}.{to_input}: "
                                    f"unknown {label} node {nid!r} (nodes: {known}){hint}")
        if from_node == to_node:
            raise WorkflowError(f"node {from_node!r} cannot be connected to itself")
        for c in self._connections:
            if c.to_node == to_node and c.to_input == to_input and to_input != WHOLE:
                raise WorkflowError(f"parameter {to_input!r} of node {to_node!r} is already fed by "
                                    f"{c.describe()}; a parameter takes one connection")
        path = self._path(to_node, from_node)
        if path:
            cycle = " -> ".join(path + [to_node])
            raise WorkflowError(f"connection {from_node}.{from_output} -> {to_node}.{to_input} would "
                                f"create a cycle ({cycle}); workflows must be acyclic")
        cls = self._nodes[to_node][0]
        head = to_input.split(".", 1)[0]
        if getattr(cls, "strict", False) and to_input != WHOLE and head not in cls.parameters:
            raise WorkflowError(f"node {to_node!r} ({cls.node_type()}) has no parameter {head!r}; "
                                f"valid parameters: {', '.join(sorted(cls.parameters))}")
        self._connections.append(Connection.make(from_node, from_output, to_node, to_input))
        self._deps[to_node].add(from_node)
        self._built = None
        return self

    def connect(self, from_node: str, to_node: str, mapping: dict | None = None, *,
                from_output: str | None = None, to_input: str | None = None) -> "WorkflowBuilder":
        """Connect two nodes with ``mapping={output_path: input_name, ...}``.

        With no mapping (and no ``from_output``/``to_input``) the whole result dict is spread
        into the target's parameters (``{"*": "*"}``), so ``connect("create", "read")`` hands
        ``id`` (and every other key) to ``read``.
        """
        if mapping is None:
            src = from_output or WHOLE
            mapping = {src: to_input or src}
        elif not isinstance(mapping, dict) or not mapping:
            raise WorkflowError("connect(...) mapping must be a non-empty dict {output: input}")
        for out, inp in mapping.items():
            self.add_connection(from_node, out, to_node, inp)
        return self

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A dependency path start -> ... -> goal along existing connections, if any."""
        dependents: dict[str, list[str]] = {}
        for c in self._connections:
            dependents.setdefault(c.from_node, []).append(c.to_node)
        stack = [(start, [start])]
        seen = {start}
        while stack:
            node, path = stack.pop()
            if node == goal:
                return path
            for nxt in dependents.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    # -- build -------------------------------------------------------------------------------
    def build(self, workflow_id: str | None = None, name: str | None = None) -> Workflow:
        """Return a new immutable ``Workflow``; later builder edits never affect it."""
        ids = list(self._nodes)
        deps = self._implicit_scope_deps(ids)
        order = topological_order(ids, deps)
        incoming: dict[str, list[Connection]] = {n: [] for n in ids}
        dependents: dict[str, list[str]] = {n: [] for n in ids}
        for c in self._connections:
            incoming[c.to_node].append(c)
            if c.to_node not in dependents[c.from_node]:
                dependents[c.from_node].append(c.to_node)
        for nid in ids:
            for d in deps[nid]:
                if nid not in dependents[d]:
                    dependents[d].append(nid)
        specs = []
        for nid in order:
            cls, params = self._nodes[nid]
            params = _copy_containers(params)
            templates, names = compile_params(params)
            # Spreads first, whole parameters next, nested paths last: the most specific wins.
            conns = sorted(incoming[nid], key=lambda c: len(c.to_path))
            specs.append(NodeSpec(
                node_id=nid, node_class=cls, _params=params,
                dependencies=frozenset(deps[nid]), incoming=tuple(conns),
                dependents=tuple(dependents[nid]), templates=templates, template_inputs=names,
                connected_keys=frozenset(c.to_path[0] for c in conns if len(c.to_path) == 1)))
        wid = workflow_id or self.workflow_id or f"workflow-{next(_ids)}"
        return Workflow(specs, tuple(self._connections), wid, name or self.name)

    def _implicit_scope_deps(self, ids: list) -> dict:
        """Dependencies plus the implicit ones of an unconnected transaction scope: every database
        node added after it depends on it (so it runs after the scope, inside its transaction)."""
        deps = self._deps
        sources = {c.from_node for c in self._connections}
        scopes = [i for i, n in enumerate(ids)
                  if getattr(self._nodes[n][0], "scope_for_later_nodes", False) and n not in sources]
        if not scopes:
            return deps
        deps = {n: set(d) for n, d in deps.items()}
        for i in scopes:
            for later in ids[i + 1:]:
                if getattr(self._nodes[later][0], "database_node", False):
                    deps[later].add(ids[i])
        return deps

    def _cached_build(self) -> Workflow:
        if self._built is None:
            self._built = self.build()
        return self._built

    def __repr__(self) -> str:
        return f"WorkflowBuilder(nodes={list(self._nodes)!r}, connections={len(self._connections)})"
