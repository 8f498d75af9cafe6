"""``db.test_create`` / ``db.test_reset``: quick fixtures for users' tests (``DataFlow(testing=True)``)."""

from __future__ import annotations

from types import SimpleNamespace

from ..statements import admin


class Record(SimpleNamespace):
    """A stored row with attribute access (``user.name``) that still reads like a dict."""

    def __getitem__(self, key):
        return getattr(self, key)

    def keys(self):
        return vars(self).keys()

    def to_dict(self) -> dict:
        return dict(vars(self))


async def test_create(db, model, fields: dict) -> Record:
    return Record(**await db.express.create(model, fields))


async def test_reset(db) -> None:
    """Empty every table of the instance's models (the schema stays)."""
    await db.initialize()
    if db.documents:
        for store in db._tables.values():
            await store.clear()
        return
    async with db.transaction():
        for table in db.list_tables():
            await db.execute_raw(admin.empty_table(db.dialect, table))
