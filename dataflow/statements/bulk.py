"""Statements of the bulk loaders: the PostgreSQL COPY staging table and its merge, the row a
repeated conflict key names, MySQL's LOAD DATA, and the count taken around an upsert load."""

from __future__ import annotations

from .. import _native

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations


class BulkStatements:
    def count_all(self) -> tuple[str, list]:
        """Rows of the table in every state (the delta around an ``update`` load)."""
        return self.count(None, include_deleted=True)

    # -- PostgreSQL: COPY into a staging table, then one INSERT ... SELECT ... ON CONFLICT ----------
    def stage_create(self, stage: str, names, tag: str | None = None) -> str:
        """An empty TEMP table shaped like the target's ``names`` columns; ``tag``: one more
        int4 column (the field set of each staged row of an upsert)."""
        cols = ", ".join(self.q(c) for c in names)
        if tag is not None:
            cols += f", CAST(NULL AS int4) AS {self.q(tag)}"
        return f"CREATE TEMP TABLE {self.q(stage)} AS SELECT {cols} FROM {self.qtable} WITH NO DATA"

    def stage_merge(self, stage: str, names, conflict: list, update: list, tag: str | None = None) -> str:
        """Move the staged rows into the table; one row back: (rows inserted, rows affected).
        ``update`` empty: conflicting rows are skipped; no ``conflict``: any unique key.
        ``tag``: only the staged rows whose ``tag`` column is $1."""
        q = self.q
        cols = ", ".join(q(c) for c in names)
        target = ", ".join(q(c) for c in conflict)
        action = ("DO UPDATE SET " + ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in update)) if update \
            else "DO NOTHING"
        if update and self.guard:
            action += f" WHERE {self.qtable}.{q(self.guard)} = EXCLUDED.{q(self.guard)}"
        on_conflict = f"ON CONFLICT ({target})" if target else "ON CONFLICT"
        where = f" WHERE {q(tag)} = {self.d.placeholders(1)[0]}" if tag is not None else ""
        return (f"WITH ins AS (INSERT INTO {self.qtable} ({cols}) SELECT {cols} FROM {q(stage)}{where} "
                f"{on_conflict} {action} RETURNING (xmax = 0) AS fresh) "
                f"SELECT count(*) FILTER (WHERE fresh), count(*) FROM ins")

    def stage_drop(self, stage: str) -> str:
        return f"DROP TABLE IF EXISTS {self.q(stage)}"

    def stage_key_repeats(self, stage: str, keys: list) -> str:
        """One row, one bool: does a non-NULL key occur twice among the staged rows?  (A hash
        aggregate: cheaper than ``stage_repeated_key``'s ordering, which then names the row.)"""
        q = self.q
        kcols = ", ".join(q(k) for k in keys)
        not_null = " AND ".join(f"{q(k)} IS NOT NULL" for k in keys)
        return (f"SELECT EXISTS (SELECT 1 FROM {q(stage)} WHERE {not_null} GROUP BY {kcols} "
                f"HAVING count(*) > 1)")

    def stage_repeated_key(self, stage: str, keys: list) -> str:
        """The first staged row (0-based load position, ctid order) whose non-NULL key an earlier
        row already has: (key values..., first position, repeated position), or no row."""
        q = self.q
        kcols = ", ".join(q(k) for k in keys)
        # NULLs never conflict in a unique index (unless NULLS NOT DISTINCT; then nothing is found)
        not_null = " AND ".join(f"{q(k)} IS NOT NULL" for k in keys)
        return (f"SELECT {kcols}, df_first, df_i FROM (SELECT {kcols}, df_i, min(df_i) OVER (PARTITION BY "
                f"{kcols}) AS df_first FROM (SELECT {kcols}, row_number() OVER (ORDER BY ctid) - 1 AS df_i "
                f"FROM {q(stage)}) s WHERE {not_null}) d WHERE df_i > df_first ORDER BY df_i LIMIT 1")

    # -- MySQL/MariaDB: LOAD DATA LOCAL INFILE of a TSV file written by _native.params.tsv_rows ----
    def load_data(self, names, kinds) -> str:
        """LOAD DATA of ``names`` (bytes and vectors arrive hex-encoded and are UNHEXed)."""
        q = self.q
        targets, sets = [], []
        for j, (name, k) in enumerate(zip(names, kinds)):
            if k in (K.BYTES, K.VECTOR):
                targets.append(f"@v{j}")
                sets.append(f"{q(name)} = UNHEX(@v{j})")
            else:
                targets.append(q(name))
        return self.d.load_data_sql(self.model.table, targets, sets)
