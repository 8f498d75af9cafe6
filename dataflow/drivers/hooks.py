"""Explicit driver hooks, instead of wrapping driver methods from outside.

- ``on_statement(sql, seconds, ok)``: after every statement (monitoring, echo).  Synchronous and
  cheap: it runs on the hot path while registered, and costs one attribute test when not.
- ``after_commit(tables)``: once per committed write -- an autocommit write statement, a bulk
  load, a transaction's final COMMIT -- with the set of table names written; never on rollback.
  May be a coroutine function (awaited before the write call returns, so a cache invalidated
  here is fresh for the caller's next read).  ``"*"`` in the set: a raw statement whose tables
  could not be read off its text (treat as "anything may have changed").
"""

from __future__ import annotations

import inspect
import logging
import re

logger = logging.getLogger("dataflow.hooks")

#: first keyword of statements that never write rows
_READ_VERBS = frozenset(("SELECT", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "VALUES", "PRAGMA", "SET", "BEGIN",
                         "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "USE", "LOCK", "UNLOCK", ""))
_WRITE_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|REPLACE|TRUNCATE|COPY|LOAD|ALTER|DROP|CREATE)\b", re.I)
_TABLES = re.compile(r"""\b(?:INTO|UPDATE|FROM|JOIN|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?"""
                     r"""((?:[`"]?[A-Za-z_][A-Za-z0-9_$]*[`"]?\.)?[`"]?[A-Za-z_][A-Za-z0-9_$]*[`"]?)""", re.I)


def written_tables(sql: str) -> frozenset:
    """The tables a raw statement may write: empty for reads, ``{"*"}`` when unsure."""
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if head in _READ_VERBS or (head == "WITH" and not _WRITE_WORD.search(sql)):
        if head != "SELECT" or not re.search(r"\bINTO\b", sql, re.I):  # SELECT ... INTO writes
            return frozenset()
    names = {m.group(1).split(".")[-1].strip('`"') for m in _TABLES.finditer(sql)}
    return frozenset(names) if names else frozenset(("*",))


def named_tables(sql: str) -> frozenset:
    """Every table a statement's text names (read or written), as far as its text shows."""
    return frozenset(m.group(1).split(".")[-1].strip('`"') for m in _TABLES.finditer(sql))


class Hooks:
    """The hook lists of one driver (one DataFlow)."""

    __slots__ = ("on_statement", "after_commit")

    def __init__(self):
        self.on_statement: list = []
        self.after_commit: list = []

    async def fire_after_commit(self, tables) -> None:
        """Run every after_commit hook; a failing hook is logged, never raised: the write it
        reports is already committed, and an error here would tell the caller it was not."""
        tables = frozenset(tables)
        for fn in list(self.after_commit):
            try:
                out = fn(tables)
                if inspect.isawaitable(out):
                    await out
            except Exception:  # noqa: BLE001 - see docstring
                logger.warning("after_commit hook %r failed for tables %s", fn, sorted(tables), exc_info=True)
