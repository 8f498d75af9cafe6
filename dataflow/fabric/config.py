"""The fabric's configuration: source configs, auth, breaker, staleness and webhook settings.

Plain frozen dataclasses checked once in ``__post_init__`` (``ConfigurationError`` naming the
field), so sources and the runtime receive values they can trust.  Secrets are never stored:
auth objects name environment variables, read on every request (a rotated token is picked up).
Imports nothing of the fabric's optional dependencies.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import ConfigurationError

#: source (and product) names: what a URL path segment, a metric label and a log line can carry
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}\Z")


def _positive(owner: str, **values) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ConfigurationError(f"{owner}.{name} must be a positive number, got {v!r}")


def _env(owner: str, var: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise ConfigurationError(f"{owner}: environment variable {var} is not set")
    return value


def _env_name(owner: str, name: str, value) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ConfigurationError(f"{owner}.{name} names an environment variable, got {value!r}")


# -- auth: each reads its secret from the environment when a request is made -----------------------
@dataclass(frozen=True)
class BearerAuth:
    """``Authorization: Bearer $<token_env>``."""

    token_env: str

    def __post_init__(self):
        _env_name("BearerAuth", "token_env", self.token_env)

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {_env('BearerAuth', self.token_env)}"}


@dataclass(frozen=True)
class ApiKeyAuth:
    """``<header>: $<key_env>`` (default header ``X-API-Key``)."""

    key_env: str
    header: str = "X-API-Key"

    def __post_init__(self):
        _env_name("ApiKeyAuth", "key_env", self.key_env)
        if not isinstance(self.header, str) or not re.fullmatch(r"[A-Za-z0-9-]+", self.header):
            raise ConfigurationError(f"ApiKeyAuth.header must be an HTTP header name, got {self.header!r}")

    def headers(self) -> dict:
        return {self.header: _env("ApiKeyAuth", self.key_env)}


@dataclass(frozen=True)
class BasicAuth:
    """``Authorization: Basic base64($<username_env>:$<password_env>)``."""

    username_env: str
    password_env: str

    def __post_init__(self):
        _env_name("BasicAuth", "username_env", self.username_env)
        _env_name("BasicAuth", "password_env", self.password_env)

    def headers(self) -> dict:
        raw = f"{_env('BasicAuth', self.username_env)}:{_env('BasicAuth', self.password_env)}"
        return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


@dataclass(frozen=True)
class OAuth2Auth:
    """OAuth2 client credentials: a token is fetched from ``token_url`` with the client id and
    secret read from the environment, and reused until shortly before it expires."""

    client_id_env: str
    client_secret_env: str
    token_url: str
    scopes: tuple = ()

    def __post_init__(self):
        _env_name("OAuth2Auth", "client_id_env", self.client_id_env)
        _env_name("OAuth2Auth", "client_secret_env", self.client_secret_env)
        _http_url("OAuth2Auth.token_url", self.token_url)
        object.__setattr__(self, "scopes", tuple(self.scopes))

    def credentials(self) -> tuple[str, str]:
        return _env("OAuth2Auth", self.client_id_env), _env("OAuth2Auth", self.client_secret_env)


AUTH_TYPES = (BearerAuth, ApiKeyAuth, BasicAuth, OAuth2Auth)


# -- policies ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CircuitBreakerConfig:
    """After ``failure_threshold`` consecutive failures the source is *open* (calls fail at once
    or serve stale data); after ``probe_interval`` seconds one probe is let through
    (*half-open*); ``success_threshold`` successes close it again."""

    failure_threshold: int = 3
    probe_interval: float = 30.0
    success_threshold: int = 1

    def __post_init__(self):
        _positive("CircuitBreakerConfig", failure_threshold=self.failure_threshold,
                  probe_interval=self.probe_interval, success_threshold=self.success_threshold)


ON_STALE = ("serve", "error")
ON_SOURCE_ERROR = ("serve_stale", "error")


@dataclass(frozen=True)
class StalenessPolicy:
    """How old data may get: past ``max_age`` seconds it is *stale*; ``on_stale="serve"`` still
    serves it (marked stale), ``"error"`` refuses it.  When the source fails,
    ``on_source_error="serve_stale"`` returns the last successful data, ``"error"`` raises."""

    max_age: float = 300.0
    on_stale: str = "serve"
    on_source_error: str = "serve_stale"

    def __post_init__(self):
        _positive("StalenessPolicy", max_age=self.max_age)
        if self.on_stale not in ON_STALE:
            raise ConfigurationError(f"StalenessPolicy.on_stale must be one of {ON_STALE}, got {self.on_stale!r}")
        if self.on_source_error not in ON_SOURCE_ERROR:
            raise ConfigurationError(f"StalenessPolicy.on_source_error must be one of {ON_SOURCE_ERROR}, "
                                     f"got {self.on_source_error!r}")


WEBHOOK_PROVIDERS = ("generic", "github", "stripe", "slack", "standard")


@dataclass(frozen=True)
class WebhookConfig:
    """A change-notification endpoint for a source (``POST /fabric/webhook/{source}``)."""

    path: str
    secret_env: str
    events: tuple = ()
    provider: str = "generic"

    def __post_init__(self):
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ConfigurationError(f"WebhookConfig.path must start with '/', got {self.path!r}")
        _env_name("WebhookConfig", "secret_env", self.secret_env)
        if self.provider not in WEBHOOK_PROVIDERS:
            raise ConfigurationError(f"WebhookConfig.provider must be one of {WEBHOOK_PROVIDERS}, "
                                     f"got {self.provider!r}")
        object.__setattr__(self, "events", tuple(self.events))


# -- sources -------------------------------------------------------------------------------------
def _http_url(owner: str, url, schemes=("http", "https")) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        raise ConfigurationError(f"{owner} must be an absolute {'/'.join(schemes)} URL, got {url!r}")


@dataclass(frozen=True, kw_only=True)
class _SourceConfig:
    poll_interval: float = 60.0
    circuit_breaker: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    staleness: StalenessPolicy = field(default_factory=StalenessPolicy)

    kind = "source"

    def __post_init__(self):
        name = type(self).__name__
        _positive(name, poll_interval=self.poll_interval)
        if not isinstance(self.circuit_breaker, CircuitBreakerConfig):
            raise ConfigurationError(f"{name}.circuit_breaker must be a CircuitBreakerConfig")
        if not isinstance(self.staleness, StalenessPolicy):
            raise ConfigurationError(f"{name}.staleness must be a StalenessPolicy")


@dataclass(frozen=True, kw_only=True)
class RestSourceConfig(_SourceConfig):
    """An HTTP JSON API.  ``endpoints`` names paths (``{"deals": "/v1/deals"}``) so products
    say ``fetch("deals")``; any other path is fetched relative to ``url``.  Retries
    (``retries`` with exponential backoff from ``backoff``) cover connection errors, timeouts,
    429 and 5xx; ETag / Last-Modified make an unchanged poll a 304."""

    url: str
    auth: object = None
    endpoints: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.2
    webhook: WebhookConfig | None = None
    allow_private: bool = False

    kind = "rest"

    def __post_init__(self):
        super().__post_init__()
        _http_url("RestSourceConfig.url", self.url)
        if self.auth is not None and not isinstance(self.auth, AUTH_TYPES):
            raise ConfigurationError(f"RestSourceConfig.auth must be one of "
                                     f"{', '.join(a.__name__ for a in AUTH_TYPES)}, got {type(self.auth).__name__}")
        if not isinstance(self.endpoints, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.endpoints.items()):
            raise ConfigurationError("RestSourceConfig.endpoints must map names to path strings")
        if not isinstance(self.headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise ConfigurationError("RestSourceConfig.headers must map header names to strings")
        _positive("RestSourceConfig", timeout=self.timeout, backoff=self.backoff)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigurationError(f"RestSourceConfig.retries must be an int >= 0, got {self.retries!r}")
        if self.webhook is not None and not isinstance(self.webhook, WebhookConfig):
            raise ConfigurationError("RestSourceConfig.webhook must be a WebhookConfig")
        if not isinstance(self.allow_private, bool):
            raise ConfigurationError("RestSourceConfig.allow_private must be a bool")


FILE_FORMATS = ("csv", "json", "jsonl", "parquet")


@dataclass(frozen=True, kw_only=True)
class FileSourceConfig(_SourceConfig):
    """A local file (``path``) or the files of a ``directory`` matching ``pattern``; the format
    comes from ``format`` or each file's suffix.  ``watch=True`` reloads on change (watchdog)."""

    path: str | None = None
    directory: str | None = None
    pattern: str = "*"
    format: str | None = None
    watch: bool = True
    encoding: str = "utf-8"

    kind = "file"

    def __post_init__(self):
        super().__post_init__()
        if (self.path is None) == (self.directory is None):
            raise ConfigurationError("FileSourceConfig needs exactly one of path= or directory=")
        for name in ("path", "directory"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, os.fspath(v))
        if self.format is not None and self.format not in FILE_FORMATS:
            raise ConfigurationError(f"FileSourceConfig.format must be one of {FILE_FORMATS}, got {self.format!r}")


