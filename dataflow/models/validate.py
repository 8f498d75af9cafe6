"""Checks of caller input against a model, shared by nodes, express and the QueryBuilder.

Identifiers are resolved against the model (never escaped-and-passed); every failure is a
typed error naming the model, the field and the fix, raised before any SQL runs.
"""

from __future__ import annotations

import difflib

from ..errors import FilterError, ValidationError
from .managed import MANAGED_FIELDS
from .model import ModelInfo

MAX_LIMIT = 1_000_000


def did_you_mean(name, options) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_field(model: ModelInfo, name, what: str = "field", err=ValidationError) -> str:
    if type(name) is not str or name not in model.fields:
        raise err(f"{model.name}: unknown {what} {name!r}{did_you_mean(name, model.fields)}; "
                  f"valid: {', '.join(model.fields)}")
    return name


def check_int(value, name: str, *, minimum: int = 0, maximum: int = MAX_LIMIT) -> int:
    if type(value) is not int:
        raise ValidationError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or value > maximum:
        raise ValidationError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def parse_order_by(model: ModelInfo, order_by, sort=None) -> list[tuple[str, bool]]:
    """-> [(field, descending)].  Accepts "name", "-age", "age desc", ["-age", "name"],
    [{"age": -1}], [("age", "DESC")] and sort=[{"field": "age", "order": "desc"}]."""
    items: list = []
    if order_by is not None:
        items.extend([order_by] if isinstance(order_by, (str, dict)) else list(_as_list(order_by, "order_by")))
    if sort is not None:
        for i, s in enumerate(_as_list(sort, "sort")):
            if not isinstance(s, dict) or "field" not in s:
                raise ValidationError(f"sort[{i}] must look like {{'field': 'age', 'order': 'desc'}}")
            items.append((s["field"], s.get("order", "asc")))
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            text = item.strip()
            desc = False
            if text.startswith("-"):
                text, desc = text[1:], True
            elif text.startswith("+"):
                text = text[1:]
            parts = text.split()
            if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
                text, desc = parts[0], parts[1].lower() == "desc"
            elif len(parts) != 1:
                raise ValidationError(f"order_by[{i}] {item!r}: use a field name, '-field', or 'field asc|desc'")
            out.append((check_field(model, text, "order_by field"), desc))
        elif isinstance(item, dict):
            for k, v in item.items():
                if v not in (1, -1, "asc", "desc", "ASC", "DESC") or type(v) is bool:
                    raise ValidationError(f"order_by[{i}][{k!r}] must be 1, -1, 'asc' or 'desc'")
                out.append((check_field(model, k, "order_by field"), v in (-1, "desc", "DESC")))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            direction = str(item[1]).lower()
            if direction not in ("asc", "desc", "1", "-1"):
                raise ValidationError(f"order_by[{i}] direction must be 'asc' or 'desc'")
            out.append((check_field(model, item[0], "order_by field"), direction in ("desc", "-1")))
        else:
            raise ValidationError(f"order_by[{i}] {item!r}: use a field name, '-field', or {{'field': -1}}")
    return out


def _as_list(v, name):
    if isinstance(v, (list, tuple)):
        return v
    raise ValidationError(f"{name} must be a list, got {type(v).__name__}")


def check_fields_projection(model: ModelInfo, fields) -> tuple | None:
    if fields is None:
        return None
    if isinstance(fields, str) or not isinstance(fields, (list, tuple)):
        raise ValidationError(f"fields must be a list of field names, got {type(fields).__name__}")
    if not fields:
        raise ValidationError("fields must name at least one field")
    return tuple(check_field(model, f, "field in fields") for f in fields)


def check_record(model: ModelInfo, data, *, where: str, allow_id: bool = True) -> dict:
    """A dict of settable fields; unknown and managed fields are refused with the reason."""
    if not isinstance(data, dict):
        raise ValidationError(f"{where}: expected a dict of field values, got {type(data).__name__}")
    for k in data:
        if k in MANAGED_FIELDS:
            raise ValidationError(
                f"{where}: {k!r} is managed automatically (created_at/updated_at are set by DataFlow); "
                f"remove it from the values")
        if k not in model.fields:
            if k == "tenant_id":
                raise ValidationError(f"{where}: {model.name} has no tenant_id field")
            raise ValidationError(f"{where}: {model.name} has no field {k!r}{did_you_mean(k, model.user_fields)}; "
                                  f"valid fields: {', '.join(model.user_fields)}")
        if k == "id" and not allow_id:
            raise ValidationError(f"{where}: 'id' cannot be changed")
    shapes = model.json_shapes
    if shapes:
        for k, check in shapes.items():
            v = data.get(k)
            if v is not None and k in data:
                problem = check(v)
                if problem:
                    raise ValidationError(f"{where}: field {k!r}: {problem}")
    return data


def check_filter(filt, where: str = "filter") -> dict:
    if filt is None:
        return {}
    if not isinstance(filt, dict):
        raise FilterError(f"{where} must be a dict like {{'age': {{'$gte': 18}}}}, got {type(filt).__name__}")
    return filt
