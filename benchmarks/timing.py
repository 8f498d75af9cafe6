"""Timing helpers shared by the macro benchmark modules: interleaved per-call medians.

Cases compared against each other are timed in alternating rounds (a, b, a, b, ...) so drift on
a noisy machine (frequency scaling, a neighbour's build) lands on both sides of a ratio alike.
"""

from __future__ import annotations

import statistics
import time
from typing import Awaitable, Callable

OUR_PACKAGES = ("dataflow", "_native", "benchmarks")


def interleaved(cases: dict[str, Callable[[], object]], calls: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each sync callable, rounds alternating between the cases."""
    for fn in cases.values():  # warm caches, statement caches, lazy imports
        for _ in range(max(1, calls // 10)):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(repeats):
        order = list(cases.items())
        if r % 2:
            order.reverse()
        for name, fn in order:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - t0) / calls)
    return {name: statistics.median(s) for name, s in samples.items()}


async def ainterleaved(cases: dict[str, Callable[[], Awaitable[object]]], calls: int,
                       repeats: int) -> dict[str, float]:
    """Like :func:`interleaved` for coroutine functions, awaited one at a time on the running loop."""
    for fn in cases.values():
        for _ in range(max(1, calls // 10)):
            await fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(repeats):
        order = list(cases.items())
        if r % 2:
            order.reverse()
        for name, fn in order:
            t0 = time.perf_counter()
            for _ in range(calls):
                await fn()
            samples[name].append((time.perf_counter() - t0) / calls)
    return {name: statistics.median(s) for name, s in samples.items()}


def row(group: str, case: str, median_s: float | None, baseline: str | None = None, note: str = "",
        **extra) -> dict:
    """One result in the shape every bench module returns (extra keys: target_ratio, target_s)."""
    return {"group": group, "case": case, "median_s": median_s, "baseline": baseline, "note": note, **extra}


def failed(group: str, case: str, exc: BaseException, baseline: str | None = None) -> dict:
    """A case that could not be measured: 'skipped' when the server is unreachable, else 'failed'."""
    status = "skipped" if is_unreachable(exc) else "failed"
    msg = " ".join(f"{type(exc).__name__}: {exc}".split())
    return row(group, case, None, baseline, f"{status}: {msg[:300]}", status=status)


def is_unreachable(exc: BaseException) -> bool:
    """True for connection refusals and missing optional drivers (a server or extra not present
    here).  A broken import of DataFlow itself is a failure, not a skip."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError)) or (
                isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)):
            return True
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] not in OUR_PACKAGES:
            return True  # an optional extra (asyncpg, numpy, ...) is not installed
        if type(exc).__name__ in ("DatabaseConnectionError", "CannotConnectNowError"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def median_of(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` single calls, after one warm-up call (first-touch page
    faults, lazy imports and statement caches are not the steady state)."""
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def per_call(fn: Callable[[], object], quick: bool) -> float:
    """Median seconds per call of a microsecond-scale ``fn``, over batches sized to ~10 ms
    (quick) / ~50 ms each, so timer resolution and loop overhead stay negligible."""
    fn()
    n, t = 1, 0.0
    target = 0.01 if quick else 0.05
    while t < target / 4:
        n *= 4
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
    n = max(1, int(n * target / t))
    samples = []
    for _ in range(7 if quick else 21):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)
