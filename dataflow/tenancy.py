"""Which tenant the current task works for: one context variable per DataFlow instance.

A context variable, not a global or a connection setting: concurrent tasks (and the nodes of
one workflow run, and a sync call made inside a bound block) each see their own tenant, and
nothing survives on a pooled connection.  The statement layer's tenant scope reads it for
every statement of a tenant model and refuses to build one when no tenant is bound.

    with db.tenant("acme"):            # or: async with db.tenant("acme"):
        db.express_sync.list("Order")  # only acme's orders
    async with db.all_tenants():       # explicit cross-tenant admin work
        ...
"""

from __future__ import annotations

import contextvars
import itertools
import re

from .errors import TenantRequiredError, ValidationError

_ids = itertools.count()
#: the bound value in ``all_tenants()`` blocks: no tenant predicate at all
ALL = object()
_TENANT_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")


def check_tenant_id(tenant) -> str:
    """Tenant ids are short printable keys (values are always bound, but a key that cannot be a
    header or a path segment is a mistake worth catching early)."""
    if type(tenant) is not str or not _TENANT_ID.fullmatch(tenant):
        raise ValidationError(f"tenant id must be 1-128 characters of letters, digits and _.:@-, got {tenant!r}")
    return tenant


class _Binding:
    """A bound tenant (or ``ALL``) for a ``with`` / ``async with`` block; ``switch`` binds at
    once and the block (if any) restores the previous value on exit."""

    __slots__ = ("_ctx", "_value", "_token", "_immediate")

    def __init__(self, ctx: "TenantContext", value, immediate: bool):
        self._ctx, self._value, self._token, self._immediate = ctx, value, None, immediate
        if immediate:
            self._token = ctx._var.set(value)

    def __enter__(self):
        if self._token is None:
            self._token = self._ctx._var.set(self._value)
        return self._value if self._value is not ALL else None

    def __exit__(self, *exc):
        token, self._token = self._token, None
        if token is not None:
            try:
                self._ctx._var.reset(token)
            except ValueError:      # exited in another context: set back to what it was here
                self._ctx._var.set(token.old_value if token.old_value is not token.MISSING else None)
        return False

    async def __aenter__(self):
        return self.__enter__()

    async def __aexit__(self, *exc):
        return self.__exit__(*exc)


class TenantContext:
    """The tenant binding of one DataFlow instance (``db.tenant_context``)."""

    def __init__(self):
        self._var: contextvars.ContextVar = contextvars.ContextVar(f"dataflow_tenant_{next(_ids)}", default=None)

    def current(self) -> str | None:
        """The bound tenant id, or None (also inside ``all_tenants()``)."""
        v = self._var.get()
        return None if v is ALL else v

    def is_all(self) -> bool:
        return self._var.get() is ALL

    def require(self, what: str) -> str:
        """The bound tenant id; no tenant bound -> ``TenantRequiredError`` naming ``what``."""
        v = self._var.get()
        if v is None or v is ALL:
            if v is ALL:
                raise TenantRequiredError(f"{what}: inside db.all_tenants() a record must name its tenant_id")
            raise TenantRequiredError(
                f"{what} is tenant-scoped and no tenant is bound: wrap the call in `with db.tenant('<id>'):` "
                f"(or `async with`), or use `async with db.all_tenants():` for cross-tenant admin work")
        return v

    def bind(self, tenant) -> _Binding:
        """``with ctx.bind("acme"):`` -- binds on entering the block."""
        return _Binding(self, check_tenant_id(tenant), immediate=False)

    def switch(self, tenant) -> _Binding:
        """Bind ``tenant`` now, in the current context; usable as a block that restores the
        previous tenant on exit."""
        return _Binding(self, check_tenant_id(tenant), immediate=True)

    def all(self) -> _Binding:
        return _Binding(self, ALL, immediate=False)

    def clear(self) -> None:
        self._var.set(None)
