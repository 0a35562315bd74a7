"""The metrics endpoint against hostile clients: one that never reads its answer, one whose request line is huge."""

from __future__ import annotations

import asyncio
import socket

import pytest
from structlog.testing import capture_logs

from responder import metrics_server
from responder.metrics import Metrics
from responder.metrics_server import MetricsServer
from tests.http import http_request

_BODY = 16 * 1024 * 1024  # far more than the kernel's buffers on both ends hold for a client that reads nothing


async def test_a_scrape_whose_client_never_reads_is_dropped_not_held_for_ever(monkeypatch: pytest.MonkeyPatch):
    """A client asking /metrics with a tiny receive window that never reads held its connection and answer for ever."""
    monkeypatch.setattr(metrics_server, "WRITE_DEADLINE_S", 0.2, raising=False)
    metrics = Metrics()
    monkeypatch.setattr(metrics, "exposition", lambda: b"#" * _BODY)
    server = MetricsServer(metrics, lambda: True, "127.0.0.1", 0)
    port = await server.start()
    loop = asyncio.get_running_loop()
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    try:
        with capture_logs() as logs:
            await loop.sock_connect(client, ("127.0.0.1", port))
            await loop.sock_sendall(client, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            for _ in range(200):  # a bound on the wait, not a timing: the drop is awaited
                if any(e["event"] == "metrics_client_dropped" for e in logs):
                    break
                await asyncio.sleep(0.05)
        assert [e["event"] for e in logs if e["event"] == "metrics_client_dropped"] == ["metrics_client_dropped"]
        got = 0
        while True:  # what the client can still read ends early: the answer was cut, not flushed for ever
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(client, 1 << 20), 10)
            except ConnectionError:
                break
            if not chunk:
                break
            got += len(chunk)
        assert got < _BODY
        assert (await http_request(port, "/healthz"))[0] == 200
    finally:
        client.close()
        await server.stop()


async def test_a_request_line_over_the_reader_limit_is_answered_400():
    """A request line over 64 KiB escaped the handler (an unhandled ValueError, no answer); now a plain 400."""
    server = MetricsServer(Metrics(), lambda: True, "127.0.0.1", 0)
    port = await server.start()
    try:
        status, _ = await http_request(port, "/" + "a" * 70_000)
        assert status == 400
        assert (await http_request(port, "/healthz"))[0] == 200
    finally:
        await server.stop()
