"""Pipeline traces: the last 20 computations of each product (when, how long, sources read,
outcome, and the error message when it failed) for ``/fabric/_trace/{product}``."""

from __future__ import annotations

import time
from collections import deque

KEEP = 20


class Trace:
    __slots__ = ("product", "trigger", "started", "t0", "sources", "products", "outcome", "error", "duration_ms",
                 "tenant")

    def __init__(self, product: str, trigger: str):
        self.product = product
        self.trigger = trigger
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.sources: list = []
        self.products: list = []
        self.outcome = "running"
        self.error: str | None = None
        self.duration_ms = 0.0
        self.tenant: str | None = None   # a per-tenant product's computation: whose

    def finish(self, error: BaseException | None = None) -> None:
        self.duration_ms = round((time.perf_counter() - self.t0) * 1000, 3)
        if error is None:
            self.outcome = "success"
        else:
            self.outcome = "error"
            self.error = f"{type(error).__name__}: {error}"

    def as_dict(self) -> dict:
        return {"product": self.product, "trigger": self.trigger, "started_at": self.started,
                "duration_ms": self.duration_ms, "sources": self.sources, "products": self.products,
                "outcome": self.outcome, "error": self.error}


class Traces:
    def __init__(self):
        self._by_product: dict = {}

    def add(self, trace: Trace) -> None:
        self._by_product.setdefault(trace.product, deque(maxlen=KEEP)).append(trace)

    def get(self, product: str, tenant: str | None = None) -> list:
        """The product's traces, newest first; ``tenant``: only that tenant's computations."""
        return [t.as_dict() for t in reversed(self._by_product.get(product, ())) if t.tenant == tenant]
