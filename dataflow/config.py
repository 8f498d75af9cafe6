"""Parse a database URL and DataFlow(...) options once, into a frozen Config.

Everything downstream receives parsed values; nothing else reads the environment or
re-parses URLs.  No I/O happens here.
"""

from __future__ import annotations

import difflib
import logging
import os
import types
import warnings
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigurationError

_SCHEMES = {
    "postgresql": "postgresql", "postgres": "postgresql", "postgresql+asyncpg": "postgresql",
    "mysql": "mysql", "mariadb": "mysql", "mysql+aiomysql": "mysql",
    "sqlite": "sqlite", "sqlite+aiosqlite": "sqlite",
    "mongodb": "mongodb", "mongodb+srv": "mongodb",
}

#: Dialects whose URL names a file path (sqlite:///x.db) rather than a server.
_FILE_DIALECTS = frozenset({"sqlite"})
#: Dialects whose models are stored as documents (dataflow.documents) rather than SQL rows.
_DOCUMENT_DIALECTS = frozenset({"mongodb"})

#: Keyword arguments of the well-known project's DataFlow(...) (its named parameters, the extra
#: keywords it reads, and ones its own tests and docs pass) that mean nothing here: accepted,
#: kept in ``Config.compat`` and named in one warning.
COMPAT_KWARGS = frozenset({
    # its named constructor parameters
    "config", "tenant_isolation_strategy", "encryption_key", "credential_provider", "audit_logging",
    "debug", "migration_enabled", "enable_model_persistence", "tdd_mode", "test_context", "test_mode",
    "test_mode_aggressive_cleanup", "enable_connection_pooling", "pools", "enable_caching",
    "validate_on_write", "log_level", "log_config",
    "trust_enforcement_mode", "trust_audit_enabled", "trust_audit_signing_key",
    "trust_audit_verify_key", "runtime",
    # the keywords it reads from **kwargs
    "batch_size", "cache_max_size", "max_retries", "encryption_enabled", "schema_cache_enabled",
    "schema_cache_ttl", "schema_cache_max_size", "use_namespaced_nodes",
    # passed by its tests, docs and older releases
    "instance_id", "reset_on_start", "strict_mode", "enable_metrics", "enable_audit",
    "connection_pool_size", "optimize_queries", "enable_query_cache", "database_type",
    "enterprise_mode", "auto_discover_models", "skip_registry", "skip_migration",
    "connection_validation", "enable_security", "security_level", "pool_pre_ping", "cache_backend",
    "query_timeout", "enable_profiling", "enable_versioning", "health_check_interval",
})

#: Its names for options that exist here under another name: honoured, not warned about.
COMPAT_ALIASES = {"pool_max_overflow": "max_overflow", "cache_max_size": "cache_max_entries",
                  "read_replica_url": "read_url"}

#: Accepted and kept for a later version, but with no effect yet: the warning says so.
NOT_YET_USED: dict = {}

_log = logging.getLogger("dataflow")


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL. ``dialect`` is postgresql, mysql, sqlite or mongodb."""

    dialect: str
    raw: str = field(repr=False)
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    path: str | None = None          # sqlite: file path or ":memory:"
    query: tuple = ()

    @property
    def is_memory(self) -> bool:
        return self.path == ":memory:"

    @property
    def is_document(self) -> bool:
        """Models on this database are documents (the document store), not SQL rows."""
        return self.dialect in _DOCUMENT_DIALECTS

    def redacted(self) -> str:
        """The URL with the password replaced, safe for messages and logs."""
        if self.path is not None:
            return f"sqlite:///{self.path}"
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user else "")
        port = f":{self.port}" if self.port else ""
        return f"{self.dialect}://{auth}{self.host or ''}{port}/{self.database or ''}"

    def identity(self) -> str:
        """A short string naming this database (used as the default instance name)."""
        if self.path is not None:
            return f"sqlite:{self.path}"
        return f"{self.dialect}:{self.host}:{self.port or ''}/{self.database or ''}"


def parse_url(url: str) -> DatabaseURL:
    """Parse ``url``; raise ConfigurationError naming the supported forms when it is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"database URL must be a non-empty string, got {type(url).__name__}")
    url = url.strip()
    if url == ":memory:":
        return DatabaseURL("sqlite", url, path=":memory:")
    if "://" not in url:
        raise ConfigurationError(
            f"database URL {_redact_raw(url)!r} has no scheme; use postgresql://user@host/db, "
            "mysql://user@host/db, sqlite:///file.db, sqlite:///:memory: or mongodb://host/db")
    scheme, rest = url.split("://", 1)
    dialect = _SCHEMES.get(scheme.lower())
    if dialect is None:
        close = difflib.get_close_matches(scheme.lower(), list(_SCHEMES), n=1)
        hint = f"; did you mean {close[0]}://?" if close else ""
        raise ConfigurationError(
            f"unsupported database URL scheme {scheme!r}{hint} "
            f"(supported: postgresql, postgres, mysql, mariadb, sqlite, mongodb)")
    if dialect in _FILE_DIALECTS:
        if not rest.startswith("/"):
            raise ConfigurationError("SQLite URLs look like sqlite:///relative.db, sqlite:////absolute.db or sqlite:///:memory:")
        path, _, q = rest[1:].partition("?")
        if not path:
            raise ConfigurationError("SQLite URL has no file path; use sqlite:///app.db or sqlite:///:memory:")
        return DatabaseURL("sqlite", url, path=unquote(path), query=tuple(parse_qsl(q)))
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"database URL {_redact_raw(url)!r} has an invalid port") from None
    database = unquote(parts.path.lstrip("/")) or None
    return DatabaseURL(dialect, url, host=parts.hostname or "localhost", port=port,
                       user=unquote(parts.username) if parts.username else None,
                       password=unquote(parts.password) if parts.password else None,
                       database=database, query=tuple(parse_qsl(parts.query)))


