"""The tenant binding on its own (no database): bind/switch/all, nesting, concurrent tasks and
threads keep their own tenant, and bad tenant ids are refused."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from dataflow.errors import TenantRequiredError, ValidationError
from dataflow.tenancy import TenantContext


def test_bind_switch_all_and_nesting():
    tc = TenantContext()
    assert tc.current() is None
    with pytest.raises(TenantRequiredError, match="db.tenant"):
        tc.require("Order")
    with tc.bind("acme"):
        assert tc.require("x") == "acme"
        with tc.bind("beta"):
            assert tc.current() == "beta"
        assert tc.current() == "acme"
        with tc.all():
            assert tc.is_all() and tc.current() is None
            with pytest.raises(TenantRequiredError, match="all_tenants"):
                tc.require("insert")
        assert tc.current() == "acme"
    assert tc.current() is None

    def in_a_copy():
        tc.switch("gamma")                # binds at once, in this context
        return tc.current()
    ctx = contextvars.copy_context()
    assert ctx.run(in_a_copy) == "gamma"
    assert tc.current() is None           # the caller's context is untouched
    with tc.switch("delta"):
        assert tc.current() == "delta"
    assert tc.current() is None


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, None, 5, "a/b", "é"])
def test_bad_tenant_ids_are_refused(bad):
    with pytest.raises(ValidationError):
        TenantContext().bind(bad)


async def test_concurrent_tasks_keep_their_own_tenant():
    tc = TenantContext()

    async def work(t):
        async with tc.bind(t):
            for _ in range(50):
                await asyncio.sleep(0)
                assert tc.current() == t
            return t
    assert await asyncio.gather(*[work(f"t{i}") for i in range(20)]) == [f"t{i}" for i in range(20)]
    assert tc.current() is None


def test_two_instances_do_not_share_a_binding():
    a, b = TenantContext(), TenantContext()
    with a.bind("acme"):
        assert b.current() is None
