"""Pool sizing: how many connections one worker process may hold.

Separate from the drivers because the rule is the same for every server: an explicit
``pool_size`` (or ``DATAFLOW_POOL_SIZE``, already folded into the config), else the server's
``max_connections`` minus its reserved slots, shared by the worker processes, with the total
across workers kept under 80 % of what the server allows.
"""

from __future__ import annotations

import os
import warnings

from .config import env_int

#: share of the server's connection limit that all workers together may use
BUDGET = 0.8
#: a derived pool never exceeds this (a single process rarely gains from more; set pool_size)
MAX_DERIVED = 20
#: used when nothing can be learned from the server (validation off, SQLite)
DEFAULT_SIZE = 10
WORKER_VARS = ("DATAFLOW_WORKER_COUNT", "WEB_CONCURRENCY", "UVICORN_WORKERS", "GUNICORN_WORKERS")


def worker_count() -> int:
    """Worker processes sharing the server: the first of ``WORKER_VARS`` that is set, else 1."""
    for name in WORKER_VARS:
        n = env_int(name)
        if n is not None:
            return n
    return 1


def startup_validation() -> bool:
    """``DATAFLOW_STARTUP_VALIDATION=false`` (or 0/no/off) skips asking the server for its limits."""
    return os.environ.get("DATAFLOW_STARTUP_VALIDATION", "true").strip().lower() not in ("false", "0", "no", "off")


def budget(max_connections: int, reserved: int, workers: int) -> int:
    """Connections one worker may hold: (limit - reserved) shared by workers, total <= 80 % of limit."""
    usable = min(max_connections - reserved, int(max_connections * BUDGET))
    return max(1, usable // max(1, workers))


def derive(explicit: int | None, max_connections: int | None, reserved: int = 0,
           workers: int | None = None, where: str = "the server") -> int:
    """The pool size to use.

    >>> derive(None, 100, 3, workers=4)
    20
    >>> derive(None, 100, 3, workers=8)
    10
    >>> derive(5, 100, 3, workers=1)
    5
    """
    workers = worker_count() if workers is None else workers
    if explicit is not None:
        if max_connections and explicit * workers > max_connections * BUDGET:
            warnings.warn(
                f"pool_size={explicit} x {workers} worker(s) = {explicit * workers} connections exceeds 80 % "
                f"of {where}'s max_connections={max_connections}; connections may be refused under load",
                ResourceWarning, stacklevel=3)
        return explicit
    if not max_connections:
        return DEFAULT_SIZE
    return min(MAX_DERIVED, budget(max_connections, reserved, workers))
