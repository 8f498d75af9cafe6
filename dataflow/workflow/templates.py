"""Parameter templates: ``"{name}"`` / ``"${name}"`` replaced by runtime inputs.

Compiled once at ``build()`` into small render closures, so a run whose nodes have no templates
pays nothing, and a run with templates copies only the containers on the way to a template.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..errors import WorkflowError

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
#: The whole value is one template: the input replaces it keeping its type.
_EXACT = re.compile(r"\{(" + _IDENT + r")\}|\$\{(" + _IDENT + r")\}")
#: ``${name}`` anywhere in a longer string: interpolated with ``str(value)``.
_INNER = re.compile(r"\$\{(" + _IDENT + r")\}")

#: ``render(inputs) -> value``; raises ``_MissingInput`` for an absent input.
Renderer = Callable[[dict], Any]


class _MissingInput(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _lookup(inputs: dict, name: str) -> Any:
    try:
        return inputs[name]
    except KeyError:
        raise _MissingInput(name) from None


def compile_value(value: Any, names: set) -> Renderer | None:
    """Return a renderer for ``value`` if it contains templates, else None.

    Names referenced are added to ``names``.  Only ``"{ident}"`` as the whole string and
    ``"${ident}"`` anywhere are templates; other braces (JSON text, ``"{a} and {b}"``) are data.
    """
    if isinstance(value, str):
        if "{" not in value:
            return None
        m = _EXACT.fullmatch(value)
        if m is not None:
            name = m.group(1) or m.group(2)
            names.add(name)
            return lambda inputs: _lookup(inputs, name)
        if _INNER.search(value) is None:
            return None
        names.update(_INNER.findall(value))
        sub = _INNER.sub
        return lambda inputs: sub(lambda mm: str(_lookup(inputs, mm.group(1))), value)
    if isinstance(value, dict):
        parts = {k: r for k, v in value.items() if (r := compile_value(v, names)) is not None}
        if not parts:
            return None

        def render_dict(inputs: dict, _value=value, _parts=parts) -> dict:
            out = dict(_value)
            for k, r in _parts.items():
                out[k] = r(inputs)
            return out
        return render_dict
    if isinstance(value, (list, tuple)):
        parts_l = [(i, r) for i, v in enumerate(value) if (r := compile_value(v, names)) is not None]
        if not parts_l:
            return None
        kind = type(value)

        def render_seq(inputs: dict, _value=value, _parts=parts_l, _kind=kind):
            out = list(_value)
            for i, r in _parts:
                out[i] = r(inputs)
            return out if _kind is list else _kind(out)
        return render_seq
    return None


def compile_params(params: dict) -> tuple[dict[str, Renderer], frozenset]:
    """Per top-level parameter name, the renderer of its templates; plus all input names used."""
    names: set = set()
    renderers = {k: r for k, v in params.items() if (r := compile_value(v, names)) is not None}
    return renderers, frozenset(names)


def render_params(node_id: str, params: dict, renderers: dict[str, Renderer], inputs: dict,
                  skip=()) -> dict:
    """A copy of ``params`` with templates filled from ``inputs`` (keys in ``skip`` untouched)."""
    out = dict(params)
    for key, render in renderers.items():
        if key in skip:
            continue
        try:
            out[key] = render(inputs)
        except _MissingInput as exc:
            raise WorkflowError(
                f"node {node_id!r} parameter {key!r} uses template input {exc.name!r}, but no runtime "
                f"input {exc.name!r} was given; pass it in execute(..., parameters={{{exc.name!r}: ...}})"
            ) from None
    return out
