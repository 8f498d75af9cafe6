"""The event bus behind ``/fabric/_events``: a shared view and per-tenant views, each numbered
by its own counter (so a tenant's ids show no gaps from other tenants' events), replay after
``Last-Event-ID`` per view, bounded views and queues."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("orjson")

from dataflow.fabric.events import QUEUE_LIMIT, EventBus  # noqa: E402


def drain(q):
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


async def test_views_numbering_and_replay():
    bus = EventBus(keep=10)
    shared, a, b = bus.subscribe(), bus.subscribe(tenant="a"), bus.subscribe(tenant="b")
    bus.publish("product_refreshed", {"product": "s"})
    for i in range(3):
        bus.publish("product_refreshed", {"product": "p", "i": i}, tenant="b")
    bus.publish("product_refreshed", {"product": "p"}, tenant="a")
    bus.publish("product_refreshed", {"product": "s2"})
    got_a, got_b, got_s = drain(a), drain(b), drain(shared)
    assert [(i, json.loads(d)["product"]) for i, _, d in got_a] == [(1, "s"), (2, "p"), (3, "s2")]
    assert [i for i, _, _ in got_b] == [1, 2, 3, 4, 5]
    assert [json.loads(d)["product"] for _, _, d in got_s] == ["s", "s2"] and bus.last_id == 2
    # resume in a's view: what came after its id 1, and nothing of b's
    again = drain(bus.subscribe(1, tenant="a"))
    assert [i for i, _, _ in again] == [2, 3]
    assert bus.subscribers == 4
    bus.unsubscribe(a)
    assert bus.subscribers == 3
    bus.close()
    assert drain(shared) == [None] and drain(b) == [None] and drain(bus.subscribe()) == [None]


async def test_tenant_views_and_queues_are_bounded():
    bus = EventBus(keep=5, tenant_views=2)
    first = bus.subscribe(tenant="t1")
    bus.subscribe(tenant="t2")
    bus.subscribe(tenant="t3")           # t1's view goes: its stream ends (the client resumes anew)
    assert drain(first) == [None] and bus.subscribers == 2
    slow = bus.subscribe(tenant="t3")
    for i in range(QUEUE_LIMIT + 1):
        bus.publish("e", {"i": i}, tenant="t3")
    assert drain(slow)[-1] is None       # a client that stops reading is dropped, not buffered forever
