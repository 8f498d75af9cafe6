"""The cache shared through Redis (``DataFlow(cache_enabled=True, redis_url=...)``).

Per table a generation counter lives in Redis and is bumped (INCR) by the writing process in
``after_commit``, before its write call returns; values are stored under a key naming the
generation they were read at.  So any process that reads after a write returned looks for the
new generation and misses the old value (read-your-writes across processes).  A read checks
the current generation and fetches the value in one round trip (a Lua script); a value read
from the database is stored only if the generation is still the one the read started at,
checked and set atomically in Redis (the fence: a read that started before a write never
stores its older result as current).  A local LRU in front keeps decoded values per
generation, so a hit whose value is already local costs the one round trip and no decode.

The epoch (part of every key) is a random token set when the keys are first made: a Redis
restarted empty gets a new one, so no process trusts a local copy from before the restart.
Redis unreachable or slow: reads go to the database, writes succeed, one warning, ``errors`` in
``cache_stats()``; missed generation bumps are retried, and the cache comes back by itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import weakref

import dataflow.cache.codec as codec
from .local import LRU, NONE, Stats, estimate, freeze

log = logging.getLogger("dataflow.cache")

#: store a value read at version ARGV[1] only if that is still the current version (the fence)
_SET = """
local e = redis.call('GET', KEYS[1])
local g = redis.call('GET', KEYS[2]) or '0'
if (e .. ':' .. g) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return 1
"""
#: how long reads skip Redis after it failed (then one call tries again)
BACKOFF = 1.0


class SharedCache:
    shared = True
    #: a context manager factory a miss is computed under; with read replicas the engine sets
    #: ``use_primary``: a value stored for every process must be as new as any process's write
    #: (another process's replica may not have replayed a write that invalidated the entry)
    fill_context = None

    def __init__(self, url: str, identity: str, *, ttl: float = 300, max_entries: int = 10_000,
                 max_bytes: int = 64 * 1024 * 1024, timeout: float = 0.5):
        try:
            import msgpack  # noqa: F401
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            from ..errors import ConfigurationError
            raise ConfigurationError("redis_url needs the cache extra: pip install 'dataflow-native[cache]'") from exc
        self.url, self.identity, self.ttl, self.timeout = url, identity, ttl, timeout
        base = "df:" + hashlib.sha1(identity.encode()).hexdigest()[:16]
        self.k_epoch = base + ":epoch"
        self.k_gen = base + ":gen:"
        self.k_val = base + ":v:"
        self.lru = LRU(max_entries, max_bytes)      # (table, sql, params) -> (expires, size, (ver, value))
        self.stats = Stats()
        self._clients: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._down_until = 0.0
        self._warned = False
        self._pending: set = set()                  # tables whose bump did not reach Redis

    # -- connection ----------------------------------------------------------------------------
    def _client(self):
        loop = asyncio.get_running_loop()
        c = self._clients.get(loop)
        if c is None:
            import redis.asyncio as aredis
            r = aredis.Redis.from_url(self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                                      retry_on_timeout=False)
            c = self._clients[loop] = (r, r.register_script(_SET))
        return c

    def _failed(self, exc) -> None:
        self.stats.errors += 1
        self._down_until = time.monotonic() + BACKOFF
        if not self._warned:
            self._warned = True
            log.warning("query cache: Redis at %s is unreachable (%s: %s); reads go to the database "
                        "until it is back", self.url, type(exc).__name__, exc)

    def _ok(self) -> None:
        if self._warned:
            self._warned = False
            log.warning("query cache: Redis at %s is reachable again", self.url)

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    # -- reads ---------------------------------------------------------------------------------
    async def fetch(self, table: str, sql: str, params, compute, copy):
        frozen = freeze(params)
        if frozen is None or not self._usable():
            return await compute()
        if self._pending and not await self._flush_pending():
            return await compute()
        key = (table, sql, frozen)
        k_gen = self.k_gen + table
        k_val = self.k_val + hashlib.sha1(repr(key).encode()).hexdigest()
        now = time.monotonic()
        local = self.lru.get(key, now)
        try:
            r, store = self._client()
            e, g, blob = await r.mget(self.k_epoch, k_gen, k_val)
            if e is None:                              # first use (or a restarted Redis): a new epoch
                await r.set(self.k_epoch, os.urandom(8).hex(), nx=True)
                e = await r.get(self.k_epoch)
                blob = None
        except Exception as exc:                       # noqa: BLE001 - Redis down: the database answers
            self._failed(exc)
            return await compute()
        self._ok()
        ver = e + b":" + (g or b"0")
        if local is not None and local[2][0] == ver:
            self.stats.hits += 1
            v = local[2][1]
            return None if v is NONE else copy(v)
        if blob and blob[:len(ver) + 1] == ver + b"|":
            self.stats.hits += 1
            value = codec.loads(blob[len(ver) + 1:])
            value = NONE if value == {"__none__": 1} else value
            self.lru.put(key, (ver, value), estimate(value), now + self.ttl, self.stats)
            return None if value is NONE else copy(value)
        self.stats.misses += 1
        if self.fill_context is None:
            value = await compute()
        else:
            with self.fill_context():
                value = await compute()
        try:
            payload = ver + b"|" + codec.dumps({"__none__": 1} if value is None else value)
        except TypeError:
            return value
        try:
            stored = await store(keys=[self.k_epoch, k_gen, k_val], args=[ver, payload, int(self.ttl * 1000)])
        except Exception as exc:                       # noqa: BLE001
            self._failed(exc)
            return value
        if stored:
            self.stats.stores += 1
            self.lru.put(key, (ver, NONE if value is None else copy(value)), estimate(value), now + self.ttl,
                         self.stats)
        else:
            self.stats.fenced += 1
        return value

    # -- invalidation --------------------------------------------------------------------------
    async def invalidate(self, tables) -> None:
        """``after_commit``: bump each table's generation in Redis before the write returns."""
        self.stats.invalidations += 1
        self._pending.update(tables)
        await self._flush_pending()

    async def _flush_pending(self) -> bool:
        tables, self._pending = self._pending, set()
        if not tables:
            return True
        try:
            r = self._client()[0]
            async with r.pipeline(transaction=False) as p:
                if "*" in tables:
                    p.set(self.k_epoch, os.urandom(8).hex())
                for t in tables - {"*"}:
                    p.incr(self.k_gen + t)
                await p.execute()
        except Exception as exc:                       # noqa: BLE001 - retried with the next cache call
            self._pending |= tables
            self._failed(exc)
            return False
        self._ok()
        return True

    async def clear(self, table: str | None = None) -> None:
        self.lru.clear() if table is None else None
        await self.invalidate({"*"} if table is None else {table})

    def snapshot(self) -> dict:
        return {"backend": "redis", **self.stats.as_dict(), "entries": len(self.lru.data), "bytes": self.lru.bytes,
                "max_entries": self.lru.max_entries, "max_bytes": self.lru.max_bytes, "ttl": self.ttl,
                "pending_invalidations": len(self._pending), "redis_down": not self._usable()}

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        c = self._clients.pop(loop, None)
        if c is not None:
            try:
                await c[0].aclose()
            except Exception:                          # noqa: BLE001
                pass
