"""A tiny raw HTTP/1.1 client for tests of the service's own endpoints."""

from __future__ import annotations

import asyncio


async def http_request(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """Send one request to 127.0.0.1:port; (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body
