"""Stream sources: a background reader keeps the last ``buffer_size`` messages of a WebSocket
(here), a Redis Stream (``redis_stream.py``) or a Kafka topic (``kafka.py``).

``fetch()`` / ``read()`` return the buffered messages, oldest first (``fetch("latest")`` the
newest one); every message received tells the runtime (``on_change``), which polls the handle:
``poll()`` is True when messages arrived since the last poll, so dependent products refresh once
per burst, not once per message.  Connection failures count against the circuit breaker; the
reader reconnects with exponential backoff and waits for the breaker's next probe while it is
open.  Used outside a running fabric, the first ``fetch`` starts the reader on the current loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from urllib.parse import urljoin, urlsplit

from ...errors import SourceError
from .ssrf import Guard, connect_socket
from .base import Source

logger = logging.getLogger("dataflow.fabric")
#: how long a first fetch waits for the reader's first connection
FIRST_CONNECT_TIMEOUT = 10.0
MAX_BACKOFF = 30.0


def decode(raw):
    """A message as data: JSON when it parses, else text (bytes decoded as UTF-8 if they are)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)
        try:
            raw = raw.decode()
        except UnicodeDecodeError:
            return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class StreamSource(Source):
    kind = "stream"

    def __init__(self, name, config):
        super().__init__(name, config)
        self.buffer: deque = deque(maxlen=config.buffer_size)
        #: messages received since the handle was made; polls compare it
        self.received = 0
        self._polled = 0
        self._fetched: dict = {}
        self._task: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._first_error: BaseException | None = None
        self._ever_connected = False
        self.connected = False
        self.guard = None if config.allow_private else Guard()

    # -- the reader ----------------------------------------------------------------------------------
    async def _session(self) -> None:  # pragma: no cover - abstract
        """Connect, call ``_opened()``, then ``_received(message)`` per message until the
        connection ends (return) or fails (raise)."""
        raise NotImplementedError

    def _opened(self) -> None:
        self.connected = self._ever_connected = True
        self.breaker.success()
        while self.breaker.state == "half_open":  # a working connection closes the circuit
            self.breaker.success()
        self._first_error = None
        self._connected.set()

    def _received(self, message) -> None:
        self.buffer.append(message)
        self.received += 1
        if self.metrics is not None:
            self.metrics.source_request(self.name, "message")
        if self.on_change is not None:
            self.on_change(self)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            retry = self.breaker.retry_in()
            if retry:
                await asyncio.sleep(retry)
            if not self.breaker.allow():
                await asyncio.sleep(0.05)
                continue
            try:
                await self._session()
                delay = 0.1  # a clean end: reconnect soon
            except asyncio.CancelledError:
                self.breaker.release()
                raise
            except Exception as exc:  # noqa: BLE001 - counted, then reconnect
                self._failed(exc)
                self._first_error = exc
                self._connected.set()  # a first fetch waiting for the connection sees the error
                logger.warning("fabric stream %r: %s: %s", self.name, type(exc).__name__, exc)
            finally:
                self.connected = False
            await asyncio.sleep(delay)
            delay = min(MAX_BACKOFF, delay * 2)

    def start(self, loop) -> None:
        if self._task is None or self._task.done():
            self._connected = asyncio.Event()
            self._task = loop.create_task(self._run(), name=f"fabric-stream-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.connected = False

    # -- reads -----------------------------------------------------------------------------------
    async def fetch(self, path=None, params: dict | None = None):
        """The buffered messages (``path`` None or ``"messages"``) or the newest one
        (``"latest"``).  While the reader is disconnected, the staleness policy decides: the
        data of the last read, or an error."""
        key = self._key(path, params)
        if self._task is None or self._task.done():
            self.start(asyncio.get_running_loop())
        if not self.connected and self._first_error is None and not self._ever_connected:
            try:  # the reader's very first connection: worth waiting for
                async with asyncio.timeout(FIRST_CONNECT_TIMEOUT):
                    await self._connected.wait()
            except TimeoutError:
                pass
        if not self.connected:
            err = self._first_error
            return self._stale(key, SourceError(
                f"source {self.name!r}: not connected ({type(err).__name__ + ': ' + str(err) if err else 'connecting'})"))
        data, _ = await self._fetch(path, params)
        self.last_success = time.time()
        self._store(key, data)
        return data

    async def _fetch(self, path, params, poll: bool = False):
        if path not in (None, "", "latest", "messages"):
            raise SourceError(f"source {self.name!r}: a stream has no path {path!r} (None, 'messages' or 'latest')")
        key = self._key(path, params)
        data = (self.buffer[-1] if self.buffer else None) if path == "latest" else list(self.buffer)
        changed = self._fetched.get(key) != self.received
        self._fetched[key] = self.received
        self.stats["requests"] += 1
        return data, changed

    async def read(self):
        return await self.fetch(None)

    def names(self) -> list:
        return ["messages"]

    async def poll(self) -> bool:
        """True when messages arrived since the last poll (the runtime then refreshes the
        products depending on this source)."""
        self.stats["polls"] += 1
        changed, self._polled = self.received != self._polled, self.received
        if changed:
            self._succeeded(self._key(None, None), list(self.buffer), True)
        return changed

    def snapshot(self) -> dict:
        out = super().snapshot()
        out.update(connected=self.connected, received=self.received, buffered=len(self.buffer))
        return out


class WebSocketSource(StreamSource):
    """``ws://`` / ``wss://`` with ``websockets``.  With the SSRF guard on, the TCP socket is
    opened to the checked, pinned address and ``websockets`` runs TLS (server name = the host)
    and the handshake over it; redirects are followed here, each hop checked."""

    MAX_REDIRECTS = 5

    async def _connect(self, url: str):
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        timeout = 10.0
        for _ in range(self.MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if self.guard is None:
                try:
                    return await connect(url, open_timeout=timeout, max_size=2**24)
                except InvalidStatus as exc:
                    location = _redirect(exc)
                    if location is None:
                        raise
                    url = urljoin(url, location)
                    continue
            self.guard.check_url(url, schemes=("ws", "wss"))
            port = parts.port or (443 if parts.scheme == "wss" else 80)
            sock = await connect_socket(self.guard, parts.hostname, port, timeout)
            options = {"server_hostname": parts.hostname} if parts.scheme == "wss" else {}
            try:
                return await connect(url, sock=sock, proxy=None, open_timeout=timeout, max_size=2**24, **options)
            except ValueError as exc:  # websockets will not follow a redirect over a given socket
                location = _redirect(exc.__cause__)
                if location is None:
                    raise
                url = urljoin(url, location)
            except BaseException:
                sock.close()
                raise
        raise SourceError(f"source {self.name!r}: more than {self.MAX_REDIRECTS} redirects")

    async def _session(self) -> None:
        from websockets.exceptions import ConnectionClosedOK

        ws = await self._connect(self.config.url)
        try:
            self._opened()
            async for message in ws:
                self._received(decode(message))
        except ConnectionClosedOK:
            return
        finally:
            await ws.close()

    async def check(self) -> None:
        ws = await self._connect(self.config.url)
        await ws.close()


def _redirect(exc) -> str | None:
    from websockets.exceptions import InvalidStatus

    if isinstance(exc, InvalidStatus) and exc.response.status_code in (301, 302, 303, 307, 308):
        return exc.response.headers.get("Location")
    return None
