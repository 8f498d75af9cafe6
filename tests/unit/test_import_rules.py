"""The shape of the house, checked from the source (nothing imported): imports point down the
layers, no module circles, nothing below the engine imports it, no raw driver connection or
driver-error translation outside ``drivers/``, no dialect-name tests outside ``dialects/`` and
``drivers/``, and no SQL written as f-strings outside ``dialects/`` and the statement layer."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PKG = ROOT / "dataflow"

#: floors, bottom first: a module may import its own floor or lower ones only
LAYERS = [
    {"dataflow._native", "dataflow.errors", "dataflow.types"},
    {"dataflow.config", "dataflow.pools", "dataflow.models", "dataflow.dialects", "dataflow._loop", "dataflow.sessions",
     "dataflow.tenancy"},
    {"dataflow.statements", "dataflow.drivers", "dataflow.monitoring", "dataflow.cache"},
    {"dataflow.ops", "dataflow.query", "dataflow.bulk", "dataflow.vector.search", "dataflow.vector.setup",
     "dataflow.vector.pgcodec", "dataflow.vector.adapter", "dataflow.migrations", "dataflow.store",
     "dataflow.documents"},
    # node modules, and the vector package's public face (it re-exports its nodes)
    {"dataflow.nodes", "dataflow.workflow", "dataflow.express", "dataflow.adapters", "dataflow.vector",
     "dataflow.vector.nodes", "dataflow.testing.helpers",
     # the fabric receives a DataFlow instance and never imports the engine, which delegates to it
     "dataflow.fabric"},
    {"dataflow.engine"},
    {"dataflow", "dataflow.cli", "dataflow.testing", "dataflow.demo", "dataflow.__main__"},
]


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


MODS = _modules()
TREES = {m: ast.parse(p.read_text()) for m, p in MODS.items()}


def _targets(mod: str, node) -> list[str]:
    is_pkg = MODS[mod].name == "__init__.py"
    base = mod if is_pkg else mod.rsplit(".", 1)[0]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            parts = base.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            target = ".".join(parts + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        return [target] + [f"{target}.{a.name}" for a in node.names]
    return [a.name for a in node.names]


def _edges() -> dict[str, set]:
    edges = {m: set() for m in MODS}
    for m, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for t in _targets(m, node):
                    if t in MODS and t != m:
                        edges[m].add(t)
    return edges


EDGES = _edges()


def _floor(mod: str) -> int:
    best = None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            # "dataflow" names the package's own __init__ only, so a new module must be placed
            if mod == prefix or (prefix != "dataflow" and mod.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    assert best is not None, f"{mod} is on no floor: add it to LAYERS in this test"
    return best[0]


def test_every_module_has_a_floor():
    for m in MODS:
        _floor(m)


def test_imports_point_down():
    up = []
    for m, targets in EDGES.items():
        for t in targets:
            if t == "dataflow" or (m.startswith(t + ".") and MODS[t].name == "__init__.py"):
                continue  # a package's own __init__ (relative-import anchor), not a dependency
            if _floor(t) > _floor(m):
                up.append(f"{m} (floor {_floor(m)}) imports {t} (floor {_floor(t)})")
    assert not up, "upward imports:\n" + "\n".join(sorted(up))


def test_no_circles():
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in EDGES[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in MODS:
        if v not in index:
            strong(v)
    assert not comps, f"import circles: {comps}"


def test_nothing_below_the_engine_imports_it():
    below = [m for m, ts in EDGES.items() if "dataflow.engine" in ts and _floor(m) < _floor("dataflow.engine")]
    assert not below, below


RAW = re.compile(r"\.(copy_to_table|copy_records_to_table|copy_from_table)\(|\._con\b|\.raw_connection\(|"
                 r"\bimport (asyncpg|aiomysql|aiosqlite|pymysql)\b|from (asyncpg|aiomysql|aiosqlite|pymysql)\b|"
                 r"\bdrivers\.\w+ import translate\b|\bimport translate\b|\.con\.")


def test_drivers_own_every_connection():
    bad = [f"{m}: {hit.group(0)}" for m, p in MODS.items() if ".drivers" not in m
           for hit in [RAW.search(p.read_text())] if hit]
    assert not bad, "raw driver use outside dataflow/drivers/:\n" + "\n".join(bad)


def test_dialect_names_are_not_tested_outside_dialects_and_drivers():
    pat = re.compile(r"dialect(\.name)?\s*==\s*['\"](postgres|postgresql|mysql|sqlite|mongodb)")
    bad = [m for m, p in MODS.items() if not m.startswith(("dataflow.dialects", "dataflow.drivers"))
           and pat.search(p.read_text())]
    assert not bad, bad


_SQL = re.compile(r"(^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|SAVEPOINT|RELEASE|ROLLBACK|COPY|LOAD\s+DATA|"
                  r"PRAGMA|SET|BEGIN|COMMIT|KILL|WITH|TRUNCATE)\b)|\b(FROM|WHERE|ORDER BY|VALUES|RETURNING|LIMIT)\s")
_MESSAGES = re.compile(r"(Error|Exception|Warning|warn|warning|info|debug|error|exception|print|Failed)$")


def _sql_fstrings(tree) -> list[tuple[int, str]]:
    """f-strings whose literal text reads as SQL, leaving out exception, log and warning
    messages (they quote SQL words in prose)."""
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr):
            continue
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        if not _SQL.search(text):
            continue
        p = parents.get(node)
        while p is not None and not isinstance(p, ast.Call) and not isinstance(p, ast.stmt):
            p = parents.get(p)
        if isinstance(p, ast.Call):
            fn = p.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if _MESSAGES.search(name or ""):
                continue
        out.append((node.lineno, text[:80]))
    return out


def test_sql_is_built_only_in_dialects_and_the_statement_layer():
    bad = []
    for m, tree in TREES.items():
        if m.startswith(("dataflow.dialects", "dataflow.statements")):
            continue
        bad += [f"{MODS[m].relative_to(ROOT)}:{line}: {text!r}" for line, text in _sql_fstrings(tree)]
    assert not bad, "SQL in f-strings outside dialects/ and statements/:\n" + "\n".join(bad)


def test_the_sql_check_would_catch_a_regression():
    tree = ast.parse('sql = f"SELECT {cols} FROM {t} WHERE {w}"\nraise ValueError(f"UPDATE {x} failed")\n')
    assert [line for line, _ in _sql_fstrings(tree)] == [1]


@pytest.mark.parametrize("name", ["_native"])
def test_the_compiled_core_is_imported_from_the_package(name):
    pat = re.compile(rf"^\s*(import {name}\b|from {name}\b)", re.M)
    bad = [m for m, p in MODS.items() if pat.search(p.read_text())]
    assert not bad, bad
