"""Leader election across worker processes: one worker (the leader) polls sources, watches files
and refreshes products; the others (followers) serve the products from the shared cache and
forward refresh requests (webhooks, writes) to the leader.

``Coordinator`` runs the election and is backend-neutral; ``coord_redis`` and ``coord_pg`` hold
the lease, the fencing epoch, the shared cache, the nonces and the request queue.  Without
``coordination=`` the process is alone: always leader, nonces in memory.

Timing: the leader renews every ``renew`` seconds; it believes itself leader only while its
last renewal (timed from *before* the call) is younger than ``lease``, so it stops polling before
any other worker can have taken over.  A follower tries again when the current lease runs out
(the backend tells how long that is), so after a leader dies the gap is the rest of its lease
plus one round trip.  Anything a deposed leader still tries to write is refused by the backend
(the epoch is the fencing token), which is what makes a SIGSTOP/SIGCONT harmless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from ..errors import ConfigurationError, DataFlowError, FabricError

logger = logging.getLogger("dataflow.fabric")

BACKENDS = ("redis", "postgresql")
#: shared-cache names of the change announcements (``~`` starts no product name)
DEP = "~dep:"
_PREFIX_RE = re.compile(r"[a-z_][a-z0-9_]{0,40}\Z")


@dataclass(frozen=True)
class CoordinationConfig:
    """``db.start(coordination=CoordinationConfig("redis", lease=10))`` (or just ``"redis"``).

    ``lease``: seconds a leader's lease lasts; ``renew``: seconds between renewals (default half
    the lease: one renewal may be late by up to ``renew`` before the lease runs out, and a dead
    leader is replaced within ``lease`` = two renewal intervals); ``key``: what names the
    group of workers (default the DataFlow's name); ``url``: the Redis URL (default the
    instance's ``redis_url``, else ``$REDIS_URL``); ``prefix``: PostgreSQL table-name prefix;
    ``forward_timeout``: how long a follower waits for the leader's answer to a webhook."""

    backend: str
    lease: float = 10.0
    renew: float | None = None
    key: str | None = None
    url: str | None = None
    prefix: str = "dataflow_fabric"
    forward_timeout: float = 10.0

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigurationError(f"coordination must be None, 'redis' or 'postgresql', got {self.backend!r}")
        for name in ("lease", "forward_timeout"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigurationError(f"CoordinationConfig.{name} must be a positive number, got {v!r}")
        renew = self.lease / 2 if self.renew is None else self.renew
        if isinstance(renew, bool) or not isinstance(renew, (int, float)) or not 0 < renew < self.lease:
            raise ConfigurationError(f"CoordinationConfig.renew must be between 0 and lease={self.lease}, "
                                     f"got {self.renew!r}")
        object.__setattr__(self, "renew", float(renew))
        if self.key is not None and (not isinstance(self.key, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}",
                                                                                          self.key)):
            raise ConfigurationError(f"CoordinationConfig.key must be 1-100 of [A-Za-z0-9_.:-], got {self.key!r}")
        if not isinstance(self.prefix, str) or not _PREFIX_RE.match(self.prefix):
            raise ConfigurationError(f"CoordinationConfig.prefix must match [a-z_][a-z0-9_]{{0,40}}, got {self.prefix!r}")


def coordination_config(value) -> CoordinationConfig | None:
    """``db.start(coordination=...)`` -> a config, or None for a single process."""
    if value is None or value == "memory":
        return None
    if isinstance(value, CoordinationConfig):
        return value
    if isinstance(value, str):
        return CoordinationConfig(value)
    raise ConfigurationError(f"coordination must be None, 'redis', 'postgresql' or a CoordinationConfig, "
                             f"got {value!r}")


def make_backend(cfg: CoordinationConfig, db):
    key = cfg.key or db.name
    if cfg.backend == "redis":
        url = cfg.url or db.config.redis_url or os.environ.get("REDIS_URL")
        if not url:
            raise ConfigurationError("coordination='redis' needs a Redis URL: DataFlow(redis_url=...), "
                                     "CoordinationConfig(url=...) or the REDIS_URL environment variable")
        from .coord_redis import RedisBackend
        return RedisBackend(url, key)
    from .coord_pg import PostgresBackend
    return PostgresBackend(db, key, cfg.prefix)


async def cancel_all(tasks, rounds: int = 20) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again any that swallowed the cancellation
    (on Python 3.11 a cancellation racing a client library's ``asyncio.timeout`` can come out as
    a TimeoutError, which a loop then treats as a failed call and goes on)."""
    pending = [t for t in tasks if not t.done()]
    for _ in range(rounds):
        if not pending:
            return
        for t in pending:
            t.cancel()
        _, still = await asyncio.wait(pending, timeout=0.5)
        pending = list(still)
    if pending:
        logger.warning("fabric: %d task(s) would not stop: %s", len(pending), pending)


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class MemoryNonces:
    """Webhook nonces of a single process: claimed until they expire."""

    def __init__(self):
        self._until: dict = {}

    async def claim(self, nonce: str, ttl: float) -> bool:
        now = time.monotonic()
        if len(self._until) > 10_000:
            self._until = {k: t for k, t in self._until.items() if t > now}
        if self._until.get(nonce, 0) > now:
            return False
        self._until[nonce] = now + ttl
        return True

    async def unclaim(self, nonce: str) -> None:
        self._until.pop(nonce, None)


class Coordinator:
    """The election loop of one worker, and its share of the shared cache and request queue.

    The runtime is told ``_become_leader(epoch)`` / ``_become_follower()``; ``publish`` is the
    fenced write of a refreshed product; ``forward`` hands a request to the leader."""

    def __init__(self, rt, cfg: CoordinationConfig, backend):
        self.rt, self.cfg, self.backend = rt, cfg, backend
        self.holder = rt.worker_id
        self.epoch = 0                  # ours, while we lead
        self.seen_epoch = 0             # the newest epoch seen in the shared cache
        self.leading = False
        self.lease_until = 0.0          # monotonic: we lead until then unless renewed
        self.versions: dict = {}        # product -> version held locally
        self.stats: Counter = Counter()
        self.leader_since: float | None = None
        self._tasks: list = []
        self._closing = False
        self._failing = False
        self._transition = asyncio.Lock()

    @property
    def leader(self) -> bool:
        """Leader now: the lease is ours and, by our own clock, has not run out."""
        return self.leading and time.monotonic() < self.lease_until

    @property
    def current_epoch(self) -> int:
        """Ours while we lead, else the newest one we have seen."""
        return self.epoch if self.leading else max(self.seen_epoch, self.epoch)

    def snapshot(self) -> dict:
        return {"backend": self.backend.name, "lease": self.cfg.lease, "renew": self.cfg.renew,
                "leader_since": self.leader_since, "computations": sum(self.rt.computations.values()),
                **dict(self.stats)}

    async def start(self) -> None:
        try:
            await self.backend.setup()
        except DataFlowError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client library's own error, named for the user
            raise FabricError(f"coordination={self.backend.name!r}: the backend cannot be reached "
                              f"({type(exc).__name__}: {exc}); check its URL and that it is running") from exc
        loop = asyncio.get_running_loop()
        await self._sync()
        await self._tick()              # the first election round before serving
        self._tasks = [loop.create_task(self._elect()), loop.create_task(self._follow()),
                       loop.create_task(self._serve_requests())]

    async def stop(self) -> None:
        self._closing = True
        await cancel_all(self._tasks)
        self._tasks = []
        if self.leading:
            self.leading = False
            try:
                await self.backend.release(self.holder, self.epoch)
            except Exception:  # noqa: BLE001 - the lease expires by itself
                logger.warning("fabric: releasing the leader lease failed", exc_info=True)
        await self.backend.close()

    def _trouble(self, what: str, exc: BaseException) -> None:
        """Count a backend failure; log it once until the backend answers again (every tick
        would flood the log while Redis or PostgreSQL is down)."""
        self.stats["backend_errors"] += 1
        if not self._failing:
            self._failing = True
            logger.warning("fabric coordination (%s): %s failed: %s: %s", self.backend.name, what,
                           type(exc).__name__, exc)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            logger.warning("fabric coordination (%s): the backend answers again", self.backend.name)

    # -- the election ------------------------------------------------------------------------------
    async def _elect(self) -> None:
        while not self._closing:
            wait = await self._tick()
            await asyncio.sleep(wait)

    async def _tick(self) -> float:
        """One round: renew (leader) or try to acquire (follower); returns how long to sleep."""
        cfg = self.cfg
        try:
            if self.leading:
                t0 = time.monotonic()
                if time.monotonic() < self.lease_until and await self.backend.renew(self.holder, self.epoch, cfg.lease):
                    self.lease_until = t0 + cfg.lease
                    self.stats["renewals"] += 1
                    self._recovered()
                    return cfg.renew
                self.stats["lost"] += 1
                await self._demote("lease lost")
                # fall through: try to take it again at once (it may simply have lapsed)
            t0 = time.monotonic()
            epoch, left, current = await self.backend.acquire(self.holder, cfg.lease)
            self.seen_epoch = max(self.seen_epoch, current)
            if epoch is not None:
                self.lease_until = t0 + cfg.lease
                self.stats["acquired"] += 1
                await self._promote(epoch)
                return cfg.renew
            # wake at least every `renew` (a released lease is taken within one interval), and
            # exactly when the holder's lease runs out, so a dead leader is replaced after the rest
            # of its lease plus one round trip (not up to one more interval later)
            if left > cfg.renew:
                return max(left - cfg.renew, 0.01)
            return left + 0.002
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - backend unreachable: leadership cannot be proven
            self._trouble("the lease", exc)
            if self.leading and time.monotonic() >= self.lease_until:
                await self._demote("backend unreachable")
            return min(cfg.renew, max(self.lease_until - time.monotonic(), 0.05)) if self.leading else cfg.renew

    async def _promote(self, epoch: int) -> None:
        async with self._transition:
            self.epoch, self.leading, self.leader_since = epoch, True, time.time()
            logger.info("fabric: worker %s leads (epoch %d)", self.holder, epoch)
            try:
                await self._sync()      # start from what the previous leader published
            except Exception as exc:  # noqa: BLE001 - the leader recomputes everything anyway
                self._trouble("reading the shared cache", exc)
            await self.rt._become_leader(epoch)

    async def _demote(self, why: str) -> None:
        async with self._transition:
            if not self.leading:
                return
            self.leading, self.leader_since = False, None
            logger.info("fabric: worker %s no longer leads (epoch %d): %s", self.holder, self.epoch, why)
            await self.rt._become_follower()

    # -- the shared cache ----------------------------------------------------------------------------
    async def publish(self, name: str, entry) -> bool:
        """Write a refreshed product for every worker; False when refused (not leader any more)."""
        return await self._write(name, entry.body, entry.cached_at)

    async def announce(self, names) -> None:
        """Tell the followers that dependencies ``names`` changed (they drop what they cache
        themselves: parameterized and per-tenant values).  A version bump of ``~dep:<name>``
        in the shared cache, fenced like any write."""
        for n in names:
            await self._write(DEP + n, b"{}", time.time())

    async def _write(self, name: str, body: bytes, cached_at: float) -> bool:
        if not self.leader:
            self.stats["writes_skipped"] += 1
            return False
        try:
            ver = await self.backend.write(self.holder, self.epoch, name, body, cached_at)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - not written: followers keep the previous value
            self._trouble(f"publishing {name!r}", exc)
            return False
        if not ver:
            self.stats["writes_refused"] += 1
            self.lease_until = 0.0      # fenced: somebody newer leads; step down at the next tick
            return False
        self.stats["writes"] += 1
        self.versions[name] = ver
        return True

    async def _follow(self) -> None:
        """Followers (and a fresh leader) take newer product versions from the shared cache."""
        while not self._closing:
            await self.backend.wait_change(self.cfg.renew)
            if self.leader:
                continue
            try:
                await self._sync()
                self._recovered()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - try again next tick
                self._trouble("reading the shared cache", exc)

    async def _sync(self) -> None:
        versions = await self.backend.versions()
        deps = []
        for name, ver in versions.items():
            if self.versions.get(name, 0) >= ver:
                continue
            if name.startswith(DEP):
                self.versions[name] = ver
                deps.append(name[len(DEP):])
                continue
            if name not in self.rt.fabric.products:
                continue
            got = await self.backend.read(name)
            if got is None:
                continue
            ver, epoch, body, cached_at = got
            self.seen_epoch = max(self.seen_epoch, epoch)
            self.versions[name] = ver
            self.stats["synced"] += 1
            self.rt._adopt(name, body, cached_at)
        if deps and not self.leading:
            self.rt._drop_local(deps)

    async def sync_now(self) -> None:
        """Take what the leader published, now (a forwarded refresh has just been answered)."""
        try:
            await self._sync()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next tick catches up
            self._trouble("reading the shared cache", exc)

    async def pull(self, name: str) -> bool:
        """Fetch one product from the shared cache now (a follower asked for one it lacks)."""
        got = await self.backend.read(name)
        if got is None:
            return False
        ver, epoch, body, cached_at = got
        self.seen_epoch = max(self.seen_epoch, epoch)
        if self.versions.get(name, 0) < ver:
            self.versions[name] = ver
            self.rt._adopt(name, body, cached_at)
        return True

    # -- requests for the leader ---------------------------------------------------------------------
    async def forward(self, kind: str, payload: dict, wait: bool) -> str | None:
        """Queue a request for the leader; with ``wait`` return its outcome ("ok"/"failed", or
        None when no leader answered within ``forward_timeout``)."""
        self.stats[f"forwarded_{kind}"] += 1
        rid = await self.backend.push(kind, payload)
        if not wait:
            return None
        return await self.backend.outcome(rid, self.cfg.forward_timeout)

    async def _serve_requests(self) -> None:
        tick = min(0.1, self.cfg.renew / 3)
        last_purge = time.monotonic()
        while not self._closing:
            if not self.leader:
                await asyncio.sleep(tick)
                continue
            try:
                items = await self.backend.take(tick)
                for rid, kind, payload in items:
                    self.stats[f"served_{kind}"] += 1
                    self.rt._spawn(self._handle(rid, kind, payload))
                if time.monotonic() - last_purge > 60:
                    last_purge = time.monotonic()
                    await self.backend.purge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis/PostgreSQL hiccup: go on
                self._trouble("taking forwarded requests", exc)
                await asyncio.sleep(tick)

    async def _handle(self, rid, kind, payload) -> None:
        if kind == "changed":
            self.rt._changed(payload.get("names", []), payload.get("trigger", "forwarded"))
            return
        if kind == "webhook":
            ok = await self.rt.source_refresh(payload.get("source"))
            try:
                await self.backend.answer(rid, "ok" if ok else "failed")
            except Exception:  # noqa: BLE001 - the sender times out and answers 503
                logger.warning("fabric: answering a forwarded webhook failed", exc_info=True)
