"""Source items -> full table rows: the one place a load decides its column list, fills
defaults and the managed timestamps, parses text values and names the bad row and column.

Kept apart from the backends so PostgreSQL COPY, MySQL and SQLite see the same rows.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import uuid as _uuid
from decimal import Decimal, InvalidOperation
from itertools import islice
from operator import itemgetter

from dataflow import _native
import orjson

from ..errors import BulkLoadError, ValidationError
from ..models.managed import MANAGED_FIELDS
from ..models.validate import check_record, did_you_mean
from ..types import MISSING

K = _native.load("params")  # kind and dialect codes: the same ints in both implementations

_UTC = _dt.timezone.utc
_params = K  # the same module, bound once
_copybin = _native.load("copybin")
_MISSING = object()
#: ``models.fields.json_shape_check`` closures that are plain type tests (no element checks).
_SIMPLE_SHAPES = {"check_dict": (dict,), "check_list": (list, tuple)}
_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}


def _parse_bool(v: str):
    s = v.strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"cannot parse {v!r} as bool (use true/false, 1/0, yes/no)")


def _parse_datetime(v: str):
    s = v.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    d = _dt.datetime.fromisoformat(s)
    # Text without an offset is read as UTC (documented): files rarely carry zones.
    return d if d.tzinfo is not None else d.replace(tzinfo=_UTC)


def _parse_bytes(v: str):
    if v.startswith("\\x"):
        return bytes.fromhex(v[2:])
    try:
        return base64.b64decode(v, validate=True)
    except binascii.Error:
        raise ValueError("bytes in text must be \\x-prefixed hex or base64") from None


def _parse_decimal(v):
    if type(v) is float:
        return Decimal(repr(v))
    try:
        return Decimal(v.strip())
    except InvalidOperation:
        raise ValueError(f"cannot parse {v!r} as Decimal") from None


def _parse_int(v: str):
    return int(v.strip())


def _parse_float(v: str):
    return float(v.strip())


#: str -> value, for text sources (CSV/TSV): every kind but str is parsed.
TEXT_PARSERS = {K.INT: _parse_int, K.FLOAT: _parse_float, K.BOOL: _parse_bool,
                K.DATETIME: _parse_datetime, K.DATE: lambda v: _dt.date.fromisoformat(v.strip()),
                K.DECIMAL: _parse_decimal, K.UUID: lambda v: _uuid.UUID(v.strip()), K.JSON: orjson.loads,
                K.BYTES: _parse_bytes, K.VECTOR: orjson.loads}
#: JSON value -> value, for JSONL: only what JSON cannot carry natively is parsed.
JSON_PARSERS = {K.DATETIME: _parse_datetime, K.DATE: lambda v: _dt.date.fromisoformat(v),
                K.DECIMAL: _parse_decimal, K.UUID: lambda v: _uuid.UUID(v), K.BYTES: _parse_bytes}


class RowPlan:
    """The column list of one load and the function that turns a batch of items into rows.

    ``names`` are the user columns in table order, ``all_names`` adds the managed timestamps;
    every produced row is a tuple aligned with ``all_names``.  Dict items may differ in which
    optional fields they carry (defaults fill the rest); tuple items are positional over
    ``columns`` (default: the model's settable fields, without an auto id).
    """

    def __init__(self, table, first, *, columns=None, parse=None, now=None, include_id=None):
        m = table.model
        self.table = table
        self.model = m
        self.label = f"{m.name} load"
        settable = [n for n in m.user_fields]
        self.tuples = not isinstance(first, dict) and first is not None
        if columns is not None:
            columns = [columns] if isinstance(columns, str) else list(columns)
            for c in columns:
                if c in MANAGED_FIELDS or c not in m.fields:
                    raise ValidationError(f"{self.label}: unknown column {c!r}{did_you_mean(c, settable)}; "
                                          f"valid: {', '.join(settable)}")
            if len(set(columns)) != len(columns):
                raise ValidationError(f"{self.label}: columns {columns} name a field twice")
        if include_id is None:
            if columns is not None:
                include_id = "id" in columns
            elif self.tuples:
                include_id = not m.id_auto
            else:
                include_id = isinstance(first, dict) and "id" in first or not m.id_auto
        if self.tuples:
            self.positional = tuple(columns) if columns is not None else tuple(
                n for n in settable if n != "id" or include_id)
        else:
            self.positional = None
        self.names = tuple(n for n in settable if n != "id" or include_id)
        if self.tuples:
            # positional first (in their given order), then the defaulted rest in table order
            rest = tuple(n for n in self.names if n not in self.positional)
            self.names = self.positional + rest
        #: the fields every item gives (an ``update`` rewrites only these on an existing row):
        #: a tuple's positional columns, a column source's columns (``check_columns``); dict
        #: items may each give fewer (``item_given``)
        self.given = self.positional if self.tuples else self.names
        self.per_item = not self.tuples
        self._given_cache: dict = {}
        # columns every row gets from DataFlow: the bound tenant, the timestamps
        tenant = (table.tenant_for({}, self.label),) if m.multi_tenant else ()
        managed = ["tenant_id"] * len(tenant) + ["created_at", "updated_at"] + (["deleted_at"] if m.soft_delete else [])
        self.all_names = self.names + tuple(managed)
        self.kinds = tuple(table.kind_of[n] for n in self.all_names)
        now = now or _dt.datetime.now(_UTC)
        self.managed_tail = tenant + (now, now) + ((None,) if m.soft_delete else ())
        self.parse = parse
        self.parsers = None
        if parse:
            table_p = TEXT_PARSERS if parse == "text" else JSON_PARSERS
            self.parsers = [(j, table_p[k]) for j, k in enumerate(self.kinds[:len(self.names)]) if k in table_p]
        self.json_cols = [j for j, k in enumerate(self.kinds) if k == K.JSON]
        self.serialize_json = False   # set by the COPY path
        self.shapes = getattr(m, "json_shapes", None) or {}
        # defaults for the columns a row may leave out
        self._defaults = {}
        self._factories = set()
        for n in self.names:
            f = m.fields[n]
            if n == "id":
                if m.id_kind == K.UUID:
                    self._defaults[n] = _uuid.uuid4
                    self._factories.add(n)
                continue
            if f.required:
                continue
            if f.default_factory is not None or f.default is not MISSING and not _immutable(f.default):
                self._defaults[n] = f.make_default
                self._factories.add(n)
            else:
                const = f.make_default()
                self._defaults[n] = (lambda c=const: c)
        self._name_set = frozenset(self.names)
        self._getter = itemgetter(*self.names) if len(self.names) > 1 else (
            (lambda d, g=itemgetter(self.names[0]): (g(d),)) if self.names else (lambda d: ()))
        if self.tuples:
            extra = self.names[len(self.positional):]
            self._extra = extra
            self._extra_const = not any(n in self._factories for n in extra)
            for n in extra:
                if n not in self._defaults:
                    raise ValidationError(f"{self.label}: {m.name}.{n} is required and not among the columns "
                                          f"{list(self.positional)}")
            self._tail = (tuple(self._defaults[n]() for n in extra) if self._extra_const else None)
        self._spec = self._fast_spec()

    def _fast_spec(self):
        """(sources, defaults, width) for the native one-pass paths, or None when items need the
        Python path (text parsing, JSON shapes to check)."""
        if self.parsers:
            return None
        shapes = None
        if self.shapes and not self.tuples:   # (tuple items were never shape-checked)
            shapes = []
            for n in self.all_names:
                check = self.shapes.get(n)
                if check is None:
                    shapes.append(None)
                    continue
                simple = _SIMPLE_SHAPES.get(getattr(check, "__name__", None))
                if simple is None or (check.__defaults__ or (None,))[0] is not None:
                    return None   # element checks (list[str], vectors): the Python path
                shapes.append(simple)
            shapes = tuple(shapes)
        fills = []
        for n in self.names:
            d = self._defaults.get(n)
            fills.append(None if d is None else ("call", d) if n in self._factories else ("value", d()))
        fills += [("value", v) for v in self.managed_tail]
        tail = [None] * len(self.managed_tail)
        if self.tuples:
            width = len(self.positional)
            return tuple(range(width)) + (None,) * (len(self.names) - width) + tuple(tail), tuple(fills), width, None
        return self.names + tuple(tail), tuple(fills), -1, shapes

    # -- rows ----------------------------------------------------------------------------------
    def build(self, items, start: int) -> list:
        """Items (dicts or tuples) -> list of full-row tuples; ``start`` is the first item's index."""
        tail = self.managed_tail
        if self.tuples:
            width = len(self.positional)
            out = []
            append = out.append
            extra = self._tail
            for i, it in enumerate(items):
                if type(it) is not tuple:
                    if isinstance(it, dict):
                        raise self._error(start + i, "got a dict in a source of tuples; use one shape")
                    it = tuple(it)
                if len(it) != width:
                    raise self._error(start + i, f"expected {width} values ({', '.join(self.positional)}), "
                                                 f"got {len(it)}")
                if extra is None:
                    append(it + tuple(self._defaults[n]() for n in self._extra) + tail)
                else:
                    append(it + extra + tail)
        else:
            n = len(self.names)
            get = self._getter
            out = []
            append = out.append
            shapes = self.shapes
            for i, rec in enumerate(items):
                try:
                    if len(rec) == n and not shapes:
                        append(get(rec) + tail)
                        continue
                except (KeyError, TypeError):
                    pass
                append(self._slow(rec, start + i) + tail)
        if self.parsers:
            out = self._parse(out, start)
        if self.json_cols and self.serialize_json:
            out = self._wrap_json(out, start)
        return out

    def encode_copy(self, items, start: int, types, header: bool, tag=None) -> bytes:
        """Items -> COPY BINARY rows: one native pass (``copybin.encode_plan``) for every item on
        the plan; an item off it (a bad value, a missing or unknown field, a factory default
        that raised) goes through ``build`` + ``encode_rows``, which report it exactly.

        ``tag`` (an int, or one int per item) is appended to every row as one more column
        (``types`` has its type last): the field set of each item for a staged upsert."""
        spec = self._spec
        if spec is None or type(items) is not list:
            rows = _tagged(self.build(items, start), tag, 0)
            try:
                return _copybin.encode_rows(rows, types, header=header, trailer=False)
            except (ValueError, TypeError) as exc:
                raise self.column_error(exc, start) from None
        sources, fills, width, shapes = spec
        if tag is not None:
            sources += (None,)
            shapes = None if shapes is None else shapes + (None,)
        parts = []
        pos, n = 0, len(items)
        while True:
            if tag is not None:
                # one value per row, in row order: a constant, or the next of the items' tags
                fill = ("value", tag) if type(tag) is int else ("call", islice(tag, pos, None).__next__)
                plan_fills = fills + (fill,)
            else:
                plan_fills = fills
            buf, stop = _copybin.encode_plan(items, types, sources, plan_fills, width, pos, header=header,
                                             shapes=shapes)
            header = False
            parts.append(buf)
            if stop >= n:
                break
            row = _tagged(self.build(items[stop:stop + 1], start + stop), tag, stop)
            try:
                parts.append(_copybin.encode_rows(row, types, header=False, trailer=False))
            except (ValueError, TypeError) as exc:
                raise self.column_error(exc, start + stop) from None
            pos = stop + 1
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def coerce_items(self, items, start: int, dialect: int) -> list:
        """Items -> list of tuples of driver values for ``dialect``: one native pass
        (``params.coerce_plan``); an item off the plan goes through ``build`` + ``coerce_rows``,
        which report it exactly."""
        spec = self._spec
        width = len(self.all_names)
        if spec is None or type(items) is not list:
            return _coerced(self, self.build(items, start), start, dialect, width)
        sources, fills, w, shapes = spec
        out = []
        pos, n = 0, len(items)
        while True:
            rows, stop = _params.coerce_plan(items, self.kinds, dialect, sources, fills, w, pos, shapes=shapes)
            if pos == 0 and stop >= n:
                return rows
            out += rows
            if stop >= n:
                return out
            out += _coerced(self, self.build(items[stop:stop + 1], start + stop), start + stop, dialect, width)
            pos = stop + 1

    def item_given(self, items):
        """Per item, the fields it gives (a tuple in plan order) -- or None when every item gives
        all of ``given`` (tuple and column sources always; dict items as a rule, found in one
        C-speed pass over their lengths).  An item with as many keys as the plan has names
        gives them all, or is refused by the build for its unknown key."""
        if not self.per_item or not items:
            return None
        n = len(self.names)
        try:
            if min(map(len, items)) >= n:
                return None
        except TypeError:   # an item without a length: the build refuses it
            return None
        full, canon = self.given, self._given_of
        return [full if type(r) is not dict or len(r) >= n else canon(tuple(r)) for r in items]

    def _given_of(self, keys: tuple) -> tuple:
        """A dict item's keys (in its own order) -> the fields it gives, in plan order (cached:
        records come in few shapes)."""
        cache = self._given_cache
        g = cache.get(keys)
        if g is None:
            g = tuple(c for c in self.names if c in set(keys))
            if len(cache) < 4096:
                cache[keys] = g
        return g

    def _slow(self, rec, index):
        if not isinstance(rec, dict):
            raise self._error(index, f"expected a dict (the first item was one), got {type(rec).__name__}")
        m = self.model
        for k in rec:
            if k not in self._name_set:
                if k == "id":
                    raise self._error(index, "has an 'id' but the first row had none; give ids for all rows or none")
                try:
                    check_record(m, {k: rec[k]}, where=f"{self.label} row {index}")
                except ValidationError as exc:
                    raise BulkLoadError(str(exc), failed_index=index, cause=exc) from None
        if self.shapes:
            try:
                check_record(m, rec, where=f"{self.label} row {index}")
            except ValidationError as exc:
                raise BulkLoadError(str(exc), failed_index=index, cause=exc) from None
        vals = []
        for n in self.names:
            v = rec.get(n, _MISSING)
            if v is _MISSING:
                d = self._defaults.get(n)
                if d is None:
                    if n == "id":
                        raise self._error(index, "'id' is missing but the first row had one; give ids for "
                                                 "all rows or none")
                    raise self._error(index, f"{m.name}.{n} is required (no default)")
                v = d()
            vals.append(v)
        return tuple(vals)

    def _parse(self, rows, start):
        parsers = self.parsers
        text = self.parse == "text"
        out = []
        for i, row in enumerate(rows):
            row = list(row)
            for j, fn in parsers:
                v = row[j]
                if type(v) is str or (not text and type(v) is float and fn is _parse_decimal):
                    if text and v == "":
                        row[j] = None
                        continue
                    try:
                        row[j] = fn(v)
                    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
                        raise self._error(start + i, f"column {self.names[j]!r}: cannot parse {_short(v)} as "
                                                     f"{K.KIND_NAMES[self.kinds[j]]}: {exc}", exc) from None
            if text:
                for j in range(len(self.names)):
                    if row[j] == "" and self.kinds[j] == K.STR and self.model.fields[self.names[j]].nullable:
                        row[j] = None
            out.append(tuple(row))
        return out

    def _wrap_json(self, rows, start):
        """JSON columns for COPY: checked and serialized by ``_native.params`` (same rules as every
        other write path: no NaN, no NUL, str keys); the COPY encoder takes the text as is."""
        cols = self.json_cols
        coerce = _params.coerce
        out = []
        for i, row in enumerate(rows):
            row = list(row)
            for j in cols:
                v = row[j]
                if v is not None:
                    try:
                        row[j] = coerce(v, K.JSON, K.POSTGRESQL)
                    except (TypeError, ValueError) as exc:
                        raise self._error(start + i, f"column {self.all_names[j]!r}: {exc}", exc) from None
            out.append(tuple(row))
        return out

    def _error(self, index, msg, cause=None):
        return BulkLoadError(f"{self.label} row {index}: {msg}", failed_index=index, cause=cause)

    def column_error(self, exc, start=0) -> BulkLoadError:
        """An encoder/coercion error (with .row_index) -> BulkLoadError naming row and column."""
        ri = getattr(exc, "row_index", None)
        index = None if ri is None else start + ri
        msg = str(exc)
        ci = getattr(exc, "column_index", None)
        if ci is not None and 0 <= ci < len(self.all_names):
            _, _, detail = msg.partition(": ")
            msg = f"row {index}, column {self.all_names[ci]!r}: {detail or msg}"
        elif ri is not None and msg.startswith(f"row {ri}"):
            msg = f"row {index}" + msg[len(f"row {ri}"):]
        return BulkLoadError(f"{self.label} {msg}", failed_index=index, cause=exc)

    # -- columns -------------------------------------------------------------------------------
    def build_columns(self, cols: dict, n: int, start: int) -> list:
        """A dict of equal-length columns -> list of columns aligned with ``all_names``."""
        out = []
        for name in self.names:
            c = cols.get(name, _MISSING)
            if c is _MISSING:
                d = self._defaults.get(name)
                if d is None:
                    raise BulkLoadError(f"{self.label}: {self.model.name}.{name} is required and the source "
                                        f"has no such column", failed_index=start)
                c = [d() for _ in range(n)] if name in self._factories else [d()] * n
            out.append(c)
        for v in self.managed_tail:
            out.append([v] * n)
        if self.json_cols and self.serialize_json:
            for j in self.json_cols:
                col = out[j] if isinstance(out[j], list) else list(out[j])
                try:
                    out[j] = [None if v is None else _params.coerce(v, K.JSON, K.POSTGRESQL) for v in col]
                except (TypeError, ValueError) as exc:
                    raise BulkLoadError(f"{self.label} column {self.all_names[j]!r}: {exc}", cause=exc) from None
        return out

    def check_columns(self, names):
        """A column source's names: checked against the plan; they are the fields it gives."""
        self.given = tuple(c for c in self.names if c in set(names))
        self.per_item = False
        unknown = [c for c in names if c not in self._name_set]
        if unknown:
            c = unknown[0]
            if c == "id":
                return
            raise ValidationError(f"{self.label}: the source has a column {c!r} that {self.model.name} does not "
                                  f"have{did_you_mean(c, self.names)}; valid: {', '.join(self.names)}")


def _coerced(plan, rows, start, dialect, width):
    try:
        flat = _params.coerce_rows(rows, plan.kinds, dialect, plan.all_names, start)
    except (ValueError, TypeError) as exc:
        ri = getattr(exc, "row_index", None)
        raise BulkLoadError(f"{plan.label} {exc}", failed_index=ri, cause=exc) from None
    return list(zip(*[iter(flat)] * width)) if width else [() for _ in rows]


def _tagged(rows, tag, offset):
    """``rows`` with ``tag`` appended (an int, or a list of per-item ints from ``offset`` on)."""
    if tag is None:
        return rows
    if type(tag) is int:
        return [r + (tag,) for r in rows]
    return [r + (tag[offset + i],) for i, r in enumerate(rows)]


def sections(given, keys=None) -> list:
    """The positions of a batch by the field set their items give (``RowPlan.item_given``) ->
    ``[(given, [positions])]``, one upsert statement shape each, in order of first appearance.
    When a conflict key (``keys[i]``: a hashable key, or None for one that cannot conflict)
    occurs under two field sets, grouping would reorder the writes to that row, so the batch is
    cut into consecutive runs instead: the source order holds."""
    groups: dict = {}
    for i, g in enumerate(given):
        pos = groups.get(g)
        if pos is None:
            groups[g] = [i]
        else:
            pos.append(i)
    if len(groups) == 1 or keys is None:
        return list(groups.items())
    seen: set = set()
    try:
        for pos in groups.values():
            mine = {keys[i] for i in pos}
            mine.discard(None)
            if not seen.isdisjoint(mine):
                return _runs(given)
            seen |= mine
    except TypeError:   # an unhashable key value: keep the source order
        return _runs(given)
    return list(groups.items())


def _runs(given) -> list:
    out: list = []
    for i, g in enumerate(given):
        if out and out[-1][0] == g:
            out[-1][1].append(i)
        else:
            out.append((g, [i]))
    return out


def _immutable(v) -> bool:
    return isinstance(v, (int, float, bool, str, bytes, Decimal, _uuid.UUID, _dt.date, type(None), tuple, frozenset))


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."
