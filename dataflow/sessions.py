"""The read-your-writes session: when this flow of work last wrote, so that its later reads are
not served by a read replica that has not replayed those writes yet (``drivers/replicas.py``).

A mutable holder in a context variable, so one session spans what users see as one flow: a task
from its first statement on and the tasks it starts after that, the nodes of one workflow run
(the runtime opens one before it starts node tasks), and the synchronous calls made from one
thread (``_loop.run_sync``).  ``ensure()`` opens one by hand (before starting tasks that write).  It
lives on this low floor, with no imports, because both the sync bridge and the drivers use it.
"""

from __future__ import annotations

import contextvars
import threading


class Session:
    """``fences``: replica router id -> ``time.monotonic()`` just after this session's last
    write through that router was acknowledged."""

    __slots__ = ("fences",)

    def __init__(self):
        self.fences: dict = {}


#: True once some DataFlow has read replicas: until then nothing needs a session, and the sync
#: bridge and the workflow runtime skip opening one (no cost without replicas)
enabled = False

_SESSION: contextvars.ContextVar = contextvars.ContextVar("dataflow_read_session", default=None)

#: the session of this context, or None
current = _SESSION.get


def ensure() -> Session:
    """This context's session, opened here (and seen by tasks started later) when it has none."""
    s = _SESSION.get()
    if s is None:
        s = Session()
        _SESSION.set(s)
    return s


_threads = threading.local()


def sync_context() -> contextvars.Context:
    """The context for a synchronous call's task: a copy of the caller's, holding the caller's
    session or else this thread's one, so consecutive sync calls of a thread (a create, then a
    read) share a session without the thread's own context being changed."""
    ctx = contextvars.copy_context()
    if ctx.get(_SESSION) is None:
        s = getattr(_threads, "session", None)
        if s is None:
            s = _threads.session = Session()
        ctx.run(_SESSION.set, s)
    return ctx
