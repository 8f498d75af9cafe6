"""Table names from class names, and identifier shortening that never collides.

The table a class gets is the one the well-known project (Kailash DataFlow) creates for the same
class, so a database made by it keeps working here: snake_case of the class name, then the English
plural of its last word -- its irregular and uncountable words, then the regular endings.
"""

from __future__ import annotations

import re

# Words whose plural is the word itself: uncountable nouns, -ics subjects, animals, words
# already plural.  Only these: other words take the regular endings (metric -> metrics).
_UNCHANGED = frozenset("""
    advice aircraft analytics athletics audio bacteria barracks bison buffalo chassis cod corps
    criteria data deer economics elk equipment ethics evidence feedback firmware fish furniture
    gallows genetics hardware headquarters homework housework hovercraft information innings
    knowledge linguistics logistics luggage malware mathematics means media metadata money moose
    music news offspring phenomena physics pike politics progress reindeer research salmon series
    sheep shrimp software spacecraft species squid statistics swine traffic trout tuna watercraft
    weather wildebeest
""".split())

# Irregular plurals grouped by the ending they change: (old ending, new ending, stems).
# The plural of stem + old is stem + new; the stems are the whole list, nothing is guessed.
_ENDINGS = (
    ("f", "ves", "cal el hal hoo lea loa scar sel shel thie whar wol"),
    ("o", "oes", "ech embarg her potat tomat tornad torped vet volcan"),
    ("is", "es", "analys ax bas cris diagnos ellips hypothes nemes neuros oas paralys parenthes "
                 "prognos synops synthes thes"),
    ("um", "a", "addend bacteri curricul dat errat medi memorand millenni ov quant spectr strat "
                "symposi consorti"),
    ("us", "i", "alumn fung nucle radi stimul"),
    ("a", "ae", "alumn larv vertebr"),
    ("on", "a", "criteri phenomen"),
    ("ex", "ices", "cod cort vert vort"),
    ("ix", "ices", "matr"),
    ("man", "men", " business chair crafts fire gentle police sales service spokes"),
    ("woman", "women", " business chair police sales service spokes"),
)
_IRREGULAR = {"child": "children", "die": "dice", "foot": "feet", "goose": "geese", "louse": "lice",
              "mouse": "mice", "tooth": "teeth", "ox": "oxen", "person": "people", "genus": "genera",
              "corpus": "corpora", "quiz": "quizzes", "passerby": "passersby"}
for _old, _new, _stems in _ENDINGS:
    for _stem in _stems.split(" "):
        _IRREGULAR[_stem + _old] = _stem + _new

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def snake_case(name: str) -> str:
    """UserActivity -> user_activity, HTTPRequest -> http_request, OAuth2Token -> o_auth2_token.

    An underscore goes before every capitalised word that does not start the name and between a
    lowercase letter or digit and a capital.  An underscore already in the name is kept, so
    ``My_Table`` -> ``my__table``, as the well-known project names it.
    """
    s = re.sub(r"(?<=.)([A-Z][a-z]+)", r"_\1", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def pluralize(word: str) -> str:
    """English plural of the last word of a snake_case name (category -> categories)."""
    head, sep, last = word.rpartition("_")
    if last in _UNCHANGED:
        plural = last
    elif last in _IRREGULAR:
        plural = _IRREGULAR[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif len(last) > 1 and last[-1] == "y" and last[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    elif last.endswith("fe"):
        plural = last[:-2] + "ves"      # knife -> knives; -f words change only when listed
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
    import hashlib  # rarely needed; not at import time (loading OpenSSL costs ~3 ms)

    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return name[: limit - 11] + "_" + digest
