"""The fabric across real worker processes (``dataflow serve`` subprocesses) sharing Redis or
PostgreSQL: exactly one polls; followers serve the leader's values; SIGKILL of the leader hands
leadership to another worker; a leader SIGSTOPped past its lease and SIGCONTed writes nothing
(no duplicate refresh, no write of the old epoch lands); 100 concurrent deliveries of one
webhook id over two workers are accepted once.  Plus the backends' fences on their own."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from urllib.parse import urlsplit

import pytest

pytest.importorskip("httpx")
pytest.importorskip("redis")

import httpx  # noqa: E402

from dataflow import DataFlow  # noqa: E402
from dataflow.errors import ConfigurationError  # noqa: E402

from .fabric_helpers import ApiServer  # noqa: E402
from .fabric_workers import PG_URL, REDIS_URL, Cluster, generic_headers, nodelay, wait_until  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"
LEASE, RENEW = 1.0, 0.3


def _need(url: str, default_port: int) -> None:
    u = urlsplit(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), timeout=1):
            return
    except OSError:
        if IN_CI:
            pytest.fail(f"{url} not reachable (CI=true: a missing server is a failure)")
        pytest.skip(f"{url} not reachable")


@pytest.fixture(params=["redis", "postgresql"])
def backend(request):
    _need(REDIS_URL, 6379)
    if request.param == "postgresql":
        _need(PG_URL, 5432)
    return request.param


def _polls(h) -> int:
    return h["sources"]["api"]["stats"]["polls"]


def _items(w):
    r = w.get("/fabric/items")
    return r.json()["data"] if r.status_code == 200 else None


async def _deliver_many(workers, body: bytes, delivery: str, n: int) -> list[int]:
    headers = generic_headers(body, delivery)
    clients = [httpx.AsyncClient(base_url=w.url, timeout=30) for w in workers]
    try:
        rs = await asyncio.gather(*(clients[i % len(clients)].post("/fabric/webhook/api", content=body,
                                                                    headers=headers) for i in range(n)))
    finally:
        for c in clients:
            await c.aclose()
    return [r.status_code for r in rs]


def test_workers_elect_fail_over_and_fence(backend, tmp_path):
    with nodelay(ApiServer()) as api:
        api.set("/items", [1])
        with Cluster(backend, 3, api.url, tmp_path, lease=LEASE, renew=RENEW, slow=1.0) as cluster:
            # -- one leader; every worker serves the leader's value ------------------------------
            leader, h, _ = cluster.wait_leader()
            wait_until(lambda: all(_items(w) is not None for w in cluster.workers))
            assert len(cluster.leaders()) == 1
            for _attempt in range(3):   # a window in which leadership changed proves nothing: retry
                before = {w.pid: cluster.workers[i].health() for i, w in enumerate(cluster.workers)}
                time.sleep(6 * 0.2)
                after = {w.pid: w.health() for w in cluster.workers}
                if len({x["epoch"] for x in (*before.values(), *after.values())}) == 1:
                    break
            polled = {pid: _polls(after[pid]) - _polls(before[pid]) for pid in after}
            leader = next(w for w in cluster.workers if after[w.pid]["leader"])
            h = after[leader.pid]
            assert [pid for pid, n in polled.items() if n > 0] == [leader.pid], polled
            assert polled[leader.pid] >= 2
            api.set("/items", [1, 2])
            wait_until(lambda: all((_items(w) or {}).get("items") == [1, 2] for w in cluster.workers))
            assert {_items(w)["by"] for w in cluster.workers} == {leader.pid}

            # -- a webhook delivered 100 times at once over two workers: accepted once --------------
            follower = next(w for w in cluster.workers if w is not leader)
            codes = asyncio.run(_deliver_many([leader, follower], b'{"changed": true}', "dup-1", 100))
            assert codes.count(202) == 1 and codes.count(409) == 99, sorted(set(codes))

            # -- SIGKILL the leader: another takes over ---------------------------------------------
            rest = [w for w in cluster.workers if w is not leader]
            epoch0 = h["epoch"]
            t_kill = time.monotonic()
            leader.signal(signal.SIGKILL)
            leader.proc.wait(10)
            second, h2, t_new = cluster.wait_leader(rest)
            gap = t_new - t_kill
            assert h2["epoch"] > epoch0
            assert gap < LEASE + 10 * RENEW + 2.0, gap    # lease rest + one tick, generous for a busy box

            # -- SIGSTOP the new leader in the middle of a refresh, past its lease; SIGCONT: its ------
            # -- refresh finishes but nothing of its epoch lands, and it computes nothing more --------
            third = next(w for w in rest if w is not second)
            wait_until(lambda: (_items(third) or {}).get("by") == second.pid)
            c0 = second.health()["coordination"]["computations"]
            api.set("/items", [1, 2, 3])               # the refresh of three items is slow
            s0 = wait_until(lambda: (lambda x: x if x["computations"] > c0 else None)(
                second.health()["coordination"]), step=0.005)
            second.signal(signal.SIGSTOP)
            t_stop = time.monotonic()
            _, h3, _ = cluster.wait_leader([third])
            assert h3["epoch"] > h2["epoch"]
            wait_until(lambda: (_items(third) or {}).get("items") == [1, 2, 3])
            time.sleep(max(0.0, 2 * LEASE - (time.monotonic() - t_stop)))
            second.signal(signal.SIGCONT)
            wait_until(lambda: (lambda x: x is not None and not x["leader"] and x["epoch"] >= h3["epoch"])(
                second.health()))
            wait_until(lambda: (_items(second) or {}).get("items") == [1, 2, 3])
            time.sleep(4 * RENEW)                      # any loop of the old leader has run by now
            s1 = second.health()["coordination"]
            assert s1.get("writes", 0) == s0.get("writes", 0), (s0, s1)          # no old-epoch write landed
            assert s1["computations"] == s0["computations"], (s0, s1)            # no duplicate refresh
            assert s1.get("writes_skipped", 0) + s1.get("writes_refused", 0) >= 1, s1   # the paused one
            assert (_items(second) or {})["by"] == third.pid
            assert [w.pid for w, _ in cluster.leaders()] == [third.pid]
        assert cluster.exit_codes == {second.pid: 0, third.pid: 0}, (cluster.exit_codes, cluster.stderr(0))


def test_failed_webhook_refresh_releases_the_nonce(backend, tmp_path):
    """Forwarded by a follower: the leader's refresh fails -> 5xx and the retry is accepted."""
    with nodelay(ApiServer()) as api:
        api.set("/items", [1])
        with Cluster(backend, 2, api.url, tmp_path, lease=LEASE, renew=RENEW, poll=30) as cluster:
            leader, _, _ = cluster.wait_leader()
            follower = next(w for w in cluster.workers if w is not leader)
            wait_until(lambda: _items(follower) is not None)
            body = b'{"n": 1}'
            api.fail_next = 10**6
            r = follower.client.post("/fabric/webhook/api", content=body, headers=generic_headers(body, "d-7"))
            assert r.status_code == 500, r.text
            api.fail_next = 0
            api.set("/items", [7])
            r = follower.client.post("/fabric/webhook/api", content=body, headers=generic_headers(body, "d-7"))
            assert r.status_code == 202, r.text
            assert _items(leader)["items"] == [7]    # refreshed before the 202,
            assert _items(follower)["items"] == [7]  # and taken by the follower that forwarded it
            r = follower.client.post("/fabric/webhook/api", content=body, headers=generic_headers(body, "d-7"))
            assert r.status_code == 409
        assert set(cluster.exit_codes.values()) == {0}


