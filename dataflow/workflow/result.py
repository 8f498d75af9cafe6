"""RunResult: what every runtime returns, usable both as ``(results, run_id)`` and as ``results``.

Both documented styles exist in user code (``results, run_id = runtime.execute(wf)`` and
``result = await runtime.execute_workflow_async(wf); result["search"]``), so one object serves both.
"""

from __future__ import annotations


class RunResult(dict):
    """Node id -> result dict, plus ``.results`` (a plain dict) and ``.run_id``.

    It *is* a dict of the results (indexing, ``len``, ``in``, ``get``, ``keys/items/values``,
    ``==`` with a dict, ``json.dumps``), with one deliberate exception: **iterating yields exactly
    two items, ``results`` then ``run_id``**, so ``results, run_id = runtime.execute(wf)`` works.
    Iterate node ids with ``.keys()`` or ``.results``.  ``r[0]``/``r[1]`` are ``results``/``run_id``
    as for a tuple, and ``r["results"]``/``r["run_id"]`` work unless a node has that id.
    """

    __slots__ = ("results", "run_id")

    def __init__(self, results: dict, run_id: str):
        dict.__init__(self, results)
        self.results = results
        self.run_id = run_id

    def __iter__(self):
        return iter((self.results, self.run_id))

    def __missing__(self, key):
        # Only reached when no node has this id, so node ids always win.
        if type(key) is int and -2 <= key <= 1:
            return (self.results, self.run_id)[key]
        if key == "results":
            return self.results
        if key == "run_id":
            return self.run_id
        raise KeyError(key)

    def __eq__(self, other):
        if isinstance(other, tuple):
            return (self.results, self.run_id) == other
        return dict.__eq__(self, other)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        return (type(self), (self.results, self.run_id))

    def __repr__(self) -> str:
        return f"RunResult(run_id={self.run_id!r}, results={self.results!r})"
