"""The bounded connection pool the MySQL driver uses (asyncpg brings its own; SQLite has one
connection): a slot is a semaphore permit, taken before a connection is found and given back
exactly once, so a cancelled borrower still returns its connection."""

from __future__ import annotations

import asyncio
import collections
import time

from .. import errors as E
from .waits import WaitWatch


class Pool:
    """A bounded pool: waits at most ``timeout`` for a slot, then DatabaseConnectionError.

    ``connect()`` makes a raw connection, ``alive(raw)`` tells a usable one, ``reset(raw)``
    prepares a returned one for the next borrower (raising means: discard it), ``close(raw)``
    drops one.  The slot is a semaphore permit, taken before a connection is found and given
    back exactly once in ``release``; release is meant to run under ``finish`` so a cancelled
    borrower still returns its connection.
    """

    def __init__(self, connect, alive, reset, close, size: int, timeout: float, recycle: float, label: str):
        self._connect, self._alive, self._reset, self._close = connect, alive, reset, close
        self.size = size
        self.timeout = timeout
        self.recycle = recycle
        self.label = label
        self._sem = asyncio.Semaphore(size)
        self._watch = WaitWatch(timeout)  # one timer for every wait on this pool (waits.py)
        self._idle: collections.deque = collections.deque()  # (raw, born)
        self._born: dict = {}
        self.in_use = 0
        self.discarded = 0
        self.closed = False

    async def acquire(self):
        if self.closed:
            raise E.DatabaseConnectionError(f"{self.label} pool is closed")
        try:
            if self._sem.locked():  # a wait is coming: bound it (a free slot is taken without one)
                await self._watch.wait(self._sem.acquire())
            else:
                await self._sem.acquire()
        except TimeoutError:
            raise E.DatabaseConnectionError(
                f"timed out after {self.timeout}s waiting for a {self.label} connection "
                f"(all {self.size} in use); raise pool_size or pool_timeout") from None
        try:
            now = time.monotonic()
            while self._idle:
                raw, born = self._idle.pop()
                if self._alive(raw) and (not self.recycle or now - born < self.recycle):
                    self.in_use += 1
                    return raw
                self._drop(raw)
            async with asyncio.timeout(self.timeout):
                raw = await self._connect()
            self._born[id(raw)] = time.monotonic()
        except BaseException as exc:
            self._sem.release()
            if isinstance(exc, TimeoutError):
                raise E.DatabaseConnectionError(f"timed out connecting to {self.label}") from exc
            raise
        self.in_use += 1
        return raw

    async def release(self, raw, discard: bool = False) -> None:
        """Give ``raw`` back (reset) or drop it; the slot is freed in every case."""
        self.in_use -= 1
        try:
            if discard or self.closed or not self._alive(raw):
                self._drop(raw)
                return
            try:
                await self._reset(raw)
            except BaseException:
                self._drop(raw)
                raise
            self._idle.append((raw, self._born.get(id(raw), time.monotonic())))
        except Exception:
            pass  # a connection that cannot be reset is gone; the caller's outcome stands
        finally:
            self._sem.release()

    def put_back(self, raw) -> bool:
        """``release`` without a suspension, for a connection that needs no reset (clean session,
        no transaction): back to the idle list and the slot freed at once.  False (nothing done)
        when it needs ``release`` instead."""
        if self.closed or getattr(raw, "_df_dirty", False) or not self._alive(raw):
            return False
        self.in_use -= 1
        self._idle.append((raw, self._born.get(id(raw), time.monotonic())))
        self._sem.release()
        return True

    def _drop(self, raw) -> None:
        self.discarded += 1
        self._born.pop(id(raw), None)
        try:
            self._close(raw)
        except Exception:
            pass

    def stats(self) -> dict:
        idle = len(self._idle)
        return {"active": self.in_use, "idle": idle, "max": self.size, "overflow": 0, "max_overflow": 0,
                "utilization": round(self.in_use / self.size, 4), "discarded": self.discarded}

    def close(self) -> None:
        self.closed = True
        self._watch.close()
        while self._idle:
            self._drop(self._idle.pop()[0])
