"""Coordination through Redis (``db.start(coordination="redis")``): the leader lease, the fencing
epoch, the shared product cache, webhook nonces and the queue of requests forwarded to the leader.

Every check-and-change is one Lua script, so it is atomic in Redis: the lease is taken with
``SET NX PX`` and the epoch bumped with ``INCR`` in the same script; renewal and release
compare the holder *and* the epoch before touching the key; a product write lands only while
its (holder, epoch) still holds the lease and no newer epoch has written the product.  A
leader paused past its lease (GC, SIGSTOP, a swapped-out VM) and resumed therefore writes
nothing, whatever its local state believes.  Followers learn of new product versions from a
pub/sub message sent by the same script (low latency) and from a version check on every tick
(pub/sub is fire-and-forget: a message missed while reconnecting is caught there).
"""

from __future__ import annotations

import asyncio
import json
import uuid

#: KEYS lease, epoch; ARGV holder, lease ms -> {the new epoch, 0}, or {0, ms left of the current
#: lease, the current epoch}
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {redis.call('INCR', KEYS[2]), 0, 0}
end
local t = redis.call('PTTL', KEYS[1])
if t < 1 then t = 1 end
return {0, t, tonumber(redis.call('GET', KEYS[2]) or '0')}
"""
#: KEYS lease, epoch; ARGV holder, lease ms, epoch -> 1 renewed, 0 not ours any more
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
#: KEYS lease, epoch; ARGV holder, epoch
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
#: KEYS lease, epoch, product hash, versions hash; ARGV holder, epoch, product, body, cached_at,
#: channel -> the product's new version, or 0 (refused: not the lease holder of this epoch, or a
#: newer epoch wrote the product)
_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[3], 'epoch') or '0')
if cur > tonumber(ARGV[2]) then return 0 end
local v = redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
redis.call('HSET', KEYS[3], 'epoch', ARGV[2], 'body', ARGV[4], 'at', ARGV[5], 'ver', v)
redis.call('PUBLISH', ARGV[6], ARGV[3])
return v
"""
#: how long a reply to a forwarded request is kept for the asking worker
REPLY_TTL_MS = 60_000


