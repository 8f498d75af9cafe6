"""``dataflow load URL Model FILE --module app.models`` and ``dataflow export URL Model FILE ...``.

How the CLI finds the models (first match wins):
1. the module defines ``define(db)``: it is called with a ``DataFlow(URL)`` and declares the
   models on it (``@db.model`` inside) -- the recommended shape, the URL stays the CLI's;
2. the module has a DataFlow named ``db``: its model classes are declared again on
   ``DataFlow(URL)`` (so the module's own URL is never used);
3. otherwise every class in the module that is already a DataFlow model is declared on it.
"""

from __future__ import annotations

import asyncio
import importlib
import sys


def _models_db(url, module_name):
    from ..engine import DataFlow

    db = DataFlow(url)
    if not module_name:
        raise SystemExit("dataflow: pass --module (a module with define(db), a DataFlow `db`, or model classes)")
    sys.path.insert(0, "")
    mod = importlib.import_module(module_name)
    if callable(getattr(mod, "define", None)):
        mod.define(db)
        return db
    src = getattr(mod, "db", None)
    if src is not None and hasattr(src, "_models"):
        classes = [info.cls for info in src._models.values()]
    else:
        classes = [v for v in vars(mod).values() if isinstance(v, type) and hasattr(v, "__dataflow_model__")]
    for cls in classes:
        db.model(cls)
    return db


async def _run(args, op) -> int:
    from ..errors import DataFlowError

    db = _models_db(args.url, args.module)
    progress = True if args.progress else (False if args.quiet else None)
    try:
        if op == "load":
            opts = {"progress": progress}
            if args.batch_size:
                opts["batch_size"] = args.batch_size
            if args.conflict:
                opts["conflict_resolution"] = args.conflict
            if args.format:
                opts["format"] = args.format
            rep = await db.load(args.model, args.file, **opts)
            print(f"loaded {rep['rows']:,} rows into {args.model} in {rep['seconds']:.2f}s "
                  f"({rep['rows_per_second']:,.0f} rows/s, path {rep['path']}, skipped {rep['skipped']})")
        else:
            rep = await db.export(args.model, args.file, progress=progress, format=args.format)
            print(f"exported {rep['rows']:,} rows of {args.model} to {rep['path']} in {rep['seconds']:.2f}s")
        return 0
    except DataFlowError as exc:
        idx = getattr(exc, "failed_index", None)
        print(f"dataflow {op}: {exc}" + (f" [failed_index={idx}]" if idx is not None else ""), file=sys.stderr)
        return 1
    finally:
        await db.close_async()


def register(subparsers) -> None:
    for op, help_ in (("load", "bulk-load a CSV/TSV/JSONL(.gz) file into a model's table"),
                      ("export", "write a model's rows to CSV/TSV/JSONL(.gz)/Parquet")):
        p = subparsers.add_parser(op, help=help_)
        p.add_argument("url", help="database URL")
        p.add_argument("model", help="model name")
        p.add_argument("file", help="input file" if op == "load" else "output file")
        p.add_argument("--module", "-m", required=True,
                       help="module that defines the models: define(db), a DataFlow `db`, or model classes")
        p.add_argument("--format", default=None, help="csv, tsv, jsonl" + (", parquet" if op == "export" else ""))
        if op == "load":
            p.add_argument("--batch-size", type=int, default=None, help="rows per chunk")
            p.add_argument("--conflict", choices=("error", "skip", "update"), default=None)
        p.add_argument("--progress", action="store_true", help="show the progress bar even when not a terminal")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
        p.set_defaults(func=lambda args, op=op: asyncio.run(_run(args, op)))
