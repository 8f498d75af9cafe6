"""uvicorn embedded in the caller's event loop: ``db.start()`` binds the socket itself (so port 0
works and a port in use is an ``OSError`` at once, not a ``sys.exit`` inside a task), serves until
``stop()``, and never touches the process's signal handlers (the caller owns them)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

from ..errors import FabricError


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        yield


class EmbeddedServer:
    def __init__(self, app, host: str, port: int, sock: socket.socket | None = None):
        """``sock``: an already bound socket to serve on (``dataflow serve --workers N`` shares
        one between its worker processes)."""
        self.app, self.host, self.port = app, host, port
        self._server: _Server | None = None
        self._task: asyncio.Task | None = None
        self._sock: socket.socket | None = None
        self._given = sock

    async def start(self) -> None:
        if self._given is not None:
            sock = self._given
        else:
            family, kind, proto, _, addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(addr)
            except OSError:
                sock.close()
                raise
            sock.set_inheritable(True)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False,
                                timeout_graceful_shutdown=5, ws="none")
        self._server = _Server(config)

        async def serve():
            try:
                await self._server.serve(sockets=[sock])
            except SystemExit as exc:  # uvicorn exits the process on startup failures
                raise FabricError(f"the fabric server could not start on {self.host}:{self.port}") from exc

        self._task = asyncio.get_running_loop().create_task(serve())
        while not self._server.started:
            if self._task.done():
                sock.close()
                self._task.result()
                raise FabricError("the fabric server stopped while starting")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            if self._sock is not None:
                self._sock.close()
            self._server = self._task = self._sock = None