# -- the fences of each backend, without processes ------------------------------------------------
async def _backend(kind: str, key: str):
    if kind == "redis":
        from dataflow.fabric.coord_redis import RedisBackend
        b, db = RedisBackend(REDIS_URL, key), None
    else:
        from dataflow.fabric.coord_pg import PostgresBackend
        db = DataFlow(PG_URL)
        b = PostgresBackend(db, key, "dataflow_fabric")
    await b.setup()
    return b, db


async def test_backend_fence_and_single_winner(backend):
    import uuid
    key = "f" + uuid.uuid4().hex[:10]
    a, db_a = await _backend(backend, key)
    b, db_b = await _backend(backend, key)
    try:
        e1, _, _ = await a.acquire("A", 0.3)
        assert e1 is not None
        e, left, current = await b.acquire("B", 0.3)
        assert e is None and 0 < left <= 0.3 and current == e1
        assert await a.write("A", e1, "p", b'{"data":1}', time.time()) == 1
        await asyncio.sleep(0.4)                                    # A's lease runs out
        e2, _, _ = await b.acquire("B", 5)
        assert e2 == e1 + 1
        assert not await a.renew("A", e1, 5)                        # compare-and-set: not A's any more
        assert await a.write("A", e1, "p", b'{"data":"old"}', time.time()) == 0   # fenced
        await a.release("A", e1)                                    # no effect on B's lease
        assert await b.renew("B", e2, 5)
        assert await b.write("B", e2, "p", b'{"data":2}', time.time()) == 2
        assert (await a.read("p"))[:3] == (2, e2, b'{"data":2}')
        # many contenders for a free lease: exactly one wins
        await b.release("B", e2)
        won = await asyncio.gather(*(a.acquire(f"C{i}", 5) for i in range(20)))
        assert sum(1 for e, _, _ in won if e is not None) == 1
        # nonces: claimed once, released, claimed again
        assert await a.claim("n1", 5) and not await b.claim("n1", 5)
        await a.unclaim("n1")
        assert await b.claim("n1", 5)
    finally:
        for x, d in ((a, db_a), (b, db_b)):
            await x.close()
        if db_a is not None:
            for table in ("lease", "cache", "nonce", "request"):
                await db_a.execute_raw(f'DELETE FROM "dataflow_fabric_{table}" WHERE name = $1', key)
        for d in (db_a, db_b):
            if d is not None:
                await d.close_async()


