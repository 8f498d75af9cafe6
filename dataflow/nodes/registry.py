"""Node type name -> node class, across DataFlow instances and built-in/custom nodes, and the
registry of live DataFlow instances by name (what ``db_instance`` names).

Generated model nodes are registered per DataFlow instance (its ``name``); two instances may
both have ``UserCreateNode``.  ``resolve`` picks the one named by ``db_instance`` when given;
without it a name defined by more than one open instance is refused (picking one silently sent
writes to the wrong database).  Unknown names get a did-you-mean ``WorkflowError``.
Both registries live here, below the engine, so nodes resolve instances without importing it.
"""

from __future__ import annotations

import difflib
import re
import weakref

from ..errors import WorkflowError

# name -> list of (owner name, weakref to class); newest last.
_REGISTRY: dict[str, list[tuple[str | None, "weakref.ref"]]] = {}
_ALIASES = {"GetNode": "ReadNode"}
_TX = "dataflow.nodes.transaction_nodes"
#: Built-in nodes whose module is imported on first use (keeps `import dataflow` light).
_BUILTIN_MODULES = {"VectorSearchNode": "dataflow.vector.nodes", "CreateVectorIndexNode": "dataflow.vector.nodes",
                    "TransactionScopeNode": _TX, "TransactionContextNode": _TX, "TransactionCommitNode": _TX,
                    "TransactionRollbackNode": _TX, "TransactionSavepointNode": _TX,
                    "TransactionRollbackToSavepointNode": _TX,
                    **{n: "dataflow.nodes.mongodb_nodes" for n in (
                        "DocumentInsertNode", "DocumentFindNode", "DocumentUpdateNode", "DocumentDeleteNode",
                        "AggregateNode", "MongoAggregateNode", "BulkDocumentInsertNode", "CreateIndexNode",
                        "DocumentCountNode")}}

#: open DataFlow instances by name (weak: a dropped instance disappears)
LIVE: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()


def claim_name(name: str, db, explicit: bool) -> str:
    """Register ``db`` under ``name`` (made unique with ``#2``, ``#3`` ... unless the user chose
    it explicitly: an explicit ``name=`` is theirs to reuse, a re-created instance takes it over)."""
    if name in LIVE and LIVE[name] is not db and not explicit:
        i = 2
        while f"{name}#{i}" in LIVE:
            i += 1
        name = f"{name}#{i}"
    LIVE[name] = db
    return name


def release_name(name: str, db) -> None:
    if LIVE.get(name) is db:
        del LIVE[name]


def register(cls: type, name: str | None = None, owner: str | None = None) -> None:
    """Make ``cls`` resolvable as ``name`` (default: its node type); ``owner`` is a db name."""
    name = name or cls.node_type()
    entries = [(o, r) for (o, r) in _REGISTRY.get(name, []) if r() is not None and o != owner]
    entries.append((owner, weakref.ref(cls)))
    _REGISTRY[name] = entries


def unregister_owner(owner: str) -> None:
    """Forget every node registered by DataFlow instance ``owner``."""
    for name in list(_REGISTRY):
        kept = [(o, r) for (o, r) in _REGISTRY[name] if o != owner and r() is not None]
        if kept:
            _REGISTRY[name] = kept
        else:
            del _REGISTRY[name]


def _lookup(name: str, db_instance: str | None):
    entries = [(o, r()) for (o, r) in _REGISTRY.get(name, ())]
    entries = [(o, c) for (o, c) in entries if c is not None]
    if not entries:
        return None
    if db_instance is not None:
        for o, c in reversed(entries):
            if o == db_instance:
                return c
        # built-in nodes (owner None) serve every instance
        for o, c in reversed(entries):
            if o is None:
                return c
        return None
    owners = _live_owners(entries)
    if len(owners) > 1:
        import gc

        # an instance nobody references any more (kept only by its db <-> table cycle) must not
        # count: collect it, holding no strong reference to its node classes meanwhile
        del entries
        gc.collect()
        entries = [(o, c) for (o, r) in _REGISTRY.get(name, ()) if (c := r()) is not None]
        owners = _live_owners(entries)
        if not entries:
            return None
        if len(owners) > 1:
            raise WorkflowError(
                f"node type {name!r} is defined by {len(owners)} open DataFlow instances ({', '.join(owners)}); "
                f"pass db_instance (e.g. add_node({name!r}, node_id, {{..., 'db_instance': {owners[-1]!r}}})) "
                f"to say which database the node uses")
    last_owner, cls = entries[-1]
    if owners and last_owner not in LIVE:  # the newest is a dropped instance's: take the open one
        cls = next(c for o, c in reversed(entries) if o in LIVE)
    return cls


def _live_owners(entries) -> list[str]:
    """Distinct owners of ``entries`` that are open instances (closed ones left LIVE), oldest first."""
    out: list[str] = []
    for o, _c in entries:
        if o is not None and o in LIVE and o not in out:
            out.append(o)
    return out


def known_names() -> list[str]:
    live = {n for n, entries in _REGISTRY.items() if any(r() is not None for _, r in entries)}
    return sorted(live | set(_BUILTIN_MODULES))


def resolve(name: str, db_instance: str | None = None) -> type:
    """Return the node class for ``name`` or raise ``WorkflowError`` with close matches."""
    if not isinstance(name, str) or not name:
        raise WorkflowError(f"node type must be a non-empty string or a Node class, not {name!r}")
    cls = _lookup(name, db_instance)
    if cls is None and name in _BUILTIN_MODULES:
        import importlib

        importlib.import_module(_BUILTIN_MODULES[name])
        cls = _lookup(name, db_instance)
    if cls is None:
        for alias, target in _ALIASES.items():
            if name.endswith(alias):
                cls = _lookup(name[: -len(alias)] + target, db_instance)
                if cls is not None:
                    break
    if cls is not None:
        return cls
    if db_instance is not None and _lookup(name, None) is not None:
        owners = sorted({str(o) for o, r in _REGISTRY.get(name, ()) if r() is not None})
        raise WorkflowError(
            f"no DataFlow instance named {db_instance!r} defines {name}; it is defined by {', '.join(owners)}. "
            f"Give the instance that name with DataFlow(..., name={db_instance!r}) or drop db_instance")
    names = known_names()
    # Compare on a normalised form so "User_Create" finds "UserCreateNode".
    norm = {re.sub(r"[^a-z0-9]", "", n.lower()).removesuffix("node"): n for n in names}
    key = re.sub(r"[^a-z0-9]", "", name.lower()).removesuffix("node")
    close = [norm[k] for k in difflib.get_close_matches(key, list(norm), n=3, cutoff=0.6)]
    if not close:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    where = f" for db_instance {db_instance!r}" if db_instance is not None else ""
    hint = f"; did you mean {' or '.join(close)}?" if close else (
        "; define the model with @db.model first (nodes are named <Model>CreateNode, <Model>ListNode, ...)")
    raise WorkflowError(f"unknown node type {name!r}{where}{hint}")
