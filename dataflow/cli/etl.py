"""``dataflow load URL Model FILE --module app.models`` (or ``dataflow load URL FILE --table
NAME``: a model made from the existing table) and ``dataflow export URL Model FILE ...``.
How ``--module`` is read: ``dataflow.cli.modules``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .modules import check_database_exists, model_for_table, open_db

EPILOGS = {
    "load": """examples:
  dataflow load sqlite:///app.db Person people.csv --module app.models
  dataflow load postgresql://postgres@127.0.0.1/test Person people.jsonl.gz -m app.models --conflict skip
  dataflow load sqlite:///app.db people.csv --table people     # no module: columns from the table""",
    "export": """examples:
  dataflow export sqlite:///app.db Person people.csv --module app.models
  dataflow export postgresql://postgres@127.0.0.1/test Person people.parquet -m app.models""",
}


async def _open(args):
    if getattr(args, "table", None):
        from ..engine import DataFlow

        check_database_exists(args.url)
        db = DataFlow(args.url, auto_migrate=False)
        try:
            return db, await model_for_table(db, args.table)
        except BaseException:
            await db.close_async()
            raise
    return open_db(args.url, args.module), args.model


async def _run(args, op) -> int:
    from ..errors import DataFlowError

    try:
        db, model = await _open(args)
    except DataFlowError as exc:
        print(f"dataflow {op}: {exc}", file=sys.stderr)
        return 1
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
            rep = await db.load(model, args.file, **opts)
            print(f"loaded {rep['rows']:,} rows into {model} in {rep['seconds']:.2f}s "
                  f"({rep['rows_per_second']:,.0f} rows/s, path {rep['path']}, skipped {rep['skipped']})")
        else:
            rep = await db.export(model, args.file, progress=progress, format=args.format)
            print(f"exported {rep['rows']:,} rows of {model} to {rep['path']} in {rep['seconds']:.2f}s")
        return 0
    except DataFlowError as exc:
        idx = getattr(exc, "failed_index", None)
        print(f"dataflow {op}: {exc}" + (f" [failed_index={idx} (0-based)]" if idx is not None else ""),
              file=sys.stderr)
        return 1
    finally:
        await db.close_async()


def _check(parser, args):
    """``load URL FILE --table NAME`` has no model positional; everything else needs one."""
    if getattr(args, "table", None):
        if args.module:
            parser.error("pass --module or --table, not both")
        if args.file is None:
            args.file, args.model = args.model, None
        elif args.model is not None:
            parser.error("with --table, pass only URL and FILE")
    elif not args.module:
        parser.error("pass --module (a module defining the models)"
                     + (" or --table (an existing table)" if hasattr(args, "table") else ""))
    if args.file is None or (args.model is None and not getattr(args, "table", None)):
        parser.error("pass URL, MODEL and FILE")


def register(subparsers) -> None:
    for op, help_ in (("load", "bulk-load a CSV/TSV/JSONL(.gz) file into a model's table"),
                      ("export", "write a model's rows to CSV/TSV/JSONL(.gz)/Parquet")):
        p = subparsers.add_parser(op, help=help_, description=help_, epilog=EPILOGS[op],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("url", help="database URL")
        p.add_argument("model", nargs="?", help="model name (omitted with --table)")
        p.add_argument("file", nargs="?", help="input file" if op == "load" else "output file")
        p.add_argument("--module", "-m", default=None,
                       help="module that defines the models: define(db), a DataFlow, or model classes "
                            "(imported from the current directory)")
        p.add_argument("--format", default=None, help="csv, tsv, jsonl" + (", parquet" if op == "export" else ""))
        if op == "load":
            p.add_argument("--table", default=None,
                           help="load into this existing table, its columns discovered (no --module needed)")
            p.add_argument("--batch-size", type=int, default=None, help="rows per chunk")
            p.add_argument("--conflict", choices=("error", "skip", "update"), default=None)
        p.add_argument("--progress", action="store_true", help="show the progress bar even when not a terminal")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

        def run(args, op=op, p=p):
            _check(p, args)
            return asyncio.run(_run(args, op))

        p.set_defaults(func=run)