async def test_coordination_configuration_errors(tmp_path, monkeypatch):
    from dataflow.fabric.coordination import CoordinationConfig

    monkeypatch.delenv("REDIS_URL", raising=False)
    db = DataFlow(f"sqlite:///{tmp_path}/c.db")

    @db.product("one")
    async def one(ctx):
        return 1

    with pytest.raises(ConfigurationError, match="Redis URL"):
        await db.start(port=0, coordination="redis")
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        await db.start(port=0, coordination="postgresql")
    with pytest.raises(ConfigurationError, match="coordination must be"):
        await db.start(port=0, coordination="zookeeper")
    with pytest.raises(ConfigurationError, match="renew"):
        CoordinationConfig("redis", lease=1, renew=2)
    await db.close_async()


async def test_follower_writes_are_refreshed_by_the_leader(backend, tmp_path):
    """Two fabrics on one database in one process, one leads: a write through the follower is
    forwarded; the leader refreshes; the follower serves the leader's new value.  A forwarded
    webhook comes back with the leader's outcome."""
    import uuid

    from dataflow.fabric.coordination import CoordinationConfig

    from .fabric_helpers import until

    url = PG_URL if backend == "postgresql" else f"sqlite:///{tmp_path}/shared.db"
    table = "t_fabnote_" + uuid.uuid4().hex[:8]
    cfg = CoordinationConfig(backend, lease=LEASE, renew=RENEW, key="w" + uuid.uuid4().hex[:10], url=REDIS_URL)
    dbs = []
    for i in range(2):
        db = DataFlow(url, name=f"fab_pair_{i}_{uuid.uuid4().hex[:6]}")

        @db.model
        class Note:
            __tablename__ = table
            text: str

        @db.product("notes", depends_on=["Note"], write_debounce=0)
        async def notes(ctx):
            return await ctx.express.count("Note")

        @db.product("with_text", mode="parameterized", depends_on=["Note"], ttl=3600)
        async def with_text(ctx, text: str = ""):
            return await ctx.express.count("Note", {"text": text})

        await db.initialize()
        dbs.append(db)
    rts = []
    try:
        rts.append(await dbs[0].start(port=0, coordination=cfg))
        await until(lambda: rts[0].leader, timeout=10)
        rts.append(await dbs[1].start(port=0, coordination=cfg))
        lead, follow = rts
        assert not follow.leader and follow.epoch == lead.epoch
        await until(lambda: "notes" in follow.entries, timeout=10)
        await dbs[1].express.create("Note", {"text": "via the follower"})
        await until(lambda: follow.entries["notes"].value == 1, timeout=10)
        assert lead.entries["notes"].value == 1
        assert follow.coord.stats["forwarded_changed"] == 1 and lead.coord.stats["served_changed"] == 1
        assert follow.computations["notes"] == 0                  # followers never compute it
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{follow.port}") as c:
            h = (await c.get("/fabric/_health")).json()
            assert h["leader"] is False and h["epoch"] == lead.epoch and h["worker_id"] == follow.worker_id
            assert (await c.get("/fabric/notes")).json() == {"data": 1}
        # a parameterized value cached by the follower is dropped when the leader sees a change
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{follow.port}") as c:
            assert (await c.get("/fabric/with_text", params={"text": "x"})).json() == {"data": 0}
            await dbs[0].express.create("Note", {"text": "x"})          # written through the leader
            await until(lambda: follow.entries["notes"].value == 2, timeout=10)
            await until(lambda: len(follow.param_caches["with_text"]) == 0, timeout=10)
            assert (await c.get("/fabric/with_text", params={"text": "x"})).json() == {"data": 1}
        # the leader stops (releasing its lease): the follower leads at once, not after the lease
        t0 = time.monotonic()
        await dbs[0].stop()
        await until(lambda: follow.leader, timeout=10)
        assert time.monotonic() - t0 < LEASE + 3 * RENEW
        await dbs[1].express.create("Note", {"text": "now the leader"})
        await until(lambda: follow.entries["notes"].value == 3, timeout=10)
    finally:
        for db in dbs:
            await db.stop()
        await dbs[0].execute_raw(dbs[0].dialect.drop_table_sql(table, if_exists=True))
        if backend == "postgresql":
            for t in ("lease", "cache", "nonce", "request"):
                await dbs[0].execute_raw(f'DELETE FROM "dataflow_fabric_{t}" WHERE name = $1', cfg.key)
        for db in dbs:
            await db.close_async()


