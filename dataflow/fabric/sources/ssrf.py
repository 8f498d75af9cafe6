"""SSRF protection for outbound source connections: the address a socket really connects to is
a public one.

Checking a URL's host and then letting the HTTP client resolve it again is racy (DNS rebinding:
the second answer may be 127.0.0.1).  Here the host is resolved ONCE, every answer is checked,
and the connection is opened to one of those checked addresses -- the pin.  TLS (SNI and
certificate checks) and the ``Host`` header still name the host, because only the TCP connect
is redirected to the pinned address:

- httpx (REST): ``PinnedBackend`` is an httpcore network backend; httpcore calls its
  ``connect_tcp(host, port)`` for every new connection and then ``start_tls(server_hostname=
  host)`` on what it returns, so replacing the host by the checked address in that one call pins
  the connection without touching TLS or headers.  (The ``sni_hostname`` request extension was the
  other option; it needs the URL rewritten to the IP, which changes the Host header, the pool key
  and the redirect base -- more moving parts for the same effect.)
- aiohttp (S3 through aiobotocore): ``PinnedAiohttpResolver``, an aiohttp resolver: the
  connector connects to exactly the addresses it returns and uses the host name for TLS.
- WebSocket: ``connect_socket`` opens the TCP socket to the checked address and ``websockets``
  runs TLS and the handshake over it with the host name.

Refused: see ``V4`` / ``V6`` (loopback, private, link-local, CGNAT, multicast, unspecified,
reserved, broadcast, documentation/benchmark ranges, IPv4-mapped/-compatible/-translated IPv6,
NAT64, 6to4, Teredo, everything outside IPv6 global unicast), cloud metadata addresses and names,
every IPv4 spelling other than the canonical dotted quad (``2130706433``, ``0x7f.1``,
``0177.0.0.1``, ``127.1``), scoped IPv6 literals, and a name that does not resolve.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import unicodedata
from urllib.parse import urlsplit

from ...errors import SourceRefusedError

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

#: cloud metadata and instance-service addresses (checked before the ranges, for the message)
METADATA = {ipaddress.ip_address(a): what for a, what in (
    ("169.254.169.254", "cloud metadata (AWS, GCP, Azure, OpenStack, DigitalOcean)"),
    ("169.254.170.2", "cloud metadata (AWS ECS task credentials)"),
    ("169.254.170.23", "cloud metadata (AWS EKS pod identity)"),
    ("169.254.169.253", "cloud instance service (AWS DNS)"),
    ("169.254.169.123", "cloud instance service (AWS time)"),
    ("169.254.169.250", "cloud instance service (AWS KMS)"),
    ("100.100.100.200", "cloud metadata (Alibaba Cloud)"),
    ("192.0.0.192", "cloud metadata (Oracle Cloud)"),
    ("168.63.129.16", "cloud metadata (Azure wire server)"),
    ("fd00:ec2::254", "cloud metadata (AWS IPv6)"),
    ("fd00:ec2::23", "cloud metadata (AWS EKS pod identity IPv6)"),
    ("fd00:ec2::250", "cloud instance service (AWS KMS IPv6)"),
)}

#: host names refused before any resolution (lower case, no trailing dot)
METADATA_NAMES = frozenset((
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.internal", "metadata.platformequinix.com", "localhost", "localhost.localdomain",
    "ip6-localhost", "ip6-loopback"))
#: name suffixes refused the same way (RFC 6761 .localhost, ICANN's private-use .internal)
REFUSED_SUFFIXES = (".localhost", ".internal")


def _nets(rows):
    return [(ipaddress.ip_network(n), what) for n, what in rows]


#: most specific first: the first match names the class
V4 = _nets((
    ("255.255.255.255/32", "broadcast"),
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "CGNAT shared address space (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
))

V6 = _nets((
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped IPv6"),
    ("::ffff:0:0:0/96", "IPv4-translated IPv6 (SIIT)"),
    ("::/96", "IPv4-compatible IPv6"),
    ("64:ff9b::/96", "NAT64 (RFC 6052)"),
    ("64:ff9b:1::/48", "NAT64 local-use (RFC 8215)"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "IETF protocol assignments"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique-local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
))
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
#: the classes above whose addresses carry an IPv4 address (named in the refusal)
EMBEDDING = frozenset(("IPv4-mapped IPv6", "IPv4-translated IPv6 (SIIT)", "IPv4-compatible IPv6", "NAT64 (RFC 6052)",
                       "NAT64 local-use (RFC 8215)", "6to4", "Teredo"))
#: IPv6 ranges carrying an IPv4 address in their low 32 bits
LOW32_V4 = [ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")]


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, for the message (mapped, compatible, NAT64,
    6to4, Teredo's client)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in LOW32_V4):  # compatible, translated, NAT64
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(ip) -> str | None:
    """Why ``ip`` is refused (its address class), or None for a public address."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    what = METADATA.get(ip)
    if what is not None:
        return what
    if ip.version == 4:
        for net, what in V4:
            if ip in net:
                return what
        return None
    if ip.scope_id:
        return "scoped IPv6"
    for net, what in V6:
        if ip in net:
            inner = _embedded_v4(ip) if what in EMBEDDING else None
            if inner is not None:
                return f"{what} embedding {inner} ({classify(inner) or 'public'})"
            return what
    if ip not in GLOBAL_UNICAST:
        return "reserved (outside IPv6 global unicast 2000::/3)"
    return None


