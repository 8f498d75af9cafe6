"""Counterparts for fabric tests, all on loopback: a small JSON API with ETags (a thread running
http.server, so it is independent of the fabric's own server), and an SSE reader."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ApiServer:
    """``routes[path] = value`` serves JSON with an ETag (a version counter) and answers 304 to a
    matching If-None-Match.  ``fail_next`` 503s, ``delay`` seconds per request; ``statuses``
    counts answers, ``auth`` keeps the Authorization headers seen."""

    def __init__(self):
        self.routes: dict = {"/": {"ok": True}}
        self.versions: Counter = Counter()
        self.statuses: Counter = Counter()
        self.auth: list = []
        self.fail_next = 0
        self.delay = 0.0
        self.use_last_modified = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                server.auth.append(self.headers.get("Authorization"))
                if server.delay:
                    time.sleep(server.delay)
                if server.fail_next > 0:
                    server.fail_next -= 1
                    return self._send(503, b'{"error":"down"}')
                if path not in server.routes:
                    return self._send(404, b'{"error":"no"}')
                tag = f'"v{server.versions[path]}"'
                lm = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(1_700_000_000 + server.versions[path]))
                if server.use_last_modified:
                    if self.headers.get("If-Modified-Since") == lm:
                        return self._send(304, b"")
                    return self._send(200, json.dumps(server.routes[path]).encode(), {"Last-Modified": lm})
                if self.headers.get("If-None-Match") == tag:
                    return self._send(304, b"")
                self._send(200, json.dumps(server.routes[path]).encode(), {"ETag": tag})

            def _send(self, status, body, headers=None):
                server.statuses[status] += 1
                self.send_response(status)
                if status != 304:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="test-api", daemon=True)

    def set(self, path, value):
        self.routes[path] = value
        self.versions[path] += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


async def sse_events(client, url, n, headers=None, timeout=10.0, ready=None):
    """Read ``n`` events from an SSE endpoint: [{"id", "event", "data"}]; ``ready`` (an
    asyncio.Event) is set once the stream is open."""
    out, cur = [], {}
    async with asyncio.timeout(timeout):
        async with client.stream("GET", url, headers=headers or {}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if ready is not None and line.startswith(": connected"):
                    ready.set()
                if line == "":
                    if "data" in cur:
                        cur["data"] = json.loads(cur["data"])
                        out.append(cur)
                        if len(out) >= n:
                            return out
                    cur = {}
                elif not line.startswith(":"):
                    k, _, v = line.partition(": ")
                    cur[k] = v
    return out


async def until(pred, timeout=5.0, step=0.01):
    """Wait until ``pred()`` is true (awaiting it if it returns an awaitable)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


class RedirectServer:
    """A loopback HTTP server for redirect and pinning tests: ``/hop?to=URL`` answers 302 to
    ``URL``, ``/loop`` redirects to itself, anything else answers ``{"path", "host"}``.
    ``hosts`` keeps the Host header of every request."""

    def __init__(self):
        from urllib.parse import parse_qs, urlsplit
        self.hosts: list = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                server.hosts.append(self.headers.get("Host"))
                if parts.path == "/hop":
                    return self._send(302, b"", {"Location": parse_qs(parts.query)["to"][0]})
                if parts.path == "/loop":
                    return self._send(302, b"", {"Location": "/loop"})
                body = json.dumps({"path": parts.path, "host": self.headers.get("Host")}).encode()
                self._send(200, body, {"Content-Type": "application/json"})

            def _send(self, status, body, headers):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="test-redirects", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
