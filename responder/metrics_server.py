"""The small HTTP endpoint of `responder run`: `/metrics` (Prometheus text format), `/healthz` (the loop answers)
and `/readyz` (consuming), served on `metrics_host:metrics_port` (127.0.0.1 by default) when `metrics_port` is set. Read
only: no request changes anything. A client has 5 s to send its request and 5 s to take the answer, then it is
dropped (`metrics_client_dropped`), so a client that stops reading holds nothing.
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

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
HEAD_DEADLINE_S = 5.0
"""Seconds a client has to send its request line and headers."""
WRITE_DEADLINE_S = 30.0
"""Seconds a client has to take its answer and the close (above Prometheus's default 10 s scrape timeout, so a slow
link's scrape of a large /metrics is served, as before 2026-12-08): one that stops reading (a tiny receive window, a
/metrics answer it never reads) is dropped, its socket aborted, instead of holding the connection, its task and the
answer for ever."""


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
            async with asyncio.timeout(HEAD_DEADLINE_S):
                request = await self._head(reader)
        except (TimeoutError, ConnectionError):
            writer.close()  # nothing was written: nothing to wait for
            return
        parts = request.decode("latin-1").split() if request is not None else []
        if request is None:
            status, body, ctype = 400, b"request line or header too long\n", "text/plain"
        else:
            status, body, ctype = self._route(*parts[:2]) if len(parts) >= 2 else (405, b"", "text/plain")
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        timer = asyncio.timeout(WRITE_DEADLINE_S)
        try:
            async with timer:
                writer.write(head + (body if parts[:1] != ["HEAD"] else b""))
                await writer.drain()
                writer.close()
                await writer.wait_closed()  # the answer flushed to the client: a close waits for it
        except TimeoutError:
            if not timer.expired():
                raise
            log.warning("metrics_client_dropped", path=parts[1][:100] if len(parts) > 1 else "",
                        deadline_s=WRITE_DEADLINE_S, unsent=writer.transport.get_write_buffer_size())
            writer.transport.abort()
        except ConnectionError:
            writer.transport.abort()

    @staticmethod
    async def _head(reader: asyncio.StreamReader) -> bytes | None:
        """The request line, its headers read and dropped; None when a line is over the reader's limit (64 KiB)."""
        try:
            request = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
        except ValueError:  # asyncio's LimitOverrunError, raised by readline as ValueError
            return None
        return request
