"""Statements that are deliberately not per model and not scoped: the migration history table
and emptying a table for ``db.test_reset()``.  Kept apart so every scoped statement is
visibly built through ``where`` and these few are visibly not."""

from __future__ import annotations

HISTORY_COLUMNS = ("version", "checksum", "applied_at", "ddl", "reverse_ddl", "status")
HISTORY_READ = HISTORY_COLUMNS + ("rolled_back_at",)


def history_insert(d, table: str) -> str:
    return (f"INSERT INTO {d.quote(table)} ({', '.join(d.quote(c) for c in HISTORY_COLUMNS)}) "
            f"VALUES ({', '.join(d.placeholders(len(HISTORY_COLUMNS)))})")


def history_select(d, table: str, one: bool) -> str:
    """Every history row by version, or (``one``) the row whose version is $1."""
    q = d.quote
    sql = f"SELECT {', '.join(q(c) for c in HISTORY_READ)} FROM {q(table)}"
    if one:
        sql += f" WHERE {q('version')} = {d.placeholder(1)}"
    return sql + f" ORDER BY {q('version')}"


def history_mark_rolled_back(d, table: str) -> str:
    q = d.quote
    p1, p2 = d.placeholders(2)
    return (f"UPDATE {q(table)} SET {q('status')} = 'rolled_back', {q('rolled_back_at')} = {p1} "
            f"WHERE {q('version')} = {p2}")


def empty_table(d, table: str) -> str:
    """Every row of ``table`` goes (``db.test_reset()``; the schema stays)."""
    return f"DELETE FROM {d.quote(table)}"
