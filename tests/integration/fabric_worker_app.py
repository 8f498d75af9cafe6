"""The app each worker process of ``test_fabric_workers.py`` serves (``dataflow serve --module
fabric_worker_app``): one REST source on the test's local API server, polled quickly, with a
generic webhook, and one materialized product that records which worker computed it (and takes
``$FABRIC_SLOW`` seconds when the source holds three items or more)."""

from __future__ import annotations

import asyncio
import os

from dataflow import DataFlow
from dataflow.fabric import RestSourceConfig, WebhookConfig

db = DataFlow(os.environ["FABRIC_DB_URL"], name="fabric_workers", redis_url=os.environ.get("FABRIC_REDIS_URL"))
db.source("api", RestSourceConfig(url=os.environ["FABRIC_API_URL"], endpoints={"items": "/items"},
                                  poll_interval=float(os.environ.get("FABRIC_POLL", "0.2")), timeout=5,
                                  retries=0, allow_private=True,
                                  webhook=WebhookConfig(path="/hooks/api", secret_env="FABRIC_HOOK_SECRET")))


@db.product("items", depends_on=["api"], write_debounce=0)
async def items(ctx):
    data = await ctx.source("api").fetch("items")
    if isinstance(data, list) and len(data) >= 3:   # a slow refresh, to pause a leader in the middle of one
        await asyncio.sleep(float(os.environ.get("FABRIC_SLOW", "0")))
    return {"items": data, "by": os.getpid()}
