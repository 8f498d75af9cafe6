"""One driver's pools, one per event loop, under one connection budget.

asyncpg and aiomysql connections belong to the loop that opened them, so a driver used from
several loops (``asyncio.run`` per call, a worker thread) needs a pool per loop.  What this
module adds is what the bare per-loop dict lacked: a pool is closed when its loop shuts down
(``asyncio.run``, ``Runner.close``, pytest's loop teardown all run ``shutdown_asyncgens``, which
closes the guard generator registered here), a pool whose loop was closed without that is
abandoned (sockets closed without the dead loop), and the connections of all live pools
together never exceed the driver's pool size.
"""

from __future__ import annotations

import asyncio
import threading
import time

from .. import errors as E


async def _guard(on_shutdown):
    """Parked in a loop's async-generator registry; its ``finally`` runs at the loop's shutdown."""
    try:
        yield
    finally:
        await on_shutdown()


def close_dead_transport(transport) -> None:
    """Close ``transport`` whose loop may be closed: the normal ``abort()`` schedules its last step
    (closing the socket) with ``call_soon``, which a closed loop refuses ("Event loop is
    closed"); then that step is run here directly."""
    if transport is None:
        return
    try:
        transport.abort()
        return
    except RuntimeError:
        pass
    lost = getattr(transport, "_call_connection_lost", None)
    if lost is not None:
        try:
            lost(None)
        except Exception:  # noqa: BLE001 - the socket is closed in its finally; nothing else matters
            pass


class LoopPools:
    """Pools keyed by event loop.

    ``close_pool(pool)`` closes a pool gracefully inside its own loop; ``abandon(pool)`` closes
    its connections synchronously when the loop is gone; ``opened(pool)`` counts its open
    connections; ``shed(pool)`` closes its idle connections (called in its loop) so another
    loop may open one within the budget.
    """

    def __init__(self, close_pool, abandon, opened, shed, label: str):
        self._close_pool, self._abandon, self._opened, self._shed = close_pool, abandon, opened, shed
        self.label = label
        self._pools: dict = {}     # loop -> pool (the pool refers to its loop anyway)
        self._guards: dict = {}    # loop -> parked guard generator (strong ref: the loop's is weak)
        self._locks: dict = {}     # loop -> asyncio.Lock serialising pool creation
        self._mutex = threading.Lock()
        self._connecting = 0       # connects in flight in any loop, counted against the budget

    # -- lookup ------------------------------------------------------------------------------------
    def get(self):
        return self._pools.get(asyncio.get_running_loop())

    def live(self) -> list:
        self.sweep()
        return list(self._pools.values())

    async def create(self, make):
        """This loop's pool, made by ``await make()`` once per loop."""
        loop = asyncio.get_running_loop()
        p = self._pools.get(loop)
        if p is not None:
            return p
        self.sweep()
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            p = self._pools.get(loop)
            if p is None:
                p = await make()
                guard = _guard(lambda: self._loop_shutdown(loop))
                await guard.__anext__()  # first iteration registers it with this loop
                with self._mutex:
                    self._pools[loop] = p
                    self._guards[loop] = guard
        return p

    # -- budget ------------------------------------------------------------------------------------
    def open_connections(self) -> int:
        return sum(self._opened(p) for p in list(self._pools.values())) + self._connecting

    async def reserve(self, size: int, timeout: float) -> None:
        """Wait until one more connection fits in ``size`` across all loops, then count it as
        connecting; ``connected()`` ends that.  Other loops' idle connections are closed to make
        room; waiting longer than ``timeout`` raises DatabaseConnectionError."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        asked = False
        while True:
            self.sweep()
            with self._mutex:
                if self.open_connections() < size:
                    self._connecting += 1
                    return
            if not asked:
                asked = True
                me = asyncio.get_running_loop()
                for lp, p in list(self._pools.items()):
                    if lp is not me and not lp.is_closed():
                        try:
                            lp.call_soon_threadsafe(self._shed, p)
                        except RuntimeError:
                            pass
            if time.monotonic() >= deadline:
                raise E.DatabaseConnectionError(
                    f"timed out after {timeout}s waiting for a {self.label} connection: all {size} of the "
                    f"pool budget are open (in this or other event loops); raise pool_size or pool_timeout")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def connected(self) -> None:
        with self._mutex:
            self._connecting -= 1

    # -- closing -----------------------------------------------------------------------------------
    def sweep(self) -> None:
        """Abandon the pools of loops closed without a shutdown (their guard never ran)."""
        for lp in [lp for lp in list(self._pools) if lp.is_closed()]:
            self._forget(lp, abandon=True)

    def _forget(self, loop, abandon: bool):
        with self._mutex:
            p = self._pools.pop(loop, None)
            guard = self._guards.pop(loop, None)
            self._locks.pop(loop, None)
        if p is not None and abandon:
            try:
                self._abandon(p)
            except Exception:  # noqa: BLE001 - best effort: the loop is gone
                pass
        if guard is not None and loop.is_closed():
            # Finish the parked generator here: left to the garbage collector it would ask the
            # closed loop to run its aclose() ("Event loop is closed").  Its finally finds
            # nothing left to close, so it completes without suspending.
            try:
                guard.aclose().send(None)
            except (StopIteration, RuntimeError):
                pass
        return p

    async def _loop_shutdown(self, loop) -> None:
        p = self._forget(loop, abandon=False)
        if p is not None:
            await self._close_pool(p)

    async def close_all(self) -> None:
        """Close every pool: this loop's gracefully, other live loops' in their loop, closed
        loops' by abandoning their connections."""
        me = asyncio.get_running_loop()
        for lp in list(self._pools):
            if lp is me:
                guard = self._guards.get(lp)
                await self._loop_shutdown(lp)
                if guard is not None:
                    await guard.aclose()
            elif lp.is_closed():
                self._forget(lp, abandon=True)
            else:
                p = self._forget(lp, abandon=False)
                try:
                    asyncio.run_coroutine_threadsafe(self._close_pool(p), lp)
                except RuntimeError:
                    self._abandon(p)
