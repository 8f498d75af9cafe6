"""Several ``dataflow serve`` worker processes sharing a coordination backend, for the multi-worker
tests and ``benchmarks/bench_fabric_workers.py``: start them, read their ``_health``, find the
leader, send signals, stop them.  Each worker serves ``fabric_worker_app`` on its own loopback
port (so a test can address one worker), with a short lease."""

from __future__ import annotations

import hashlib
import hmac
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REDIS_URL = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("DATAFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "worker-test-secret"


class Worker:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc, self.port = proc, port
        self.pid = proc.pid
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=5.0)
        self.stopped = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self) -> dict | None:
        try:
            return self.client.get("/fabric/_health").json()
        except (httpx.HTTPError, ValueError):
            return None

    def get(self, path: str):
        return self.client.get(path)

    def signal(self, sig) -> None:
        os.kill(self.pid, sig)
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False


class Cluster:
    """``n`` workers on ``backend`` ("redis"/"postgresql"), polling ``api_url``."""

    def __init__(self, backend: str, n: int, api_url: str, tmp, *, lease=1.0, renew=0.3, poll=0.2, slow=0.0):
        self.backend, self.n, self.api_url, self.tmp = backend, n, api_url, str(tmp)
        self.lease, self.renew, self.poll, self.slow = lease, renew, poll, slow
        self.key = "t" + uuid.uuid4().hex[:12]
        self.workers: list[Worker] = []
        #: pid -> exit code, filled by close() for the workers it stopped with SIGTERM
        self.exit_codes: dict = {}

    def _env(self, i: int) -> dict:
        db_url = PG_URL if self.backend == "postgresql" else f"sqlite:///{self.tmp}/w{i}.db"
        return {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, HERE]), "FABRIC_DB_URL": db_url,
                "FABRIC_REDIS_URL": REDIS_URL, "FABRIC_API_URL": self.api_url, "FABRIC_POLL": str(self.poll),
                "FABRIC_HOOK_SECRET": SECRET, "FABRIC_SLOW": str(self.slow)}

    def _launch(self, i: int) -> subprocess.Popen:
        argv = [sys.executable, "-m", "dataflow", "serve", "--module", "fabric_worker_app", "--port", "0",
                "--coordination", self.backend, "--lease", str(self.lease), "--renew", str(self.renew),
                "--coordination-key", self.key]
        return subprocess.Popen(argv, cwd=self.tmp, env=self._env(i), stdout=subprocess.PIPE,
                                stderr=open(os.path.join(self.tmp, f"w{i}.err"), "w"), text=True)

    def _ready(self, procs, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for p in procs:
            i = len(self.workers)
            line = ""
            while not line:
                left = deadline - time.monotonic()
                if left <= 0 or p.poll() is not None:
                    self.workers += [Worker(q, 0) for q in procs[procs.index(p):]]
                    self.close()
                    raise AssertionError(f"worker {i} did not start: {self.stderr(i)}")
                ready, _, _ = select.select([p.stdout], [], [], min(left, 1.0))
                if ready:
                    line = p.stdout.readline()
            port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
            self.workers.append(Worker(p, port))

    def start(self, timeout: float = 90.0) -> "Cluster":
        self._ready([self._launch(i) for i in range(self.n)], timeout)
        return self

    def spawn(self, timeout: float = 90.0) -> Worker:
        """One more worker (a replacement after a kill)."""
        self._ready([self._launch(len(self.workers))], timeout)
        return self.workers[-1]

    def stderr(self, i: int) -> str:
        try:
            with open(os.path.join(self.tmp, f"w{i}.err")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def running(self) -> list[Worker]:
        return [w for w in self.workers if w.alive and not w.stopped]

    def leaders(self, among=None) -> list[tuple[Worker, dict]]:
        out = []
        for w in among if among is not None else self.running():
            h = w.health()
            if h is not None and h["leader"]:
                out.append((w, h))
        return out

    def wait_leader(self, among=None, timeout: float = 20.0, step: float = 0.01) -> tuple[Worker, dict, float]:
        """The first of ``among`` to report itself leader, its health and when (monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.leaders(among)
            if found:
                return found[0][0], found[0][1], time.monotonic()
            time.sleep(step)
        raise AssertionError(f"no leader among {[w.pid for w in among or self.running()]} in {timeout} s")

    def close(self) -> None:
        termed = []
        for w in self.workers:
            if w.alive:
                if w.stopped:
                    w.signal(signal.SIGCONT)
                w.proc.send_signal(signal.SIGTERM)
                termed.append(w)
        for w in self.workers:
            try:
                w.proc.wait(15)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            if w in termed:
                self.exit_codes[w.pid] = w.proc.returncode
        if self.backend == "postgresql":
            purge_pg(self.key)
            if w.proc.stdout is not None:
                w.proc.stdout.close()
            w.client.close()


def purge_pg(key: str, prefix: str = "dataflow_fabric") -> None:
    """Remove one coordination key's rows from the PostgreSQL coordination tables."""
    import asyncio

    from dataflow import DataFlow

    async def run():
        db = DataFlow(PG_URL)
        try:
            for table in ("lease", "cache", "nonce", "request"):
                await db.execute_raw('DELETE FROM "' + prefix + "_" + table + '" WHERE name = $1', key)
        finally:
            await db.close_async()

    asyncio.run(run())


def nodelay(api):
    """The loopback API server writes headers and body separately; with Nagle on, the body waits
    for the client's delayed ACK (40 ms), which would dominate every latency measured here."""
    api.httpd.RequestHandlerClass.disable_nagle_algorithm = True
    return api


def generic_headers(body: bytes, delivery: str, secret: str = SECRET, ts: float | None = None) -> dict:
    """Headers of a genuine generic-scheme delivery."""
    stamp = datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).isoformat()
    return {"X-Webhook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "X-Webhook-Timestamp": stamp, "X-Webhook-Delivery-Id": delivery, "Content-Type": "application/json"}


def wait_until(pred, timeout: float = 20.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(step)
