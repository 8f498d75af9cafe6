"""Read replicas: where a statement runs when ``read_url`` names replicas -- the one place that
decides it (``driver_for`` gives such a DataFlow a driver class with ``ReplicaRouting`` mixed in;
without ``read_url`` nothing here is imported).

- A read outside a transaction (a SELECT that locks nothing, sets nothing and calls no function
  with side effects, ``is_read``) goes to a healthy replica, round-robin; everything else, every
  statement of a transaction and every read under ``use_primary()`` goes to the primary.
- Read-your-writes without a round trip per write: a write records ``time.monotonic()`` once the
  server acknowledged it, in the caller's session (``dataflow.sessions``).  A probe, run at most
  every ``PROBE_INTERVAL`` s while reads come, samples the primary's log position (PostgreSQL:
  ``pg_current_wal_insert_lsn()``, MariaDB: ``@@gtid_binlog_pos``) and then each replica's replayed
  one (``pg_last_wal_replay_lsn()``, ``@@gtid_slave_pos``).  A replica that has replayed a sample
  taken at time t has every write acknowledged before t: it serves a session whose last write is
  older than t.  Until then that session reads from the primary (no wait, no extra query).
- Staleness bound: a replica is used only while what it is known to hold is at most
  ``max_replica_lag`` s old; a replica that fails a probe or a read is skipped and probed again
  after a back-off.  A failed read on a replica is run again on the primary: nothing about
  replicas ever raises to the caller.
- While anyone reacts to other sessions' writes (``after_commit`` hooks: the query cache, the
  fabric), every read honours every session's writes (a cache filled from a stale replica after
  an invalidation would serve the stale row to the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import itertools
import logging
import re
import threading
import time
from collections import deque

from .. import errors as E
from .. import sessions

logger = logging.getLogger("dataflow.replicas")

#: how often (at most) replica positions are sampled while reads come
PROBE_INTERVAL = 0.05
#: a probe query waits at most this long (a hung replica is skipped, not waited for)
PROBE_TIMEOUT = 2.0
#: back-off before a failed replica is tried again (doubling up to the maximum)
RETRY_FIRST, RETRY_MAX = 0.25, 5.0
#: primary samples kept to date what a lagging replica holds
HISTORY = 256

_ids = itertools.count(1)

# -- which statements may run on a replica ----------------------------------------------------------
_READ_HEAD = re.compile(r"^\s*(SELECT|WITH|VALUES|TABLE)\b", re.I)
#: anything in a read that makes it belong to the primary: a write in a CTE or SELECT INTO, row
#: locks, sequences and locks, server variables (they describe the server a write will run on)
_PRIMARY_ONLY = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|REPLACE|TRUNCATE|INTO|LOCK|FOR\s+(UPDATE|SHARE|NO\s+KEY|KEY\s+SHARE)|"
    r"NEXTVAL|SETVAL|CURRVAL|LASTVAL|LAST_INSERT_ID|SET_CONFIG|CURRENT_SETTING|PG_NOTIFY|"
    r"PG_(TRY_)?ADVISORY\w*|GET_LOCK|RELEASE_LOCK|RELEASE_ALL_LOCKS|IS_FREE_LOCK|IS_USED_LOCK|"
    r"TXID_CURRENT\w*|PG_CURRENT_\w+|PG_EXPORT_SNAPSHOT|SLEEP|PG_SLEEP\w*|DBLINK\w*|LO_\w+)\b|@@", re.I)
_verdicts: dict = {}


def is_read(sql: str) -> bool:
    """True when ``sql`` may run on a replica (decided once per statement text)."""
    v = _verdicts.get(sql)
    if v is None:
        v = bool(_READ_HEAD.match(sql)) and _PRIMARY_ONLY.search(sql) is None
        if len(_verdicts) > 4096:
            _verdicts.clear()
        _verdicts[sql] = v
    return v


# -- use_primary ----------------------------------------------------------------------------------
_PRIMARY: contextvars.ContextVar = contextvars.ContextVar("dataflow_use_primary", default=False)


class use_primary:
    """``with db.use_primary():`` / ``async with``: reads in the block go to the primary."""

    __slots__ = ("_token",)

    def __enter__(self):
        self._token = _PRIMARY.set(True)
        return self

    def __exit__(self, *exc):
        _PRIMARY.reset(self._token)
        return False

    async def __aenter__(self):
        return self.__enter__()

    async def __aexit__(self, *exc):
        return self.__exit__()


# -- log positions, per dialect ---------------------------------------------------------------------
def _lsn(text):
    if text is None:
        return None
    hi, lo = str(text).split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def _pg_covers(replayed: int, sample: int) -> bool:
    """The replica replayed everything up to the primary's insert position ``sample``.  The
    insert position of an idle primary whose last record ended at a WAL page boundary points
    past the next page's header (24 bytes, 40 at a segment start): nothing lies in between."""
    if replayed >= sample:
        return True
    into = sample % 8192
    return into in (24, 40) and replayed >= sample - into


