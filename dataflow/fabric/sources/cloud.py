"""S3-compatible object storage with aiobotocore (optional extra ``[s3]``):
``CloudSourceConfig(bucket="reports", prefix="daily/", endpoint_url=None, region="eu-west-1")``.

``fetch("2024-01.csv")`` reads ``prefix + name`` and parses it by its suffix like a file source
(CSV, JSON, JSONL, Parquet; anything else is text), ``read()`` / ``fetch_all()`` every object
under the prefix.  Credentials come from botocore's usual chain (``AWS_ACCESS_KEY_ID`` ...,
profiles, instance roles) -- never from the config.

Change detection costs one request per poll: a listing of the prefix, whose ETags are compared
with those of the objects read; only a changed object is downloaded again.  A fetch outside a
poll is a conditional GET (``If-None-Match``), so an unchanged object is not downloaded either.

aiobotocore over aiohttp, not boto3 in a thread: aiohttp takes a resolver, and with the SSRF guard
on (``allow_private=False``) that resolver is ``aiohttp_resolver`` -- every host the client
connects to (the endpoint, a region redirect) is resolved once, checked and pinned; a literal IP
endpoint, which aiohttp would not resolve, is checked up front.
"""

from __future__ import annotations

import asyncio

from ...errors import ConfigurationError, SourceError, SourceRefusedError
from .ssrf import Guard, aiohttp_resolver
from .base import Source
from .file import parse


class CloudSource(Source):
    kind = "cloud"

    def __init__(self, name, config):
        super().__init__(name, config)
        self.guard = None if config.allow_private else Guard()
        self._client = None
        self._client_cm = None
        self._client_loop = None
        self._etags: dict = {}      # object key -> ETag of the data held
        self._listing: dict | None = None
        self._names: list = []

    async def client(self):
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is loop:
            return self._client
        try:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError("cloud sources need aiobotocore: pip install 'dataflow-native[s3]'") from exc
        cfg = self.config
        connector = {}
        if self.guard is not None:
            if cfg.endpoint_url is not None:
                self.guard.check_url(cfg.endpoint_url)
            connector["resolver"] = aiohttp_resolver(self.guard)
        config = AioConfig(connector_args=connector, connect_timeout=10, read_timeout=30,
                           retries={"max_attempts": 2, "mode": "standard"},
                           proxies={} if self.guard is not None else None)
        cm = get_session().create_client("s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region or "us-east-1",
                                         config=config)
        self._client = await cm.__aenter__()
        self._client_cm, self._client_loop = cm, loop
        return self._client

    def _object(self, path) -> str:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise SourceError(f"source {self.name!r}: fetch(name) takes an object name under "
                              f"{self.config.prefix or 'the bucket'}, got {path!r}")
        return self.config.prefix + path

    async def _list(self) -> dict:
        """{name under the prefix: ETag} of every object under the prefix."""
        client = await self.client()
        out, token = {}, None
        while True:
            kw = {"Bucket": self.config.bucket, "Prefix": self.config.prefix}
            if token:
                kw["ContinuationToken"] = token
            page = await _call(client.list_objects_v2(**kw))
            self.stats["requests"] += 1
            for obj in page.get("Contents", ()):
                name = obj["Key"][len(self.config.prefix):]
                if name and not name.endswith("/"):
                    out[name] = obj["ETag"]
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]

    async def _fetch(self, path, params, poll: bool = False):
        from botocore.exceptions import ClientError

        key = self._key(path, params)
        obj = self._object(path)
        client = await self.client()
        kw = {"Bucket": self.config.bucket, "Key": obj}
        held = self._etags.get(obj)
        if held is not None and key in self._data:
            kw["IfNoneMatch"] = held
        self.stats["requests"] += 1
        try:
            r = await _call(client.get_object(**kw))
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 304 and key in self._data:
                self.stats["not_modified"] += 1
                if self.metrics is not None:
                    self.metrics.source_request(self.name, "not_modified")
                return self._data[key][0], False
            raise SourceError(f"source {self.name!r}: s3://{self.config.bucket}/{obj}: "
                              f"{exc.response.get('Error', {}).get('Code', status)}") from exc
        async with r["Body"] as body:
            raw = await body.read()
        if self.metrics is not None:
            self.metrics.source_request(self.name, "ok")
        self._etags[obj] = r.get("ETag")
        try:
            data = parse(obj, raw, None, "utf-8")
        except SourceError:  # no known suffix: the object's text
            data = raw.decode("utf-8", errors="replace")
        return data, held != r.get("ETag")

    def names(self) -> list:
        return list(self._names)

    async def fetch_all(self) -> dict:
        try:
            listing = await self._list()
        except Exception as exc:  # noqa: BLE001 - the listing is a read like the others
            self._failed(exc)
            raise SourceError(f"source {self.name!r}: listing s3://{self.config.bucket}/{self.config.prefix}: "
                              f"{type(exc).__name__}: {exc}") from exc
        self._listing, self._names = listing, sorted(listing)
        return {name: await self.fetch(name) for name in self._names}

    async def poll(self) -> bool:
        """One listing; objects whose ETag changed are read again.  True when any object read
        before changed, or (after a ``read()``) objects were added or removed."""
        self.stats["polls"] += 1
        if not self.breaker.allow():
            self.stats["short_circuited"] += 1
            return False
        try:
            listing = await self._list()
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return False
        self.breaker.success()
        changed = self._listing is not None and set(listing) != set(self._listing)
        if self._listing is not None:
            self._listing, self._names = listing, sorted(listing)
        for key in list(self._data):
            name = key[0]
            obj = self.config.prefix + name
            if name not in listing:
                del self._data[key]
                self._etags.pop(obj, None)
                changed = True
            elif listing[name] != self._etags.get(obj):
                try:
                    data, did = await self._fetch(name, None, poll=True)
                except Exception as exc:  # noqa: BLE001
                    self._failed(exc)
                    continue
                self._succeeded(key, data, did)
                changed = changed or did
            else:
                self._succeeded(key, self._data[key][0], False)  # confirmed by the listing
        return changed

    async def read(self):
        return await self.fetch_all()

    async def check(self) -> None:
        client = await self.client()
        try:
            await _call(client.head_bucket(Bucket=self.config.bucket))
        except SourceRefusedError:
            raise
        except Exception as exc:
            raise SourceError(f"source {self.name!r}: bucket {self.config.bucket!r}: {exc}") from exc

    async def stop(self) -> None:
        cm, self._client_cm, self._client = self._client_cm, None, None
        if cm is not None and self._client_loop is asyncio.get_running_loop():
            await cm.__aexit__(None, None, None)
        self._client_loop = None


async def _call(coro):
    """Await a client call; an SSRF refusal that botocore wrapped comes out as itself."""
    try:
        return await coro
    except Exception as exc:
        seen, cur = set(), exc
        while cur is not None and id(cur) not in seen:
            if isinstance(cur, SourceRefusedError):
                raise cur from None
            seen.add(id(cur))
            extra = getattr(cur, "kwargs", None)
            cur = (extra.get("error") if isinstance(extra, dict) else None) or cur.__cause__ or cur.__context__
        raise
