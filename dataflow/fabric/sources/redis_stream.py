"""Redis Streams: ``StreamSourceConfig(url="redis://host:6379/0", topic="events")``.

The reader loads the newest ``buffer_size`` entries (XREVRANGE), then blocks on XREAD from the
last id it has seen, so no entry added in between is missed and none is read twice, across
reconnects too.  A message is ``{"id": "<ms>-<seq>", "fields": {...}}`` (a field holding JSON
stays a string: the stream's producer decides its encoding).

With the SSRF guard on (``allow_private=False``), the host is resolved once and checked, and a
``redis://`` connection is opened to that address; ``rediss://`` is checked the same way but
connects by name, because TLS certificate checks in redis-py need the name as the host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ...errors import SourceError
from .stream import StreamSource

#: XREAD blocks this long (ms) per call, so a stop() is never kept waiting on the server
BLOCK_MS = 1000


class RedisStreamSource(StreamSource):
    def __init__(self, name, config):
        super().__init__(name, config)
        self.last_id: str | None = None

    async def _client(self):
        import redis.asyncio as aioredis

        url = self.config.url
        if self.guard is not None:
            parts = urlsplit(url)
            addresses = await self.guard.addresses(parts.hostname, parts.port or 6379)
            if parts.scheme == "redis":
                pinned = f"[{addresses[0]}]" if ":" in addresses[0] else addresses[0]
                netloc = parts.netloc.rsplit("@", 1)
                host_port = f"{pinned}:{parts.port or 6379}"
                url = parts._replace(netloc=f"{netloc[0]}@{host_port}" if len(netloc) == 2 else host_port).geturl()
                self.guard.connected(parts.hostname, addresses[0])
        return aioredis.from_url(url, decode_responses=True, socket_connect_timeout=10,
                                 socket_timeout=BLOCK_MS / 1000 + 10)

    async def _session(self) -> None:
        client = await self._client()
        key = self.config.topic
        try:
            if self.last_id is None:
                newest = await client.xrevrange(key, count=self.config.buffer_size)
                for entry_id, fields in reversed(newest):
                    self.buffer.append({"id": entry_id, "fields": fields})
                    self.received += 1
                self.last_id = newest[0][0] if newest else "0-0"
            else:
                await client.ping()
            self._opened()
            if self.received and self.on_change is not None:
                self.on_change(self)
            while True:
                answer = await client.xread({key: self.last_id}, count=self.config.buffer_size, block=BLOCK_MS)
                for _stream, entries in answer or ():
                    for entry_id, fields in entries:
                        self.last_id = entry_id
                        self._received({"id": entry_id, "fields": fields})
        finally:
            await client.aclose()

    async def check(self) -> None:
        client = await self._client()
        try:
            kind = await client.type(self.config.topic)
            if kind not in ("stream", "none"):
                raise SourceError(f"source {self.name!r}: Redis key {self.config.topic!r} is a {kind}, not a stream")
        finally:
            await client.aclose()
