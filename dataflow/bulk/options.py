"""The options every bulk write takes, checked once at the one entry point.

``bulk_create``/``bulk_upsert`` (records) and ``db.load`` (any source) accept the same
conflict modes, conflict keys, batch sizes and atomicity; ``check`` validates them once and
the chosen path (``postgresql``, ``mysql``, ``insert``, or the batched statements of
``write``) receives the result, never the raw arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ValidationError
from ..models.managed import PROTECTED_FIELDS
from ..models import validate as V

CONFLICT_MODES = ("error", "skip", "update")
MAX_BATCH = 10_000_000


@dataclass(frozen=True)
class BulkOptions:
    mode: str                    # "error" | "skip" | "update"
    conflict: tuple              # conflict target; () = any unique key ("skip" without conflict_on)
    batch_size: int | None       # None: the path's default
    atomic: bool
    update_fields: tuple | None  # "update": the columns an existing row takes (None: all given)
    label: str

    def update_columns(self, names) -> list:
        """Of ``names`` (a load's or batch's columns), those an ``update`` rewrites on a
        conflicting row: never the protected fields or the key; ``updated_at`` always."""
        if self.mode != "update":
            return []
        return [c for c in names if c not in PROTECTED_FIELDS and c not in self.conflict
                and c != "updated_at" and (self.update_fields is None or c in self.update_fields)] + ["updated_at"]


def conflict_columns(table, conflict_on, label, mode=None) -> tuple:
    """The conflict target.  ``skip`` with no explicit ``conflict_on`` skips a conflict on any
    unique key (an empty target: ON CONFLICT DO NOTHING); otherwise it defaults to ``id`` and
    must be ``id`` or a declared unique key."""
    m = table.model
    if conflict_on is None and mode == "skip":
        return ()
    if conflict_on is None:
        return ("id",)
    cols = [conflict_on] if isinstance(conflict_on, str) else list(conflict_on)
    if not cols:
        raise ValidationError(f"{label}: conflict_on must name at least one field")
    for c in cols:
        V.check_field(m, c, "conflict_on field")
    if m.multi_tenant and cols != ["id"] and cols[:1] != ["tenant_id"]:
        cols = ["tenant_id", *cols]       # a tenant model's unique keys hold per tenant
    if cols != ["id"] and not any(ix.unique and list(ix.fields) == cols for ix in m.indexes):
        raise ValidationError(
            f"{label}: conflict_on {cols} is not a unique key of {m.name}; declare it in "
            f"__dataflow__['unique'] or use 'id'")
    return tuple(cols)


def check(table, label, *, conflict_resolution="error", conflict_on=None, batch_size=None, atomic=True,
          update_fields=None) -> BulkOptions:
    """Validate the options of one bulk write; every refusal names the option and the fix.
    A tenant model needs a bound tenant (or ``db.all_tenants()``) before anything else."""
    if table.model.multi_tenant and not table.db.tenant_context.is_all():
        table.db.tenant_context.require(f"{label} ({table.model.name} is multi_tenant)")
    if conflict_resolution not in CONFLICT_MODES:
        raise ValidationError(f"{label}: conflict_resolution must be one of {CONFLICT_MODES}, "
                              f"got {conflict_resolution!r}")
    if batch_size is not None and (type(batch_size) is not int or not 1 <= batch_size <= MAX_BATCH):
        raise ValidationError(f"{label}: batch_size must be an int between 1 and {MAX_BATCH}, got {batch_size!r}")
    if update_fields is not None:
        if isinstance(update_fields, str) or not isinstance(update_fields, (list, tuple, set, frozenset)):
            raise ValidationError(f"{label}: update_fields must be a list of field names")
        update_fields = tuple(V.check_field(table.model, f, "update_fields field") for f in update_fields)
    atomic = bool(atomic)
    conflict = conflict_columns(table, conflict_on, label, conflict_resolution) \
        if conflict_resolution != "error" else ("id",)
    return BulkOptions(conflict_resolution, conflict, batch_size, atomic, update_fields, label)
