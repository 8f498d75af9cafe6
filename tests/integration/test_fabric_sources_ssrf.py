"""The SSRF guard against a real HTTP server on loopback, never another address: DNS rebinding
(the first, checked answer is the address connected to; a second lookup is never made for that
connection) and redirects re-checked at every hop.

To exercise pinning without leaving loopback, the guard's classifier is told (test hook) that
127.0.0.1 is public; every other loopback or private address stays refused.  Names resolve
through a stub, so a mistake cannot reach a real resolver or a real host."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

from dataflow.errors import SourceError, SourceRefusedError  # noqa: E402
from dataflow.fabric import CircuitBreakerConfig, RestSourceConfig, StalenessPolicy  # noqa: E402
from dataflow.fabric.sources import make_source, ssrf  # noqa: E402

from .fabric_helpers import RedirectServer  # noqa: E402


class RebindingDNS:
    """Answers ``first`` for the first lookup of a name, then ``later`` (DNS rebinding)."""

    def __init__(self, first, later, table=None):
        self.first, self.later, self.table = first, later, table or {}
        self.calls: list = []

    async def __call__(self, host, port):
        self.calls.append(host)
        if host in self.table:
            return self.table[host]
        return self.first if self.calls.count(host) == 1 else self.later


class LoopbackOnly:
    """The real socket layer, behind a safety net: a connection to anything but 127.0.0.1 fails
    the test instead of leaving the machine (should the guard ever let one through)."""

    def __init__(self):
        import httpcore
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, **kw):
        assert host == "127.0.0.1", f"the guard let a connection to {host} through"
        return await self.inner.connect_tcp(host, port, **kw)

    async def sleep(self, seconds):
        await self.inner.sleep(seconds)


def loopback_is_public(ip):
    return None if str(ip) == "127.0.0.1" else ssrf.classify(ip)


@pytest.fixture
def server():
    with RedirectServer() as s:
        yield s


def _source(url, dns):
    src = make_source("api", RestSourceConfig(url=url, retries=0, staleness=StalenessPolicy(on_source_error="error"),
                                              circuit_breaker=CircuitBreakerConfig(failure_threshold=100)))
    src.guard.resolver = dns
    src.guard.classify = loopback_is_public
    src.guard.inner_backend = LoopbackOnly()
    return src


async def test_dns_rebinding_cannot_switch_the_pinned_address(server):
    dns = RebindingDNS(["127.0.0.1"], ["10.0.0.1"])
    src = _source(f"http://api.rebind.test:{server.port}", dns)
    # resolved once, checked, connected to that very address; Host still names the host
    assert await src.fetch("/a") == {"path": "/a", "host": f"api.rebind.test:{server.port}"}
    assert await src.fetch("/b") == {"path": "/b", "host": f"api.rebind.test:{server.port}"}
    assert dns.calls == ["api.rebind.test"]  # the kept-alive connection: no second lookup
    assert src.guard.connections == [("api.rebind.test", "127.0.0.1")]
    # a new connection resolves again and meets the rebound, private answer: refused, nothing sent
    await src.stop()
    before = len(server.hosts)
    with pytest.raises(SourceRefusedError, match="private") as info:
        await src.fetch("/c")
    assert info.value.address == "10.0.0.1" and len(server.hosts) == before
    await src.stop()


async def test_every_redirect_hop_is_rechecked(server):
    port = server.port
    dns = RebindingDNS(["127.0.0.1"], ["127.0.0.1"], table={"private.test": ["192.168.7.7"]})
    src = _source(f"http://api.rebind.test:{port}", dns)
    # a hop to a checked name is followed (and its connection pinned like the first)
    ok = await src.fetch("/hop", {"to": f"http://second.test:{port}/final"})
    assert ok == {"path": "/final", "host": f"second.test:{port}"}
    assert ("second.test", "127.0.0.1") in src.guard.connections

    hops = len(server.hosts)
    for target, words in ((f"http://169.254.169.254:{port}/", "metadata"),
                          (f"http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped"),
                          (f"http://127.0.0.2:{port}/", "loopback"),
                          (f"http://2130706433:{port}/", "non-canonical"),
                          (f"http://private.test:{port}/", "private"),
                          (f"http://metadata.google.internal:{port}/", "metadata"),
                          ("file:///etc/passwd", "only http/https")):
        with pytest.raises(SourceRefusedError, match=words):
            await src.fetch("/hop", {"to": target})
        hops += 1  # the redirecting request reached the server; the refused hop did not
        assert len(server.hosts) == hops, target
    with pytest.raises(SourceError, match="more than 5 redirects"):
        await src.fetch("/loop")
    await src.stop()


async def test_allow_private_turns_the_guard_off_explicitly(server):
    src = make_source("api", RestSourceConfig(url=f"http://127.0.0.1:{server.port}", allow_private=True))
    assert src.guard is None
    assert (await src.fetch("/hop", {"to": f"http://127.0.0.1:{server.port}/x"}))["path"] == "/x"
    await src.stop()
    guarded = make_source("api2", RestSourceConfig(url=f"http://127.0.0.1:{server.port}", retries=0))
    with pytest.raises(SourceRefusedError, match="loopback.*allow_private=True"):
        await guarded.fetch("/x")
    await guarded.stop()


async def test_tls_still_names_the_host_over_the_pinned_connection(tmp_path):
    """HTTPS to a name the stub resolves to 127.0.0.1: the socket goes to the pinned address,
    while SNI, certificate verification and the Host header use the name (a certificate for
    the name only, so verification would fail had the IP been used)."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx
    trustme = pytest.importorskip("trustme")

    ca = trustme.CA()
    cert = ca.issue_cert("api.tls.test")
    seen = {"sni": [], "host": []}
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    server_ctx.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            seen["host"].append(self.headers.get("Host"))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        guard = ssrf.Guard(resolver=RebindingDNS(["127.0.0.1"], ["10.0.0.1"]), classify_fn=loopback_is_public)
        guard.inner_backend = LoopbackOnly()
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        async with httpx.AsyncClient(transport=ssrf.pinned_transport(guard, verify=client_ctx)) as client:
            r = await client.get(f"https://api.tls.test:{port}/x")
            assert r.json() == {"ok": True}
        assert seen["sni"] == ["api.tls.test"] and seen["host"] == [f"api.tls.test:{port}"]
        assert guard.connections == [("api.tls.test", "127.0.0.1")]
        # the same certificate does not verify for the bare address: the name is what was checked
        async with httpx.AsyncClient(verify=client_ctx) as plain:
            with pytest.raises(httpx.ConnectError, match="certificate|hostname|IP address"):
                await plain.get(f"https://127.0.0.1:{port}/x")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
