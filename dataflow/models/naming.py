"""Table names from class names, and identifier shortening that never collides."""

from __future__ import annotations

import hashlib
import re

_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children",
              "mouse": "mice", "goose": "geese", "foot": "feet", "tooth": "teeth",
              "datum": "data", "index": "indexes", "matrix": "matrices", "vertex": "vertices",
              "analysis": "analyses", "criterion": "criteria", "quiz": "quizzes"}
_UNCOUNTABLE = {"data", "information", "equipment", "news", "series", "species", "metadata",
                "feedback", "software", "people", "staff"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def snake_case(name: str) -> str:
    """UserActivity -> user_activity, HTTPRequest -> http_request, OAuth2Token -> o_auth2_token."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def pluralize(word: str) -> str:
    """English plural of the last word of a snake_case name (category -> categories)."""
    head, sep, last = word.rpartition("_")
    if last in _UNCOUNTABLE:
        plural = last
    elif last in _IRREGULAR:
        plural = _IRREGULAR[last]
    elif re.search(r"[^aeiou]y$", last):
        plural = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        plural = last + "es"
    else:
        plural = last + "s"
    return head + sep + plural


def table_name_for(class_name: str) -> str:
    return pluralize(snake_case(class_name))


def is_identifier(name: str) -> bool:
    """True for plain ASCII SQL identifiers (letters, digits, underscore; not leading digit)."""
    return isinstance(name, str) and bool(_IDENT.match(name)) and len(name) <= 255


def shorten(name: str, limit: int) -> str:
    """Fit ``name`` into ``limit`` characters, keeping a digest of the whole so names differ."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return name[: limit - 11] + "_" + digest
