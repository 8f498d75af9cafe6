"""Cron schedules for materialized products: ``@db.product(..., schedule="*/5 * * * *")``.

The expression is parsed by croniter (in the ``[fabric]`` extra) at registration, so a bad one
is a ``ConfigurationError`` there and not a dead task later.  Five fields are minute-resolution
cron; a sixth field is seconds (croniter's convention, seconds *last*: ``"* * * * * */10"`` is
every ten seconds).  Times are UTC.

One task per scheduled product, started by the runtime and cancelled by ``db.stop()`` like every
other runtime task.  Each tick refreshes the product (every tenant's cached value, for a
per-tenant product).  The clock is injectable (``clock``, ``sleep``) so tests need not wait for
wall-clock minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..errors import ConfigurationError

logger = logging.getLogger("dataflow.fabric")


def _croniter():
    try:
        from croniter import croniter
    except ImportError:
        raise ConfigurationError("schedule= needs croniter: pip install 'dataflow-native[fabric]'") from None
    return croniter


def check_schedule(product: str, expr) -> str:
    """The expression, stripped, if croniter accepts it; otherwise ``ConfigurationError``."""
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigurationError(f"product {product!r}: schedule must be a cron expression such as "
                                 f"'*/5 * * * *', got {expr!r}")
    expr = " ".join(expr.split())
    croniter = _croniter()
    try:
        croniter(expr, 0.0).get_next(float)
    except Exception as exc:  # noqa: BLE001 - croniter raises several types for one mistake
        raise ConfigurationError(f"product {product!r}: schedule {expr!r} is not a cron expression "
                                 f"(minute hour day-of-month month day-of-week [second]): {exc}") from None
    return expr


class Schedule:
    """The fire times of one expression after a given time (epoch seconds, UTC)."""

    def __init__(self, expr: str):
        self.expr = expr
        self._croniter = _croniter()

    def next_after(self, now: float) -> float:
        return self._croniter(self.expr, now).get_next(float)


async def run_schedule(product: str, expr: str, refresh, *, clock=time.time, sleep=asyncio.sleep,
                       on_tick=None) -> None:
    """Call ``await refresh(product)`` at each fire time of ``expr``, until cancelled.

    A tick that comes while the previous refresh is still running is skipped (the next fire time
    is computed after each refresh), so a slow product never piles up refreshes.  A refresh that
    raises is logged and the schedule goes on."""
    sched = Schedule(expr)
    nxt = sched.next_after(clock())
    while True:
        delay = nxt - clock()
        if delay > 0:
            await sleep(delay)
            continue  # re-read the clock: a sleep may end early (or an injected clock jump)
        try:
            await refresh(product)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the product's own failure is traced by the runtime
            logger.warning("fabric product %r: scheduled refresh failed", product, exc_info=True)
        if on_tick is not None:
            on_tick(product, nxt)
        nxt = sched.next_after(max(clock(), nxt))
