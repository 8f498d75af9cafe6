"""Writing statements of one model: INSERT (one or many rows), UPDATE by id or by filter,
DELETE (a soft delete is an UPDATE of ``deleted_at``), multi-row upserts."""

from __future__ import annotations


class Writes:
    @property
    def guard(self) -> str | None:
        """Tenant models: an upsert updates a conflicting row only if it is the same tenant's."""
        return "tenant_id" if self.model.multi_tenant else None

    def insert(self, names: tuple, rows: int = 1, returning: str | None = None) -> str:
        """INSERT of ``rows`` rows of ``names`` (cached per shape)."""
        key = ("insert", names, rows, returning)
        sql = self._cache.get(key)
        if sql is None:
            sql = self._cache[key] = self.d.insert(self.model.table, names, rows, returning=returning)
        return sql

    def insert_returning_ids(self, names: tuple, rows: int) -> str:
        """The multi-row INSERT of ``return_ids`` (``RETURNING id`` where the dialect has it)."""
        return self.insert(names, rows, returning="id")

    def upsert(self, names: tuple, conflict: list, update: list, rows: int = 1,
               return_created: bool = False) -> str:
        """Multi-row INSERT ... ON CONFLICT/ON DUPLICATE KEY of ``names``; ``update`` are the
        columns an existing row takes from the record (empty: skip it).  ``return_created``:
        ``RETURNING created_at`` so inserted rows can be told from updated ones."""
        key = ("upsert", names, tuple(conflict), tuple(update), rows, return_created)
        sql = self._cache.get(key)
        if sql is None:
            sql = self.d.upsert(self.model.table, names, conflict, update, rows, guard=self.guard)
            if return_created:
                sql += " RETURNING " + self.q("created_at")
            self._cache[key] = sql
        return sql

    def _sets(self, names) -> str:
        q = self.q
        return ", ".join(f"{q(n)} = {p}" for n, p in zip(names, self.d.placeholders(len(names))))

    def update_by_id(self, names: tuple, idv, returning: bool = False,
                     include_deleted: bool = False) -> tuple[str, list]:
        """UPDATE ``names`` ($1..$n) of the live row with id ``idv``; ``returning``: every column
        of the updated row comes back (dialects with UPDATE ... RETURNING).  ``include_deleted``
        reaches a soft-deleted row too (restoring one: ``deleted_at`` back to NULL)."""
        where, params = self.by_id(idv, len(names) + 1, include_deleted)
        sql = f"UPDATE {self.qtable} SET {self._sets(names)}{where}"
        if returning:
            sql += f" RETURNING {self.select_list}"
        return sql, params

    def update_where(self, names: tuple, filt) -> tuple[str, list]:
        """UPDATE ``names`` ($1..$n) of every row matching ``filt``."""
        where, params = self.where_clause(filt, len(names) + 1)
        return f"UPDATE {self.qtable} SET {self._sets(names)}{where}", params

    def delete_by_id(self, idv) -> tuple[str, list]:
        """DELETE the row (soft delete: set ``deleted_at`` and ``updated_at``, $1 and $2)."""
        if self.model.soft_delete:
            where, params = self.by_id(idv, 3)
            return f"UPDATE {self.qtable} SET {self._sets(('deleted_at', 'updated_at'))}{where}", params
        where, params = self.by_id(idv)
        return f"DELETE FROM {self.qtable}{where}", params

    def delete_where(self, filt) -> tuple[str, list]:
        """DELETE every row matching ``filt`` (soft delete: $1, $2 are deleted_at, updated_at)."""
        if self.model.soft_delete:
            return self.update_where(("deleted_at", "updated_at"), filt)
        where, params = self.where_clause(filt)
        return f"DELETE FROM {self.qtable}{where}", params
