"""dataflow._loop.run_sync: the sync entry points (express_sync, LocalRuntime.execute) raise the
real error only -- nothing of run_sync's own "is a loop running?" probe chained to it."""

from __future__ import annotations

import pytest

from dataflow import DataFlow
from dataflow import errors as E
from dataflow._loop import run_sync


def _chain(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _no_probe(exc):
    for e in _chain(exc):
        assert not (isinstance(e, RuntimeError) and "no running event loop" in str(e)), _chain(exc)


def test_run_sync_error_has_no_loop_probe_chained():
    async def boom():
        raise KeyError("real")

    with pytest.raises(KeyError) as info:
        run_sync(boom())
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_express_sync_errors_carry_only_their_own_cause():
    with DataFlow(":memory:") as db:
        @db.model
        class Person:
            email: str
            __dataflow__ = {"unique": ["email"]}

        with pytest.raises(E.ValidationError) as info:
            db.express_sync.create("Person", {"email": "a@x.io", "nope": 1})
        _no_probe(info.value)
        db.express_sync.create("Person", {"email": "a@x.io"})
        with pytest.raises(E.UniqueViolationError) as info:
            db.express_sync.create("Person", {"email": "a@x.io"})
        _no_probe(info.value)
        assert "IntegrityError" in type(info.value.__cause__).__name__