def _gtids(text):
    """``@@gtid_*_pos`` ("0-1-42,1-2-7") -> {domain: seq}."""
    out = {}
    for part in (text or "").split(","):
        part = part.strip()
        if part:
            d, _s, n = part.split("-")
            out[int(d)] = int(n)
    return out


def _gtid_covers(replayed: dict, sample: dict) -> bool:
    return all(replayed.get(d, -1) >= n for d, n in sample.items())


@dataclasses.dataclass(frozen=True)
class Positions:
    """How to read and compare log positions on one kind of server."""

    primary_sql: str
    replica_sql: str
    parse: object
    covers: object


PG = Positions("SELECT pg_current_wal_insert_lsn()::text", "SELECT pg_last_wal_replay_lsn()::text",
               _lsn, _pg_covers)
MARIADB = Positions("SELECT @@gtid_binlog_pos", "SELECT @@gtid_slave_pos", _gtids, _gtid_covers)


class Replica:
    """One replica: its driver and what the probes know of it."""

    __slots__ = ("driver", "label", "up", "caught_up", "checked", "retry_at", "backoff", "errors",
                 "reads", "setup_seen")

    def __init__(self, driver):
        self.driver = driver
        self.label = driver.url.redacted()
        self.up = False                 # a probe succeeded and no failure since
        self.caught_up = float("-inf")  # it holds every write acknowledged before this time
        self.checked = float("-inf")    # when its position was last read
        self.retry_at = 0.0             # down: not probed before this time
        self.backoff = RETRY_FIRST
        self.errors = 0
        self.reads = 0
        self.setup_seen = 0             # connection-setup hooks its connections have

    def failed(self, now: float, why) -> None:
        if self.up or not self.errors:   # going down, or never came up: say why, once
            logger.warning("read replica %s skipped until it answers again: %s", self.label, why)
        self.up = False
        # what it holds is learnt again when it is back (it may come back rebuilt, behind)
        self.caught_up = float("-inf")
        self.errors += 1
        self.retry_at = now + self.backoff
        self.backoff = min(self.backoff * 2, RETRY_MAX)

    def answered(self) -> None:
        if not self.up:
            logger.info("read replica %s serves reads", self.label)
        self.up = True
        self.backoff = RETRY_FIRST


