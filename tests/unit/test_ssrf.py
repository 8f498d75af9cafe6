"""The SSRF guard (dataflow/fabric/sources/ssrf.py) without a network: the catalogue of refused
URLs and resolutions goes through a real REST source handle whose resolver is a stub and whose
socket layer is a recorder that never opens a socket -- so a refusal is proven to happen before any
connection, and a checker bug could not send a packet anywhere.  A property test compares the
checker with an independent classification from the standard library's ``ipaddress``."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

pytest.importorskip("httpx")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dataflow.errors import SourceError, SourceRefusedError  # noqa: E402
from dataflow.fabric import RestSourceConfig, StalenessPolicy  # noqa: E402
from dataflow.fabric.sources import make_source, ssrf  # noqa: E402

#: name -> what the stub DNS answers (an exception: the lookup fails)
DNS = {
    "rebind-meta.test": ["169.254.169.254"],
    "private.test": ["10.1.2.3"],
    "mixed.test": ["93.184.216.34", "192.168.1.10"],     # one bad answer refuses the name
    "mapped.test": ["::ffff:169.254.169.254"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "cgnat.test": ["100.64.0.1"],
    "ula.test": ["fd12:3456::1"],
    "nxdomain.test": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    "empty.test": [],
    "v6loop.test": ["::1"],
    "slow.test": "hang",
}

#: (URL, expected words in the refusal's address class)
CATALOGUE = [
    # loopback, in every spelling
    ("http://127.0.0.1/", "loopback"), ("http://127.255.255.254/", "loopback"), ("http://[::1]/", "loopback"),
    ("http://2130706433/", "non-canonical"), ("http://0x7f000001/", "non-canonical"),
    ("http://0x7f.1/", "non-canonical"), ("http://0177.0.0.1/", "non-canonical"),
    ("http://127.1/", "non-canonical"), ("http://127.0.1/", "non-canonical"),
    ("http://017700000001/", "non-canonical"), ("http://0x7f.0x0.0x0.0x1/", "non-canonical"),
    ("http://127。0。0。1/", "loopback"), ("http://１２７.0.0.1/", "loopback"), ("http://0/", "non-canonical"),
    ("http://[0:0:0:0:0:ffff:7f00:1]/", "IPv4-mapped"), ("http://LOCALHOST./", "host name"),
    ("http://localhost/", "host name"), ("http://api.localhost/", "host name"),
    # private, CGNAT, link-local, unspecified, multicast, reserved, broadcast
    ("http://10.0.0.1/", "private"), ("http://172.16.5.4/", "private"), ("http://192.168.0.1/", "private"),
    ("http://100.64.0.1/", "CGNAT"), ("http://100.127.255.254/", "CGNAT"),
    ("http://169.254.1.1/", "link-local"), ("http://[fe80::1]/", "link-local"),
    ("http://0.0.0.0/", "unspecified"), ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"), ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"), ("http://255.255.255.255/", "broadcast"),
    ("http://[fc00::1]/", "unique-local"), ("http://[fec0::1]/", "site-local"),
    # documentation and benchmarking ranges
    ("http://192.0.2.1/", "documentation"), ("http://198.51.100.7/", "documentation"),
    ("http://203.0.113.9/", "documentation"), ("http://198.18.0.1/", "benchmarking"),
    ("http://[2001:db8::1]/", "documentation"), ("http://[2001:2::1]/", "benchmarking"),
    # IPv4 inside IPv6
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"), ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"), ("http://[::127.0.0.1]/", "IPv4-compatible"),
    ("http://[::ffff:0:a00:1]/", "IPv4-translated"),
    ("http://[64:ff9b::7f00:1]/", "NAT64"), ("http://[64:ff9b::a9fe:a9fe]/", "NAT64"),
    ("http://[64:ff9b:1::a00:1]/", "NAT64"),
    ("http://[2002:7f00:1::1]/", "6to4"), ("http://[2002:a9fe:a9fe::]/", "6to4"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo"),
    ("http://[100::1]/", "discard"), ("http://[5f00::1]/", "reserved"),
    # cloud metadata
    ("http://169.254.169.254/latest/meta-data/", "metadata"), ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"), ("http://100.100.100.200/", "metadata"),
    ("http://192.0.0.192/", "metadata"), ("http://168.63.129.16/", "metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "host name"),
    ("http://metadata.google.internal./", "host name"), ("http://METADATA.GOOGLE.INTERNAL/", "host name"),
    ("http://metadata.goog/", "host name"), ("http://instance-data/", "host name"),
    # names whose resolution is refused (stub DNS)
    ("http://rebind-meta.test/", "metadata"), ("http://private.test/", "private"),
    ("http://mixed.test/", "private"), ("http://mapped.test/", "IPv4-mapped"), ("http://nat64.test/", "NAT64"),
    ("http://cgnat.test/", "CGNAT"), ("http://ula.test/", "unique-local"), ("http://v6loop.test/", "loopback"),
    ("http://nxdomain.test/", "DNS failure"), ("http://empty.test/", "DNS failure"),
    ("http://slow.test/", "DNS failure"),
    # credentials in the URL change nothing
    ("http://user:pw@127.0.0.1/", "loopback"), ("https://example.com@10.0.0.1/", "private"),
]


class StubDNS:
    def __init__(self, table=None):
        self.table = DNS if table is None else table
        self.calls: list = []

    async def __call__(self, host, port):
        self.calls.append(host)
        answer = self.table.get(host, ["93.184.216.34"])
        if answer == "hang":
            await asyncio.sleep(3600)
        if isinstance(answer, Exception):
            raise answer
        return list(answer)


class NoSockets:
    """An httpcore backend that records connection attempts and never opens a socket."""

    def __init__(self):
        self.attempts: list = []

    async def connect_tcp(self, host, port, **kw):
        import httpcore
        self.attempts.append((host, port))
        raise httpcore.ConnectError(f"test: no socket opened to {host}")

    async def sleep(self, seconds):
        pass


def _source(url):
    src = make_source("probe", RestSourceConfig(url=url, retries=0,
                                                staleness=StalenessPolicy(on_source_error="error")))
    src.guard.resolver = StubDNS()
    src.guard.inner_backend = NoSockets()
    src.guard.dns_timeout = 0.05
    return src


async def test_catalogue_every_entry_refused_before_any_connection():
    assert len(CATALOGUE) >= 40
    refused = []
    for url, expected in CATALOGUE:
        src = _source(url)
        with pytest.raises(SourceRefusedError) as info:
            await src.fetch(None)
        assert src.guard.inner_backend.attempts == [], url
        assert expected.lower() in (info.value.address_class or "").lower() + str(info.value).lower(), (url, info.value)
        assert "allow_private=True" in str(info.value) or info.value.address_class in (
            "non-canonical IPv4 spelling", "metadata or local host name", "DNS failure"), info.value
        refused.append(url)
        await src.stop()
    print(f"\nSSRF catalogue: {len(refused)}/{len(CATALOGUE)} entries refused, 0 connections attempted")
    assert len(refused) == len(CATALOGUE)


async def test_a_public_name_is_resolved_once_and_connected_to_the_checked_address():
    src = _source("https://api.example.com/v1")
    with pytest.raises(SourceError):  # the recorder refuses to open the socket
        await src.fetch(None)
    # connected to exactly the address the stub answered, with the port of the URL
    assert src.guard.inner_backend.attempts == [("93.184.216.34", 443)]
    assert src.guard.resolver.calls == ["api.example.com"] and src.guard.resolutions == 1
    await src.stop()


async def test_redirect_schemes_and_unix_sockets_refused():
    guard = ssrf.Guard(resolver=StubDNS())
    for url in ("file:///etc/passwd", "gopher://example.com/", "ftp://example.com/", "http:///nohost"):
        with pytest.raises(SourceRefusedError, match="only http/https"):
            guard.check_url(url)
    with pytest.raises(SourceRefusedError, match="unix"):
        await ssrf.PinnedBackend(guard, NoSockets()).connect_unix_socket("/run/docker.sock")
    with pytest.raises(SourceRefusedError, match="scoped"):
        guard.check_url("http://[fe80::1%25eth0]/")


def test_canonical_literals_pass_and_names_are_left_to_resolution():
    assert ssrf.literal("93.184.216.34") == ipaddress.ip_address("93.184.216.34")
    assert ssrf.literal("[2606:4700::6810:85e5]") == ipaddress.ip_address("2606:4700::6810:85e5")
    assert ssrf.literal("api.example.com") is None
    assert ssrf.literal("1a.example.com") is None          # a label may start with a digit
    assert ssrf.classify("8.8.8.8") is None and ssrf.classify("2606:4700::1") is None


# -- property: the checker agrees with an independent classification -------------------------------
EXTRA_V4 = [ipaddress.ip_network(n) for n in ("192.0.0.0/24", "192.88.99.0/24")]
METADATA = {ipaddress.ip_address(a) for a in ("168.63.129.16",)}
EXTRA_V6 = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2001::/23", "3fff::/20")]


def independent(ip) -> bool:
    """True when ``ip`` must be refused, from ``ipaddress`` properties plus the few ranges the
    guard refuses on purpose beyond them (listed above)."""
    if ip in METADATA:
        return True
    if ip.version == 4:
        return (not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                or ip.is_unspecified or any(ip in n for n in EXTRA_V4))
    return (not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_site_local or ip.is_link_local
            or ip.is_loopback or ip.is_unspecified or ip.ipv4_mapped is not None or ip.sixtofour is not None
            or ip.teredo is not None or any(ip in n for n in EXTRA_V6)
            or (int(ip) >> 32) == 0)  # IPv4-compatible ::/96


def _v6_around_v4(v4: ipaddress.IPv4Address, prefix: str) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address(prefix)) | int(v4))


special_v6 = st.builds(_v6_around_v4, st.ip_addresses(v=4),
                       st.sampled_from(["::ffff:0:0", "::", "64:ff9b::", "64:ff9b:1::", "::ffff:0:0:0"]))
global_v6 = st.integers(0x2000 << 112, (0x4000 << 112) - 1).map(ipaddress.IPv6Address)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6), special_v6, global_v6,
                 st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)))
def test_checker_agrees_with_ipaddress(ip):
    assert (ssrf.classify(ip) is not None) == independent(ip), (ip, ssrf.classify(ip))


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_every_non_canonical_ipv4_spelling_is_refused(n):
    ip = ipaddress.IPv4Address(n)
    assert ssrf.literal(str(ip)) == ip
    a, b, c, d = ip.packed
    for spelling in (str(n), hex(n), f"0{n:o}", f"{a}.{(b << 16) | (c << 8) | d}", f"{a}.{b}.{(c << 8) | d}",
                     f"{hex(a)}.{b}.{c}.{d}", f"0{a:o}.{b}.{c}.{d}"):
        if spelling == str(ip):
            continue
        with pytest.raises(SourceRefusedError) as info:
            ssrf.literal(spelling)
        assert str(ip) in str(info.value)
