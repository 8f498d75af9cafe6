"""Webhook change notifications (``POST /fabric/webhook/{source}``): the signature schemes of the
common senders, checked in constant time, a timestamp window, and one nonce per delivery.

Schemes (``WebhookConfig.provider``):

- ``generic``: ``X-Webhook-Signature`` = hex HMAC-SHA256 of the raw body (``sha256=`` prefix
  allowed), ``X-Webhook-Timestamp`` (Unix seconds or ISO-8601), ``X-Webhook-Delivery-Id``.
- ``github``: ``X-Hub-Signature-256: sha256=<hex>`` of the body, ``X-GitHub-Delivery``.  GitHub
  sends no timestamp, so its delivery ids are remembered for a day instead of the window.
- ``stripe``: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`` over ``"<t>.<body>"``.
- ``slack``: ``X-Slack-Signature: v0=<hex>`` over ``"v0:<ts>:<body>"``, ``X-Slack-Request-Timestamp``.
- ``standard`` (Standard Webhooks): ``webhook-id``, ``webhook-timestamp``, ``webhook-signature:
  v1,<base64>`` (several, space separated) over ``"<id>.<ts>.<body>"`` with the base64 key of a
  ``whsec_...`` secret.

Answers: 202 accepted (the refresh it triggered succeeded), 401 bad or missing signature or a
timestamp outside 300 s past / 60 s future, 409 a delivery seen before, 413 a body over 1 MiB,
5xx when the refresh failed (the nonce is released, so the sender's retry counts) or no leader
answered.  The nonce is claimed atomically (``SET NX PX`` in Redis, a conditional INSERT in
PostgreSQL, a dict in a single process), so of concurrent deliveries of one id, across workers,
exactly one is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
import time
from datetime import datetime

import orjson

#: seconds a timestamp may lie in the past / in the future (clock skew)
WINDOW_PAST = 300.0
WINDOW_FUTURE = 60.0
#: a nonce outlives the window (plus skew), so a replay inside the window is always caught
NONCE_TTL = WINDOW_PAST + WINDOW_FUTURE + 60.0
#: schemes without a signed timestamp (GitHub) keep their delivery ids this long
NONCE_TTL_UNTIMED = 86_400.0
MAX_BODY = 1024 * 1024
#: Unix seconds, ASCII digits only (``str.isdigit`` would take other scripts' digits too)
_UNIX = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")


class Rejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _hmac_hex(key: bytes, msg: bytes) -> str:
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of ASCII signatures (a header's non-ASCII never raises)."""
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("latin-1", "replace"))


def _need(headers, name: str) -> str:
    v = headers.get(name)
    if v is None or not v.strip():
        raise Rejected(401, f"missing {name} header")
    return v.strip()


def parse_timestamp(raw: str) -> float:
    """Unix seconds (integer or decimal) or ISO-8601 with a zone -> Unix seconds."""
    raw = raw.strip()
    try:
        if _UNIX.fullmatch(raw):
            ts = float(raw)
        else:
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
            if dt.tzinfo is None:
                raise ValueError("no zone")
            ts = dt.timestamp()
    except (ValueError, OverflowError, OSError):
        raise Rejected(401, "the webhook timestamp is neither Unix seconds nor ISO-8601 with a zone") from None
    if not math.isfinite(ts):
        raise Rejected(401, "the webhook timestamp is not a number")
    return ts


def _window(ts: float, now: float) -> None:
    if ts < now - WINDOW_PAST or ts > now + WINDOW_FUTURE:
        raise Rejected(401, f"the webhook timestamp is outside the window ({int(WINDOW_PAST)} s past, "
                            f"{int(WINDOW_FUTURE)} s future)")


def _event_of(body: bytes):
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict):
        ev = doc.get("type") or doc.get("event")
        if isinstance(ev, dict):
            ev = ev.get("type")
        return ev if isinstance(ev, str) else None
    return None


def _generic(secret, headers, body, now):
    sig = _need(headers, "x-webhook-signature")
    ts = parse_timestamp(_need(headers, "x-webhook-timestamp"))
    delivery = _need(headers, "x-webhook-delivery-id")
    if sig.lower().startswith("sha256="):
        sig = sig[7:]
    if not _same(_hmac_hex(secret.encode(), body), sig):
        raise Rejected(401, "bad webhook signature")
    _window(ts, now)
    return delivery, headers.get("x-webhook-event") or _event_of(body), NONCE_TTL


def _github(secret, headers, body, now):
    sig = _need(headers, "x-hub-signature-256")
    delivery = _need(headers, "x-github-delivery")
    if not sig.lower().startswith("sha256=") or not _same(_hmac_hex(secret.encode(), body), sig[7:]):
        raise Rejected(401, "bad webhook signature")
    return delivery, headers.get("x-github-event"), NONCE_TTL_UNTIMED


