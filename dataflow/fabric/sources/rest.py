"""REST sources on httpx: auth read from the environment per request, a timeout, retries with
exponential backoff (connection errors, timeouts, 429, 5xx), and conditional requests -- the
ETag / Last-Modified of the last response go out as If-None-Match / If-Modified-Since, so an
unchanged source answers 304 and costs no product refresh.

Unless the config says ``allow_private=True``, every connection goes through the SSRF guard
(``ssrf.py``: resolved once, checked, pinned) and redirects are followed here, hop by hop, each
hop's URL checked before it is requested (at most ``MAX_REDIRECTS``)."""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx

from ...errors import SourceError
from .ssrf import Guard, pinned_transport
from .base import Source

RETRY_STATUS = frozenset((429, 500, 502, 503, 504))
MAX_REDIRECTS = 5


class RestSource(Source):
    kind = "rest"

    def __init__(self, name, config):
        super().__init__(name, config)
        self._client: httpx.AsyncClient | None = None
        self._client_loop = None
        #: key -> (etag, last_modified, body digest)
        self._validators: dict = {}
        #: keys a poll just refreshed: the product refresh it triggers reads them without a request
        self._primed: set = set()
        self._token: tuple[str, float] | None = None
        #: the SSRF guard of this source's connections (None with allow_private=True); a test
        #: may replace its resolver before the first request
        self.guard = None if config.allow_private else Guard()

    def names(self) -> list:
        return list(self.config.endpoints)

    def _url(self, path) -> str:
        if path is None:
            path = ""
        path = self.config.endpoints.get(path, path)
        if "://" in path or path.startswith("//"):
            raise SourceError(f"source {self.name!r}: fetch() takes a path relative to {self.config.url}, "
                              f"not {path!r}")
        return self.config.url.rstrip("/") + "/" + path.lstrip("/") if path else self.config.url

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            # a client's connections belong to the loop that opened them
            transport = None if self.guard is None else pinned_transport(self.guard)
            self._client = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False,
                                             headers=dict(self.config.headers), transport=transport,
                                             trust_env=self.guard is None)
            self._client_loop = loop
        return self._client

    async def _auth_headers(self) -> dict:
        auth = self.config.auth
        if auth is None:
            return {}
        if hasattr(auth, "headers"):
            return auth.headers()
        # OAuth2 client credentials: a token reused until 30 s before it expires
        if self._token is None or self._token[1] < time.monotonic():
            cid, secret = auth.credentials()
            data = {"grant_type": "client_credentials"}
            if auth.scopes:
                data["scope"] = " ".join(auth.scopes)
            r = await self._send("POST", auth.token_url, auth=(cid, secret), data=data)
            if r.status_code != 200:
                raise SourceError(f"source {self.name!r}: OAuth2 token request failed with HTTP {r.status_code}")
            body = r.json()
            self._token = (body["access_token"], time.monotonic() + float(body.get("expires_in", 300)) - 30)
        return {"Authorization": f"Bearer {self._token[0]}"}

    async def _fetch(self, path, params, poll: bool = False):
        key = self._key(path, params)
        if not poll and key in self._primed and key in self._data:
            self._primed.discard(key)
            return self._data[key][0], False
        headers = await self._auth_headers()
        validators = self._validators.get(key)
        if validators is not None and key in self._data:
            if validators[0]:
                headers["If-None-Match"] = validators[0]
            if validators[1]:
                headers["If-Modified-Since"] = validators[1]
        r = await self._request(self._url(path), params, headers)
        if r.status_code == 304 and key in self._data:
            self.stats["not_modified"] += 1
            if self.metrics is not None:
                self.metrics.source_request(self.name, "not_modified")
            return self._data[key][0], False
        if r.status_code >= 400:
            raise SourceError(f"source {self.name!r}: GET {path or '/'} answered HTTP {r.status_code}")
        if self.metrics is not None:
            self.metrics.source_request(self.name, "ok")
        digest = hashlib.blake2b(r.content, digest_size=16).digest()
        changed = validators is None or validators[2] != digest or key not in self._data
        self._validators[key] = (r.headers.get("etag"), r.headers.get("last-modified"), digest)
        if not changed:
            return self._data[key][0], False
        data = _decode(r)
        if poll:
            self._primed.add(key)
        return data, True

    async def _request(self, url, params, headers) -> httpx.Response:
        cfg = self.config
        attempt = 0
        while True:
            self.stats["requests"] += 1
            try:
                r = await self._send("GET", url, params=params, headers=headers)
            except httpx.HTTPError as exc:
                if attempt >= cfg.retries:
                    raise SourceError(f"source {self.name!r}: {type(exc).__name__}: {exc or 'request failed'}") from exc
            else:
                if r.status_code not in RETRY_STATUS or attempt >= cfg.retries:
                    return r
            await asyncio.sleep(cfg.backoff * (2 ** attempt))
            attempt += 1

    async def _send(self, method: str, url: str, auth=None, **options) -> httpx.Response:
        """Send a request, following redirects one hop at a time; with the SSRF guard on, each
        hop's URL is checked first (and its connection checked and pinned by the guard)."""
        if self.guard is not None:
            self.guard.check_url(url)
        client = self.client()
        request = client.build_request(method, url, **options)
        for hop in range(MAX_REDIRECTS + 1):
            if self.guard is not None and hop:
                self.guard.check_url(str(request.url))
            r = await client.send(request, auth=auth)
            if not r.is_redirect or r.next_request is None:
                return r
            await r.aclose()
            request, auth = r.next_request, None  # credentials never follow a redirect
        raise SourceError(f"source {self.name!r}: more than {MAX_REDIRECTS} redirects from {request.url}")

    async def check(self) -> None:
        """Reachable: the base URL answers with anything below 500."""
        r = await self._request(self.config.url, None, await self._auth_headers())
        if r.status_code >= 500:
            raise SourceError(f"source {self.name!r}: {self.config.url} answered HTTP {r.status_code}")

    async def stop(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.aclose()
        self._client = None


def _decode(r: httpx.Response):
    ctype = r.headers.get("content-type", "")
    if "json" in ctype or not ctype:
        try:
            return r.json()
        except ValueError:
            if "json" in ctype:
                raise
    return r.text
