"""The in-process cache: an LRU bounded in entries and (estimated) bytes, with a TTL, keyed by
table generation so an invalidation is one counter bump (see the package docstring)."""

from __future__ import annotations

import collections
import sys
import time

#: a value stored for "no row" (a read by id that found nothing is cached too)
NONE = object()


def freeze(params):
    """Parameters -> a hashable key part (lists become tuples); None when not hashable."""
    out = []
    for p in params:
        if isinstance(p, list):
            p = freeze(p)
            if p is None:
                return None
        elif isinstance(p, dict):
            return None
        out.append(p)
    t = tuple(out)
    try:
        hash(t)
    except TypeError:
        return None
    return t


def estimate(value) -> int:
    """Rough bytes of a cached result (rows of dicts, a dict, an int): enough to bound memory."""
    if isinstance(value, list):
        if not value:
            return 64
        return 64 + len(value) * estimate(value[0])
    if isinstance(value, dict):
        return 240 + sum(sys.getsizeof(v) for v in value.values())
    return 64


class Stats:
    __slots__ = ("hits", "misses", "invalidations", "stores", "fenced", "errors", "evictions")

    def __init__(self):
        self.hits = self.misses = self.invalidations = self.stores = self.fenced = self.errors = 0
        self.evictions = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class LRU:
    """key -> (expires_at, bytes, value), least recently used first."""

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.data: collections.OrderedDict = collections.OrderedDict()
        self.bytes = 0

    def get(self, key, now):
        e = self.data.get(key)
        if e is None:
            return None
        if e[0] < now:
            self.pop(key)
            return None
        self.data.move_to_end(key)
        return e

    def put(self, key, value, size, expires, stats) -> None:
        if size > self.max_bytes:
            return
        old = self.data.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self.data[key] = (expires, size, value)
        self.bytes += size
        while len(self.data) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, sz, _) = self.data.popitem(last=False)
            self.bytes -= sz
            stats.evictions += 1

    def pop(self, key) -> None:
        e = self.data.pop(key, None)
        if e is not None:
            self.bytes -= e[1]

    def clear(self) -> None:
        self.data.clear()
        self.bytes = 0


class LocalCache:
    """One process's cache for one database."""

    shared = False

    def __init__(self, identity: str, *, ttl: float = 300, max_entries: int = 10_000,
                 max_bytes: int = 64 * 1024 * 1024):
        self.identity = identity
        self.ttl = ttl
        self.lru = LRU(max_entries, max_bytes)
        self.gens: dict[str, int] = {}
        self.epoch = 0          # bumped by "*" (a raw write whose tables are unknown) and clear()
        self.stats = Stats()

    def generation(self, table: str):
        return self.epoch, self.gens.get(table, 0)

    async def fetch(self, table: str, sql: str, params, compute, copy):
        """The result of ``compute()`` for (table, sql, params): from the cache when a current
        entry exists, else computed and stored unless a write committed meanwhile."""
        frozen = freeze(params)
        if frozen is None:
            return await compute()
        gen = self.generation(table)
        key = (table, gen, sql, frozen)
        now = time.monotonic()
        e = self.lru.get(key, now)
        if e is not None:
            self.stats.hits += 1
            v = e[2]
            return None if v is NONE else copy(v)
        self.stats.misses += 1
        value = await compute()
        if self.generation(table) != gen:
            self.stats.fenced += 1          # a write committed while we read: do not store
            return value
        self.lru.put(key, NONE if value is None else copy(value), estimate(value), now + self.ttl, self.stats)
        self.stats.stores += 1
        return value

    def invalidate(self, tables) -> None:
        """``after_commit``: the tables' entries are no longer current (one bump per table)."""
        self.stats.invalidations += 1
        if "*" in tables:
            self.epoch += 1
            return
        for t in tables:
            self.gens[t] = self.gens.get(t, 0) + 1

    async def clear(self, table: str | None = None) -> None:
        if table is None:
            self.epoch += 1
            self.lru.clear()
        else:
            self.invalidate((table,))

    def snapshot(self) -> dict:
        return {"backend": "memory", **self.stats.as_dict(), "entries": len(self.lru.data), "bytes": self.lru.bytes,
                "max_entries": self.lru.max_entries, "max_bytes": self.lru.max_bytes, "ttl": self.ttl}

    async def close(self) -> None:
        self.lru.clear()
