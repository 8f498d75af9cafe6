"""``dataflow serve --module app.fabric [--host H] [--port P] [--db NAME]``: import a module that
defines a DataFlow with sources and products, start its fabric on uvicorn, and stop it cleanly
on SIGINT/SIGTERM.  The module's DataFlow is used as is (its URL, models, sources, products)."""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys


def _find_db(module_name: str, attr: str | None):
    from ..engine import DataFlow

    sys.path.insert(0, "")
    mod = importlib.import_module(module_name)
    if attr:
        db = getattr(mod, attr, None)
        if not isinstance(db, DataFlow):
            raise SystemExit(f"dataflow serve: {module_name}.{attr} is not a DataFlow")
        return db
    found = [v for v in vars(mod).values() if isinstance(v, DataFlow)]
    with_fabric = [d for d in found if getattr(d, "_fabric", None) is not None]
    found = with_fabric or found
    if len(found) != 1:
        raise SystemExit(f"dataflow serve: {module_name} has {len(found)} DataFlow instances with a fabric; "
                         f"name one with --db")
    return found[0]


async def _serve(db, host: str, port: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rt = await db.start(host=host, port=port)
    print(f"dataflow fabric serving on {rt.url}/ ({len(rt.fabric.products)} products, "
          f"{len(rt.fabric.sources)} sources)", flush=True)
    try:
        await stop.wait()
    finally:
        await db.stop()
        await db.close_async()
    print("dataflow fabric stopped", flush=True)
    return 0


def _run(args) -> int:
    from ..errors import DataFlowError

    if args.workers != 1:
        print("dataflow serve: --workers > 1 needs leader election across workers "
              "(coordination='redis'/'postgresql'), which is not available in this version", file=sys.stderr)
        return 2
    db = _find_db(args.module, args.db)
    try:
        return asyncio.run(_serve(db, args.host, args.port))
    except (DataFlowError, OSError) as exc:
        print(f"dataflow serve: {exc}", file=sys.stderr)
        return 1


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a module's data fabric (sources and products) over HTTP",
                       epilog="example: dataflow serve --module app.fabric --port 8000")
    p.add_argument("--module", required=True, help="module defining the DataFlow, its sources and products")
    p.add_argument("--db", default=None, help="name of the DataFlow in the module (when it has several)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    p.add_argument("--workers", type=int, default=1, help="only 1 in this version")
    p.set_defaults(func=_run)