# -- host spellings ---------------------------------------------------------------------------------
_DOTS = {0x3002: ".", 0xFF0E: ".", 0xFF61: "."}
_NUMERIC_PART = re.compile(r"(0x[0-9a-f]*|[0-9]+)\Z", re.I)


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The address the C library's ``inet_aton`` reads in ``host`` (1-4 parts, each decimal,
    0-octal or 0x-hex), or None when it is no such number."""
    parts = host.split(".")
    if len(parts) > 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        return None
    try:
        nums = [int(p, 16) if p[:2].lower() == "0x" else int(p, 8) if len(p) > 1 and p[0] == "0" else int(p)
                for p in parts]
    except ValueError:  # "0x" alone, or an 8/9 in an octal part
        return None
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(nums)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    return ipaddress.IPv4Address((value << (8 * (5 - len(nums)))) | last)


def literal(host: str):
    """``host`` as an IP address when it is an IP literal, else None; raises
    ``SourceRefusedError`` for refused names and for any IPv4 spelling but the canonical one."""
    # URL parsers map full-width digits and the ideographic full stops to ASCII: so does this
    h = unicodedata.normalize("NFKC", host).translate(_DOTS).strip("[]").rstrip(".").lower()
    if not h:
        raise SourceRefusedError("empty host name", address=host, address_class="invalid host")
    if "%" in h:
        raise SourceRefusedError(f"{host}: scoped IPv6 literals are refused", address=host,
                                 address_class="scoped IPv6")
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    last = h.rsplit(".", 1)[-1]
    if _NUMERIC_PART.match(last):  # a host ending in a number is read as IPv4 by URL parsers
        ip = _inet_aton(h)
        meaning = f"= {ip}, {classify(ip) or 'public'}" if ip is not None else "no valid address"
        raise SourceRefusedError(
            f"{host!r} is a non-canonical IPv4 spelling ({meaning}): write the address as a dotted "
            f"quad without leading zeros", address=host, address_class="non-canonical IPv4 spelling")
    if h in METADATA_NAMES or h.endswith(REFUSED_SUFFIXES):
        raise SourceRefusedError(f"{host!r} is a reserved or cloud metadata host name", address=host,
                                 address_class="metadata or local host name")
    return None


def _refuse(host: str, ip, what: str, via: str = "") -> SourceRefusedError:
    shown = f"{host} ({ip})" if via else str(ip)
    return SourceRefusedError(
        f"connection to {shown} refused: {what} address{via}. Outbound sources connect only to public "
        f"addresses; set allow_private=True on the source to reach it on purpose",
        address=str(ip), address_class=what)


async def system_resolver(host: str, port: int) -> list:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)
    return [info[4][0] for info in infos]


class Guard:
    """Resolves, checks and pins.  ``resolver(host, port) -> [address strings]`` (default: the
    system's ``getaddrinfo``; tests inject a stub).  ``classify`` may be replaced by a test to
    call an address public (how the pinning is tested on loopback).  ``connections`` keeps the
    last (host, address) pairs connected, newest last."""

    def __init__(self, resolver=None, classify_fn=None):
        self.resolver = resolver or system_resolver
        self.classify = classify_fn or classify
        self.resolutions = 0
        #: seconds a lookup may take; a slower one is a DNS failure, so refused
        self.dns_timeout = 10.0
        self.connections: list = []
        #: the httpcore backend that really opens sockets (None: httpcore's own); tests put a
        #: recorder here that never opens one
        self.inner_backend = None

    def check_url(self, url: str, schemes=("http", "https")) -> None:
        """Refuse a URL whose scheme is not allowed or whose host is a refused literal or name
        (no resolution: that happens, once, when the connection is opened)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as exc:
            raise SourceRefusedError(f"invalid URL {url!r}: {exc}", address=url, address_class="invalid URL") from exc
        if parts.scheme not in schemes or not host:
            raise SourceRefusedError(f"URL {url!r} refused: only {'/'.join(schemes)} URLs with a host",
                                     address=url, address_class="invalid URL")
        ip = literal(host)
        if ip is not None:
            what = self.classify(ip)
            if what is not None:
                raise _refuse(host, ip, what)

    async def addresses(self, host: str, port: int) -> list:
        """Every address ``host`` resolves to, all checked; raises ``SourceRefusedError`` when one
        is refused or the name does not resolve."""
        ip = literal(host)
        if ip is not None:
            ips = [ip]
        else:
            self.resolutions += 1
            try:
                async with asyncio.timeout(self.dns_timeout):
                    found = await self.resolver(host, port)
            except (OSError, UnicodeError, TimeoutError) as exc:
                raise SourceRefusedError(f"{host!r} does not resolve ({type(exc).__name__}: {exc}): refused", address=host,
                                         address_class="DNS failure") from exc
            ips = []
            for a in found:
                try:
                    ips.append(ipaddress.ip_address(a))
                except ValueError as exc:
                    raise SourceRefusedError(f"{host!r} resolved to {a!r}, no IP address", address=str(a),
                                             address_class="DNS failure") from exc
            if not ips:
                raise SourceRefusedError(f"{host!r} resolved to no address: refused", address=host,
                                         address_class="DNS failure")
        for a in ips:
            what = self.classify(a)
            if what is not None:
                raise _refuse(host, a, what, via="" if ip is not None else f" ({host!r} resolves to it)")
        return list(dict.fromkeys(str(a) for a in ips))

    def connected(self, host: str, address: str) -> None:
        self.connections.append((host, address))
        del self.connections[:-50]


# -- httpx / httpcore ---------------------------------------------------------------------------------
def pinned_transport(guard: Guard, inner=None, verify=True):
    """An httpx transport whose every new connection goes through ``guard``: resolved once,
    checked, connected to the checked address (TLS and Host still name the host).  httpx has no
    parameter for a network backend, so its transport gets an httpcore pool that has one (with
    httpx's own TLS context and default limits); ``trust_env=False``: no proxy from the
    environment, whose address the guard could not check."""
    import httpcore
    import httpx

    limits = httpx.Limits()
    transport = httpx.AsyncHTTPTransport(trust_env=False, limits=limits, verify=verify)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=getattr(transport._pool, "_ssl_context", None), max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=PinnedBackend(guard, inner if inner is not None else guard.inner_backend))
    return transport


