"""The small HTTP endpoint of `responder run`: `/metrics` (Prometheus text format), `/healthz` (the loop answers)
and `/readyz` (consuming), served on `metrics_host:metrics_port` (127.0.0.1 by default) when `metrics_port` is set.
The metrics themselves are `responder.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from responder.metrics import Metrics

log = structlog.get_logger(__name__)

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class MetricsServer:
    """`/metrics`, `/healthz`, `/readyz` over plain HTTP/1.1 on asyncio (no extra thread, no framework)."""

    def __init__(self, metrics: Metrics, ready: Callable[[], bool], host: str = "127.0.0.1", port: int = 0, *,
                 why: Callable[[], str | None] | None = None, warning: Callable[[], str | None] | None = None) -> None:
        self.metrics = metrics
        self.ready, self.why = ready, why  # why: the reason a 503 from /readyz gives, in its body
        self.warning = warning  # a warning /readyz shows while ready (200): a notification topic is missing
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def listening(self) -> bool:
        """Whether `start` bound the port and `stop` has not closed it."""
        return self._server is not None

    def attach(self, metrics: Metrics, ready: Callable[[], bool], why: Callable[[], str | None], *,
               warning: Callable[[], str | None] | None = None) -> None:
        """Answer for another service from now on: a replica that rejoins after a fence keeps its port, so its
        probes never see a refused connection while it drops one service and builds the next
        (responder/service/rejoin.py)."""
        self.metrics, self.ready, self.why, self.warning = metrics, ready, why, warning

    async def start(self) -> int:
        """Listen; returns the bound port (useful when `port` is 0)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics_listening", host=self.host, port=self.port)
        return self.port

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def _route(self, method: str, path: str) -> tuple[int, bytes, str]:
        if method not in ("GET", "HEAD"):
            return 405, b"method not allowed\n", "text/plain"
        route = path.split("?", 1)[0]
        if route == "/metrics":
            return 200, self.metrics.exposition(), CONTENT_TYPE_LATEST
        if route == "/healthz":
            return 200, b"ok\n", "text/plain"
        if route == "/readyz":
            if self.ready():
                warning = self.warning() if self.warning is not None else None
                if warning:
                    return 200, f"ready\nwarning: {warning[:600]}\n".encode(), "text/plain; charset=utf-8"
                return 200, b"ready\n", "text/plain"
            reason = (self.why() if self.why is not None else None) or ""
            body = f"not ready: {reason[:300]}\n" if reason else "not ready\n"  # bounded: errors quote inputs
            return 503, body.encode(), "text/plain; charset=utf-8"
        return 404, b"not found\n", "text/plain"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request.decode("latin-1").split()
            status, body, ctype = self._route(*parts[:2]) if len(parts) >= 2 else (405, b"", "text/plain")
            head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            writer.write(head + (body if parts[:1] != ["HEAD"] else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
