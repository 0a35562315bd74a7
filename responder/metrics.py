"""Prometheus counters for the ingest/normalise stages and step failures, and the small HTTP endpoint that serves them.

`/metrics` (Prometheus text format), `/healthz` (the loop answers) and `/readyz` (consuming) are served
on `metrics_host:metrics_port` (127.0.0.1 by default) when `metrics_port` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

log = structlog.get_logger(__name__)


class Metrics:
    """The service's counters, in their own registry (so several services can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records = Counter("responder_records", "Raw records consumed", ["topic"], registry=self.registry)
        self.events = Counter("responder_events", "Events normalised", ["source"], registry=self.registry)
        self.matched = Counter("responder_events_matched", "Events that matched at least one runbook",
                               registry=self.registry)
        self.deadlettered = Counter("responder_deadlettered", "Records sent to the dead-letter topic", ["reason"],
                                    registry=self.registry)
        self.authenticated = Counter("responder_records_authenticated", "Records with a valid HMAC signature",
                                     ["key_id"], registry=self.registry)
        self.step_failures = Counter("responder_step_failures", "Runbook steps that failed or were refused",
                                     ["runbook", "actuator"], registry=self.registry)

    def step_failed(self, runbook: str, actuator: str) -> None:
        """Count one failed or refused step (the engine's `on_step_failed`)."""
        self.step_failures.labels(runbook, actuator).inc()

    def value(self, name: str, **labels: str) -> float:
        """The current value of a sample (`responder_deadlettered_total`, reason=...), 0 when absent."""
        got = self.registry.get_sample_value(name, labels)
        return float(got) if got is not None else 0.0

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class MetricsServer:
    """`/metrics`, `/healthz`, `/readyz` over plain HTTP/1.1 on asyncio (no extra thread, no framework)."""

    def __init__(self, metrics: Metrics, ready: Callable[[], bool], host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.ready = ready
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

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
            return (200, b"ready\n", "text/plain") if self.ready() else (503, b"not ready\n", "text/plain")
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
