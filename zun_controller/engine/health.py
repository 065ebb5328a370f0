"""A small HTTP endpoint for probes and scraping: `/healthz`, `/readyz`, `/metrics`.

Plain asyncio, no web framework: it serves three fixed paths to Kubernetes probes and
Prometheus and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HealthServer:
    def __init__(
        self,
        *,
        ready: Callable[[], bool],
        metrics: Callable[[], bytes],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._ready = ready
        self._metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def respond(self, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if path == "/healthz":
            return 200, "text/plain", b"ok"
        if path == "/readyz":
            ok = self._ready()
            return (200 if ok else 503), "text/plain", b"ok" if ok else b"informers not synced"
        if path == "/metrics":
            return 200, METRICS_TYPE, self._metrics()
        return 404, "text/plain", b"not found"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            parts = request.split(b" ", 2)
            path = parts[1].decode() if len(parts) > 1 else "/"
            code, ctype, body = self.respond(path)
            head = (
                f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
