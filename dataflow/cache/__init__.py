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


def cache_identity(url) -> str:
    """Which database a cache's keys belong to: server, port and database name; for SQLite the
    host and the absolute file path (a file is local to its machine); an in-memory database is
    private to its instance, so it gets a random identity (two never share entries)."""
    if url.path is not None:
        if url.path == ":memory:":
            import uuid
            return f"sqlite-memory:{uuid.uuid4().hex}"
        import os
        import socket
        return f"sqlite:{socket.gethostname()}:{os.path.abspath(url.path)}"
    return url.identity()


def make_cache(config, identity: str | None = None):
    """The cache for a DataFlow's config: shared through Redis when ``redis_url`` is set.
    ``identity``: the driver's own when the URL alone does not name the data (the MongoDB
    stand-in: private to its instance like an in-memory SQLite)."""
    identity = identity or cache_identity(config.url)
    if config.redis_url:
        from .shared import SharedCache
        return SharedCache(config.redis_url, identity, ttl=config.cache_ttl,
                           max_entries=config.cache_max_entries, max_bytes=config.cache_max_bytes)
    return LocalCache(identity, ttl=config.cache_ttl, max_entries=config.cache_max_entries,
                      max_bytes=config.cache_max_bytes)


__all__ = ["LocalCache", "make_cache"]
