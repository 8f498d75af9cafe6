"""Reading statements: SELECT of rows and counts, reads by id, the key lookups of bulk
``return_ids``, vector candidate fetches and the row lock of a single upsert."""

from __future__ import annotations

from .scope import Pred


class Reads:
    def select(self, filt=None, names=None, order=(), limit=None, offset=0, include_deleted=False,
               start: int = 1) -> tuple[str, list]:
        """SELECT ``names`` (None: ``*``) ... ORDER BY ``order`` ([(field, descending)]) LIMIT/OFFSET."""
        q = self.q
        cols = ", ".join(q(n) for n in names) if names else "*"
        where, params = self.where_clause(filt, start, include_deleted)
        sql = f"SELECT {cols} FROM {self.qtable}{where}"
        if order:
            sql += " ORDER BY " + ", ".join(f"{q(f)} {'DESC' if desc else 'ASC'}" for f, desc in order)
        return sql + self.d.limit_offset(limit, offset), params

    def count(self, filt=None, include_deleted=False) -> tuple[str, list]:
        where, params = self.where_clause(filt, 1, include_deleted)
        return f"SELECT COUNT(*) FROM {self.qtable}{where}", params

    def read_by_id(self, idv, include_deleted=False) -> tuple[str, list]:
        """Every column of the row with id ``idv`` (the express/node point read).  The hot path:
        the text is built through ``where`` once and cached; only the values are per call."""
        if not self.scopes:
            sql = self._cache.get("read")
            if sql is None:
                sql = self._cache["read"] = f"SELECT {self.select_list} FROM {self.qtable}{self.by_id(None)[0]}"
            return sql, [idv]
        active = tuple(s for s in self.scopes if s.applies(include_deleted))
        sql = self._cache.get(active)
        if sql is None:
            where, _ = self.by_id(None, 1, include_deleted)
            sql = self._cache[active] = f"SELECT {self.select_list} FROM {self.qtable}{where}"
        params = [idv]
        for s in active:
            params += s.params()
        return sql, params

    def lock_matching(self, filt) -> tuple[str, list]:
        """The ids matching ``filt``, locked for the transaction (the single-row upsert)."""
        where, params = self.where_clause(filt)
        return f"SELECT {self.q('id')} FROM {self.qtable}{where}{self.d.select_for_update}", params

    def ids_by_keys(self, key: list, keys: list) -> tuple[str, list]:
        """``id`` and the key columns of the rows whose ``key`` is one of ``keys`` (tuples of
        coerced values): which row each upserted record matched.  Soft-deleted rows count (an
        upsert conflicts with them too)."""
        d, q = self.d, self.q
        width = len(key)
        groups = []
        for i in range(len(keys)):
            ph = d.placeholders(width, 1 + i * width)
            groups.append(ph[0] if width == 1 else "(" + ", ".join(ph) + ")")
        target = q(key[0]) if width == 1 else "(" + ", ".join(q(c) for c in key) + ")"
        pred = Pred(f"{target} IN ({', '.join(groups)})", [v for k in keys for v in k])
        where, params = self.where_clause(pred, 1, include_deleted=True)
        cols = ", ".join(q(c) for c in ["id", *key])
        return f"SELECT {cols} FROM {self.qtable}{where}", params

    def rows_by_ids(self, ids: list) -> tuple[str, list]:
        """Every column of the rows whose id is in ``ids`` (the vector search's second fetch)."""
        ph = ", ".join(self.d.placeholders(len(ids)))
        where, params = self.where_clause(Pred(f"{self.q('id')} IN ({ph})", list(ids)))
        return f"SELECT {self.select_list} FROM {self.qtable}{where}", params

    def vector_candidates(self, column: str, filt) -> tuple[str, list]:
        """``id`` and the vector of every row matching ``filt`` whose vector is set, by id
        (ranked client-side by ``_native.vector.topk``)."""
        q = self.q
        user, params = self.where(filt)
        pred = Pred(f"{q(column)} IS NOT NULL" + (f" AND ({user})" if user else ""), params)
        # the filter (with its scopes) is already rendered: no second scope pass
        return f"SELECT {q('id')}, {q(column)} FROM {self.qtable} WHERE {pred.sql} ORDER BY {q('id')}", pred.params

    def vector_nearest(self, column: str, metric: str, k: int, filt) -> tuple[str, list]:
        """pgvector: the ``k`` rows nearest to the query vector ($1) among those matching
        ``filt``, each with its distance as the last column; an index can serve the ORDER BY."""
        d, q = self.d, self.q
        dist = d.vector_distance(column, metric, d.placeholder(1))
        user, params = self.where(filt, 2)
        sql = (f"SELECT {self.select_list}, {dist} FROM {self.qtable} WHERE {q(column)} IS NOT NULL"
               + (f" AND ({user})" if user else "") + f" ORDER BY {dist} LIMIT {int(k)}")
        return sql, params