class RedisBackend:
    """One fabric's coordination keys under ``df:fabric:<key>:``."""

    name = "redis"

    def __init__(self, url: str, key: str):
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            from ..errors import ConfigurationError
            raise ConfigurationError("coordination='redis' needs redis-py: pip install 'dataflow-native[cache]'") from exc
        self.url = url
        base = f"df:fabric:{key}:"
        self.k_lease, self.k_epoch, self.k_vers = base + "lease", base + "epoch", base + "vers"
        self.k_prod, self.k_nonce, self.k_req, self.k_reply = base + "p:", base + "nonce:", base + "req", base + "reply:"
        self.channel = base + "chan"
        self._r = self._rb = self._ps = None
        self._scripts: dict = {}

    async def setup(self) -> None:
        import redis.asyncio as aredis

        # short timeouts for the lease calls (a slow Redis must not outlive the lease); blocking
        # pops get their own client, whose socket timeout exceeds their block time
        self._r = aredis.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._rb = aredis.Redis.from_url(self.url, socket_timeout=15.0, socket_connect_timeout=2.0)
        await self._r.ping()
        for name, text in (("acquire", _ACQUIRE), ("renew", _RENEW), ("release", _RELEASE), ("write", _WRITE)):
            self._scripts[name] = self._r.register_script(text)
        self._ps = self._rb.pubsub()
        await self._ps.subscribe(self.channel)

    async def close(self) -> None:
        for c in (self._ps,):
            if c is not None:
                try:
                    await c.aclose()
                except Exception:  # noqa: BLE001 - closing after Redis went away
                    pass
        for c in (self._r, self._rb):
            if c is not None:
                try:
                    await c.aclose()
                except Exception:  # noqa: BLE001
                    pass
        self._r = self._rb = self._ps = None

    # -- the lease -----------------------------------------------------------------------------
    async def acquire(self, holder: str, lease: float) -> tuple[int | None, float, int]:
        """(epoch, 0, epoch) when this holder took the lease, else (None, seconds the current
        lease has left, the current holder's epoch)."""
        won, left, current = await self._scripts["acquire"](keys=[self.k_lease, self.k_epoch],
                                                            args=[holder, int(lease * 1000)])
        return (int(won), 0.0, int(won)) if won else (None, int(left) / 1000, int(current))

    async def renew(self, holder: str, epoch: int, lease: float) -> bool:
        return bool(await self._scripts["renew"](keys=[self.k_lease, self.k_epoch],
                                                 args=[holder, int(lease * 1000), str(epoch)]))

    async def release(self, holder: str, epoch: int) -> None:
        await self._scripts["release"](keys=[self.k_lease, self.k_epoch], args=[holder, str(epoch)])

    # -- the shared product cache ----------------------------------------------------------------
    async def write(self, holder: str, epoch: int, product: str, body: bytes, cached_at: float) -> int:
        """The product's new version, or 0 when the write was refused (fenced)."""
        return int(await self._scripts["write"](
            keys=[self.k_lease, self.k_epoch, self.k_prod + product, self.k_vers],
            args=[holder, str(epoch), product, body, repr(cached_at), self.channel]))

    async def versions(self) -> dict:
        raw = await self._r.hgetall(self.k_vers)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def read(self, product: str):
        """(version, epoch, body, cached_at) or None."""
        ver, epoch, body, at = await self._r.hmget(self.k_prod + product, "ver", "epoch", "body", "at")
        if body is None:
            return None
        return int(ver), int(epoch), body, float(at)

    async def wait_change(self, timeout: float) -> None:
        """Return when a product was written (a pub/sub message) or after ``timeout``."""
        try:
            msg = await self._ps.get_message(ignore_subscribe_messages=True, timeout=timeout)
        except Exception:  # noqa: BLE001 - the version check that follows still runs
            await asyncio.sleep(timeout)
            return
        if msg is None:
            return
        while await self._ps.get_message(ignore_subscribe_messages=True, timeout=0) is not None:
            pass  # a burst of writes costs one version check

    # -- webhook nonces --------------------------------------------------------------------------
    async def claim(self, nonce: str, ttl: float) -> bool:
        return bool(await self._r.set(self.k_nonce + nonce, b"1", nx=True, px=int(ttl * 1000)))

    async def unclaim(self, nonce: str) -> None:
        await self._r.delete(self.k_nonce + nonce)

    # -- requests forwarded to the leader ---------------------------------------------------------
    async def push(self, kind: str, payload: dict) -> str:
        rid = uuid.uuid4().hex
        await self._r.rpush(self.k_req, json.dumps({"id": rid, "kind": kind, "payload": payload}))
        return rid

    async def outcome(self, rid: str, timeout: float) -> str | None:
        """The leader's answer to request ``rid`` ("ok" / "failed"), or None after ``timeout``."""
        got = await self._rb.blpop([self.k_reply + rid], timeout=max(timeout, 0.01))
        if got is None:
            return None
        await self._r.delete(self.k_reply + rid)
        return got[1].decode()

    async def take(self, timeout: float) -> list:
        """Requests for the leader: [(id, kind, payload)]; waits up to ``timeout`` for the first."""
        got = await self._rb.blpop([self.k_req], timeout=max(timeout, 0.01))
        if got is None:
            return []
        items = [got[1]] + list(await self._r.lpop(self.k_req, 100) or [])
        out = []
        for raw in items:
            try:
                d = json.loads(raw)
                out.append((d["id"], d["kind"], d["payload"]))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    async def answer(self, rid: str, outcome: str) -> None:
        async with self._r.pipeline(transaction=True) as p:
            p.rpush(self.k_reply + rid, outcome)
            p.pexpire(self.k_reply + rid, REPLY_TTL_MS)
            await p.execute()

    async def purge(self) -> None:
        """Nothing to do: every key here expires by itself."""
