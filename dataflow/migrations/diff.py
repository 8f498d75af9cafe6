"""Models versus live schema -> a Plan of operations, each marked automatic (additive, applied
on first use), manual (needs ``migrate(allow_destructive=True)``) or refused (ambiguous: needs
rename metadata).  Pure: no I/O, SQL rendered by the dialect.

A rename is only ever done from ``__dataflow__ = {"renames": {"new": "old"}}``; a dropped
column next to an added one of the same type family is refused, never drop-plus-add.
``{"renames": {"new": None}}`` declares ``new`` a genuinely new column.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field


from ..errors import ConfigurationError
from ..types import MISSING
from .schema import Column, Index, TableSchema

AUTO, MANUAL, REFUSED = "automatic", "manual", "refused"


@dataclass
class Operation:
    """One change.  ``statements`` are (sql, params) pairs; ``reverse`` is plain SQL (may be empty)."""

    action: str
    table: str
    description: str
    mode: str = AUTO
    column: str | None = None
    statements: list = field(default_factory=list)
    reverse: list = field(default_factory=list)

    @property
    def automatic(self) -> bool:
        return self.mode == AUTO

    @property
    def destructive(self) -> bool:
        return self.mode != AUTO

    def to_dict(self) -> dict:
        return {"action": self.action, "table": self.table, "column": self.column, "mode": self.mode,
                "description": self.description, "sql": [s for s, _ in self.statements],
                "reverse_sql": list(self.reverse)}

    def __str__(self) -> str:
        tag = {AUTO: "auto", MANUAL: "needs allow_destructive", REFUSED: "refused"}[self.mode]
        return f"[{tag}] {self.table}: {self.description}"


@dataclass
class Plan:
    """What it takes to bring the database to the models.  Iterable over operations."""

    operations: list
    checksum: str = ""

    def __iter__(self):
        return iter(self.operations)

    def __len__(self) -> int:
        return len(self.operations)

    def __bool__(self) -> bool:
        return bool(self.operations)

    @property
    def automatic(self) -> list:
        return [o for o in self.operations if o.mode == AUTO]

    @property
    def destructive(self) -> list:
        """Everything not applied on first use: manual and refused operations."""
        return [o for o in self.operations if o.mode != AUTO]

    @property
    def refused(self) -> list:
        return [o for o in self.operations if o.mode == REFUSED]

    def to_apply(self, allow_destructive: bool) -> list:
        return [o for o in self.operations if o.mode == AUTO or (allow_destructive and o.mode == MANUAL)]

    def to_dict(self) -> dict:
        return {"checksum": self.checksum, "operations": [o.to_dict() for o in self.operations]}

    def __str__(self) -> str:
        return "\n".join(str(o) for o in self.operations) or "schema is up to date"


# -- the desired shape of a model ----------------------------------------------------------------
def desired_columns(model, dialect) -> dict:
    """name -> (FieldInfo, rendered SQL type)."""
    indexed = {f for ix in model.indexes for f in ix.fields}
    return {n: (f, dialect.column_type(f, n in indexed or n == "id")) for n, f in model.fields.items()}


def checksum(models, dialect) -> str:
    """A digest of the model schema (tables, column types, nullability, indexes)."""
    desc = []
    for m in sorted(models, key=lambda m: m.table):
        cols = [(n, t, f.nullable) for n, (f, t) in desired_columns(m, dialect).items()]
        desc.append((m.table, cols, [(i.name, list(i.fields), i.unique) for i in m.indexes]))
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def model_renames(model) -> dict:
    opts = getattr(model.cls, "__dataflow__", None) or {}
    ren = opts.get("renames") or {}
    if not isinstance(ren, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                            for k, v in ren.items()):
        raise ConfigurationError(f"{model.name}.__dataflow__['renames'] must map new field name -> old "
                                 "column name (or None for a new column), e.g. {'full_name': 'name'}")
    unknown = [k for k in ren if k not in model.fields]
    if unknown:
        raise ConfigurationError(f"{model.name}.__dataflow__['renames'] names unknown field(s) {unknown}")
    return ren


# -- planning ------------------------------------------------------------------------------------
def build_plan(models, live: dict, dialect, allow_destructive: bool = False, now=None) -> Plan:
    """Diff ``models`` against ``live`` ({table: TableSchema}).  With ``allow_destructive``,
    manual operations are rendered against the state the earlier ones leave behind."""
    ops: list[Operation] = []
    now = now or _dt.datetime.now(_dt.timezone.utc)
    for m in models:
        t = live.get(m.table)
        if t is None:
            ops.append(Operation("create_table", m.table, f"create table ({len(m.fields)} columns, "
                                 f"{len(m.indexes)} indexes)",
                                 statements=[(s, ()) for s in dialect.create_table(m)],
                                 reverse=[dialect.drop_table_sql(m.table)]))
        else:
            ops.extend(_TableDiff(m, t, dialect, allow_destructive, now).run())
    return Plan(ops, checksum(models, dialect))


class _TableDiff:
    def __init__(self, model, live: TableSchema, dialect, allow_destructive, now):
        self.m, self.d, self.allow, self.now = model, dialect, allow_destructive, now
        self.state = live.copy()
        self.ops: list[Operation] = []
        self.q = dialect.quote
        self.t = model.table

    def fam(self, sql_type) -> str:
        return self.d.type_family(sql_type)

    def emit(self, op: Operation, after: TableSchema | None = None, renames=None):
        """Record ``op``; if it will be applied, move the working state to ``after``.  On SQLite,
        changes ALTER cannot make are rendered here as a rebuild from the working state."""
        applied = op.mode == AUTO or (self.allow and op.mode == MANUAL)
        if after is not None and not op.statements:
            op.statements = [(s, ()) for s in self._rebuild(self.state, after, renames or {})]
            inverse = {old: new for new, old in (renames or {}).items()}
            before = self.state.copy()
            # a dropped column comes back empty: it cannot be NOT NULL
            before.columns = {n: (c if n in after.columns or n in inverse else c.with_(nullable=True))
                              for n, c in before.columns.items()}
            op.reverse = self._rebuild(after, before, inverse)
        self.ops.append(op)
        if applied and after is not None:
            self.state = after

    def _rebuild(self, before: TableSchema, after: TableSchema, renames: dict) -> list:
        q, d = self.q, self.d
        pk = after.primary_key
        cols = []
        for c in after.columns.values():
            s = f"{q(c.name)} {c.type}"
            if c.primary_key and len(pk) == 1:
                s += " PRIMARY KEY"
            if not c.nullable and not (c.primary_key and c.type.upper() == "INTEGER"):
                s += " NOT NULL"
            if c.default is not None:
                s += f" DEFAULT {c.default}"
            cols.append(s)
        copy = []
        for n in after.columns:
            src = renames.get(n, n)
            if src in before.columns:
                copy.append((n, src))
        names = set(after.columns)
        indexes = [(i.name, i.columns, i.unique) for i in after.indexes
                   if not i.implicit and set(i.columns) <= names]
        uniques = [i.columns for i in after.indexes if i.implicit and i.unique and set(i.columns) <= names]
        fks = [(f.columns, f.ref_table, f.ref_columns) for f in after.foreign_keys if set(f.columns) <= names]
        return d.rebuild_table_sql(self.t, cols, copy, indexes, uniques, fks, pk)

    def _with_column(self, col: Column, *, drop: str | None = None, rename: tuple | None = None) -> TableSchema:
        after = self.state.copy()
        if rename:
            old, new = rename
            after.columns = {(new if n == old else n): (c.with_(name=new) if n == old else c)
                             for n, c in after.columns.items()}
            after.indexes = [Index(i.name, tuple(new if c == old else c for c in i.columns), i.unique,
                                   i.primary, i.implicit) for i in after.indexes]
        elif drop:
            after.columns = {n: c for n, c in after.columns.items() if n != drop}
            after.indexes = [i for i in after.indexes if drop not in i.columns]
            after.foreign_keys = [f for f in after.foreign_keys if drop not in f.columns]
        else:
            after.columns[col.name] = col
        return after

    # -- the walk -------------------------------------------------------------------------------
    def run(self) -> list:
        m, d, t = self.m, self.d, self.t
        want = desired_columns(m, d)
        renames = model_renames(m)
        missing = [n for n in want if n not in self.state.columns]
        extra = [n for n in self.state.columns if n not in want]
        for new, old in renames.items():
            if old is not None and new in missing and old in extra:
                missing.remove(new)
                extra.remove(old)
                c = self.state.columns[old]
                after = self._with_column(c, rename=(old, new))
                op = Operation("rename_column", t, f"rename column {old} -> {new} (declared in renames)",
                               AUTO, new)
                # every dialect here renames in place (SQLite since 3.25)
                op.statements = [(d.rename_column_sql(t, old, new), ())]
                op.reverse = [d.rename_column_sql(t, new, old)]
                self.emit(op, after)
        suspects: set = set()  # removed columns that may be renames: left exactly as they are
        for new in list(missing):
            f, typ = want[new]
            if new in renames or f.managed:
                continue
            cands = [o for o in extra if self.fam(self.state.columns[o].type) == self.fam(typ)
                     and not self.state.columns[o].primary_key]
            if cands:
                missing.remove(new)
                suspects.update(cands)
                self.ops.append(Operation(
                    "possible_rename", t,
                    f"new field {new} next to removed column(s) {', '.join(cands)} of the same type looks like "
                    f"a rename: declare __dataflow__ = {{'renames': {{{new!r}: {cands[0]!r}}}}} (or "
                    f"{{{new!r}: None}} if {new} is a new column)", REFUSED, new))
        for new in missing:
            self._add_column(new, *want[new])
        for name, (f, typ) in want.items():
            c = self.state.columns.get(name)
            if c is None or c.primary_key:
                continue
            if self.fam(c.type) != self.fam(typ):
                self._alter(c, c.with_(type=typ), "change_type",
                            f"change type of {name} from {c.type} to {typ} (existing values are converted)",
                            MANUAL, type_changed=True)
            c = self.state.columns[name]
            if f.nullable and not c.nullable:
                self._alter(c, c.with_(nullable=True), "drop_not_null", f"allow NULL in {name}", AUTO)
            elif not f.nullable and c.nullable:
                self._alter(c, c.with_(nullable=False), "set_not_null",
                            f"make {name} NOT NULL (fails if a row holds NULL)", MANUAL)
        for name in extra:
            c = self.state.columns[name]
            if c.primary_key:
                continue
            if not self.allow and not c.nullable and c.default is None and name not in suspects:
                self._alter(c, c.with_(nullable=True), "drop_not_null",
                            f"allow NULL in removed column {name} so inserts without it succeed", AUTO)
            op = Operation("drop_column", t, f"drop column {name} (removed from the model; its data is kept "
                           f"until migrate(allow_destructive=True))", MANUAL, name)
            if d.alter_in_place:
                op.statements = [(d.drop_column_sql(t, name), ())]
                op.reverse = [d.add_column_sql(t, d.column_sql(name, c.type, True))]
            self.emit(op, self._with_column(c, drop=name))
        for ix in m.indexes:
            if any(i.name == ix.name for i in self.state.indexes) or self.state.find_index(ix.fields, ix.unique):
                continue
            have = all(c in self.state.columns for c in ix.fields)
            kind = "unique constraint" if ix.unique else "index"
            op = Operation("add_index", t, f"add {kind} {ix.name} on ({', '.join(ix.fields)})"
                           + ("" if have else " after its column(s) exist"), AUTO if have else MANUAL)
            if have:
                for cname in ix.fields:
                    c = self.state.columns[cname]
                    wanted = want[cname][1] if cname in want else c.type
                    op.statements += [(s, ()) for s in d.index_prep_sql(t, cname, c.type, wanted, c.nullable, c.default)]
            op.statements.append((d.create_index(t, ix), ()))
            op.reverse = [d.drop_index_sql(t, ix.name)]
            self.ops.append(op)
            if have:
                self.state.indexes.append(Index(ix.name, tuple(ix.fields), ix.unique))
        self._row_security()
        return self.ops

    def _row_security(self):
        """A tenant table created before ``tenant_isolation="rls"`` was switched on gets the
        policy too (otherwise raw SQL on it would see every tenant's rows)."""
        d, m, t = self.d, self.m, self.t
        if not (getattr(d, "tenant_rls", False) and m.multi_tenant and self.state.rls is False):
            return
        if "tenant_id" in self.state.columns:
            op = Operation("enable_rls", t, "enable row-level security with the tenant policy", AUTO)
            op.statements = [(s, ()) for s in d.rls_sql(t)]
            op.reverse = d.rls_off_sql(t)
        else:
            op = Operation("enable_rls", t, "enable row-level security once its tenant_id column exists "
                           "(fill tenant_id, then migrate again)", MANUAL)
        self.ops.append(op)

    def _add_column(self, name, f, typ):
        d, t = self.d, self.t
        value = MISSING
        if f.managed and not f.nullable:
            value, why = self.now, "filled with the migration time"
        elif not f.nullable and f.default is not MISSING and f.default is not None and f.default_factory is None:
            value, why = f.default, f"filled with the default {f.default!r}"
        col = Column(name, typ, f.nullable)
        if f.nullable:
            op = Operation("add_column", t, f"add column {name} {typ} NULL", AUTO, name,
                           [(d.add_column_sql(t, d.column_sql(name, typ, True)), ())])
        elif value is not MISSING:
            coerced = d.coerce(value, f.kind)
            op = Operation("add_column", t, f"add column {name} {typ} NOT NULL ({why})", AUTO, name,
                           d.add_column_with_value(t, name, typ, coerced))
            if not d.alter_in_place:
                col = col.with_(default=d.literal(coerced))
        else:
            op = Operation("add_column", t, f"add required column {name} {typ} NOT NULL without a default "
                           "(existing rows have no value: give the field a default or make it Optional)",
                           MANUAL, name)
            if d.alter_in_place:
                op.statements = [(d.add_column_sql(t, d.column_sql(name, typ, False)), ())]
        if d.alter_in_place or op.statements:
            op.reverse = [d.drop_column_sql(t, name)]
        self.emit(op, self._with_column(col))

    def _alter(self, before: Column, after: Column, action, desc, mode, type_changed=False):
        d, t = self.d, self.t
        op = Operation(action, t, desc, mode, before.name)
        if d.alter_in_place:
            null_changed = before.nullable != after.nullable
            op.statements = [(s, ()) for s in d.alter_column_sql(
                t, after.name, after.type, after.nullable, after.default,
                type_changed=type_changed, null_changed=null_changed)]
            op.reverse = d.alter_column_sql(t, before.name, before.type, before.nullable, before.default,
                                            type_changed=type_changed, null_changed=null_changed)
        self.emit(op, self._with_column(after))
