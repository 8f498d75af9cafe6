"""``POST /fabric/webhook/{source}`` on a real uvicorn, single process (nonces in memory): each
signature scheme accepted when genuine; refused when the secret is wrong, the body tampered
with, a delivery replayed, the timestamp stale or in the future, headers missing or of another
scheme; the comparison is constant-time; fuzzed headers never give 202 or 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime, timezone

import pytest

httpx = pytest.importorskip("httpx")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dataflow import DataFlow  # noqa: E402
from dataflow.fabric import RestSourceConfig, WebhookConfig  # noqa: E402
from dataflow.fabric import webhooks as W  # noqa: E402

from .fabric_helpers import ApiServer, until  # noqa: E402

SECRET = "topsecret-webhook-key"
STD_KEY = b"0123456789abcdef0123456789abcdef"
STD_SECRET = "whsec_" + base64.b64encode(STD_KEY).decode()
PROVIDERS = ("generic", "github", "stripe", "slack", "standard")


def _hex(key: bytes, msg: bytes) -> str:
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def sign(provider: str, body: bytes, delivery: str = "d-1", ts: float | None = None, secret: str | None = None) -> dict:
    """Headers a genuine sender of ``provider`` would send."""
    ts = time.time() if ts is None else ts
    t = str(int(ts))
    if provider == "generic":
        key = (secret or SECRET).encode()
        return {"X-Webhook-Signature": _hex(key, body), "X-Webhook-Delivery-Id": delivery,
                "X-Webhook-Timestamp": datetime.fromtimestamp(ts, timezone.utc).isoformat()}
    if provider == "github":
        return {"X-Hub-Signature-256": "sha256=" + _hex((secret or SECRET).encode(), body),
                "X-GitHub-Delivery": delivery, "X-GitHub-Event": "push"}
    if provider == "stripe":
        return {"Stripe-Signature": f"t={t},v1={_hex((secret or SECRET).encode(), t.encode() + b'.' + body)}"}
    if provider == "slack":
        return {"X-Slack-Signature": "v0=" + _hex((secret or SECRET).encode(), b"v0:" + t.encode() + b":" + body),
                "X-Slack-Request-Timestamp": t}
    key = W.standard_key(secret or STD_SECRET)
    sig = base64.b64encode(hmac.new(key, f"{delivery}.{t}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"webhook-id": delivery, "webhook-timestamp": t, "webhook-signature": f"v1,{sig}"}


@pytest.fixture
async def fabric(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("HOOK_STD_SECRET", STD_SECRET)
    with ApiServer() as api:
        api.set("/items", [1])
        db = DataFlow(f"sqlite:///{tmp_path}/w.db")
        for p in PROVIDERS:
            env = "HOOK_STD_SECRET" if p == "standard" else "HOOK_SECRET"
            db.source(f"src_{p}", RestSourceConfig(url=api.url, endpoints={"items": "/items"}, poll_interval=3600,
                                                   retries=0, allow_private=True,
                                                   webhook=WebhookConfig(path=f"/hooks/{p}", secret_env=env,
                                                                         provider=p)))
        db.source("only_push", RestSourceConfig(url=api.url, endpoints={"items": "/items"}, poll_interval=3600,
                                                allow_private=True,
                                                webhook=WebhookConfig(path="/hooks/gh", secret_env="HOOK_SECRET",
                                                                      provider="github", events=("push",))))
        db.source("plain", RestSourceConfig(url=api.url, poll_interval=3600, allow_private=True))
        for p in PROVIDERS:
            def make(src):
                async def fn(ctx):
                    return await ctx.source(src).fetch("items")
                return fn
            db.product(f"items_{p}", depends_on=[f"src_{p}"], write_debounce=0)(make(f"src_{p}"))
        rt = await db.start(port=0)
        # the start's warm-up has computed every product (tests count computations after it)
        await until(lambda: not any(t.get_coro().__qualname__.endswith("._warm") for t in rt._tasks), timeout=30)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}") as client:
            yield rt, client, api
        await db.stop()
        await db.close_async()


async def post(client, source, body, headers):
    return await client.post(f"/fabric/webhook/{source}", content=body, headers=headers)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_genuine_accepted_once_and_refreshes(fabric, provider):
    rt, client, api = fabric
    api.set("/items", [1, 2])
    body = b'{"type": "thing.changed", "id": "evt_1"}'
    headers = sign(provider, body, delivery=f"once-{provider}")
    r = await post(client, f"src_{provider}", body, headers)
    assert r.status_code == 202, r.text
    assert rt.entries[f"items_{provider}"].value == [1, 2]       # refreshed before the answer
    r = await post(client, f"src_{provider}", body, headers)
    assert r.status_code == 409, r.text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_adversarial_deliveries_refused(fabric, provider):
    rt, client, api = fabric
    src = f"src_{provider}"
    body = b'{"type": "thing.changed"}'
    before = rt.computations[f"items_{provider}"]
    # wrong secret
    wrong = "whsec_" + base64.b64encode(b"x" * 32).decode() if provider == "standard" else "not-the-secret"
    assert (await post(client, src, body, sign(provider, body, "w1", secret=wrong))).status_code == 401
    # tampered body
    assert (await post(client, src, body + b" ", sign(provider, body, "w2"))).status_code == 401
    # missing headers: none at all, and each one left out
    assert (await post(client, src, body, {})).status_code == 401
    good = sign(provider, body, "w3")
    for name in good:
        if name.lower().endswith("-event"):
            continue
        partial = {k: v for k, v in good.items() if k != name}
        assert (await post(client, src, body, partial)).status_code == 401, name
    # a signature of every other scheme
    for other in PROVIDERS:
        if other != provider:
            assert (await post(client, src, body, sign(other, body, "w4"))).status_code == 401, other
    if provider != "github":   # GitHub signs no timestamp: its delivery ids are kept for a day instead
        stale = time.time() - W.WINDOW_PAST - 30
        future = time.time() + W.WINDOW_FUTURE + 30
        assert (await post(client, src, body, sign(provider, body, "w5", ts=stale))).status_code == 401
        assert (await post(client, src, body, sign(provider, body, "w6", ts=future))).status_code == 401
        assert (await post(client, src, body, sign(provider, body, "w7", ts=time.time() + 30))).status_code == 202
    assert rt.computations[f"items_{provider}"] <= before + 1     # only the genuine one refreshed


async def test_limits_and_routing(fabric, monkeypatch):
    rt, client, api = fabric
    big = b"x" * (W.MAX_BODY + 1)
    assert (await post(client, "src_generic", big, sign("generic", big, "big"))).status_code == 413
    assert (await post(client, "nope", b"{}", {})).status_code == 404
    assert (await post(client, "plain", b"{}", {})).status_code == 404          # no webhook configured
    body = b'{"zen": "hi"}'
    h = sign("github", body, "ev-1")
    r = await post(client, "only_push", body, {**h, "X-GitHub-Event": "issues"})
    assert r.status_code == 202 and r.json()["status"] == "ignored"
    assert (await post(client, "only_push", body, {**sign("github", body, "ev-2")})).json()["status"] == "accepted"
    monkeypatch.delenv("HOOK_SECRET")
    assert (await post(client, "src_generic", body, sign("generic", body, "s"))).status_code == 503


async def test_failed_refresh_is_5xx_and_the_retry_counts(fabric):
    rt, client, api = fabric
    await rt.refresh("items_generic")
    body = b"{}"
    headers = sign("generic", body, "retry-1")
    api.fail_next = 10**6
    assert (await post(client, "src_generic", body, headers)).status_code == 500
    api.fail_next = 0
    api.set("/items", [9])
    assert (await post(client, "src_generic", body, headers)).status_code == 202
    assert rt.entries["items_generic"].value == [9]
    assert (await post(client, "src_generic", body, headers)).status_code == 409


async def test_constant_time_comparison_is_the_code_path(fabric, monkeypatch):
    rt, client, api = fabric
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(W.hmac, "compare_digest", spy)
    for provider in PROVIDERS:
        calls.clear()
        body = b'{"a": 1}'
        h = sign(provider, body, f"ct-{provider}")
        assert (await post(client, f"src_{provider}", body + b"!", h)).status_code == 401
        assert calls, provider                      # the refusal went through compare_digest
        calls.clear()
        assert (await post(client, f"src_{provider}", body, h)).status_code == 202
        assert calls, provider


async def test_concurrent_deliveries_of_one_id_accepted_once(fabric):
    import asyncio
    rt, client, api = fabric
    body = b'{"burst": true}'
    headers = sign("generic", body, "burst-1")
    codes = await asyncio.gather(*(post(client, "src_generic", body, headers) for _ in range(50)))
    codes = [r.status_code for r in codes]
    assert codes.count(202) == 1 and codes.count(409) == 49


def test_timestamps_parsed():
    now = time.time()
    assert abs(W.parse_timestamp(str(int(now))) - int(now)) < 1e-6
    assert abs(W.parse_timestamp(datetime.fromtimestamp(now, timezone.utc).isoformat()) - now) < 1e-3
    assert abs(W.parse_timestamp("2026-01-01T00:00:00Z") - datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()) < 1e-6
    for bad in ("", "yesterday", "2026-01-01T00:00:00", "1e9", "-5", "nan", "9" * 400, "１２３"):
        with pytest.raises(W.Rejected):
            W.parse_timestamp(bad)
    assert W.NONCE_TTL >= W.WINDOW_PAST + W.WINDOW_FUTURE


_HEADER_NAMES = ["X-Webhook-Signature", "X-Webhook-Timestamp", "X-Webhook-Delivery-Id", "X-Hub-Signature-256",
                 "X-GitHub-Delivery", "Stripe-Signature", "X-Slack-Signature", "X-Slack-Request-Timestamp",
                 "webhook-id", "webhook-timestamp", "webhook-signature", "Content-Length-X"]
_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80),
    st.sampled_from(["sha256=", "v0=", "v1,", "t=1,v1=", "t=,v1=", "v1,!!!", str(int(time.time())),
                     "0" * 64, "sha256=" + "0" * 64, "1" * 30, "whsec_", "2026-01-01T00:00:00+00:00"]))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(provider=st.sampled_from(PROVIDERS), headers=st.dictionaries(st.sampled_from(_HEADER_NAMES), _VALUES),
       body=st.binary(max_size=64))
def test_fuzzed_headers_never_accepted_nor_500(fuzz_fabric, provider, headers, body):
    client = fuzz_fabric
    headers = {k: v.strip().encode("latin-1") for k, v in headers.items()}   # bytes beyond ASCII too
    r = client.post(f"/fabric/webhook/src_{provider}", content=body, headers=headers)
    assert r.status_code not in (202, 500), (r.status_code, r.text)
    assert r.status_code in (400, 401), (r.status_code, r.text)


@pytest.fixture(scope="module")
def fuzz_fabric(tmp_path_factory):
    """A fabric in a thread of its own (hypothesis drives sync tests): a real uvicorn server."""
    import asyncio
    import os
    import threading

    os.environ["HOOK_SECRET"], os.environ["HOOK_STD_SECRET"] = SECRET, STD_SECRET
    tmp = tmp_path_factory.mktemp("fuzz")
    started, done = threading.Event(), None
    box = {}

    async def main():
        nonlocal done
        done = asyncio.Event()
        with ApiServer() as api:
            db = DataFlow(f"sqlite:///{tmp}/f.db")
            for p in PROVIDERS:
                env = "HOOK_STD_SECRET" if p == "standard" else "HOOK_SECRET"
                db.source(f"src_{p}", RestSourceConfig(url=api.url, poll_interval=3600, allow_private=True,
                                                       webhook=WebhookConfig(path="/h", secret_env=env, provider=p)))
            rt = await db.start(port=0)
            box["port"], box["loop"] = rt.port, asyncio.get_running_loop()
            started.set()
            await done.wait()
            await db.stop()
            await db.close_async()

    th = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    th.start()
    assert started.wait(30)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{box['port']}") as client:
            yield client
    finally:
        box["loop"].call_soon_threadsafe(done.set)
        th.join(15)
        for k in ("HOOK_SECRET", "HOOK_STD_SECRET"):
            os.environ.pop(k, None)


async def test_webhook_refreshes_per_tenant_values(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with ApiServer() as api:
        api.set("/items", [1])
        db = DataFlow(f"sqlite:///{tmp_path}/t.db")
        db.source("api", RestSourceConfig(url=api.url, endpoints={"items": "/items"}, poll_interval=3600,
                                          allow_private=True, webhook=WebhookConfig(path="/h", secret_env="HOOK_SECRET")))

        @db.product("mine", depends_on=["api"], multi_tenant=True, write_debounce=0)
        async def mine(ctx):
            return {"tenant": ctx.tenant_id, "items": await ctx.source("api").fetch("items")}

        rt = await db.start(port=0, tenant_extractor=lambda request: request.headers.get("x-tenant"))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}") as c:
                async def data(t):
                    r = await c.get("/fabric/mine", headers={"x-tenant": t})
                    return r.json().get("data") if r.status_code == 200 else None

                for t in ("a", "b"):
                    await until(lambda t=t: data(t), timeout=10)
                    assert await data(t) == {"tenant": t, "items": [1]}
                api.set("/items", [2])
                body = b"{}"
                r = await post(c, "api", body, sign("generic", body, "tenants-1"))
                assert r.status_code == 202, r.text
                for t in ("a", "b"):
                    await until(lambda t=t: _has(data(t), [2]), timeout=10)
        finally:
            await db.stop()
            await db.close_async()


async def _has(value, items):
    v = await value
    return v is not None and v["items"] == items
