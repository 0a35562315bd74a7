"""Raw-socket helpers for tests against a real intake server on 127.0.0.1 (`responder.intake.server.serving`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from responder.intake import Intake
from responder.intake.server import serving
from tests.intake_kit import FakeSender, intake_settings

CAP_S = 60.0  # a safety cap on every wait, so a regression fails instead of hanging; never asserted on
POST = b"POST /v1/events/open HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
CHUNKED = POST + b"transfer-encoding: chunked\r\n"


@asynccontextmanager
async def served(**settings: Any) -> AsyncIterator[tuple[Intake, int]]:
    """An intake (intake_kit's sources, these settings) served on a free port of 127.0.0.1; stopped on exit."""
    intake = Intake(intake_settings(**settings), FakeSender())
    async with serving(intake) as port:
        yield intake, port


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """What the server wrote until it closed the connection (a reset ends it, with what was read before)."""
    got = bytearray()
    try:
        while block := await asyncio.wait_for(reader.read(65536), CAP_S):
            got += block
    except ConnectionError:
        pass
    return bytes(got)


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One response (its head and `content-length` body); b"" when the server closed the connection first."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CAP_S)
    except (asyncio.IncompleteReadError, ConnectionError):
        return b""
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await asyncio.wait_for(reader.readexactly(length), CAP_S)


async def exchange(port: int, *parts: bytes) -> bytes:
    """Send `parts` in turn on a new connection, then what the server wrote until it closed the connection.

    A reset (the server closed with bytes of ours unread) stops the sending and ends the reading: what arrived
    before it is kept, as the kernel keeps it (an asyncio StreamReader would raise the reset instead)."""
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), CAP_S)
        with contextlib.suppress(ConnectionError):
            for part in parts:
                await asyncio.wait_for(loop.sock_sendall(sock, part), CAP_S)
        got = bytearray()
        with contextlib.suppress(ConnectionError):
            while block := await asyncio.wait_for(loop.sock_recv(sock, 65536), CAP_S):
                got += block
        return bytes(got)


async def healthy(port: int) -> bool:
    """/healthz answers 200 on a new connection."""
    answer = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n")
    return answer.startswith(b"HTTP/1.1 200 ")


def rejected(intake: Intake, reason: str, source: str = "unknown") -> float:
    """responder_intake_rejected_total for this reason and source."""
    return intake.metrics.value("responder_intake_rejected_total", source=source, reason=reason)


async def logged(logs: list[dict[str, Any]], *events: str) -> None:
    """Until one of `events` is in the captured `logs` (structlog.testing.capture_logs); wrap in a timeout."""
    while not any(entry["event"] in events for entry in logs):
        await asyncio.sleep(0.01)
