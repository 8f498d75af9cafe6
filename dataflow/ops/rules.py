"""What every store does with a caller's record before its database sees it: ids and values
checked against the model, defaults and managed timestamps filled in, the tenant stamped.

Shared by the SQL store (``ops.table.Table``) and the document store
(``dataflow.documents.store``), so both accept and refuse exactly the same input.
A subclass sets ``db``, ``model``, ``code`` (the ``_native.params`` dialect code its values are
coerced for) and ``kind_of``.
"""

from __future__ import annotations

import uuid as _uuid

from .. import _native
from ..errors import BulkLoadError, UnsupportedFeatureError, ValidationError
from ..models.managed import utcnow
from ..models import validate as V

K = _native.load("params")

_params = K


class ModelRules:
    """Record checks shared by every store of one model."""

    def coerce_id(self, value, where="id"):
        if value is None:
            raise ValidationError(f"{self.model.name}: {where} is required")
        try:
            return _params.coerce(value, self.model.id_kind, self.code)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{self.model.name}.{where}: {exc}") from None

    def coerce_values(self, names, values, where):
        try:
            return _params.coerce_row(values, tuple(self.kind_of[n] for n in names), self.code, names)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{where}: {exc}") from None

    def tenant_for(self, data, where) -> str:
        """The tenant a new row of a tenant model belongs to: the bound one.  A record naming
        another tenant is refused; inside ``db.all_tenants()`` the record must name it."""
        given = data.get("tenant_id") if isinstance(data, dict) else None
        tenants = self.db.tenant_context
        if tenants.is_all():
            if given is None:
                tenants.require(f"{where}")
            from ..tenancy import check_tenant_id
            return check_tenant_id(given)
        current = tenants.require(f"{where} ({self.model.name} is multi_tenant)")
        if given is not None and given != current:
            raise ValidationError(f"{where}: the record names tenant_id {given!r} but the bound tenant is "
                                  f"{current!r}; a row is always written for the bound tenant")
        return current

    def check_tenant_unchanged(self, fields, where) -> None:
        """Updates never move a row between tenants: tenant_id may only restate the bound one."""
        if self.model.multi_tenant and "tenant_id" in fields:
            current = self.db.tenant_context.current()
            if current is None or fields["tenant_id"] != current:
                raise ValidationError(f"{where}: tenant_id cannot be changed (a row never moves between tenants)")

    def _no_tenant_move(self, fields, where) -> dict:
        self.check_tenant_unchanged(fields, where)
        if "tenant_id" in fields:
            fields = {k: v for k, v in fields.items() if k != "tenant_id"}
            if not fields:
                raise ValidationError(f"{where}: nothing to change besides tenant_id")
        return fields

    # -- single-row upsert: the arguments, checked and merged the same way on every store ----------
    def upsert_args(self, where, create, update, label) -> tuple[dict, dict, dict]:
        """(create, update, filter) of an upsert: ``where`` (unique field values) is part of the
        created row; ``update`` defaults to ``create`` minus the key and never touches the
        protected fields; the filter matches NULL keys with ``$null``."""
        from ..models.managed import PROTECTED_FIELDS
        m = self.model
        if not isinstance(where, dict) or not where:
            raise ValidationError(f"{label}: 'where' must be a non-empty dict of unique field values, "
                                  f"e.g. {{'email': 'a@x.io'}}")
        V.check_record(m, where, where=f"{label} where")
        create = dict(create or {})
        update = dict(update if update is not None else {k: v for k, v in create.items() if k not in where})
        V.check_record(m, create, where=f"{label} create")
        V.check_record(m, update, where=f"{label} update")
        self.check_tenant_unchanged(update, label)
        update = {k: v for k, v in update.items() if k not in PROTECTED_FIELDS}
        for k, v in where.items():
            if k in create and create[k] != v:
                raise ValidationError(f"{label}: create[{k!r}] differs from where[{k!r}]")
            create[k] = v
        filt = {k: (v if v is not None else {"$null": True}) for k, v in where.items()}
        return create, update, filt

    # -- ETL: the same on every store (dataflow/bulk/load.py and export.py work through the store) --
    async def load(self, source, **opts) -> dict:
        from ..bulk.load import load_table
        return await load_table(self, source, **opts)

    async def export(self, path, **opts) -> dict:
        from ..bulk.export import export_table
        return await export_table(self, path, **opts)

    # -- bulk update / delete: what both stores check before touching a row -----------------------
    def _writable(self, what: str) -> None:
        if self.model.append_only:
            raise UnsupportedFeatureError(f"{self.model.name} is append_only: rows cannot be {what}")

    @staticmethod
    def _need_confirm(filt, confirmed, label) -> None:
        if not filt and confirmed is not True:
            raise ValidationError(
                f"{label}: an empty filter would affect every row; pass confirmed=True if that is what you want")

    def bulk_update_args(self, filt, fields, confirmed, label) -> tuple[dict, dict]:
        """(fields, filter) of a bulk update by filter, checked: settable fields, no tenant
        move, a filter that names model fields, an empty filter only with ``confirmed``."""
        self._writable("updated")
        if not isinstance(fields, dict) or not fields:
            raise ValidationError(f"{label}: pass 'filter' and a non-empty 'fields' dict, or 'data' with per-row values")
        V.check_record(self.model, fields, where=label, allow_id=False)
        fields = self._no_tenant_move(fields, label)          # a row never moves between tenants
        filt = V.check_filter(filt)
        self._need_confirm(filt, confirmed, label)
        return fields, filt

    def bulk_update_rows(self, data, label, prepare) -> list:
        """Per-row updates (``data``: dicts each with an ``id``), checked before any is written:
        ``prepare(i, id, fields)`` turns each into the store's own form; a bad row is a
        ``BulkLoadError`` naming it."""
        self._writable("updated")
        if isinstance(data, (dict, str, bytes)):
            raise ValidationError(f"{label}: 'data' must be a list of dicts each with an 'id'")
        out = []
        for i, rec in enumerate(list(data)):
            if not isinstance(rec, dict) or "id" not in rec:
                raise BulkLoadError(f"{label} row {i}: each record needs an 'id'", failed_index=i)
            fields = {k: v for k, v in rec.items() if k != "id"}
            if not fields:
                raise BulkLoadError(f"{label} row {i}: nothing to update besides 'id'", failed_index=i)
            try:
                V.check_record(self.model, fields, where=f"{label} row {i}", allow_id=False)
                fields = self._no_tenant_move(fields, f"{label} row {i}")
                out.append(prepare(i, rec["id"], fields))
            except ValidationError as exc:
                raise BulkLoadError(str(exc), failed_index=i, cause=exc) from exc
        return out

    def bulk_delete_filter(self, filt, confirmed, label) -> dict:
        """The filter of a bulk delete: a list of ids becomes ``{"id": {"$in": ids}}`` (each
        checked; an empty list matches no row, it never means "every row")."""
        self._writable("deleted")
        if isinstance(filt, (list, tuple, set, frozenset)):
            ids = list(filt)
            for i, v in enumerate(ids):
                self.coerce_id(v, f"{label} ids[{i}]")
            filt = {"id": {"$in": ids}}
        filt = V.check_filter(filt)
        self._need_confirm(filt, confirmed, label)
        return filt

    async def ready(self):
        if not self.db._ready:
            await self.db.initialize()

    # -- create --------------------------------------------------------------------------------
    def build_row(self, data, where, now=None) -> dict:
        """Flat fields -> full row dict (defaults filled, timestamps set), not yet coerced."""
        m = self.model
        if isinstance(data, dict) and set(data) == {"data"} and "data" not in m.fields:
            raise ValidationError(
                f"{where}: Create takes flat fields, e.g. {{'name': 'Alice'}}, not {{'data': {{...}}}}")
        V.check_record(m, data, where=where)
        row = {}
        for name in m.user_fields:
            if name in data:
                row[name] = data[name]
            elif name == "id":
                if m.id_auto:
                    continue
                if m.id_kind == K.UUID:
                    row["id"] = _uuid.uuid4()
                else:
                    raise ValidationError(f"{where}: {m.name} has a str id; pass 'id'")
            else:
                f = m.fields[name]
                if f.required:
                    raise ValidationError(f"{where}: {m.name}.{name} is required (no default)")
                row[name] = f.make_default()
        if m.multi_tenant:
            row["tenant_id"] = self.tenant_for(data, where)
        now = now or utcnow()
        row["created_at"] = now
        row["updated_at"] = now
        if m.soft_delete:
            row["deleted_at"] = None
        return row
