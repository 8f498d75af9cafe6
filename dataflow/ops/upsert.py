"""Single-row upsert: find by the ``where`` keys, update that row or insert a new one.

Done as SELECT ... FOR UPDATE then UPDATE-or-INSERT inside one transaction, which behaves the
same on every dialect and tells "created" from "updated" exactly; a concurrent insert of the
same key surfaces as a unique violation and is retried once as an update.  ``id`` and
``created_at`` are never overwritten.
"""

from __future__ import annotations

import asyncio
import random

from ..errors import TransactionConflictError, UniqueViolationError, ValidationError
from ..models import validate as V

from ..models.managed import PROTECTED_FIELDS as PROTECTED


async def upsert(table, where: dict, create: dict | None, update: dict | None, where_label=None) -> dict:
    m = table.model
    label = where_label or f"{m.name} upsert"
    if not isinstance(where, dict) or not where:
        raise ValidationError(f"{label}: 'where' must be a non-empty dict of unique field values, e.g. {{'email': 'a@x.io'}}")
    V.check_record(m, where, where=f"{label} where")
    create = dict(create or {})
    update = dict(update if update is not None else {k: v for k, v in create.items() if k not in where})
    V.check_record(m, create, where=f"{label} create")
    V.check_record(m, update, where=f"{label} update")
    table.check_tenant_unchanged(update, label)
    update = {k: v for k, v in update.items() if k not in PROTECTED}
    for k, v in where.items():
        if k in create and create[k] != v:
            raise ValidationError(f"{label}: create[{k!r}] differs from where[{k!r}]")
        create[k] = v
    filt = {k: (v if v is not None else {"$null": True}) for k, v in where.items()}
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
