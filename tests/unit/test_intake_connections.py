"""Raw sockets against a real intake server on 127.0.0.1: request-head deadline and connection bound."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from responder.intake import Intake
from responder.intake.server import serving
from tests.intake_kit import BEARER, FakeSender, corpus, intake_settings

TIMEOUT_S = 0.5
CAP_S = 60.0  # a safety cap on every wait, so a regression fails instead of hanging; never asserted on
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
OPENAPI = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"  # a 7 KiB answer: a few requests fill the buffers
FLOOD = 5000  # pipelined: ~35 MB of answers, 8 times the most Linux buffers on loopback (tcp_wmem's 4 MiB), so
# its connection can never drain its pipeline and go idle (uvicorn's keep-alive); about one 256 KiB read of heads


@pytest.fixture(name="port")
async def _port() -> AsyncIterator[int]:
    settings = intake_settings(intake_read_timeout_s=TIMEOUT_S, intake_max_connections=2)
    async with serving(Intake(settings, FakeSender())) as port:
        yield port


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server wrote before closing the connection (raises TimeoutError if it never closes)."""
    return await asyncio.wait_for(reader.read(), CAP_S)


@contextlib.asynccontextmanager
async def _trickling(writer: asyncio.StreamWriter, chunk: bytes) -> AsyncIterator[None]:
    """Write `chunk` every fifth of the timeout (each sooner than it) while the block runs; close the connection."""

    async def trickle() -> None:
        while True:
            await asyncio.sleep(TIMEOUT_S / 5)
            writer.write(chunk)
            await writer.drain()

    feeder = asyncio.create_task(trickle())
    try:
        yield
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        writer.close()


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
    async with _trickling(writer, b"x-pad: 1\r\n"):
        assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 408 ")


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


async def test_a_bare_crlf_after_a_response_does_not_hold_the_connection(port: int) -> None:
    """A CRLF after an answered request (which stops uvicorn's keep-alive timer) starts the head deadline: 408."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HEALTHZ)
        await asyncio.wait_for(reader.readuntil(b"ok\n"), CAP_S)
        writer.write(b"\r\n")
        assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 408 ")
    finally:
        writer.close()


@pytest.mark.parametrize("path", [b"/v1/events/nope", b"/not-a-route"])
async def test_an_answer_sent_before_the_body_arrived_closes_the_connection(port: int, path: bytes) -> None:
    """A request answered before its body was received (404 unknown source or route) is closed, not kept alive."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: 100000\r\n\r\n")
    async with _trickling(writer, b"x"):
        assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 404 ")


async def test_a_body_timeout_answers_408_and_closes_the_connection(port: int) -> None:
    """A body not received within intake_read_timeout_s is answered 408 slow-client, with connection: close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/events/dd HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                 b"authorization: Bearer " + BEARER.encode() + b"\r\ncontent-length: 1000\r\n\r\n{")
    try:
        answer = await _closed_by_server(reader)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"connection: close" in answer
        assert b"slow-client" in answer
    finally:
        writer.close()


class _SlowSender(FakeSender):
    delay_s = 2 * TIMEOUT_S

    async def send(self, topic: str, value: bytes, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> tuple[int, int]:
        await asyncio.sleep(self.delay_s)
        return await super().send(topic, value, key=key, headers=headers)


async def test_a_pipelined_head_is_timed_only_once_the_requests_ahead_are_answered() -> None:
    """A partial head pipelined behind a slow request (uvicorn stops reading meanwhile) is not cut off with 408."""
    body = corpus("splunk")
    post = (b"POST /v1/events/dd HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\nauthorization: Bearer "
            + BEARER.encode() + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    timeout_s, sender = 2 * TIMEOUT_S, _SlowSender()  # a head timed from its arrival would lapse before the answer;
    sender.delay_s = 2 * timeout_s  # timed from the answer, it has timeout_s to arrive, a margin on a loaded machine
    async with serving(Intake(intake_settings(intake_read_timeout_s=timeout_s), sender)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(post)
            await writer.drain()
            await asyncio.sleep(TIMEOUT_S / 5)  # the app has read the body: it no longer resumes reading
            writer.write(HEALTHZ + b"GET /hea")
            await writer.drain()
            await asyncio.sleep(TIMEOUT_S / 5)
            writer.write(b"lthz HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n")
            answers = await _closed_by_server(reader)
        finally:
            writer.close()
    assert answers.startswith(b"HTTP/1.1 202 "), answers
    assert answers.count(b"HTTP/1.1 200 ") == 2, answers


async def test_a_client_that_never_reads_its_answers_loses_its_connection() -> None:
    """A client that never reads its answers loses its connection after intake_read_timeout_s, freeing its slot."""
    settings = intake_settings(intake_read_timeout_s=TIMEOUT_S, intake_max_connections=1)
    async with serving(Intake(settings, FakeSender())) as port:
        with capture_logs() as logs:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))  # queued for accept before any new client below: it has the slot
            sock.setblocking(False)
            _reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(OPENAPI * FLOOD)  # never read
            try:
                served = await asyncio.wait_for(_served(port), CAP_S)
            finally:
                writer.transport.abort()
    assert served.startswith(b"HTTP/1.1 200")  # the only slot: the flooding connection's, freed
    # dropped for not reading, not by chance, by the stall timer with the setting (not a default)
    assert [e["timeout_s"] for e in logs if e["event"] == "intake_write_stalled"] == [TIMEOUT_S]


async def _served(port: int) -> bytes:
    """The first 200 answer to a new connection; while the flooding connection holds the slot (503), retries."""
    while True:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(HEALTHZ)
        answer = await asyncio.wait_for(r.read(12), CAP_S)
        w.close()
        if answer.startswith(b"HTTP/1.1 200"):
            return answer
        await asyncio.sleep(TIMEOUT_S)