@dataclass(frozen=True, kw_only=True)
class DatabaseSourceConfig(_SourceConfig):
    """Another database, read through its own DataFlow (read-only): ``tables`` to read (empty:
    every table with an ``id`` primary key), at most ``max_rows`` rows per fetch."""

    url: str
    tables: tuple = ()
    read_only: bool = True
    max_rows: int = 10_000

    kind = "database"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.url, str) or "://" not in self.url:
            raise ConfigurationError(f"DatabaseSourceConfig.url must be a database URL, got {self.url!r}")
        if self.read_only is not True:
            raise ConfigurationError("DatabaseSourceConfig.read_only: database sources are read-only")
        object.__setattr__(self, "tables", tuple(self.tables))
        if not all(isinstance(t, str) and NAME_RE.match(t) for t in self.tables):
            raise ConfigurationError(f"DatabaseSourceConfig.tables must be table names, got {self.tables!r}")
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int) or self.max_rows <= 0:
            raise ConfigurationError(f"DatabaseSourceConfig.max_rows must be a positive int, got {self.max_rows!r}")


@dataclass(frozen=True, kw_only=True)
class StreamSourceConfig(_SourceConfig):
    """A WebSocket stream (``ws://``/``wss://``), a Redis Stream (``redis://``, ``topic`` = the
    stream's key) or a Kafka topic (``kafka://broker:9092``, ``topic``).  The newest
    ``buffer_size`` messages are kept."""

    url: str
    topic: str | None = None
    buffer_size: int = 1000
    allow_private: bool = False

    kind = "stream"

    def __post_init__(self):
        super().__post_init__()
        _http_url("StreamSourceConfig.url", self.url, schemes=("ws", "wss", "redis", "rediss", "kafka"))
        if isinstance(self.buffer_size, bool) or not isinstance(self.buffer_size, int):
            raise ConfigurationError(f"StreamSourceConfig.buffer_size must be an int, got {self.buffer_size!r}")
        _positive("StreamSourceConfig", buffer_size=self.buffer_size)
        needs_topic = urlsplit(self.url).scheme in ("redis", "rediss", "kafka")
        if needs_topic and (not isinstance(self.topic, str) or not self.topic):
            raise ConfigurationError(f"StreamSourceConfig.topic must name the stream/topic for {self.url!r}")
        if not isinstance(self.allow_private, bool):
            raise ConfigurationError("StreamSourceConfig.allow_private must be a bool")


@dataclass(frozen=True, kw_only=True)
class CloudSourceConfig(_SourceConfig):
    """S3-compatible object storage: ``bucket`` and ``prefix``; ``endpoint_url`` for non-AWS."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    allow_private: bool = False

    kind = "cloud"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.bucket, str) or not self.bucket:
            raise ConfigurationError("CloudSourceConfig.bucket must be a non-empty string")
        if self.endpoint_url is not None:
            _http_url("CloudSourceConfig.endpoint_url", self.endpoint_url)
        if not isinstance(self.allow_private, bool):
            raise ConfigurationError("CloudSourceConfig.allow_private must be a bool")


SOURCE_CONFIGS = (RestSourceConfig, FileSourceConfig, DatabaseSourceConfig, StreamSourceConfig, CloudSourceConfig)