def _stripe(secret, headers, body, now):
    raw = _need(headers, "stripe-signature")
    t, v1 = None, []
    for part in raw.split(","):
        k, _, v = part.strip().partition("=")
        if k == "t":
            t = v
        elif k == "v1":
            v1.append(v)
    if not t or not v1:
        raise Rejected(401, "Stripe-Signature needs t= and v1=")
    ts = parse_timestamp(t)
    expected = _hmac_hex(secret.encode(), t.encode("latin-1", "replace") + b"." + body)
    match = [s for s in v1 if _same(expected, s)]
    if not match:
        raise Rejected(401, "bad webhook signature")
    _window(ts, now)
    return f"stripe:{t}:{expected}", _event_of(body), NONCE_TTL


def _slack(secret, headers, body, now):
    sig = _need(headers, "x-slack-signature")
    t = _need(headers, "x-slack-request-timestamp")
    ts = parse_timestamp(t)
    expected = _hmac_hex(secret.encode(), b"v0:" + t.encode("latin-1", "replace") + b":" + body)
    if not sig.startswith("v0=") or not _same(expected, sig[3:]):
        raise Rejected(401, "bad webhook signature")
    _window(ts, now)
    return f"slack:{t}:{expected}", _event_of(body), NONCE_TTL


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64)."""
    raw = secret[6:] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(503, "the webhook secret is not a Standard Webhooks secret (whsec_ + base64)") from None


def _standard(secret, headers, body, now):
    wid = _need(headers, "webhook-id")
    t = _need(headers, "webhook-timestamp")
    sigs = _need(headers, "webhook-signature")
    ts = parse_timestamp(t)
    msg = wid.encode("latin-1", "replace") + b"." + t.encode("latin-1", "replace") + b"." + body
    expected = base64.b64encode(hmac.new(standard_key(secret), msg, hashlib.sha256).digest())
    ok = False
    for item in sigs.split():
        version, _, sig = item.partition(",")
        # every candidate is compared (constant time per candidate, no early exit on a match)
        ok |= version == "v1" and hmac.compare_digest(expected, sig.encode("latin-1", "replace"))
    if not ok:
        raise Rejected(401, "bad webhook signature")
    _window(ts, now)
    return wid, _event_of(body), NONCE_TTL


SCHEMES = {"generic": _generic, "github": _github, "stripe": _stripe, "slack": _slack, "standard": _standard}


def verify(provider: str, secret: str, headers, body: bytes, now: float | None = None):
    """(nonce, event or None, nonce ttl) of a genuine delivery; ``Rejected`` otherwise.
    ``headers`` is a case-insensitive mapping (lower-case names)."""
    return SCHEMES[provider](secret, headers, body, time.time() if now is None else now)


def nonce_key(source: str, nonce: str) -> str:
    """One bounded key per (source, delivery), whatever the sender put in its id."""
    return source + ":" + hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).hexdigest()[:40]


async def read_body(request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise Rejected(413, f"the webhook body is over {limit} bytes")
        except ValueError:
            raise Rejected(400, "bad Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"the webhook body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _count(rt, source: str, status: int) -> None:
    rt.webhook_stats[f"{source}:{status}"] += 1


async def handle(rt, source: str, request) -> tuple[int, dict]:
    """The whole webhook exchange: (status, JSON body)."""
    src = rt.fabric.sources.get(source)
    cfg = getattr(getattr(src, "config", None), "webhook", None)
    if cfg is None:
        return 404, {"error": f"no webhook is configured for source {source!r}"}
    secret = os.environ.get(cfg.secret_env)
    if not secret:
        return 503, {"error": f"the webhook secret ({cfg.secret_env}) is not set on this server"}
    try:
        body = await read_body(request)
        nonce, event, ttl = verify(cfg.provider, secret, request.headers, body)
    except Rejected as r:
        _count(rt, source, r.status)
        return r.status, {"error": r.message}
    key = nonce_key(source, nonce)
    try:
        fresh = await rt.nonces.claim(key, ttl)
    except Exception:  # noqa: BLE001 - cannot prove it is new: let the sender retry
        return 503, {"error": "the replay check is unavailable; retry later"}
    if not fresh:
        _count(rt, source, 409)
        return 409, {"error": "delivery already received (replay)"}
    if cfg.events and event not in cfg.events:
        _count(rt, source, 202)
        return 202, {"status": "ignored", "event": event}
    try:
        outcome = await rt.webhook_refresh(source)
    except Exception:  # noqa: BLE001 - reported as a failed refresh
        outcome = "failed"
    if outcome != "ok":
        try:
            await rt.nonces.unclaim(key)          # the sender's retry must count
        except Exception:  # noqa: BLE001 - the nonce expires by itself
            pass
        status = 503 if outcome == "no_leader" else 500
        _count(rt, source, status)
        return status, {"error": "no leader answered; retry later" if status == 503 else
                        f"the refresh of source {source!r} failed; retry later"}
    _count(rt, source, 202)
    return 202, {"status": "accepted", "event": event}
