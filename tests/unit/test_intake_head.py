"""Raw sockets against a real intake server on 127.0.0.1: the request head's size cap, and the answers sent before a
request is read (408, 414, 431, 503, uvicorn's 400) counted in responder_intake_rejected_total."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from responder.intake import Intake
from responder.intake.headcap import MAX_HEAD_BYTES, MAX_HEADERS
from tests.intake_wire_kit import CAP_S, POST, exchange, healthy, read_all, read_response, rejected, served


@pytest.fixture(name="served")
async def _served() -> AsyncIterator[tuple[Intake, int]]:
    async with served(intake_read_timeout_s=2.0, intake_max_connections=1) as intake_port:
        yield intake_port


@pytest.mark.parametrize(("request_bytes", "status", "reason"), [
    (POST + b"x-big: " + b"a" * (MAX_HEAD_BYTES + 4096), b"431", "header-too-large"),  # one header that never ends
    (b"GET /healthz?" + b"a" * (MAX_HEAD_BYTES + 4096), b"414", "uri-too-long"),  # a URL that never ends
    (POST + b"".join(b"x-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n", b"431", "header-too-large"),
    (b"NOT HTTP\r\n\r\n", b"400", "invalid-http"),
])
async def test_an_oversized_head_is_refused_and_the_server_stays_healthy(
        served: tuple[Intake, int], request_bytes: bytes, status: bytes, reason: str) -> None:
    """A head over 64 KiB, or over 100 fields, is answered 431 (414 for the URL), closed and counted."""
    intake, port = served
    assert (await exchange(port, request_bytes)).startswith(b"HTTP/1.1 " + status + b" ")
    assert rejected(intake, reason) == 1
    assert await healthy(port)


async def test_a_head_within_the_cap_is_served_even_after_a_larger_body(served: tuple[Intake, int]) -> None:
    """A head just under the cap is served; so is one pipelined behind a body far over the cap, read with its end."""
    _, port = served
    near = b"x-big: " + b"a" * (MAX_HEAD_BYTES - 1024) + b"\r\n"
    assert (await exchange(port, b"GET /healthz HTTP/1.1\r\nconnection: close\r\n" + near + b"\r\n")).startswith(
        b"HTTP/1.1 200 ")
    body = b"x" * (3 * MAX_HEAD_BYTES)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:  # the next head's start is written with the body's end; its rest once the body is answered (all read)
        writer.write(POST + b"content-length: %d\r\n\r\n" % len(body) + body + b"GET /healthz HTTP/1.1\r\n")
        first = await read_response(reader)
        writer.write(b"Host: x\r\nconnection: close\r\n\r\n")
        second = await read_all(reader)
    finally:
        writer.close()
    assert first.startswith(b"HTTP/1.1 422 ")
    assert b"not-json" in first
    assert second.startswith(b"HTTP/1.1 200 ")


async def test_fifty_keep_alive_requests_of_five_headers_are_all_served(served: tuple[Intake, int]) -> None:
    """50 requests of 5 header fields on one connection are all answered 200: each head is counted afresh."""
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses = []
    try:
        for _ in range(50):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-a: 1\r\nx-b: 2\r\nx-c: 3\r\nx-d: 4\r\n\r\n")
            statuses.append((await read_response(reader))[9:12])
    finally:
        writer.close()
    assert statuses == [b"200"] * 50


async def test_a_head_timeout_and_a_connection_over_the_bound_are_counted(served: tuple[Intake, int]) -> None:
    """A bodiless 408 (head too slow) and 503 (past intake_max_connections) count: slow-client, too-many-connections."""
    intake, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n")  # then nothing
        await asyncio.wait_for(reader.readuntil(b"ok\n"), CAP_S)  # served: this connection holds the only slot
        assert (await exchange(port, b"")).startswith(b"HTTP/1.1 503 ")
        assert (await read_all(reader)).startswith(b"HTTP/1.1 408 ")
    finally:
        writer.close()
    assert (rejected(intake, "too-many-connections"), rejected(intake, "slow-client")) == (1, 1)


async def test_a_content_length_of_5000_digits_is_no_500(served: tuple[Intake, int],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A Content-Length of 5,000 zeros then 2 is read as 2 (here 422 undecodable), and uvicorn logs no traceback."""
    _, port = served
    with caplog.at_level(logging.INFO):
        answer = await exchange(port, POST + b"content-length: " + b"0" * 5000 + b"2\r\nconnection: close\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 422 ")
    assert b"undecodable" in answer
    assert not [r for r in caplog.records if r.exc_info]
