"""Live events for ``/fabric/_events``: numbered events kept in a ring buffer so a client that
reconnects with ``Last-Event-ID`` gets what it missed, and one queue per connected client.

Events are seen through *views*: the shared view (events of products that are not per tenant)
and one view per tenant.  A tenant's view holds the shared events and that tenant's own events,
numbered by a counter of its own; another tenant's events never enter it.  Separate counters,
not one global counter filtered per client: with a global one, the gaps in a tenant's event ids
would tell it how often other tenants' products refresh.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque

import orjson

#: a client that has this many events unread is dropped (it reconnects and resumes)
QUEUE_LIMIT = 1000
#: tenant views kept (least recently used goes first; its clients are ended and resume from scratch)
TENANT_VIEWS = 256


class _View:
    __slots__ = ("buffer", "subscribers", "last_id")

    def __init__(self, keep: int):
        self.buffer: deque = deque(maxlen=keep)
        self.subscribers: set = set()
        self.last_id = 0

    def publish(self, event: str, data: str) -> int:
        self.last_id += 1
        item = (self.last_id, event, data)
        self.buffer.append(item)
        for q in list(self.subscribers):
            if q.qsize() >= QUEUE_LIMIT:
                self.subscribers.discard(q)
                q.put_nowait(None)
            else:
                q.put_nowait(item)
        return self.last_id

    def end(self) -> None:
        for q in self.subscribers:
            q.put_nowait(None)
        self.subscribers.clear()


class EventBus:
    def __init__(self, keep: int = 1000, tenant_views: int = TENANT_VIEWS):
        self._keep = keep
        self._max_views = tenant_views
        self._shared = _View(keep)
        self._tenants: OrderedDict = OrderedDict()
        self._owner: dict = {}       # queue -> its view
        self.closed = False

    @property
    def last_id(self) -> int:
        """The id of the last shared event."""
        return self._shared.last_id

    def _view(self, tenant: str | None) -> _View:
        if tenant is None:
            return self._shared
        view = self._tenants.get(tenant)
        if view is None:
            view = self._tenants[tenant] = _View(self._keep)
            while len(self._tenants) > self._max_views:
                _, old = self._tenants.popitem(last=False)
                for q in old.subscribers:
                    self._owner.pop(q, None)
                old.end()
        else:
            self._tenants.move_to_end(tenant)
        return view

    def publish(self, event: str, data: dict, tenant: str | None = None) -> int:
        """Publish to the shared view and every tenant view (``tenant=None``), or to that
        tenant's view only.  Returns the event's id in the view it was published to."""
        text = orjson.dumps(data).decode()
        if tenant is not None:
            return self._view(tenant).publish(event, text)
        for view in self._tenants.values():
            view.publish(event, text)
        return self._shared.publish(event, text)

    def subscribe(self, last_event_id: int | None = None, tenant: str | None = None) -> asyncio.Queue:
        """A queue of (id, event, data) items, ending with None; replays buffered events after
        ``last_event_id`` first.  ``tenant``: that tenant's view, else the shared one."""
        q: asyncio.Queue = asyncio.Queue()
        if self.closed:
            q.put_nowait(None)
            return q
        view = self._view(tenant)
        if last_event_id is not None:
            for item in view.buffer:
                if item[0] > last_event_id:
                    q.put_nowait(item)
        view.subscribers.add(q)
        self._owner[q] = view
        return q

    def unsubscribe(self, q) -> None:
        view = self._owner.pop(q, None)
        if view is not None:
            view.subscribers.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._owner)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self.closed = True
        self._shared.end()
        for view in self._tenants.values():
            view.end()
        self._owner.clear()


def sse_frame(item) -> bytes:
    ident, event, data = item
    return f"id: {ident}\nevent: {event}\ndata: {data}\n\n".encode()
