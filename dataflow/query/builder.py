"""QueryBuilder (``Model.query_builder()``): fluent, MongoDB-style.  It collects a filter and
renders through the model's statement layer (``dataflow.statements``), the same code every node
uses, so it validates identically, binds every value and carries every scope."""

from __future__ import annotations

from ..errors import FilterError, ValidationError
from ..models import validate as V


class QueryBuilder:
    """Build SELECT / COUNT / UPDATE / DELETE statements for one model.

    >>> qb = User.query_builder()
    >>> qb.where("age", "$gte", 18).order_by("created_at", "DESC").limit(10)
    >>> sql, params = qb.build_select()
    """

    def __init__(self, table):
        self._t = table
        self._conds: list[dict] = []
        self._fields = None
        self._order: list = []
        self._limit = None
        self._offset = 0

    def where(self, field: str, op: str, value=None) -> "QueryBuilder":
        V.check_field(self._t.model, field, err=FilterError)
        if not isinstance(op, str):
            raise FilterError(f"operator must be a string like '$gte', got {type(op).__name__}")
        if not op.startswith("$"):
            op = {"=": "$eq", "==": "$eq", "!=": "$ne", "<>": "$ne", ">": "$gt", ">=": "$gte",
                  "<": "$lt", "<=": "$lte"}.get(op.strip(), op if op.startswith("$") else "$" + op.lower())
        self._conds.append({field: {op: value}})
        return self

    def where_filter(self, filt: dict) -> "QueryBuilder":
        self._conds.append(V.check_filter(filt))
        return self

    def select(self, *fields) -> "QueryBuilder":
        if len(fields) == 1 and isinstance(fields[0], (list, tuple)):
            fields = tuple(fields[0])
        self._fields = V.check_fields_projection(self._t.model, list(fields))
        return self

    def order_by(self, field: str, direction: str = "ASC") -> "QueryBuilder":
        if not isinstance(direction, str) or direction.upper() not in ("ASC", "DESC"):
            raise ValidationError(f"order_by direction must be 'ASC' or 'DESC', got {direction!r}")
        self._order.append(f"{field} {direction.lower()}")
        V.parse_order_by(self._t.model, self._order[-1])
        return self

    def limit(self, n: int) -> "QueryBuilder":
        self._limit = V.check_int(n, "limit")
        return self

    def offset(self, n: int) -> "QueryBuilder":
        self._offset = V.check_int(n, "offset", maximum=2 ** 62)
        return self

    def _filter(self) -> dict:
        if not self._conds:
            return {}
        if len(self._conds) == 1:
            return self._conds[0]
        return {"$and": list(self._conds)}

    def build_select(self) -> tuple[str, list]:
        t = self._t
        order = V.parse_order_by(t.model, self._order) if self._order else ()
        return t.st.select(self._filter(), self._fields, order, self._limit, self._offset)

    def build_count(self) -> tuple[str, list]:
        return self._t.st.count(self._filter())

    def build_update(self, fields: dict) -> tuple[str, list]:
        t = self._t
        if not isinstance(fields, dict) or not fields:
            raise ValidationError("build_update needs a non-empty dict of field values")
        V.check_record(t.model, fields, where="QueryBuilder.build_update", allow_id=False)
        fields = t._no_tenant_move(fields, "QueryBuilder.build_update")
        names = tuple(fields)
        values = t.coerce_values(names, list(fields.values()), "QueryBuilder.build_update")
        sql, params = t.st.update_where(names, self._filter())
        return sql, [*values, *params]

    def build_delete(self) -> tuple[str, list]:
        """DELETE of the matching rows (a soft-delete model: the UPDATE that marks them deleted,
        its first two parameters the deletion time, as ``bulk_delete`` sends it)."""
        t = self._t
        sql, params = t.st.delete_where(self._filter())
        if t.model.soft_delete:
            from ..models.managed import utcnow
            now = t.coerce_values(("deleted_at",), [utcnow()], "QueryBuilder.build_delete")[0]
            params = [now, now, *params]
        return sql, params

    async def fetch(self) -> list[dict]:
        """Run the SELECT and return rows as dicts."""
        t = self._t
        return await t.list(self._filter(), self._limit, self._offset, self._order or None, None, self._fields)

    async def count(self) -> int:
        return await self._t.count(self._filter())
