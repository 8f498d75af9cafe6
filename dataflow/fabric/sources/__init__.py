"""Source handles, one module per kind; ``make_source`` picks the class for a config.

Each kind's client library is imported only when a source of that kind is made: the REST source
needs httpx, file watching watchdog, streams websockets / redis / aiokafka, cloud aiobotocore.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ...errors import UnsupportedFeatureError


def make_source(name: str, config):
    kind = config.kind
    if kind == "rest":
        from .rest import RestSource
        return RestSource(name, config)
    if kind == "file":
        from .file import FileSource
        return FileSource(name, config)
    if kind == "database":
        from .database import DatabaseSource
        return DatabaseSource(name, config)
    if kind == "stream":
        scheme = urlsplit(config.url).scheme
        if scheme in ("ws", "wss"):
            from .stream import WebSocketSource
            return WebSocketSource(name, config)
        if scheme in ("redis", "rediss"):
            from .redis_stream import RedisStreamSource
            return RedisStreamSource(name, config)
        from .kafka import KafkaSource
        return KafkaSource(name, config)
    if kind == "cloud":
        from .cloud import CloudSource
        return CloudSource(name, config)
    raise UnsupportedFeatureError(f"source {name!r}: {type(config).__name__} sources are not available")
