"""The well-known project, measured in the same run: ``kailash-dataflow`` in its own venv.

Both projects import as ``dataflow``, so each side runs the same child script in a subprocess:
ours with the repository on ``sys.path``, the peer from ``benchmarks/.peer-venv`` (created on
first use with ``pip install kailash-dataflow aiosqlite``) in an empty working directory.  Anything that
fails -- no network, an install error, an API that behaves differently -- becomes a skipped or
failed row with the reason; nothing here is allowed to stop the runner.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

try:
    from .timing import row
except ImportError:  # pragma: no cover
    from timing import row

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_VENV = HERE / ".peer-venv"
PEER_DIST = "kailash-dataflow"
# its SQLite path needs aiosqlite, an optional dependency it does not pull in itself
PEER_INSTALL = (PEER_DIST, "aiosqlite")
OURS, THEIRS = "DataFlow (this project)", "kailash-dataflow (peer venv)"
G_IMPORT = "peer: import dataflow (fresh interpreter)"
G_CREATE = "peer: one-node create workflow (SQLite file)"
G_BULK = "peer: bulk create 10,000 rows via UserBulkCreateNode (SQLite file)"

# Runs in either environment; argv: side ("ours"|"peer"), repetitions, bulk rows, bulk repetitions.
# Prints one JSON line prefixed with RESULT= (the peer logs freely on stdout).
CHILD = r'''
import json, os, sqlite3, statistics, sys, tempfile, time, traceback
side, reps, bulk_n, bulk_reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = {}
t0 = time.perf_counter()
from dataflow import DataFlow
out["version"] = getattr(sys.modules["dataflow"], "__version__", "?")
if side == "peer":
    from kailash.workflow.builder import WorkflowBuilder
    from kailash.runtime.local import LocalRuntime
else:
    from dataflow import LocalRuntime, WorkflowBuilder
tmp = tempfile.mkdtemp(prefix="df-peer-")

def make_db(fname):
    path = os.path.join(tmp, fname)
    db = DataFlow(f"sqlite:///{path}")
    @db.model
    class User:
        name: str
        email: str
        age: int = 0
    return db, path

def count(path):
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        t = next((t for t in tables if t.lower() in ("users", "user")), None)
        return con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] if t else f"no users table (tables: {tables})"
    finally:
        con.close()

def results_of(ret):
    return ret[0] if isinstance(ret, tuple) else ret

def create_case():
    db, path = make_db("create.db")
    rt = LocalRuntime()
    def once(i):
        wf = WorkflowBuilder()
        wf.add_node("UserCreateNode", "c", {"name": f"u{i}", "email": f"u{i}@example.com", "age": i % 90})
        res = results_of(rt.execute(wf.build()))
        r = res["c"]
        if not isinstance(r, dict) or r.get("error") or r.get("success") is False:
            raise RuntimeError(f"UserCreateNode returned {r!r}"[:300])
        return r
    t = time.perf_counter(); once(0); first = time.perf_counter() - t
    ts = []
    for i in range(1, reps + 1):
        t = time.perf_counter(); once(i); ts.append(time.perf_counter() - t)
    getattr(rt, "close", lambda: None)()
    n = count(path)
    if n != reps + 1:
        raise RuntimeError(f"expected {reps + 1} rows in the SQLite file after the runs, found {n}")
    return {"median_s": statistics.median(ts), "first_s": first}

def bulk_case():
    db, path = make_db("bulk.db")
    rt = LocalRuntime()
    # one small run first so table creation and first-use costs are not in the timing
    wf = WorkflowBuilder()
    wf.add_node("UserBulkCreateNode", "w", {"data": [{"name": "w", "email": "w@example.com", "age": 1}]})
    results_of(rt.execute(wf.build()))
    ts = []
    for r in range(bulk_reps):
        rows = [{"name": f"u{r}-{i}", "email": f"u{r}-{i}@example.com", "age": i % 90} for i in range(bulk_n)]
        wf = WorkflowBuilder()
        wf.add_node("UserBulkCreateNode", "b", {"data": rows})
        g = wf.build()
        t = time.perf_counter(); res = results_of(rt.execute(g)); ts.append(time.perf_counter() - t)
        n = count(path)
        if n != (r + 1) * bulk_n + 1:
            raise RuntimeError(f"expected {(r + 1) * bulk_n + 1} rows after bulk create, found {n}; node "
                               f"returned {str(res.get('b'))[:200]}")
    getattr(rt, "close", lambda: None)()
    return {"median_s": statistics.median(ts), "reps": bulk_reps}

for name, fn in (("create", create_case), ("bulk", bulk_case)):
    try:
        out[name] = fn()
    except BaseException as exc:
        out[name] = {"error": " ".join(f"{type(exc).__name__}: {exc}".split())[:400],
                     "trace": traceback.format_exc()[-1500:]}
print("RESULT=" + json.dumps(out), flush=True)
'''


def _peer_python() -> tuple[Path | None, str]:
    """The peer venv's interpreter, creating and installing it on first use; or (None, reason)."""
    py = PEER_VENV / "bin" / "python"
    ok = PEER_VENV / ".installed"
    if ok.exists() and py.exists():
        return py, ""
    try:
        if not py.exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(PEER_VENV)
        res = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_INSTALL],
                             capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not create the peer venv: {type(exc).__name__}: {exc}"
    if res.returncode != 0:
        tail = " ".join([ln for ln in res.stderr.splitlines() if "WARNING" not in ln][-3:])
        return None, f"pip install {PEER_DIST} failed (rc {res.returncode}): {tail[:300]}"
    ok.write_text(" ".join(PEER_INSTALL) + "\n")
    return py, ""


