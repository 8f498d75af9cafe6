"""Every code block of the documentation and the README runs (see mdblocks.py for the directives).

One test per block, in page order; the blocks of a page share a session (runner.py).  The
summary line at the end of the run says how many ran and why each skipped one was skipped.
"""

from __future__ import annotations

import pytest

from . import runner
from .mdblocks import pages, parse

BLOCKS = []
SESSION_OF = {}
DISPLAYS = 0
for _page in pages():
    _blocks, _displays = parse(_page)
    DISPLAYS += _displays
    _session = 0
    for _b in _blocks:
        if _b.fresh:
            _session += 1
        SESSION_OF[_b.id] = (_b.page, _session)
        BLOCKS.append(_b)
runner.OUTCOMES["display"] = DISPLAYS

_sessions: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _close_sessions():
    yield
    for s in _sessions.values():
        s.close()
    _sessions.clear()


def _session(block):
    key = SESSION_OF[block.id]
    # blocks run in page order: every other session is finished once this one is reached (its
    # DataFlow instances closed, so node names like UserCreateNode are not ambiguous)
    for other in [k for k in _sessions if k != key]:
        _sessions.pop(other).close()
    if key not in _sessions:
        _sessions[key] = runner.Session()
    return _sessions[key]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block(block):
    if block.skip:
        runner.SKIPS[block.skip] += 1
        pytest.skip(f"{block.id}: {block.skip}")
    try:
        _session(block).run(block)
    except pytest.skip.Exception:
        raise
    except BaseException:
        runner.OUTCOMES["failed"] += 1
        raise
    runner.OUTCOMES[f"ran {block.kind}"] += 1