def _serve_workers(tmp_path, api, key_prefix: str):
    """``dataflow serve --workers 2 --coordination redis`` on a free port: (process, base URL)."""
    import re
    import subprocess
    import sys

    from .fabric_workers import HERE, ROOT, SECRET

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, HERE]), "FABRIC_DB_URL": f"sqlite:///{tmp_path}/s.db",
           "FABRIC_REDIS_URL": REDIS_URL, "FABRIC_API_URL": api.url, "FABRIC_HOOK_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "dataflow", "serve", "--module", "fabric_worker_app", "--port",
                             "0", "--workers", "2", "--coordination", "redis", "--lease", "1", "--renew", "0.3",
                             "--coordination-key", key_prefix + os.urandom(6).hex()],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/fabric/", line)
    if not m:
        proc.kill()
        proc.wait()
    assert m, line
    return proc, f"http://127.0.0.1:{m.group(1)}"


def _workers_seen(c, seconds: float) -> dict:
    """worker_id -> leader, from /fabric/_health, until two workers and one leader are seen."""
    seen = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (len(seen) < 2 or sum(seen.values()) != 1):
        try:
            # a new connection each time, so the kernel spreads them over both workers
            h = c.get("/fabric/_health", headers={"Connection": "close"}).json()
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        seen[h["worker_id"]] = h["leader"]
    return seen


def test_serve_workers_share_one_socket(tmp_path):
    """``dataflow serve --workers 2 --coordination redis``: one port, two processes, one leader;
    SIGTERM to the supervisor stops both cleanly."""
    _need(REDIS_URL, 6379)
    with nodelay(ApiServer()) as api:
        api.set("/items", [1])
        proc, url = _serve_workers(tmp_path, api, "s")
        try:
            with httpx.Client(base_url=url) as c:
                seen = _workers_seen(c, 30)
            assert len(seen) == 2 and sum(seen.values()) == 1, seen
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            assert out.count("dataflow fabric stopped") == 2, out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_unreachable_redis_is_a_fabric_error(tmp_path):
    from dataflow.errors import FabricError
    from dataflow.fabric.coordination import CoordinationConfig

    with socket.socket() as s:        # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = DataFlow(f"sqlite:///{tmp_path}/u.db")

    @db.product("one")
    async def one(ctx):
        return 1

    with pytest.raises(FabricError, match="cannot be reached"):
        await db.start(port=0, coordination=CoordinationConfig("redis", url=f"redis://127.0.0.1:{port}/0"))
    assert not db._fabric.runtime.started
    await db.close_async()


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(d))
    return out


def test_serve_replaces_a_worker_that_dies(tmp_path):
    """SIGKILL one of two workers: the supervisor starts another on the same socket, the group
    again has two workers and one leader, and SIGTERM still stops everything cleanly."""
    _need(REDIS_URL, 6379)
    with nodelay(ApiServer()) as api:
        api.set("/items", [1])
        proc, url = _serve_workers(tmp_path, api, "r")
        try:
            with httpx.Client(base_url=url) as c:
                first = _workers_seen(c, 30)
                assert len(first) == 2 and sum(first.values()) == 1, first
                workers = _children(proc.pid)
                assert len(workers) == 2, workers
                victim = sorted(workers)[0]
                os.kill(victim, signal.SIGKILL)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    now = _children(proc.pid)
                    if len(now) == 2 and victim not in now:
                        break
                    time.sleep(0.1)
                assert len(now) == 2 and victim not in now, now
                # the replacement serves, and the pair settles on exactly one leader again
                later = _workers_seen(c, 30)
                assert len(later) == 2 and sum(later.values()) == 1, later
                assert set(later) != set(first)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            assert f"worker pid {victim} exited with -9; started pid" in out, out
            assert out.count("dataflow fabric stopped") == 2, out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_serve_stops_when_workers_keep_dying(tmp_path):
    """Workers that cannot start (a module that does not import) are not restarted for ever:
    after a few replacements the supervisor stops and exits 1, saying why."""
    import subprocess
    import sys

    _need(REDIS_URL, 6379)
    proc = subprocess.run([sys.executable, "-m", "dataflow", "serve", "--module", "no_such_fabric_module_xyz",
                           "--port", "0", "--workers", "2", "--coordination", "redis"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "REDIS_URL": REDIS_URL})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "workers exited within 60 s; stopping" in proc.stderr
    assert proc.stdout.count("started pid") == 4, proc.stdout
