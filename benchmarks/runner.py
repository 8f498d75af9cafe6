"""``python -m benchmarks``: discover ``bench_*.py``, run each, print and save the ratio table.

Each module runs in its own subprocess by default (``--in-process`` to share one), so a crash,
a hang or a leaked loop in one module cannot stop or skew the others; a module that raises, or
whose server is unreachable, becomes a skipped/failed row with the reason.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

from . import report
from .timing import is_unreachable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_JSON = HERE / "results" / "latest.json"
DEFAULT_PNG = HERE / "results" / "latest.png"
KEYS = ("group", "case", "median_s", "baseline", "note")


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": cpu or platform.processor() or platform.machine(), "cores": usable,
            "logical_cpus": os.cpu_count(), "python": platform.python_version(),
            "implementation_python": platform.python_implementation(),
            "platform": f"{platform.system()} {platform.release()}"}


def _check_rows(name: str, rows) -> list[dict]:
    if not isinstance(rows, list):
        raise TypeError(f"{name}.run() must return a list of dicts, got {type(rows).__name__}")
    out = []
    for r in rows:
        if not isinstance(r, dict) or any(k not in r for k in KEYS[:3]):
            raise TypeError(f"{name}.run() returned a row without {KEYS}: {r!r}"[:300])
        r = dict(r)
        r.setdefault("baseline", None)
        r["note"] = r.get("note") or ""
        if r["median_s"] is not None:
            r["median_s"] = float(r["median_s"])
        r.setdefault("status", "ok" if r["median_s"] is not None else "failed")
        r["module"] = name
        out.append(r)
    return out


def _outcome(exc: BaseException) -> tuple[str, str]:
    status = "skipped" if is_unreachable(exc) else "failed"
    return status, " ".join(f"{type(exc).__name__}: {exc}".split())[:400]


def run_module(name: str, quick: bool) -> tuple[list[dict], dict]:
    """Import and run one module here; returns (rows, module info)."""
    t0 = time.perf_counter()
    try:
        if name == "peers":
            from . import peers as mod
        else:
            mod = importlib.import_module(f"{__package__}.{name}")
        rows = _check_rows(name, mod.run(quick))
    except BaseException as exc:  # a module must never stop the runner
        if isinstance(exc, KeyboardInterrupt):
            raise
        status, reason = _outcome(exc)
        print(f"[benchmarks] {name}: {status}: {reason}\n{traceback.format_exc()[-2000:]}", file=sys.stderr)
        return [], {"status": status, "reason": reason, "seconds": time.perf_counter() - t0}
    return rows, {"status": "ok", "seconds": time.perf_counter() - t0}


def run_isolated(name: str, quick: bool, timeout: float) -> tuple[list[dict], dict]:
    """Run one module in a child interpreter (python -m benchmarks.runner --child NAME)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", f"{__package__}.runner", "--child", name] + (["--quick"] if quick else [])
    try:
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], {"status": "failed", "reason": f"timed out after {timeout:.0f} s",
                    "seconds": time.perf_counter() - t0}
    if res.stderr.strip():
        sys.stderr.write(res.stderr)
    for line in reversed(res.stdout.splitlines()):
        if line.startswith("RESULT="):
            doc = json.loads(line[len("RESULT="):])
            doc["info"]["seconds"] = time.perf_counter() - t0
            return doc["rows"], doc["info"]
    tail = " ".join(res.stderr.strip().splitlines()[-2:])[:400]
    return [], {"status": "failed", "reason": f"child exited {res.returncode} without results: {tail}",
                "seconds": time.perf_counter() - t0}


def _child(name: str, quick: bool) -> int:
    rows, info = run_module(name, quick)
    sys.stdout.flush()
    print("RESULT=" + json.dumps({"rows": rows, "info": info}, default=str), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and rows; whole suite < 1 min")
    ap.add_argument("--only", action="append", default=[], metavar="SUBSTR",
                    help="run only modules whose name contains SUBSTR (repeatable)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON.relative_to(ROOT)}")
    ap.add_argument("--png", type=Path, default=DEFAULT_PNG, help=f"default {DEFAULT_PNG.relative_to(ROOT)}")
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--peers", action="store_true", help="also measure kailash-dataflow in its own venv")
    ap.add_argument("--in-process", action="store_true", help="run modules in this process, not one child each")
    ap.add_argument("--from-json", type=Path, help="re-print the table of a saved run and exit")
    ap.add_argument("--list", action="store_true", help="list the modules and exit")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        return _child(args.child, args.quick)
    if args.from_json:
        print(report.markdown(json.loads(args.from_json.read_text())))
        return 0
    names = discover() + (["peers"] if args.peers else [])
    if args.only:
        names = [n for n in names if any(s in n for s in args.only)]
    if args.list:
        print("\n".join(names))
        return 0
    if not names:
        print(f"no benchmark module matches {args.only}", file=sys.stderr)
        return 2

    from dataflow import _native

    started = _dt.datetime.now().astimezone()
    results: list[dict] = []
    modules: dict[str, dict] = {}
    for name in names:
        print(f"[benchmarks] running {name} ...", file=sys.stderr, flush=True)
        if args.in_process:
            rows, info = run_module(name, args.quick)
        else:
            timeout = (1800 if name == "peers" else 120) if args.quick else 3600
            rows, info = run_isolated(name, args.quick, timeout)
        modules[name] = info
        print(f"[benchmarks] {name}: {info['status']} in {info['seconds']:.1f} s", file=sys.stderr, flush=True)
        if info["status"] != "ok":
            rows = [{"group": name, "case": "(whole module)", "median_s": None, "baseline": None,
                     "note": f"{info['status']}: {info.get('reason', '')}", "status": info["status"], "module": name}]
        results.extend(rows)
    report.add_ratios(results)
    doc = {"machine": machine(), "date": started.isoformat(timespec="seconds"),
           "implementation": _native.IMPLEMENTATION, "reason": _native.REASON, "quick": args.quick,
           "argv": sys.argv[1:], "seconds": (_dt.datetime.now().astimezone() - started).total_seconds(),
           "modules": modules, "results": results}
    print(report.markdown(doc))
    report.write_json(doc, args.json)
    print(f"\nJSON: {args.json}", end="")
    if not args.no_png:
        note = report.write_png(doc, args.png)
        print(f"; PNG: {note or args.png}", end="")
    print(f"; total {doc['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
