"""The one ``where(...)`` every statement of a model is built through, and the scope predicates.

A scope predicate (soft delete today, the tenant next) is ANDed *outside* the caller's filter:
``(<user filter>) AND "deleted_at" IS NULL``, so a ``$or`` in the filter cannot escape it.
``include_deleted=True`` lifts only the soft-delete scope; a scope that must never be lifted
simply ignores it.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _native
from ..errors import FilterError
from ..models import validate as V

_filters = _native.load("filters")


class Pred(NamedTuple):
    """A predicate the statement layer rendered itself (an id, a key list): it still goes
    through ``where`` so the scopes apply to it like to any filter."""

    sql: str
    params: list


class Scope:
    """A predicate added to every statement of a model (subclasses say when and what).

    ``applies(include_deleted)`` says whether it is part of this statement (it may raise: a
    scope that cannot be satisfied refuses the statement before any SQL is sent);
    ``check(filt)`` vets the caller's filter first.

    ``sql(st, start)`` must depend only on ``start`` (statements built once are cached and
    reused); the values come from ``params()`` at every call, so a scope may bind a value that
    changes per call (the current tenant)."""

    #: lifted by ``include_deleted=True`` (only the soft-delete scope is)
    lifted_by_include_deleted = False

    def applies(self, include_deleted: bool) -> bool:
        return not (include_deleted and self.lifted_by_include_deleted)

    def check(self, filt) -> None:
        """Refuse a filter that contradicts the scope (nothing by default)."""

    def sql(self, st, start: int) -> str:
        """The predicate text; its parameters (``params()``) start at placeholder ``start``."""
        raise NotImplementedError

    def params(self) -> tuple:
        return ()


class SoftDelete(Scope):
    """Rows whose ``deleted_at`` is set are gone for every statement unless asked for."""

    lifted_by_include_deleted = True

    def sql(self, st, start):
        return st.q("deleted_at") + " IS NULL"


class TenantScope(Scope):
    """``"tenant_id" = <the bound tenant>`` on every statement of a tenant model.  Fails closed:
    no tenant bound -> ``TenantRequiredError`` before any SQL; inside ``db.all_tenants()`` it
    is explicitly lifted.  A filter naming another tenant is refused (it could only ever match
    nothing, so it is a bug worth reporting, not a query to run)."""

    def __init__(self, tenants, model_name: str):
        from ..tenancy import ALL
        self.tenants = tenants
        self._get = tenants._var.get         # the hot path: one context-variable read
        self._all = ALL
        self.what = f"{model_name} (multi_tenant)"

    def applies(self, include_deleted):
        v = self._get()
        if v is None:
            self.tenants.require(self.what)   # raises TenantRequiredError
        return v is not self._all

    def sql(self, st, start):
        return st.q("tenant_id") + " = " + st.d.placeholder(start)

    def params(self):
        v = self._get()
        if v is None or v is self._all:
            self.tenants.require(self.what)
        return (v,)

    def check(self, filt) -> None:
        if not filt:
            return
        current = self.tenants.current()
        stack = [filt]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "tenant_id" and not (current is not None and (v == current or v == {"$eq": current})):
                        from ..errors import ValidationError
                        raise ValidationError(
                            f"{self.what}: the filter names tenant_id {v!r}, but the bound tenant is "
                            f"{current!r}; rows of other tenants are not reachable from here (use "
                            f"db.all_tenants() for cross-tenant admin work)")
                    if isinstance(v, (dict, list, tuple)):
                        stack.append(v)
            elif isinstance(node, (list, tuple)):
                stack.extend(x for x in node if isinstance(x, (dict, list, tuple)))


class Where:
    """Built once per model: quoted names, the compiled filter spec and the scopes."""

    def __init__(self, dialect, model, tenants=None):
        self.d = d = dialect
        self.model = model
        self.q = q = d.quote
        self.qtable = q(model.table)
        self.columns = model.columns
        self.select_list = ", ".join(q(c) for c in model.columns)
        self.spec = d.filter_spec(model)
        self.scopes: list[Scope] = [SoftDelete()] if model.soft_delete else []
        if model.multi_tenant:
            if tenants is None:
                from ..tenancy import TenantContext
                tenants = TenantContext()
            self.scopes.append(TenantScope(tenants, model.name))
        self._cache: dict = {}

    def _compile(self, filt, start):
        filt = V.check_filter(filt)
        try:
            sql, params = _filters.compile_filter(filt, self.spec, start)
        except (TypeError, ValueError) as exc:
            raise FilterError(f"{self.model.name}: {exc}") from None
        if self.d.max_filter_depth is not None and sql:
            # a filter too deep for this dialect's parser is flattened and recompiled, or refused
            sql, params, problem = self.d.fit_filter(filt, (sql, params),
                                                     lambda f: _filters.compile_filter(f, self.spec, start))
            if problem:
                raise FilterError(f"{self.model.name}: filter: {problem}")
        return sql, params

    def where(self, filt=None, start: int = 1, include_deleted: bool = False) -> tuple[str, list]:
        """-> (predicate text without ``WHERE``, parameters), placeholders numbered from ``start``.

        ``filt`` is the caller's filter dict (checked against the model, values bound) or a
        ``Pred`` rendered here.  Empty text means "every row" (no scope applies, no filter)."""
        scopes = self.active_scopes(include_deleted)
        if type(filt) is Pred:
            user, params = filt.sql, list(filt.params)
        else:
            for s in self.scopes:
                s.check(filt)
            user, params = self._compile(filt, start)
        if not scopes:
            return user, params
        parts = [f"({user})"] if user else []
        n = start + len(params)
        for s in scopes:
            parts.append(s.sql(self, n))
            extra = s.params()
            if extra:
                params = [*params, *extra]
                n += len(extra)
        return " AND ".join(parts), params

    def active_scopes(self, include_deleted: bool = False) -> list:
        return [s for s in self.scopes if s.applies(include_deleted)]

    def scope_params(self, include_deleted: bool = False) -> list:
        """The current values of the scopes' parameters (for a cached statement's text)."""
        return [v for s in self.active_scopes(include_deleted) for v in s.params()]

    def where_clause(self, filt=None, start: int = 1, include_deleted: bool = False) -> tuple[str, list]:
        """Like ``where`` but as `` WHERE ...`` (empty when there is nothing to filter)."""
        sql, params = self.where(filt, start, include_deleted)
        return (" WHERE " + sql if sql else ""), params

    def by_id(self, idv, start: int = 1, include_deleted: bool = False) -> tuple[str, list]:
        """``"id" = $start`` plus the scopes, as a `` WHERE`` clause."""
        return self.where_clause(Pred(f"{self.q('id')} = {self.d.placeholder(start)}", [idv]), start,
                                 include_deleted)
