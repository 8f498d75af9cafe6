"""Running coroutines from synchronous code on a persistent, per-thread event loop.

Sync entry points (LocalRuntime.execute, db.express_sync, db.close) reuse one loop per thread
instead of asyncio.run() per call: creating a loop costs more than a point read, and pools
are bound to the loop that created them.  Inside a running loop (Jupyter, async tests) the call
is handed to a private worker thread with its own persistent loop.  uvloop is used when
installed unless DATAFLOW_NO_UVLOOP=1.
"""

from __future__ import annotations

import contextvars
import os
import threading

from . import sessions

_local = threading.local()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop: uvloop's when installed and not disabled, else asyncio's default."""
    import asyncio  # here, not at import: asyncio is loaded on first use, not by `import dataflow`

    if os.environ.get("DATAFLOW_NO_UVLOOP", "").lower() not in ("1", "true", "yes", "on"):
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        import asyncio

        # uvloop's run_until_complete costs ~24 us per call on the main thread (signal
        # wake-up fd setup) against ~7 us for asyncio's loop, which dominates short sync
        # calls; worker threads get uvloop.
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.new_event_loop()
        else:
            loop = new_event_loop()
        _local.loop = loop
    return loop


class _Worker:
    """One daemon thread with a loop that runs forever, for sync calls made inside a loop."""

    def __init__(self) -> None:
        self.loop = new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dataflow-sync", daemon=True)
        self.thread.start()

    def run(self, coro):
        import asyncio

        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result()


_worker: _Worker | None = None
_worker_lock = threading.Lock()


_running_loop = None  # asyncio._get_running_loop, bound on the first sync call (asyncio loads then)


def run_sync(coro):
    """Run ``coro`` to completion from synchronous code and return its result."""
    global _running_loop
    probe = _running_loop
    if probe is None:
        import asyncio

        # the None-returning probe: no RuntimeError raised and caught on every sync call
        probe = _running_loop = asyncio._get_running_loop
    if probe() is None:
        loop = _thread_loop()
        if sessions.enabled:  # the caller's context, with the thread's read-your-writes session
            return loop.run_until_complete(loop.create_task(coro, context=sessions.sync_context()))
        return loop.run_until_complete(coro)
    if sessions.enabled:
        sessions.ensure()  # the caller's task and the call share a read-your-writes session
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = _Worker()
        worker = _worker
    if threading.current_thread() is worker.thread:
        # A sync call made from code already running on the worker (a node calling
        # LocalRuntime.execute): the worker is busy with the outer call, so use a fresh
        # thread rather than deadlock.
        box: dict = {}

        def target():
            try:
                box["result"] = _thread_loop().run_until_complete(coro)
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc

        # the caller's context (its bound tenant, its transaction) goes with the call
        t = threading.Thread(target=contextvars.copy_context().run, args=(target,), name="dataflow-sync-nested",
                             daemon=True)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["result"]
    return worker.run(coro)
