"""The data fabric over HTTP, against bare Starlette on the same uvicorn (same run):

- serving a cached materialized product vs a bare Starlette endpoint returning the same JSON,
  both routes of one app on one uvicorn in a server subprocess; the load comes from this process
  over keep-alive connections (a minimal HTTP/1.1 client, so the client is not the bottleneck);
  rounds alternate.  Target: at least 0.8x the bare endpoint's requests/s (time per request at
  most 1.25x).
- write through ``db.express`` -> dependent materialized product refreshed (debounce 0) -> its
  SSE event read by a client: p50 and p99 over a few hundred writes (SQLite file).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.timing import failed, row

G_SERVE = "fabric: serve a cached product over HTTP (uvicorn, keep-alive)"
G_SSE = "fabric: write -> product refreshed -> SSE event"
BARE = "bare Starlette endpoint, same JSON, same uvicorn"
ROWS = 20
FIELDS = ["id", "name", "price", "qty"]


async def _server(db_path: str) -> None:
    """The server subprocess: one Starlette app with the bare route and the fabric mounted."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from dataflow import DataFlow
    from dataflow.fabric.server import EmbeddedServer

    db = DataFlow(f"sqlite:///{db_path}")

    @db.model
    class BenchItem:
        name: str
        price: float = 0.0
        qty: int = 0

    await db.initialize()
    await db.express.bulk_create("BenchItem", [{"name": f"item {i}", "price": i * 1.5, "qty": i} for i in range(ROWS)])

    @db.product("items", depends_on=["BenchItem"])
    async def items(ctx):
        return await ctx.express.list("BenchItem", limit=ROWS, fields=FIELDS)

    value = await db.express.list("BenchItem", limit=ROWS, fields=FIELDS)

    async def bare(request):
        return JSONResponse({"data": value})

    rt = await db.start(serve=False)
    while "items" not in rt.entries:
        await asyncio.sleep(0.01)
    app = Starlette(routes=[Route("/bare", bare), Mount("", app=db.fabric_app())])
    server = EmbeddedServer(app, "127.0.0.1", 0)
    await server.start()
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await server.stop()
    await db.stop()
    await db.close_async()


async def _hammer(port: int, path: str, seconds: float, conns: int) -> tuple[int, bytes]:
    """Requests answered in ``seconds`` over ``conns`` keep-alive connections; and one body."""
    req = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    deadline = time.perf_counter() + seconds
    count = 0
    sample = b""

    async def one():
        nonlocal count, sample
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                status = head[9:12]
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                if status != b"200":
                    raise RuntimeError(f"{path}: HTTP {status.decode()}")
                sample = body
                count += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    return count, sample


async def _throughput(quick: bool) -> list[dict]:
    tmp = tempfile.mkdtemp(prefix="bench_fabric_")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_fabric", "--serve", os.path.join(tmp, "b.db")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        port = int(proc.stdout.readline())
        seconds, rounds, conns = (0.5, 4, 8) if quick else (1.5, 8, 16)
        a, b = await _hammer(port, "/bare", 0.3, conns), await _hammer(port, "/fabric/items", 0.3, conns)
        import json
        assert json.loads(a[1]) == json.loads(b[1]), "the two endpoints must return the same JSON"
        rates: dict = {"bare": [], "fabric": []}
        for r in range(rounds):
            order = [("bare", "/bare"), ("fabric", "/fabric/items")]
            if r % 2:
                order.reverse()
            for name, path in order:
                n, _ = await _hammer(port, path, seconds, conns)
                rates[name].append(n / seconds)
    finally:
        proc.stdin.close()
        proc.wait(30)
    bare, fab = statistics.median(rates["bare"]), statistics.median(rates["fabric"])
    note = f"{fab:,.0f} req/s vs {bare:,.0f} req/s ({fab / bare:.2f}x); {ROWS}-row JSON body, {conns} connections"
    return [row(G_SERVE, BARE, 1 / bare, note=f"{bare:,.0f} req/s"),
            row(G_SERVE, "GET /fabric/items (materialized, cached)", 1 / fab, BARE, note, target_ratio=1.25)]


async def _sse_latency(writes: int) -> list[dict]:
    import httpx

    from dataflow import DataFlow

    tmp = tempfile.mkdtemp(prefix="bench_fabric_")
    db = DataFlow(f"sqlite:///{tmp}/sse.db")

    @db.model
    class BenchEvent:
        n: int = 0

    @db.product("event_count", depends_on=["BenchEvent"], write_debounce=0)
    async def event_count(ctx):
        return await ctx.express.count("BenchEvent")

    await db.initialize()
    rt = await db.start(port=0)
    seen: asyncio.Queue = asyncio.Queue()
    ready = asyncio.Event()

    async def reader(client):
        async with client.stream("GET", "/fabric/_events") as r:
            async for line in r.aiter_lines():
                if line.startswith(": connected"):
                    ready.set()
                elif line.startswith("data: "):
                    seen.put_nowait(time.perf_counter())

    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}", timeout=None) as client:
            while "event_count" not in rt.entries:
                await asyncio.sleep(0.01)
            task = asyncio.create_task(reader(client))
            await ready.wait()
            lat = []
            for i in range(writes + 20):
                t0 = time.perf_counter()
                await db.express.create("BenchEvent", {"n": i})
                t1 = await asyncio.wait_for(seen.get(), 10)
                if i >= 20:  # warm-up
                    lat.append(t1 - t0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert rt.entries["event_count"].value == writes + 20
    finally:
        await db.stop()
        await db.close_async()
    lat.sort()
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    note = f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms over {writes} writes (SQLite file, debounce 0)"
    return [row(G_SSE, "express.create -> SSE product_refreshed event, p50", p50, note=note),
            row(G_SSE, "express.create -> SSE product_refreshed event, p99", p99, note=note)]


def run(quick: bool) -> list[dict]:
    out: list[dict] = []
    try:
        out += asyncio.run(_throughput(quick))
    except Exception as exc:
        out.append(failed(G_SERVE, "GET /fabric/items (materialized, cached)", exc, BARE))
    try:
        out += asyncio.run(_sse_latency(200 if quick else 1000))
    except Exception as exc:
        out.append(failed(G_SSE, "express.create -> SSE product_refreshed event, p50", exc))
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        asyncio.run(_server(sys.argv[2]))
    else:
        for r in run(quick="--quick" in sys.argv):
            print(r)
