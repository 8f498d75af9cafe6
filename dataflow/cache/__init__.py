"""The query cache (``DataFlow(cache_enabled=True)``): read results kept per table generation.

Every cached read is keyed by the database identity, the table's current *generation*, the
statement text (which carries the model, the filter's shape and the scopes) and its parameters
(which carry the filter's values and the bound tenant).  A committed write bumps the generation
of each table it wrote, in the driver's ``after_commit`` hook, before the write call returns:
later reads look under the new generation and can never be served the old entry.  A read that
started before the write checks the generation again before storing, so it never stores its
older result as current (the generation fence).  Reads inside a transaction are not cached.

``local.py`` holds the in-process LRU (entries and bytes bounded, TTL); ``shared.py`` the
Redis-backed form (values in Redis, generation counters bumped there so every process sharing
it sees a write at once, the fence checked atomically by a Lua script, a local LRU in front).
"""

from __future__ import annotations

from .local import LocalCache


def make_cache(config):
    """The cache for a DataFlow's config: shared through Redis when ``redis_url`` is set."""
    identity = config.url.identity()
    if config.redis_url:
        from .shared import SharedCache
        return SharedCache(config.redis_url, identity, ttl=config.cache_ttl,
                           max_entries=config.cache_max_entries, max_bytes=config.cache_max_bytes)
    return LocalCache(identity, ttl=config.cache_ttl, max_entries=config.cache_max_entries,
                      max_bytes=config.cache_max_bytes)


__all__ = ["LocalCache", "make_cache"]
