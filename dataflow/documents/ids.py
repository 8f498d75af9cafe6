"""Integer ids for documents: one counter document per collection in ``dataflow_counters``,
advanced atomically by ``find_one_and_update`` with ``$inc`` (any number of processes get
distinct ids; a block of ``n`` is one round trip).  An explicit id written by a caller moves
the counter past it with ``$max``, so later generated ids never collide with it.

The counter is never part of a transaction (like a SQL sequence): ids taken by a transaction
that aborts are simply not used, and concurrent transactions do not conflict on the counter
document (which would abort all but one of them)."""

from __future__ import annotations

COUNTERS = "dataflow_counters"


class IdCounter:
    def __init__(self, driver, collection: str):
        self.driver = driver
        self.key = collection

    async def take(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive ids; returns the first."""
        from pymongo import ReturnDocument
        coll = self.driver.collection(COUNTERS)
        doc = await self.driver.guard(coll.find_one_and_update(
            {"_id": self.key}, {"$inc": {"seq": n}}, upsert=True, return_document=ReturnDocument.AFTER),
            "MongoDB id counter")
        return int(doc["seq"]) - n + 1

    async def seen(self, highest: int) -> None:
        """An explicit id ``highest`` was written: generated ids continue after it."""
        coll = self.driver.collection(COUNTERS)
        await self.driver.guard(coll.update_one({"_id": self.key}, {"$max": {"seq": int(highest)}}, upsert=True),
                                "MongoDB id counter")

    async def reset(self) -> None:
        coll = self.driver.collection(COUNTERS)
        await self.driver.guard(coll.delete_one({"_id": self.key}), "MongoDB id counter")
