"""What every source handle shares: the circuit breaker, the staleness policy, the last
successful data per path, and the counters the runtime and tests read.

A handle is what ``db.source(name, config)`` returns and ``ctx.source(name)`` gives a product.
Subclasses implement ``_fetch(path, params) -> (data, changed)`` and may override ``poll`` and
``start``/``stop`` (watchers, connections).
"""

from __future__ import annotations

import time

from ...errors import SourceError
from .breaker import CLOSED, CircuitBreaker


class Source:
    kind = "source"

    def __init__(self, name: str, config):
        self.name = name
        self.config = config
        self.breaker = CircuitBreaker(config.circuit_breaker)
        #: path key -> (data, monotonic time fetched, wall time fetched)
        self._data: dict = {}
        self.last_success: float | None = None
        #: called with this source when a poll or watcher finds changed data (set by the runtime)
        self.on_change = None
        #: the runtime's Prometheus metrics, or None outside a running fabric
        self.metrics = None
        self.stats = {"requests": 0, "not_modified": 0, "changed": 0, "errors": 0, "polls": 0}

    # -- the handle's public face ----------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        return self.breaker.state == CLOSED

    def last_successful_data(self, path=None, params=None):
        """The data of the last successful read of ``path`` (None if never read)."""
        hit = self._data.get(self._key(path, params))
        return None if hit is None else hit[0]

    async def fetch(self, path=None, params: dict | None = None):
        """Read ``path`` (an endpoint name or a relative path), through the breaker and the
        staleness policy: when the read fails and ``on_source_error="serve_stale"``, the last
        successful data is returned (unless older than ``max_age`` with ``on_stale="error"``)."""
        key = self._key(path, params)
        if not self.breaker.allow():
            return self._stale(key, SourceError(f"source {self.name!r}: circuit open "
                                                f"({self.breaker.last_error or 'failing'})"))
        try:
            data, changed = await self._fetch(path, params)
        except Exception as exc:  # noqa: BLE001 - every failure counts against the breaker
            self._failed(exc)
            return self._stale(key, exc)
        self._succeeded(key, data, changed)
        return data

    async def fetch_all(self) -> dict:
        """Every configured endpoint (REST) or file (directory source): ``{name: data}``."""
        return {name: await self.fetch(name) for name in self.names()}

    async def read(self):
        """The source's whole data (a file's rows, a directory's files, all endpoints)."""
        return await self.fetch_all()

    def names(self) -> list:
        return []

    async def check(self) -> None:
        """Raise if the source cannot be reached now (``db.start(fail_fast=True)``)."""

    async def poll(self) -> bool:
        """Re-read what was read before; True when any of it changed."""
        self.stats["polls"] += 1
        changed = False
        for key in list(self._data):
            path, params = key[0], dict(key[1]) or None
            try:
                data, did = await self._fetch(path, params, poll=True)
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
                continue
            self._succeeded(key, data, did)
            changed = changed or did
        return changed

    def start(self, loop) -> None:
        """Begin watching (file watchers, stream connections); the loop receives the events."""

    async def stop(self) -> None:
        """Stop watchers and close clients; the handle stays usable for ``fetch``."""

    def snapshot(self) -> dict:
        return {"kind": self.kind, "healthy": self.healthy, "circuit": self.breaker.snapshot(),
                "last_success": self.last_success, "stats": dict(self.stats)}

    # -- for subclasses ----------------------------------------------------------------------------
    async def _fetch(self, path, params, poll: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _key(path, params) -> tuple:
        return (path, tuple(sorted((params or {}).items())))

    def _store(self, key, data) -> None:
        self._data[key] = (data, time.monotonic(), time.time())

    def _succeeded(self, key, data, changed) -> None:
        self.breaker.success()
        self.last_success = time.time()
        if changed or key not in self._data:
            self._store(key, data)
            if changed:
                self.stats["changed"] += 1
        if self.metrics is not None:
            self.metrics.breaker(self.name, self.breaker.state)

    def _failed(self, exc) -> None:
        self.stats["errors"] += 1
        self.breaker.failure(f"{type(exc).__name__}: {exc}")
        if self.metrics is not None:
            self.metrics.source_error(self.name)
            self.metrics.breaker(self.name, self.breaker.state)

    def _stale(self, key, exc):
        policy = self.config.staleness
        hit = self._data.get(key)
        if hit is None or policy.on_source_error != "serve_stale":
            if isinstance(exc, SourceError):
                raise exc
            raise SourceError(f"source {self.name!r}: {type(exc).__name__}: {exc}") from exc
        if policy.on_stale == "error" and time.monotonic() - hit[1] > policy.max_age:
            raise SourceError(f"source {self.name!r} failed and its last data is older than "
                              f"max_age={policy.max_age}s ({type(exc).__name__}: {exc})") from exc
        return hit[0]