def _env(side: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if side == "ours":
        env["PYTHONPATH"] = str(ROOT)
    return env


def _import_time(py: str, side: str, repeats: int, cwd: str) -> float:
    env = _env(side)
    samples: dict[str, list[float]] = {"pass": [], "import": []}
    for code in ("pass", "import dataflow"):
        subprocess.run([py, "-c", code], env=env, cwd=cwd, check=True, capture_output=True, timeout=120)
    for r in range(repeats):
        order = [("pass", "pass"), ("import", "import dataflow")]
        for name, code in (reversed(order) if r % 2 else order):
            t0 = time.perf_counter()
            subprocess.run([py, "-c", code], env=env, cwd=cwd, check=True, capture_output=True, timeout=120)
            samples[name].append(time.perf_counter() - t0)
    return statistics.median(samples["import"]) - statistics.median(samples["pass"])


def _child(py: str, side: str, reps: int, bulk_n: int, bulk_reps: int, cwd: str) -> dict:
    res = subprocess.run([py, "-c", CHILD, side, str(reps), str(bulk_n), str(bulk_reps)], env=_env(side), cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    for line in reversed(res.stdout.splitlines()):
        if line.startswith("RESULT="):
            return json.loads(line[len("RESULT="):])
    tail = " ".join((res.stderr or res.stdout).strip().splitlines()[-3:])
    raise RuntimeError(f"child exited {res.returncode} without a result: {tail[:400]}")


def _side(py: str | None, side: str, reason: str, quick: bool, cwd: str) -> dict:
    """{"import": s | error str, "create": {...}, "bulk": {...}} for one side."""
    if py is None:
        return {"skipped": reason}
    out: dict = {}
    try:
        out["import"] = _import_time(py, side, 5 if quick else 12, cwd)
    except Exception as exc:
        out["import"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        out.update(_child(py, side, 20 if quick else 100, 10_000, 1 if quick else 3, cwd))
    except Exception as exc:
        out["create"] = out["bulk"] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
    return out


def _rows(group: str, ours, theirs, what: str) -> list[dict]:
    """Baseline: this project; ratio = peer / ours (how many times slower the peer is)."""
    def one(case, res, baseline, note):
        if isinstance(res, (int, float)):
            return row(group, case, float(res), baseline, note)
        if isinstance(res, dict) and "median_s" in res:
            extra = f"first call {res['first_s'] * 1e3:.1f} ms" if "first_s" in res else (
                f"median of {res['reps']} runs" if "reps" in res else "")
            return row(group, case, res["median_s"], baseline, "; ".join(x for x in (note, extra) if x))
        status = "skipped" if isinstance(res, dict) and "skipped" in res else "failed"
        msg = res.get("skipped") or res.get("error") if isinstance(res, dict) else str(res)
        return row(group, case, None, baseline, f"{status}: {msg}", status=status)
    theirs_row = one(THEIRS, theirs, OURS, "")
    theirs_row["peer"] = True   # the chart labels it "peer N× slower/faster", not as our ratio
    return [one(OURS, ours, None, what), theirs_row]


def run(quick: bool) -> list[dict]:
    py, reason = _peer_python()
    with tempfile.TemporaryDirectory(prefix="df-peer-cwd-") as cwd:
        ours = _side(sys.executable, "ours", "", quick, cwd)
        theirs = _side(str(py) if py else None, "peer", reason, quick, cwd)
    if "skipped" in theirs:
        theirs = {k: theirs for k in ("import", "create", "bulk")}
    version = theirs.get("version", "?")
    out = []
    out += _rows(G_IMPORT, ours.get("import"), theirs.get("import"), "interpreter start subtracted")
    out += _rows(G_CREATE, ours.get("create"), theirs.get("create"),
                 "build + LocalRuntime.execute per call, same runtime object")
    out += _rows(G_BULK, ours.get("bulk"), theirs.get("bulk"), "10,000 rows per workflow run, after a 1-row warm-up run; row counts checked in the file")
    for r in out:
        if r["case"] == THEIRS and r["median_s"] is not None:
            r["note"] = f"kailash-dataflow {version}" + (f"; {r['note']}" if r["note"] else "")
    for side, res in (("ours", ours), ("peer", theirs)):
        for k in ("create", "bulk"):
            if isinstance(res.get(k), dict) and res[k].get("trace"):
                print(f"[peers] {side} {k} failed:\n{res[k]['trace']}", file=sys.stderr)
    return out


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