class ReplicaRouting:
    """Mixed in before a concrete driver class (see ``replicated``): the statement methods route,
    writes leave fences, ``pool_stats`` reports every server.  ``replica_driver(config)`` makes the
    driver of one replica."""

    positions: Positions
    replica_driver = None

    def _init_replicas(self, config) -> None:
        sessions.enabled = True
        self.router_id = next(_ids)
        self.max_replica_lag = float(config.max_replica_lag)
        self.replicas = []
        for u in config.read_urls:
            rc = dataclasses.replace(config, url=u, pool_size=config.read_pool_size, read_urls=())
            d = self.replica_driver(rc)
            if hasattr(self, "connection_setup"):
                d.connection_setup = self.connection_setup   # codecs (pgvector) on replicas too
            d.tenant_settings = self.__dict__.get("_tenant_settings")
            self.replicas.append(Replica(d))
        self._rr = 0
        self._writing = 0                      # writes in flight (all sessions)
        self._last_write = float("-inf")       # the latest acknowledged write (all sessions)
        self._history: deque = deque(maxlen=HISTORY)  # (time, primary position)
        self._probed_at = float("-inf")
        self._probing_since = None             # a probe is running (in some loop) since then
        self._tasks: set = set()
        self._lock = threading.Lock()          # _writing, counted from every thread's loop

    # tenant_isolation="rls": the replicas set the tenant per (read-only) transaction too
    @property
    def tenant_settings(self):
        return self.__dict__.get("_tenant_settings")

    @tenant_settings.setter
    def tenant_settings(self, fn):
        self.__dict__["_tenant_settings"] = fn
        for r in self.__dict__.get("replicas", ()):
            r.driver.tenant_settings = fn

    # -- routing ---------------------------------------------------------------------------------
    def _pick(self, sql: str):
        """The replica to run read ``sql`` on, or None for the primary."""
        if _PRIMARY.get() or not is_read(sql):
            return None
        now = time.monotonic()
        if now - self._probed_at >= PROBE_INTERVAL and (
                self._probing_since is None or now - self._probing_since > 3 * PROBE_TIMEOUT):
            self._start_probe(now)   # (the second case: a probe lost with its closed loop)
        s = sessions.current()
        if s is None:
            # the session starts at this context's first statement, so tasks it starts from
            # now on (a gather of writes, say) share it and its later reads see their writes
            s = sessions.ensure()
        fence = s.fences.get(self.router_id, float("-inf"))
        if self.hooks.after_commit:    # someone acts on other sessions' writes: honour them all
            if self._writing:
                return None
            fence = max(fence, self._last_write)
        oldest = now - self.max_replica_lag
        reps = self.replicas
        n = len(reps)
        for i in range(n):
            r = reps[(self._rr + i) % n]
            if r.up and r.caught_up > fence and r.caught_up >= oldest:
                self._rr = (self._rr + i + 1) % n
                return r
        return None

    def _wrote(self) -> None:
        """A write was acknowledged (or its outcome is unknown): fence this session's reads."""
        t = time.monotonic()
        self._last_write = t
        sessions.ensure().fences[self.router_id] = t

    async def _write(self, call, *args):
        with self._lock:
            self._writing += 1
        try:
            return await call(*args)
        finally:
            with self._lock:
                self._writing -= 1
            self._wrote()

    async def _read(self, r: Replica, method: str, sql: str, params, primary_call):
        try:
            if self.observed:   # the hooks (monitoring, echo) see replica reads too
                out = await self._observed(getattr(r.driver, "_" + method), sql, params, None, None)
            else:
                out = await getattr(r.driver, method)(sql, params)
            r.reads += 1
            return out
        except E.DatabaseConnectionError as exc:
            r.failed(time.monotonic(), exc)
        except E.DataFlowError as exc:
            # e.g. a schema the replica has not replayed yet, a query cancelled by recovery on
            # a hot standby: the primary's answer is the one the caller gets
            logger.debug("read on replica %s failed (%s); running it on the primary", r.label, exc)
        return await primary_call(sql, params)

    # -- the statement methods -----------------------------------------------------------------------
    async def fetch(self, sql: str, params=(), writes=None) -> list:
        if not writes and self._tx.get() is None:
            r = self._pick(sql)
            if r is not None:
                return await self._read(r, "fetch", sql, params, super().fetch)
            if is_read(sql):
                return await super().fetch(sql, params)
        elif self._tx.get() is not None:
            return await super().fetch(sql, params, writes)
        return await self._write(super().fetch, sql, params, writes)

    async def fetchrow(self, sql: str, params=(), writes=None):
        if not writes and self._tx.get() is None:
            r = self._pick(sql)
            if r is not None:
                return await self._read(r, "fetchrow", sql, params, super().fetchrow)
            if is_read(sql):
                return await super().fetchrow(sql, params)
        elif self._tx.get() is not None:
            return await super().fetchrow(sql, params, writes)
        return await self._write(super().fetchrow, sql, params, writes)

    async def execute(self, sql: str, params=(), writes=None) -> int:
        if self._tx.get() is not None:
            return await super().execute(sql, params, writes)
        return await self._write(super().execute, sql, params, writes)

    async def insert(self, sql: str, params=(), writes=None):
        if self._tx.get() is not None:
            return await super().insert(sql, params, writes)
        return await self._write(super().insert, sql, params, writes)

    async def executemany(self, sql: str, rows, writes=None) -> None:
        return await self._write(super().executemany, sql, rows, writes)

    async def _begin(self, isolation):
        # COMMIT runs in a shielded task (base.finish) whose context is a copy: the session it
        # fences must exist already, in the caller's context
        sessions.ensure()
        return await super()._begin(isolation)

    async def _commit(self, conn) -> None:
        await self._write(super()._commit, conn)

    @contextlib.asynccontextmanager
    async def connection(self):
        """A borrowed primary connection may write anything: its use fences like a write."""
        if self._tx.get() is not None:
            async with super().connection() as con:
                yield con
            return
        with self._lock:
            self._writing += 1
        try:
            async with super().connection() as con:
                yield con
        finally:
            with self._lock:
                self._writing -= 1
            self._wrote()

    # -- probes ----------------------------------------------------------------------------------------
    def _start_probe(self, now: float) -> None:
        self._probed_at = now
        self._probing_since = now
        # a fresh context: the probe joins no transaction, session or tenant of the reader's
        task = asyncio.get_running_loop().create_task(self._probe(), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _probe(self) -> None:
        try:
            await self.probe()
        except Exception:  # noqa: BLE001 - a probe never raises to anyone; the next one retries
            logger.debug("replica probe failed", exc_info=True)
        finally:
            self._probing_since = None
            self._probed_at = time.monotonic()

    async def probe(self) -> None:
        """Sample the primary's position, then each due replica's (concurrently); date what each
        replica holds.  Public for tests and for a caller that wants fresh figures now."""
        pos = self.positions
        t0 = time.monotonic()
        text = await asyncio.wait_for(self._position(self, pos.primary_sql), PROBE_TIMEOUT)
        try:
            sample = pos.parse(text)
        except (ValueError, TypeError):
            sample = None
        if not sample:
            if not getattr(self, "_warned_no_log", False):
                self._warned_no_log = True
                logger.warning("the primary reports no replication position DataFlow can read (%r; MariaDB: is "
                               "log_bin on? MySQL's own GTIDs are not supported): reads stay on the primary", text)
            return
        if not self._history or self._history[-1][1] != sample:
            self._history.append((t0, sample))
        else:  # nothing written since the last sample: the same position, dated later
            self._history[-1] = (t0, sample)
        due = [r for r in self.replicas if r.up or r.retry_at <= t0]
        await asyncio.gather(*(self._probe_one(r) for r in due))

    async def _probe_one(self, r: Replica) -> None:
        pos = self.positions
        try:
            if hasattr(r.driver, "connection_setup") and r.setup_seen != len(r.driver.connection_setup):
                await self._renew(r)
            text = await asyncio.wait_for(self._position(r.driver, pos.replica_sql), PROBE_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - down, unreachable, hung: skipped for a while
            r.failed(time.monotonic(), exc)
            return
        now = time.monotonic()
        try:
            replayed = pos.parse(text) if text is not None else None
        except (ValueError, TypeError):
            replayed = None
        if replayed is None:
            r.failed(now, "it reports no replay position: it is not a replica (pg_last_wal_replay_lsn() is NULL)")
            return
        r.checked = now
        for t, sample in reversed(self._history):
            if t <= r.caught_up:
                break
            if pos.covers(replayed, sample):
                r.caught_up = t
                break
        r.answered()

    async def _renew(self, r: Replica) -> None:
        """New connection-setup hooks (e.g. pgvector's codec): replica connections opened before
        them are replaced, as the primary's are."""
        seen = len(r.driver.connection_setup)
        pool = r.driver._loops.get()
        if pool is not None:
            await pool.expire_connections()
        r.setup_seen = seen

    async def _position(self, driver, sql: str):
        """One value read on a pooled connection of ``driver``, bypassing routing and hooks."""
        return await driver._position_of(sql)

    # -- monitoring and lifecycle --------------------------------------------------------------------
    def replica_status(self) -> list:
        now = time.monotonic()
        out = []
        for r in self.replicas:
            lag = None if r.caught_up == float("-inf") else round(max(0.0, r.checked - r.caught_up), 4)
            out.append({"url": r.label, "healthy": r.up, "lag_seconds": lag,
                        "usable": r.up and r.caught_up >= now - self.max_replica_lag,
                        "reads": r.reads, "errors": r.errors})
        return out

    def pool_stats(self) -> dict:
        """The primary's figures as before, plus ``replicas``: each replica's pool and state."""
        out = super().pool_stats()
        reps = []
        for r, status in zip(self.replicas, self.replica_status()):
            d = r.driver
            if d._sized:
                stats = d.pool_stats()
            else:  # never connected: not asked now (it may be down; pool_stats must not wait)
                stats = {"active": 0, "idle": 0, "max": d.pool_size, "overflow": 0, "max_overflow": 0,
                         "utilization": 0.0}
            reps.append({**status, **stats})
        out["replicas"] = reps
        return out

    async def close(self):
        me = asyncio.get_running_loop()
        mine = []
        for t in list(self._tasks):
            if t.get_loop() is me:
                t.cancel()
                mine.append(t)
            else:  # another loop's probe: cancelled in its loop (it ends by PROBE_TIMEOUT anyway)
                try:
                    t.get_loop().call_soon_threadsafe(t.cancel)
                except RuntimeError:
                    pass
        if mine:
            await asyncio.wait(mine, timeout=5)
        for r in self.replicas:
            try:
                await r.driver.close()
            except Exception:  # noqa: BLE001 - closing a dead replica's pool: nothing to save
                pass
        await super().close()


def replicated(base, positions: Positions, replica_driver):
    """``base`` (a driver class) with reads routed to replicas made by ``replica_driver(config)``."""
    ns = {"positions": positions, "replica_driver": staticmethod(replica_driver)}
    if hasattr(base, "load_data"):
        async def load_data(self, *args, **kw):
            return await self._write(super(cls, self).load_data, *args, **kw)
        ns["load_data"] = load_data

    def __init__(self, config):
        base.__init__(self, config)
        self._init_replicas(config)
    ns["__init__"] = __init__
    cls = type(f"Replicated{base.__name__}", (ReplicaRouting, base), ns)
    return cls


def driver_with_replicas(config):
    """The driver of a DataFlow whose ``read_url`` names replicas."""
    if config.url.dialect == "postgresql":
        from .postgresql import PostgreSQLDriver
        return replicated(PostgreSQLDriver, PG, PostgreSQLDriver)(config)
    from .mysql import MySQLDriver, read_only_driver
    return replicated(MySQLDriver, MARIADB, read_only_driver)(config)
