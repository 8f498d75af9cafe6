"""``dataflow serve --module app.fabric [--host H] [--port P] [--db NAME] [--workers N]
[--coordination redis|postgresql --lease S --renew S --coordination-key K]``: import a module that
defines a DataFlow with sources and products, start its fabric on uvicorn, and stop it cleanly
on SIGINT/SIGTERM.  The module's DataFlow is used as is (its URL, models, sources, products).

``--workers N`` (N > 1, with ``--coordination``) binds the socket once and starts N worker
processes sharing it; they elect one leader that polls and refreshes, the others serve.  A worker
that dies is replaced (a crash loop stops the supervisor instead)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import socket
import subprocess
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


def _coordination(args):
    if not args.coordination:
        return None
    from ..fabric.coordination import CoordinationConfig
    return CoordinationConfig(args.coordination, lease=args.lease, renew=args.renew, key=args.coordination_key)


async def _serve(db, args) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sock = socket.socket(fileno=args.fd) if args.fd is not None else None
    rt = await db.start(host=args.host, port=args.port, coordination=_coordination(args), sock=sock)
    print(f"dataflow fabric serving on {rt.url}/ ({len(rt.fabric.products)} products, "
          f"{len(rt.fabric.sources)} sources, worker {rt.worker_id}, "
          f"{'leader' if rt.leader else 'follower'})", flush=True)
    try:
        await stop.wait()
    finally:
        await db.stop()
        await db.close_async()
    print("dataflow fabric stopped", flush=True)
    return 0


def _supervise(args) -> int:
    """Bind once, start ``args.workers`` processes on the shared socket, pass signals on."""
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    argv = [sys.executable, "-m", "dataflow", "serve", "--module", args.module, "--host", args.host,
            "--port", str(port), "--fd", str(sock.fileno()), "--coordination", args.coordination,
            "--lease", str(args.lease)]
    if args.db:
        argv += ["--db", args.db]
    if args.renew is not None:
        argv += ["--renew", str(args.renew)]
    if args.coordination_key:
        argv += ["--coordination-key", args.coordination_key]
    procs = [subprocess.Popen(argv, pass_fds=(sock.fileno(),)) for _ in range(args.workers)]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"dataflow fabric supervising {args.workers} workers on http://{host}:{port}/fabric/ (pid {os.getpid()})",
          flush=True)
    stopping = False

    def forward(signum, _frame):
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    gave_up = _keep_running(procs, lambda: subprocess.Popen(argv, pass_fds=(sock.fileno(),)), lambda: stopping,
                            args.workers)
    if gave_up:
        forward(signal.SIGTERM, None)
    codes = [p.wait() for p in procs]
    sock.close()
    return 1 if gave_up else max(codes, key=abs)


#: a worker that exits on its own is replaced, unless workers keep dying: more than this many
#: replacements (at least 3) within RESTART_WINDOW seconds means something is wrong with all of
#: them (the module, the database): the supervisor stops the rest and exits 1
RESTARTS_PER_WORKER = 2
RESTART_WINDOW = 60.0


def _keep_running(procs: list, start, stopping, workers: int) -> bool:
    """Wait until ``stopping()``; replace a worker that exits before that (a crash, a kill: its
    lease runs out and a survivor leads meanwhile).  True when it gave up (crash loop)."""
    import collections
    import time

    recent: collections.deque = collections.deque()
    limit = max(3, RESTARTS_PER_WORKER * workers)
    while not stopping():
        for i, p in enumerate(procs):
            code = p.poll()
            if code is None or stopping():
                continue
            now = time.monotonic()
            while recent and now - recent[0] > RESTART_WINDOW:
                recent.popleft()
            if len(recent) >= limit:
                print(f"dataflow serve: {len(recent) + 1} workers exited within {RESTART_WINDOW:.0f} s; "
                      f"stopping (see the workers' errors above)", file=sys.stderr, flush=True)
                return True
            recent.append(now)
            procs[i] = start()
            print(f"dataflow fabric worker pid {p.pid} exited with {code}; started pid {procs[i].pid}", flush=True)
        time.sleep(0.2)
    return False


def _run(args) -> int:
    from ..errors import DataFlowError

    if args.workers < 1:
        print("dataflow serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and not args.coordination:
        print("dataflow serve: --workers > 1 needs leader election across the workers: add "
              "--coordination redis (or postgresql)", file=sys.stderr)
        return 2
    try:
        _coordination(args)
    except DataFlowError as exc:
        print(f"dataflow serve: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1:
        return _supervise(args)
    db = _find_db(args.module, args.db)
    try:
        return asyncio.run(_serve(db, args))
    except (DataFlowError, OSError) as exc:
        print(f"dataflow serve: {exc}", file=sys.stderr)
        return 1


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a module's data fabric (sources and products) over HTTP",
                       epilog="example: dataflow serve --module app.fabric --port 8000 "
                              "--workers 4 --coordination redis")
    p.add_argument("--module", required=True, help="module defining the DataFlow, its sources and products")
    p.add_argument("--db", default=None, help="name of the DataFlow in the module (when it has several)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (more than 1 needs --coordination)")
    p.add_argument("--coordination", choices=("redis", "postgresql"), default=None,
                   help="elect one leader across workers through Redis (redis_url / $REDIS_URL) or the "
                        "DataFlow's PostgreSQL database")
    p.add_argument("--lease", type=float, default=10.0, help="leader lease in seconds (default 10)")
    p.add_argument("--renew", type=float, default=None, help="seconds between lease renewals (default lease/2)")
    p.add_argument("--coordination-key", default=None, help="names the group of workers (default the DataFlow's name)")
    p.add_argument("--fd", type=int, default=None, help=argparse.SUPPRESS)   # the supervisor's shared socket
    p.set_defaults(func=_run)
