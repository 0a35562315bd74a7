"""Raw sockets against a real intake server on 127.0.0.1: request-head deadline and connection bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from responder.intake import Intake
from responder.intake.server import serving
from tests.intake_kit import FakeSender, intake_settings

TIMEOUT_S = 0.5
CAP_S = 15.0  # a safety cap on every wait, so a regression fails instead of hanging; never asserted on
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(name="port")
async def _port() -> AsyncIterator[int]:
    settings = intake_settings(intake_read_timeout_s=TIMEOUT_S, intake_max_connections=2)
    async with serving(Intake(settings, FakeSender())) as port:
        yield port


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server wrote before closing the connection (raises TimeoutError if it never closes)."""
    return await asyncio.wait_for(reader.read(), CAP_S)


async def test_a_client_that_sends_nothing_is_answered_408_and_disconnected(port: int) -> None:
    """A connection that sends no request head within intake_read_timeout_s gets 408 and is closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 408 ")
    finally:
        writer.close()


async def test_a_client_that_trickles_header_lines_is_disconnected(port: int) -> None:
    """Header lines arriving one by one, each sooner than the timeout, do not extend the head's deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/events/open HTTP/1.1\r\nHost: x\r\n")

    async def trickle() -> None:
        while True:
            await asyncio.sleep(TIMEOUT_S / 5)
            writer.write(b"x-pad: 1\r\n")
            await writer.drain()

    feeder = asyncio.create_task(trickle())
    try:
        assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 408 ")
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        writer.close()


async def test_a_kept_alive_connection_times_its_next_request_head_too(port: int) -> None:
    """After one answered request, the next request's head on the same connection has the same deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HEALTHZ)
        assert (await asyncio.wait_for(reader.readuntil(b"ok\n"), CAP_S)).startswith(b"HTTP/1.1 200 ")
        writer.write(b"POST /v1/events/open HTTP/1.1\r\n")  # then nothing
        assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 408 ")
    finally:
        writer.close()


async def test_connections_over_intake_max_connections_are_answered_503_and_closed(port: int) -> None:
    """With intake_max_connections open, one more is answered 503 and closed; a freed slot is usable again."""
    held = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEALTHZ)
        await asyncio.wait_for(reader.readuntil(b"ok\n"), CAP_S)  # served, and kept alive
        held.append((reader, writer))
    extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await _closed_by_server(extra_reader)).startswith(b"HTTP/1.1 503 ")
    finally:
        extra_writer.close()
    held[0][1].close()
    await held[0][1].wait_closed()
    async with asyncio.timeout(CAP_S):
        while True:  # until the server noticed the freed slot
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HEALTHZ)
            answer = await reader.read(12)
            writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                break
            await asyncio.sleep(0.05)
    held[1][1].close()
