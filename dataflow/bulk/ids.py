"""``return_ids`` for the batched bulk writes: the id of every record's row, in input order.

Separate from ``bulk.py`` because each dialect learns new ids differently, and none may assume
the order of ``RETURNING`` rows: SQL leaves it unspecified.  What is relied on instead:

- records that carry their ``id`` (and upserts on ``id``) already name it;
- one multi-row ``INSERT`` takes auto ids in row order (a sequence's ``nextval`` per VALUES row on
  PostgreSQL, max(rowid)+1 per row on SQLite), so the ``RETURNING id`` values sorted ascending
  belong to the rows in order;
- MySQL/MariaDB: ``lastrowid`` is the first id of a multi-row INSERT, and InnoDB gives a "simple
  insert" a consecutive block (step ``auto_increment_increment``) unless
  ``innodb_autoinc_lock_mode=2``; under mode 2 rows are inserted one at a time;
- upserts (``skip``/``update``) look the rows up by the conflict key after writing (in the same
  transaction); a key holding NULL matches nothing and gives ``None``.
"""

from __future__ import annotations

from .. import _native
from ..errors import ValidationError

_params = _native.load("params")


def check(mode, conflict, label):
    """Refuse up front what cannot be answered: ``skip`` without a key has no way to tell which
    existing row a skipped record collided with."""
    if mode == "skip" and not conflict:
        raise ValidationError(f"{label}: return_ids with conflict_resolution='skip' needs conflict_on "
                              "(the unique key that identifies each record's row)")


class IdCollector:
    """Accumulates ids per input index; ``ids()`` returns them in input order."""

    def __init__(self, table, total, mode, conflict):
        self.table = table
        self.d = table.dialect
        self.out = [None] * total
        self.mode = mode
        self.conflict = list(conflict)
        self._mysql_step = None      # (auto_increment_increment, lock mode) once per call

    def ids(self):
        return self.out

    def known(self, names, batch, raw):
        """Ids the records carry (``raw``: index -> original values).  True when that settles it."""
        if "id" in names and (self.mode == "error" or self.conflict == ["id"]):
            pos = names.index("id")
            for i, _ in batch:
                self.out[i] = raw[i][pos]
            return True
        return False

    async def inserted(self, drv, sql, batch, single_sql):
        """Run the multi-row auto-id INSERT of ``batch`` and record the new ids."""
        flat = [v for _, vals in batch for v in vals]
        writes = self.table.writes
        if self.d.supports_returning:
            got = sorted(r[0] for r in await drv.fetch(sql, flat, writes=writes))
            if len(got) != len(batch):
                raise ValidationError(f"bulk insert returned {len(got)} ids for {len(batch)} rows")
            for (i, _), v in zip(batch, got):
                self.out[i] = v
            return
        step, mode = await self._autoinc(drv)
        if mode == 2:   # interleaved: a statement's ids may not be consecutive
            for i, vals in batch:
                self.out[i] = await drv.insert(single_sql, vals, writes=writes)
            return
        first = await drv.insert(sql, flat, writes=writes)
        for k, (i, _) in enumerate(batch):
            self.out[i] = first + k * step

    async def _autoinc(self, drv):
        if self._mysql_step is None:
            row = await drv.fetchrow("SELECT @@auto_increment_increment, @@innodb_autoinc_lock_mode")
            self._mysql_step = (int(row[0]), int(row[1]))
        return self._mysql_step

    async def lookup(self, drv, names, batch):
        """After an upsert: find each record's row by the conflict key."""
        t, key = self.table, self.conflict
        pos = [names.index(c) for c in key]
        kinds = tuple(t.kind_of[c] for c in key)
        wanted = {}
        for i, vals in batch:
            k = tuple(vals[p] for p in pos)
            if any(v is None for v in k):
                continue
            wanted.setdefault(k, []).append(i)
        if not wanted:
            return
        sql, params = t.st.ids_by_keys(key, list(wanted))
        rows = await drv.fetch(sql, params)
        decoded = t._decoder(["id", *key])(rows)
        for rec in decoded:
            k = tuple(_params.coerce_row([rec[c] for c in key], kinds, t.code, key))
            for i in wanted.get(k, ()):
                self.out[i] = rec["id"]
