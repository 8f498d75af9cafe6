"""Coordination through PostgreSQL (``db.start(coordination="postgresql")``): the same contract as
the Redis backend, kept in four tables of the DataFlow's own database and run through its
driver.

Each operation is one conditional statement (``dataflow/statements/lease.py``), never a session
lock, so it works through PgBouncer transaction pooling; lease expiry is judged by the server's
clock.  Followers learn of new product versions by a version query on every tick: LISTEN/NOTIFY
would need a session of its own (which transaction pooling does not give), and one indexed
query per tick per worker is cheap.
"""

from __future__ import annotations

import asyncio
import json

from ..errors import ConfigurationError, DataFlowError
from ..statements.lease import LEASE_DIALECTS, LeaseStatements

#: forwarded requests older than this are dropped (their sender has long timed out)
REQUEST_KEEP = 300.0
#: a follower waiting for the leader's answer asks this often
OUTCOME_POLL = 0.02


class PostgresBackend:
    name = "postgresql"

    def __init__(self, db, key: str, prefix: str):
        if db.documents or db.dialect.name not in LEASE_DIALECTS:
            raise ConfigurationError(f"coordination='postgresql' keeps its lease in the DataFlow's database, "
                                     f"which must be PostgreSQL (this one is {db.dialect.name}); use "
                                     f"coordination='redis' or a PostgreSQL URL")
        self.driver = db.driver
        self.key = key
        self.sql = LeaseStatements(db.dialect, prefix)

    async def _fetch(self, sql, *params):
        return await self.driver.fetch(sql, params)

    async def setup(self) -> None:
        for attempt in range(5):
            try:
                for stmt in self.sql.create:
                    await self.driver.execute(stmt, ())
                return
            except DataFlowError:
                # several workers creating the tables at once: one wins, the others retry
                if attempt == 4:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))

    async def close(self) -> None:
        """The driver belongs to the DataFlow, which closes it."""

    # -- the lease -----------------------------------------------------------------------------
    async def acquire(self, holder: str, lease: float) -> tuple[int | None, float, int]:
        rows = await self._fetch(self.sql.acquire, self.key, holder, float(lease))
        if rows:
            return int(rows[0][0]), 0.0, int(rows[0][0])
        rows = await self._fetch(self.sql.remaining, self.key)
        return (None, float(rows[0][0]), int(rows[0][1])) if rows else (None, 0.0, 0)

    async def renew(self, holder: str, epoch: int, lease: float) -> bool:
        return bool(await self._fetch(self.sql.renew, self.key, holder, epoch, float(lease)))

    async def release(self, holder: str, epoch: int) -> None:
        await self.driver.execute(self.sql.release, (self.key, holder, epoch))

    # -- the shared product cache ----------------------------------------------------------------
    async def write(self, holder: str, epoch: int, product: str, body: bytes, cached_at: float) -> int:
        rows = await self._fetch(self.sql.write, self.key, product, epoch, body, cached_at, holder)
        return int(rows[0][0]) if rows else 0

    async def versions(self) -> dict:
        return {r[0]: int(r[1]) for r in await self._fetch(self.sql.versions, self.key)}

    async def read(self, product: str):
        rows = await self._fetch(self.sql.read, self.key, product)
        if not rows:
            return None
        ver, epoch, body, at = rows[0]
        return int(ver), int(epoch), bytes(body), float(at)

    async def wait_change(self, timeout: float) -> None:
        await asyncio.sleep(timeout)

    # -- webhook nonces --------------------------------------------------------------------------
    async def claim(self, nonce: str, ttl: float) -> bool:
        return bool(await self._fetch(self.sql.claim, self.key, nonce, float(ttl)))

    async def unclaim(self, nonce: str) -> None:
        await self.driver.execute(self.sql.unclaim, (self.key, nonce))

    # -- requests forwarded to the leader ---------------------------------------------------------
    async def push(self, kind: str, payload: dict) -> str:
        rows = await self._fetch(self.sql.push, self.key, kind, json.dumps(payload))
        return str(rows[0][0])

    async def outcome(self, rid: str, timeout: float) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            rows = await self._fetch(self.sql.status, self.key, int(rid))
            status = rows[0][0] if rows else None
            if status in ("ok", "failed"):
                await self.driver.execute(self.sql.forget, (self.key, int(rid)))
                return status
            if loop.time() >= deadline:
                await self.driver.execute(self.sql.forget, (self.key, int(rid)))
                return None
            await asyncio.sleep(OUTCOME_POLL)

    async def take(self, timeout: float) -> list:
        rows = await self._fetch(self.sql.take, self.key)
        if not rows:
            await asyncio.sleep(timeout)
            return []
        out = []
        for rid, kind, payload in rows:
            try:
                out.append((str(rid), kind, json.loads(payload)))
            except ValueError:
                continue
        return out

    async def answer(self, rid: str, outcome: str) -> None:
        await self.driver.execute(self.sql.answer, (self.key, outcome, int(rid)))

    async def purge(self) -> None:
        """Expired nonces and stale requests go (the leader calls this now and then)."""
        await self.driver.execute(self.sql.purge_nonces, (self.key,))
        await self.driver.execute(self.sql.purge_requests, (self.key, REQUEST_KEEP))
