"""Live events for ``/fabric/_events``: numbered events kept in a ring buffer so a client that
reconnects with ``Last-Event-ID`` gets what it missed, and one queue per connected client."""

from __future__ import annotations

import asyncio
from collections import deque

import orjson

#: a client that has this many events unread is dropped (it reconnects and resumes)
QUEUE_LIMIT = 1000


class EventBus:
    def __init__(self, keep: int = 1000):
        self._buffer: deque = deque(maxlen=keep)
        self._subscribers: set = set()
        self.last_id = 0
        self.closed = False

    def publish(self, event: str, data: dict) -> int:
        self.last_id += 1
        item = (self.last_id, event, orjson.dumps(data).decode())
        self._buffer.append(item)
        for q in list(self._subscribers):
            if q.qsize() >= QUEUE_LIMIT:
                self._subscribers.discard(q)
                q.put_nowait(None)
            else:
                q.put_nowait(item)
        return self.last_id

    def subscribe(self, last_event_id: int | None = None) -> asyncio.Queue:
        """A queue of (id, event, data) items, ending with None; replays buffered events after
        ``last_event_id`` first."""
        q: asyncio.Queue = asyncio.Queue()
        if self.closed:
            q.put_nowait(None)
            return q
        if last_event_id is not None:
            for item in self._buffer:
                if item[0] > last_event_id:
                    q.put_nowait(item)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q) -> None:
        self._subscribers.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self.closed = True
        for q in self._subscribers:
            q.put_nowait(None)
        self._subscribers.clear()


def sse_frame(item) -> bytes:
    ident, event, data = item
    return f"id: {ident}\nevent: {event}\ndata: {data}\n\n".encode()
