"""WaitWatch: one timer bounds every wait on a pool, with asyncio.timeout's semantics -- a due wait
raises TimeoutError, anyone else's cancellation stays a CancelledError, nothing is left behind."""

from __future__ import annotations

import asyncio

import pytest

from dataflow.drivers.waits import WaitWatch


def _clean(w: WaitWatch) -> bool:
    return not w._waiting and not w._expired


async def test_a_wait_that_ends_in_time_returns_its_result():
    w = WaitWatch(1.0)
    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, fut.set_result, 42)
    assert await w.wait(fut) == 42
    assert _clean(w)


async def test_a_due_wait_raises_timeout_at_its_deadline():
    w = WaitWatch(0.05)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    never = loop.create_future()
    with pytest.raises(TimeoutError):
        await w.wait(never)
    assert 0.04 <= loop.time() - t0 < 1.0
    assert never.cancelled()
    assert _clean(w)
    assert asyncio.current_task().cancelling() == 0   # the watch's cancellation was taken back


async def test_staggered_waits_each_time_out_after_their_own_timeout():
    w = WaitWatch(0.1)
    loop = asyncio.get_running_loop()
    ends = {}

    async def one(i):
        await asyncio.sleep(i * 0.03)
        start = loop.time()
        try:
            await w.wait(loop.create_future())
        except TimeoutError:
            ends[i] = loop.time() - start

    await asyncio.gather(*(one(i) for i in range(6)))
    assert sorted(ends) == list(range(6))
    assert all(0.09 <= d < 1.0 for d in ends.values()), ends
    assert _clean(w) and w._handle is None


async def test_some_served_some_timed_out():
    w = WaitWatch(0.1)
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(0)
    results = []

    async def one():
        try:
            await w.wait(sem.acquire())
            results.append("got")
        except TimeoutError:
            results.append("timeout")

    tasks = [asyncio.create_task(one()) for _ in range(10)]
    await asyncio.sleep(0.02)
    for _ in range(4):
        sem.release()
    await asyncio.gather(*tasks)
    assert sorted(results) == ["got"] * 4 + ["timeout"] * 6
    assert _clean(w)
    assert sem._value == 0   # no permit lost or leaked by the timed-out waiters


async def test_another_cancellation_stays_a_cancellation():
    w = WaitWatch(10.0)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(w.wait(loop.create_future()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _clean(w)


async def test_cancelled_by_someone_else_at_the_deadline_is_a_cancellation():
    w = WaitWatch(0.05)
    loop = asyncio.get_running_loop()

    async def body():
        await w.wait(loop.create_future())

    task = asyncio.create_task(body())
    await asyncio.sleep(0.045)
    loop.call_later(0.006, task.cancel)
    with pytest.raises((asyncio.CancelledError, TimeoutError)):
        await task
    await asyncio.sleep(0.06)
    assert _clean(w)


async def test_close_cancels_the_timer():
    w = WaitWatch(5.0)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(w.wait(loop.create_future()))
    await asyncio.sleep(0)
    assert w._handle is not None
    w.close()
    assert w._handle is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
