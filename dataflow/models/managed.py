"""Field names with a fixed meaning and the clock that fills them, defined once for models,
validation, upserts and loads."""

import datetime as _dt

#: set by DataFlow itself; a value given for one in a create/update is refused with the reason
MANAGED_FIELDS = ("created_at", "updated_at", "deleted_at")
#: never overwritten when an upsert or an ``update`` load meets an existing row
PROTECTED_FIELDS = ("id", "created_at", "tenant_id")


_UTC = _dt.timezone.utc


def utcnow() -> _dt.datetime:
    """The time written to ``created_at``/``updated_at``/``deleted_at`` (aware, UTC)."""
    return _dt.datetime.now(_UTC)
