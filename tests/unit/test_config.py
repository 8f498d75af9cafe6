"""URL parsing, DataFlow(...) arguments and the no-I/O-at-construction rule."""

import subprocess
import sys
import warnings

import pytest

from dataflow import DataFlow
from dataflow.config import parse_url
from dataflow.errors import ConfigurationError


@pytest.mark.parametrize("url,dialect,extra", [
    ("postgresql://u:p@h:5433/db", "postgresql", {"host": "h", "port": 5433, "user": "u", "database": "db"}),
    ("postgres://h/db", "postgresql", {"host": "h", "database": "db"}),
    ("postgresql+asyncpg://h/db", "postgresql", {"host": "h"}),
    ("mysql://root@127.0.0.1:3306/test", "mysql", {"port": 3306, "user": "root"}),
    ("mariadb://root@h/test", "mysql", {"database": "test"}),
    ("sqlite:///relative.db", "sqlite", {"path": "relative.db"}),
    ("sqlite:////abs/path.db", "sqlite", {"path": "/abs/path.db"}),
    ("sqlite:///:memory:", "sqlite", {"path": ":memory:"}),
    (":memory:", "sqlite", {"path": ":memory:"}),
    ("mongodb://h/db", "mongodb", {"database": "db"}),
])
def test_url_forms(url, dialect, extra):
    u = parse_url(url)
    assert u.dialect == dialect
    for k, v in extra.items():
        assert getattr(u, k) == v


@pytest.mark.parametrize("bad", ["", "nope", "oracle://h/db", "postgresq://h/db", "sqlite://rel.db",
                                 "postgresql://h:notaport/db", 42])
def test_bad_urls_raise_configuration_error(bad):
    with pytest.raises(ConfigurationError):
        parse_url(bad)


def test_did_you_mean_scheme():
    with pytest.raises(ConfigurationError, match="did you mean postgresql"):
        parse_url("postgresq://h/db")


def test_password_never_in_redacted_or_errors():
    u = parse_url("postgresql://user:s3cret@h/db")
    assert "s3cret" not in u.redacted() and "s3cret" not in repr(u)
    with pytest.raises(ConfigurationError) as info:
        parse_url("postgresql://user:s3cret@h:bad/db")
    assert "s3cret" not in str(info.value)


