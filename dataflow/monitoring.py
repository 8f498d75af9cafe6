"""Query monitoring (``DataFlow(monitoring=True)``): per-model counts, latency histograms and a
slow-query log, read with ``db.metrics()``.

Kept out of the drivers: ``Monitor.record(sql, seconds, ok)`` is registered as the driver's
``on_statement`` hook (dataflow.drivers.hooks) when monitoring is on; nothing is added to the
hot path when it is off.  The model of a statement is found from the table it names.
"""

from __future__ import annotations

import bisect
import collections
import logging
import re
import time

logger = logging.getLogger("dataflow.slow_query")

#: histogram bucket upper bounds, seconds (Prometheus-style cumulative counts are derived)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_TABLE = re.compile(r"""\b(?:FROM|INTO|UPDATE|JOIN|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?)\s+[`"]?([A-Za-z_][A-Za-z0-9_$]*)""", re.I)
_VERB = re.compile(r"\s*([A-Za-z]+)")


class _Stats:
    __slots__ = ("count", "errors", "total", "max", "buckets", "by_op")

    def __init__(self):
        self.count = 0
        self.errors = 0
        self.total = 0.0
        self.max = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.by_op: collections.Counter = collections.Counter()

    def add(self, seconds: float, ok: bool, op: str) -> None:
        self.count += 1
        self.errors += not ok
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.by_op[op] += 1

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding the q-quantile (what a histogram can tell)."""
        if not self.count:
            return 0.0
        rank, seen = q * self.count, 0
        for i, n in enumerate(self.buckets):
            seen += n
            if seen >= rank:
                return BUCKETS[i] if i < len(BUCKETS) else self.max
        return self.max

    def as_dict(self) -> dict:
        cumulative, acc = {}, 0
        for bound, n in zip(BUCKETS + (float("inf"),), self.buckets):
            acc += n
            cumulative["+Inf" if bound == float("inf") else str(bound)] = acc
        return {"count": self.count, "errors": self.errors, "by_operation": dict(self.by_op),
                "latency": {"sum": round(self.total, 6), "mean": round(self.total / self.count, 6) if self.count else 0.0,
                            "max": round(self.max, 6), "p50": self.quantile(0.5), "p95": self.quantile(0.95),
                            "p99": self.quantile(0.99), "buckets": cumulative}}


class Monitor:
    """Collects what ``db.metrics()`` reports.  ``tables`` maps table name -> model name."""

    def __init__(self, slow_query_threshold: float = 1.0, slow_log_size: int = 100):
        self.threshold = slow_query_threshold
        self.tables: dict[str, str] = {}
        self.models: dict[str, _Stats] = collections.defaultdict(_Stats)
        self.slow: collections.deque = collections.deque(maxlen=slow_log_size)
        self.started = time.time()
        self._cache: dict[str, tuple[str, str]] = {}

    def _classify(self, sql: str) -> tuple[str, str]:
        hit = self._cache.get(sql)
        if hit is None:
            m = _TABLE.search(sql)
            table = m.group(1) if m else None
            model = self.tables.get(table, "(raw)") if table else "(raw)"
            v = _VERB.match(sql)
            hit = (model, v.group(1).upper() if v else "?")
            if len(self._cache) < 4096:
                self._cache[sql] = hit
        return hit

    def record(self, sql: str, seconds: float, ok: bool) -> None:
        model, op = self._classify(sql)
        self.models[model].add(seconds, ok, op)
        if seconds >= self.threshold:
            entry = {"at": time.time(), "seconds": round(seconds, 6), "model": model, "operation": op,
                     "sql": sql if len(sql) <= 500 else sql[:500] + "...", "ok": ok}
            self.slow.append(entry)
            # values are bind parameters and never appear here: only the statement text is logged
            logger.warning("slow query (%.3fs, model %s): %s", seconds, model, entry["sql"])

    def set_tables(self, tables: dict) -> None:
        self.tables = dict(tables)
        self._cache.clear()

    def snapshot(self) -> dict:
        return {"since": self.started, "slow_query_threshold": self.threshold,
                "models": {m: s.as_dict() for m, s in sorted(self.models.items())},
                "queries": sum(s.count for s in self.models.values()),
                "slow_queries": list(self.slow)}


def attach(driver, monitor: Monitor):
    """Time every statement of ``driver`` into ``monitor``; returns the hook's remover."""
    return driver.add_hook("on_statement", monitor.record)


def echo(driver):
    """``echo=True``: log every statement's text and time to the ``dataflow.sql`` logger (INFO)."""
    log = logging.getLogger("dataflow.sql")

    def on_statement(sql, seconds, ok):
        log.info("%s (%.3f ms%s)", sql, seconds * 1000, "" if ok else ", failed")
    return driver.add_hook("on_statement", on_statement)
