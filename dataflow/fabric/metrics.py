"""Prometheus metrics of one fabric runtime, in its own registry (two runtimes in a process
never share or clash): requests, latencies, cache hits, refreshes, source requests and errors,
breaker state."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .sources.breaker import STATE_VALUE

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("fabric_requests", "HTTP requests for products", ["product", "status"], registry=r)
        self.latency = Histogram("fabric_request_seconds", "time to answer a product request", ["product"],
                                 registry=r, buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.cache = Counter("fabric_cache", "product reads served from cache (hit) or computed (miss)",
                             ["product", "result"], registry=r)
        self.refreshes = Counter("fabric_refreshes", "product computations", ["product", "outcome"], registry=r)
        self.refresh_seconds = Histogram("fabric_refresh_seconds", "time to compute a product", ["product"], registry=r)
        self.source_requests = Counter("fabric_source_requests", "source reads by result", ["source", "result"],
                                       registry=r)
        self.source_errors = Counter("fabric_source_errors", "failed source reads", ["source"], registry=r)
        self.breaker_state = Gauge("fabric_breaker_state", "circuit state: 0 closed, 1 half-open, 2 open",
                                   ["source"], registry=r)
        self.breaker_transitions = Counter("fabric_breaker_transitions", "circuit state changes, by the state entered",
                                           ["source", "state"], registry=r)
        self.stale_served_count = Counter("fabric_source_stale_served",
                                          "reads answered with the last successful data because the source failed "
                                          "or its circuit was open", ["source"], registry=r)
        self._req_children: dict = {}

    def request(self, product: str, status: int, seconds: float) -> None:
        key = (product, status)
        c = self._req_children.get(key)
        if c is None:
            c = self._req_children[key] = (self.requests.labels(product, str(status)), self.latency.labels(product))
        c[0].inc()
        c[1].observe(seconds)

    def source_request(self, source: str, result: str) -> None:
        self.source_requests.labels(source, result).inc()

    def source_error(self, source: str) -> None:
        self.source_errors.labels(source).inc()

    def breaker(self, source: str, state: str) -> None:
        self.breaker_state.labels(source).set(STATE_VALUE[state])

    def breaker_transition(self, source: str, state: str) -> None:
        self.breaker_transitions.labels(source, state).inc()

    def stale_served(self, source: str) -> None:
        self.stale_served_count.labels(source).inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)