def test_database_url_env_and_default(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
    assert DataFlow().config.url.dialect == "sqlite"
    monkeypatch.delenv("DATABASE_URL")
    assert DataFlow().config.url.is_memory


def test_construction_does_no_io():
    # Nothing listens on port 1: construction must still succeed (connection is lazy).
    db = DataFlow("postgresql://nobody@127.0.0.1:1/none")
    assert db.pool_stats()["active"] == 0


def test_unknown_kwarg_did_you_mean():
    with pytest.raises(ConfigurationError, match="did you mean 'pool_size'"):
        DataFlow(":memory:", pool_sise=3)


def test_compat_kwargs_warn_once():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        DataFlow(":memory:", enable_metrics=True, debug=True)
    msgs = [str(x.message) for x in w]
    assert len(msgs) == 1 and "enable_metrics" in msgs[0] and "debug" in msgs[0]


@pytest.mark.parametrize("kw", [{"pool_size": 0}, {"pool_size": True}, {"pool_timeout": -1}, {"max_overflow": -2}])
def test_bad_option_values(kw):
    with pytest.raises(ConfigurationError):
        DataFlow(":memory:", **kw)


def test_pool_size_env(monkeypatch):
    monkeypatch.setenv("DATAFLOW_POOL_SIZE", "7")
    assert DataFlow(":memory:").config.pool_size == 7
    monkeypatch.setenv("DATAFLOW_POOL_SIZE", "x")
    with pytest.raises(ConfigurationError, match="DATAFLOW_POOL_SIZE"):
        DataFlow(":memory:")


def test_mongodb_urls_use_the_document_store_without_io(monkeypatch):
    db = DataFlow("mongodb://h/db")          # constructing does no I/O: nothing listens on h
    assert db.documents and db.dialect.name == "mongodb"
    with pytest.raises(ConfigurationError, match="names its database"):
        DataFlow("mongodb://h")
    monkeypatch.setitem(sys.modules, "pymongo", None)   # as if the extra were not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'dataflow-native\[mongo\]'"):
        DataFlow("mongodb://h/db2")


def test_import_is_lazy_and_fast():
    code = ("import sys, time; t=time.perf_counter(); import dataflow; dt=time.perf_counter()-t; "
            "bad=[m for m in ('asyncpg','aiomysql','aiosqlite','pymysql','numpy','starlette','httpx','pymongo','tqdm') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_context_managers():
    with DataFlow(":memory:") as db:
        @db.model
        class Thing:
            name: str
        assert db.express_sync.create("Thing", {"name": "a"})["id"] == 1
        assert db.health_check()["status"] == "healthy"


# --- the well-known project's constructor keywords (issue 15) -------------------------------

THEIR_KEYWORDS = {
    "test_mode": True, "batch_size": 500, "tenant_isolation_strategy": "row",
    "validate_on_write": True, "log_config": None, "encryption_enabled": False,
    "use_namespaced_nodes": True, "instance_id": "a", "reset_on_start": True, "tdd_mode": False,
    "migration_enabled": True, "enable_model_persistence": False, "max_retries": 3,
    "schema_cache_enabled": True, "trust_enforcement_mode": "disabled", "runtime": None,
}


def _build(**kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        db = DataFlow(":memory:", **kw)
    return db, [str(x.message) for x in w]


def test_their_keywords_accepted_with_one_warning_naming_them():
    db, msgs = _build(**THEIR_KEYWORDS)
    assert len(msgs) == 1
    for k in THEIR_KEYWORDS:
        assert k in msgs[0]
    assert dict(db.config.compat) == THEIR_KEYWORDS


def test_pool_max_overflow_is_max_overflow():
    db, msgs = _build(pool_max_overflow=7)
    assert db.config.max_overflow == 7 and msgs == []
    assert DataFlow(":memory:", pool_max_overflow=4, max_overflow=4).config.max_overflow == 4
    with pytest.raises(ConfigurationError, match="pool_max_overflow.*max_overflow"):
        DataFlow(":memory:", pool_max_overflow=3, max_overflow=5)
    with pytest.raises(ConfigurationError, match="max_overflow"):
        DataFlow(":memory:", pool_max_overflow=-1)


def test_read_url_is_a_real_option_and_refused_on_sqlite():
    # read replicas are built (dataflow/drivers/replicas.py): no compat warning, no I/O here
    db, msgs = _build_url("postgresql://u@primary/db", read_url="postgresql://u:secret@replica/db",
                          read_pool_size=4, max_replica_lag=2.5, batch_size=9)
    assert db.config.read_url == "postgresql://u:secret@replica/db"
    assert db.config.read_pool_size == 4 and db.config.max_replica_lag == 2.5
    assert len(msgs) == 1 and "read_url" not in msgs[0] and "batch_size" in msgs[0]
    assert "secret" not in repr(db.config)
    with pytest.raises(ConfigurationError, match="read_url.*sqlite has no read replicas"):
        DataFlow(":memory:", read_url="sqlite:///other.db")
    with pytest.raises(ConfigurationError, match="is mysql but the primary is postgresql"):
        DataFlow("postgresql://h/db", read_url="mysql://h/db")
    with pytest.raises(ConfigurationError, match="max_replica_lag"):
        DataFlow("postgresql://h/db", read_url="postgresql://r/db", max_replica_lag=0)


def _build_url(url, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        db = DataFlow(url, **kw)
    return db, [str(x.message) for x in w]


def test_truly_unknown_keyword_still_raises_with_did_you_mean():
    with pytest.raises(ConfigurationError, match="did you mean 'reset_on_start'"):
        DataFlow(":memory:", reset_on_stat=True)
    with pytest.raises(ConfigurationError, match="unknown keyword argument 'frobnicate'"):
        DataFlow(":memory:", frobnicate=1)


def test_default_in_memory_database_is_logged(monkeypatch, caplog):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with caplog.at_level("INFO", logger="dataflow"):
        DataFlow()
    lines = [r for r in caplog.records if r.name == "dataflow"]
    assert len(lines) == 1 and "in-memory" in lines[0].getMessage()
    caplog.clear()
    with caplog.at_level("INFO", logger="dataflow"):
        DataFlow(":memory:")
        DataFlow(testing=True)
    assert not [r for r in caplog.records if r.name == "dataflow"]


def test_tenant_isolation_is_checked():
    assert DataFlow(":memory:", multi_tenant=True).config.tenant_isolation == "predicate"
    with pytest.raises(ConfigurationError, match="predicate"):
        DataFlow(":memory:", tenant_isolation="schema")
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        DataFlow(":memory:", tenant_isolation="rls")


def test_cache_max_size_is_honoured_as_cache_max_entries():
    db, msgs = _build(cache_enabled=True, cache_max_size=7)
    assert msgs == [] and db.config.cache_max_entries == 7 and db.cache_stats()["max_entries"] == 7
