"""Single-row upsert: find by the ``where`` keys, update that row or insert a new one.

Done as SELECT ... FOR UPDATE then UPDATE-or-INSERT inside one transaction, which behaves the
same on every dialect and tells "created" from "updated" exactly; a concurrent insert of the
same key surfaces as a unique violation and is retried once as an update.  ``id`` and
``created_at`` are never overwritten.
"""

from __future__ import annotations

import asyncio
import random

from ..errors import TransactionConflictError, UniqueViolationError


async def upsert(table, where: dict, create: dict | None, update: dict | None, where_label=None) -> dict:
    label = where_label or f"{table.model.name} upsert"
    create, update, filt = table.upsert_args(where, create, update, label)
    sql, params = table.st.lock_matching(filt)
    await table.ready()
    drv = table.db.driver
    # A deadlock between two upserts' row/gap locks (InnoDB locks the gap where a missing key
    # would go) aborts the whole transaction: retried here when the upsert is its own
    # transaction, never inside the caller's (which the server has rolled back).
    own = drv.current() is None
    for attempt in range(4):
        try:
            async with drv.transaction():
                rec = await drv.fetchrow(sql, params)
                if rec is not None:
                    if update:
                        row, _ = await table.update(rec[0], update, where=f"{label} update")
                    else:
                        row = await table.read(rec[0], include_deleted=True)
                    return {"created": False, "action": "updated", "record": row}
                row = await table.create(create, where=f"{label} create")
                return {"created": True, "action": "created", "record": row}
        except UniqueViolationError:
            if attempt:
                raise
        except TransactionConflictError:
            if not own or attempt == 3:
                raise
            await asyncio.sleep(0.005 * (attempt + 1) * (1 + random.random()))
    raise AssertionError("unreachable")
