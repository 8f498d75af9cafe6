"""What every source handle shares: the circuit breaker, the staleness policy, the last
successful data per path, and the counters the runtime and tests read.

A handle is what ``db.source(name, config)`` returns and ``ctx.source(name)`` gives a product.
Subclasses implement ``_fetch(path, params) -> (data, changed)`` and may override ``poll`` and
``start``/``stop`` (watchers, connections).

Breaker and staleness, as the config says: every read goes through the breaker (an open
circuit sends nothing; half-open lets one probe out at a time); a failed or refused read serves
the last successful data when ``on_source_error="serve_stale"`` -- unless that data was last
confirmed more than ``max_age`` seconds ago and ``on_stale="error"``.  Data is *confirmed* by
every successful read, a 304 included, so an unchanged source never turns stale.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ...errors import SourceError
from .breaker import CLOSED, CircuitBreaker

logger = logging.getLogger("dataflow.fabric")


class Source:
    kind = "source"

    def __init__(self, name: str, config):
        self.name = name
        self.config = config
        #: the monotonic clock of staleness and the breaker (a test may set a fake one)
        self.clock = time.monotonic
        self.breaker = CircuitBreaker(config.circuit_breaker, clock=lambda: self.clock())
        self.breaker.on_transition = self._transition
        #: path key -> (data, monotonic time confirmed, wall time confirmed)
        self._data: dict = {}
        self.last_success: float | None = None
        #: called with this source when a poll or watcher finds changed data (set by the runtime)
        self.on_change = None
        #: the runtime's Prometheus metrics, or None outside a running fabric
        self.metrics = None
        #: the Fabric that registered this handle (set by the registry; a database source opens
        #: its second DataFlow with the same class as the fabric's own)
        self.fabric = None
        self.stats = {"requests": 0, "not_modified": 0, "changed": 0, "errors": 0, "polls": 0,
                      "stale_served": 0, "short_circuited": 0}

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
            self.stats["short_circuited"] += 1
            return self._stale(key, SourceError(f"source {self.name!r}: circuit open "
                                                f"({self.breaker.last_error or 'failing'}); next probe in "
                                                f"{self.breaker.retry_in() or 0:.1f}s"))
        try:
            data, changed = await self._fetch(path, params)
        except asyncio.CancelledError:
            self.breaker.release()
            raise
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
        """Re-read what was read before; True when any of it changed.  An open circuit skips
        the poll until its next probe is due (the probe is the poll's first read)."""
        self.stats["polls"] += 1
        changed = False
        for key in list(self._data):
            if not self.breaker.allow():
                self.stats["short_circuited"] += 1
                break
            path, params = key[0], dict(key[1]) or None
            try:
                data, did = await self._fetch(path, params, poll=True)
            except asyncio.CancelledError:
                self.breaker.release()
                raise
            except Exception as exc:  # noqa: BLE001 - counted; the other paths are still polled
                self._failed(exc)
                continue
            self._succeeded(key, data, did)
            changed = changed or did
        return changed

    def start(self, loop) -> None:
        """Begin watching (file watchers, stream connections); the loop receives the events."""

    async def stop(self) -> None:
        """Stop watchers and close clients; the handle stays usable for ``fetch``."""

    def data_age(self) -> float | None:
        """Seconds since the least recently confirmed data was confirmed (None: no data)."""
        times = [hit[1] for hit in self._data.values() if hit[1]]
        return None if not times else self.clock() - min(times)

    def snapshot(self) -> dict:
        age = self.data_age()
        return {"kind": self.kind, "healthy": self.healthy, "circuit": self.breaker.snapshot(),
                "last_success": self.last_success,
                "data_age": None if age is None else round(age, 3),
                "stale": age is not None and age > self.config.staleness.max_age,
                "staleness": {"max_age": self.config.staleness.max_age, "on_stale": self.config.staleness.on_stale,
                              "on_source_error": self.config.staleness.on_source_error},
                "stats": dict(self.stats)}

    # -- for subclasses ----------------------------------------------------------------------------
    async def _fetch(self, path, params, poll: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _key(path, params) -> tuple:
        return (path, tuple(sorted((params or {}).items())))

    def _store(self, key, data) -> None:
        self._data[key] = (data, self.clock(), time.time())

    def _transition(self, old: str, new: str) -> None:
        if new == "open":
            logger.warning("fabric source %r: circuit open (%s)", self.name, self.breaker.last_error)
        else:
            logger.info("fabric source %r: circuit %s -> %s", self.name, old, new)
        if self.metrics is not None:
            self.metrics.breaker(self.name, new)
            self.metrics.breaker_transition(self.name, new)

    def _succeeded(self, key, data, changed) -> None:
        self.breaker.success()
        self.last_success = time.time()
        if changed:
            self.stats["changed"] += 1
        self._store(key, data)  # stored or confirmed: either way, fresh as of now
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
        if hit is None or hit[1] == 0.0 or policy.on_source_error != "serve_stale":
            if isinstance(exc, SourceError):
                raise exc
            raise SourceError(f"source {self.name!r}: {type(exc).__name__}: {exc}") from exc
        age = self.clock() - hit[1]
        if policy.on_stale == "error" and age > policy.max_age:
            raise SourceError(f"source {self.name!r} failed and its last data is {age:.0f}s old, older than "
                              f"max_age={policy.max_age}s with on_stale='error' ({type(exc).__name__}: {exc})") from exc
        self.stats["stale_served"] += 1
        if self.metrics is not None:
            self.metrics.stale_served(self.name)
        return hit[0]