class PinnedBackend:
    """An httpcore network backend: ``connect_tcp(host)`` connects to a checked address of
    ``host`` (every one in turn if the first refuses the connection), never to a fresh lookup."""

    def __init__(self, guard: Guard, inner=None):
        import httpcore
        self.guard = guard
        self.inner = inner if inner is not None else httpcore.AnyIOBackend()
        self._connect_error = httpcore.ConnectError

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last = None
        for address in await self.guard.addresses(host, port):
            try:
                stream = await self.inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                      socket_options=socket_options)
            except self._connect_error as exc:
                last = exc
                continue
            self.guard.connected(host, address)
            return stream
        raise last

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise SourceRefusedError("unix sockets are refused for outbound sources", address=path,
                                 address_class="unix socket")

    async def sleep(self, seconds):
        await self.inner.sleep(seconds)


# -- plain sockets (WebSocket) and aiohttp (S3) ---------------------------------------------------------
async def connect_socket(guard: Guard, host: str, port: int, timeout: float) -> socket.socket:
    """A connected TCP socket to a checked address of ``host``."""
    loop = asyncio.get_running_loop()
    last = None
    for address in await guard.addresses(host, port):
        ip = ipaddress.ip_address(address)
        sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (address, port))
        except (OSError, TimeoutError) as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        guard.connected(host, address)
        return sock
    raise ConnectionError(f"could not connect to {host}:{port}: {last}")


def aiohttp_resolver(guard: Guard):
    """An aiohttp resolver answering with ``guard``'s checked addresses (the connector connects
    to exactly those and keeps the host name for TLS)."""
    from aiohttp.abc import AbstractResolver

    class PinnedAiohttpResolver(AbstractResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            out = []
            for address in await guard.addresses(host, port):
                ip = ipaddress.ip_address(address)
                guard.connected(host, address)
                out.append({"hostname": host, "host": address, "port": port,
                            "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                            "proto": 0, "flags": socket.AI_NUMERICHOST})
            return out

        async def close(self):
            pass

    return PinnedAiohttpResolver()