def _read_urls(url: DatabaseURL, read_url) -> tuple:
    """``read_url=`` (a URL or a list of them) parsed; only a server database has replicas, and
    they speak the primary's dialect."""
    if read_url is None:
        return ()
    raw = [read_url] if isinstance(read_url, str) else list(read_url) if isinstance(read_url, (list, tuple)) else None
    if not raw:
        raise ConfigurationError(f"read_url must be a URL or a non-empty list of URLs, got {read_url!r}")
    if url.dialect not in ("postgresql", "mysql"):
        raise ConfigurationError(
            f"read_url needs a PostgreSQL or MySQL/MariaDB primary; {url.dialect} has no read replicas: "
            f"remove read_url (reads already go to the one database)")
    out = []
    for r in raw:
        u = parse_url(r)
        if u.dialect != url.dialect:
            raise ConfigurationError(f"read_url {u.redacted()} is {u.dialect} but the primary is {url.dialect}; "
                                     f"a replica speaks its primary's dialect")
        out.append(u)
    return tuple(out)


def _redact_raw(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, _, host = rest.rpartition("@")
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


DRIVER_EXTRAS = {
    "postgresql": ("asyncpg", "postgres"),
    "mysql": ("aiomysql", "mysql"),
    "sqlite": ("aiosqlite", None),
    "mongodb": ("pymongo", "mongo"),
}


def check_driver(dialect: str) -> None:
    """Raise ConfigurationError naming the pip extra when ``dialect``'s driver is missing."""
    import importlib.util

    module, extra = DRIVER_EXTRAS[dialect]
    if importlib.util.find_spec(module) is None:
        what = f"pip install 'dataflow-native[{extra}]'" if extra else f"pip install {module}"
        raise ConfigurationError(f"the {dialect} driver ({module}) is not installed; run: {what}")


def env_int(name: str, minimum: int = 1) -> int | None:
    """Read a positive int from the environment, or None; a bad value is a ConfigurationError."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} must be an integer") from None
    if value < minimum:
        raise ConfigurationError(f"environment variable {name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Config:
    """Frozen DataFlow options (see DataFlow.__init__ for meanings)."""

    url: DatabaseURL
    pool_size: int | None = None
    max_overflow: int | None = None
    pool_recycle: float = 3600
    pool_timeout: float = 30
    echo: bool = False
    auto_migrate: bool = True
    existing_schema_mode: bool = False
    migration_lock_timeout: float = 30
    multi_tenant: bool = False
    #: "predicate" (the statement layer's tenant predicate) or "rls" (PostgreSQL: plus row-level
    #: security on tenant tables, the tenant set per transaction)
    tenant_isolation: str = "predicate"
    cache_enabled: bool = False
    cache_ttl: float = 300
    #: bounds of the in-process cache (entries; estimated bytes)
    cache_max_entries: int = 10_000
    cache_max_bytes: int = 64 * 1024 * 1024
    redis_url: str | None = None
    monitoring: bool = False
    slow_query_threshold: float = 1.0
    testing: bool = False
    name: str = ""
    #: the well-known project's keywords given to DataFlow(...) that have no effect here, name -> value
    compat: types.MappingProxyType = field(default_factory=lambda: types.MappingProxyType({}),
                                           compare=False, repr=False)

    #: read replicas (``read_url=``), parsed; reads outside transactions go there (drivers/replicas.py)
    read_urls: tuple = ()
    #: pool size per replica; None: derived from each replica's max_connections like pool_size
    read_pool_size: int | None = None
    #: a replica further behind the primary than this many seconds serves no reads
    max_replica_lag: float = 1.0

    @property
    def read_url(self) -> str | None:
        """The first read-replica URL given as ``read_url=`` (``read_urls`` holds all of them)."""
        return self.read_urls[0].raw if self.read_urls else None


_KNOWN = ("database_url", "pool_size", "max_overflow", "pool_recycle", "pool_timeout", "echo",
          "auto_migrate", "existing_schema_mode", "migration_lock_timeout", "multi_tenant",
          "tenant_isolation", "cache_enabled", "cache_ttl", "cache_max_entries", "cache_max_bytes", "redis_url", "monitoring", "slow_query_threshold", "testing",
          "adapter", "name", "read_url", "read_pool_size", "max_replica_lag")


def build_config(database_url, *, adapter_url: str | None = None, compat: dict, **opts) -> Config:
    """Validate DataFlow(...) arguments and return a Config (no I/O)."""
    compat = dict(compat)
    for alias, real in COMPAT_ALIASES.items():
        if alias in compat:
            value = compat.pop(alias)
            if opts.get(real) is not None and opts[real] != value:
                raise ConfigurationError(
                    f"DataFlow(): {alias}={value!r} and {real}={opts[real]!r} disagree; "
                    f"{alias} is the well-known project's name for {real}, pass only one")
            opts[real] = value
    unknown = [k for k in compat if k not in COMPAT_KWARGS]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(
            k, list(_KNOWN) + sorted(COMPAT_KWARGS) + sorted(COMPAT_ALIASES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(f"DataFlow() got an unknown keyword argument {k!r}{hint}")
    if compat:
        ignored = sorted(k for k in compat if k not in NOT_YET_USED)
        parts = []
        if ignored:
            parts.append(f"{', '.join(ignored)} accepted for compatibility with the well-known "
                         f"project and ignored (they have no effect here)")
        parts += [f"{k} is kept in db.config.compat but not used yet: {why}"
                  for k, why in NOT_YET_USED.items() if k in compat]
        warnings.warn("DataFlow(): " + "; ".join(parts), stacklevel=3)
    testing = bool(opts.get("testing"))
    if database_url is None:
        database_url = adapter_url
    if database_url is None and not testing:
        database_url = os.environ.get("DATABASE_URL") or None
    if database_url is None:
        if not testing:
            _log.warning("DataFlow(): no database URL given and DATABASE_URL is not set; using an "
                         "in-memory SQLite database, lost when the process exits (pass a URL such as "
                         "sqlite:///app.db to keep the data)")
        database_url = ":memory:"
    url = parse_url(database_url)
    for key in ("pool_size", "max_overflow"):
        v = opts.get(key)
        if v is not None and (type(v) is not int or v < (1 if key == "pool_size" else 0)):
            raise ConfigurationError(f"{key} must be a {'positive' if key == 'pool_size' else 'non-negative'} int, got {v!r}")
    for key in ("pool_timeout", "pool_recycle", "cache_ttl", "slow_query_threshold", "migration_lock_timeout"):
        v = opts.get(key)
        if v is not None and (type(v) not in (int, float) or v < 0):
            raise ConfigurationError(f"{key} must be a non-negative number of seconds, got {v!r}")
    for key in ("cache_max_entries", "cache_max_bytes"):
        v = opts.get(key)
        if v is not None and (type(v) is not int or v < 1):
            raise ConfigurationError(f"{key} must be a positive int, got {v!r}")
    iso = opts.get("tenant_isolation")
    if iso is not None and iso not in ("predicate", "rls"):
        raise ConfigurationError(f"tenant_isolation must be 'predicate' or 'rls', got {iso!r}")
    if iso == "rls" and url.dialect != "postgresql":
        raise ConfigurationError("tenant_isolation='rls' needs PostgreSQL (row-level security); on "
                                 f"{url.dialect} the tenant predicate of every statement is the isolation")
    if opts.get("pool_size") is None:
        env = env_int("DATAFLOW_POOL_SIZE")
        if env is not None:
            opts["pool_size"] = env
    opts["read_urls"] = _read_urls(url, opts.pop("read_url", None))
    if opts.get("read_pool_size") is not None and (type(opts["read_pool_size"]) is not int or opts["read_pool_size"] < 1):
        raise ConfigurationError(f"read_pool_size must be a positive int, got {opts['read_pool_size']!r}")
    lag = opts.get("max_replica_lag")
    if lag is not None and (type(lag) not in (int, float) or lag <= 0):
        raise ConfigurationError(f"max_replica_lag must be a positive number of seconds, got {lag!r}")
    name = opts.pop("name", None) or url.identity()
    if not isinstance(name, str):
        raise ConfigurationError(f"name must be a str, got {type(name).__name__}")
    clean = {k: v for k, v in opts.items() if v is not None}
    return Config(url=url, name=name, compat=types.MappingProxyType(compat), **clean)
