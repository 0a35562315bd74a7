"""Raw sockets against a real intake server on 127.0.0.1: a chunked body's trailers are capped as the head is and
never reach the app; a client hanging up before its body is in is no internal error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from responder.intake import Intake
from responder.intake.headcap import MAX_HEAD_BYTES, MAX_HEADERS
from tests.intake_kit import corpus
from tests.intake_wire_kit import CAP_S, CHUNKED, POST, exchange, healthy, logged, read_response, rejected
from tests.intake_wire_kit import served as serving_intake

PIECE = 16384


@pytest.fixture(name="served")
async def _served() -> AsyncIterator[tuple[Intake, int]]:
    async with serving_intake() as intake_port:
        yield intake_port


def _chunked(body: bytes, trailers: bytes, head: bytes = CHUNKED) -> bytes:
    return head + b"\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n" + trailers + b"\r\n"


@pytest.mark.parametrize("tail", [
    b"x-trailer: " + b"a" * (6 * MAX_HEAD_BYTES),  # never ends: past the cap by more than one read (256 KiB)
    b"".join(b"t-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n",
])
async def test_trailers_over_64_kib_or_100_fields_are_refused_431(served: tuple[Intake, int], tail: bytes) -> None:
    """Trailers over 64 KiB (one endless line) or 100 fields are answered 431 and counted; the server stays healthy."""
    intake, port = served
    with capture_logs() as logs:
        pieces = [tail[at:at + PIECE] for at in range(0, len(tail), PIECE)]  # the server may cut in between
        answer = await exchange(port, CHUNKED + b"\r\n2\r\n{}\r\n0\r\n", *pieces)
        assert answer.startswith(b"HTTP/1.1 431 ")
        await asyncio.wait_for(logged(logs, "intake_client_disconnected"), CAP_S)  # the app saw its request end
    assert (rejected(intake, "header-too-large"), rejected(intake, "internal-error", "open")) == (1, 0)
    assert await healthy(port)


async def test_trailers_never_reach_the_app_as_headers(served: tuple[Intake, int]) -> None:
    """A trailer is discarded, not added to the request's headers: a JSON content-type sent only as one is 415."""
    _, port = served
    request = _chunked(corpus("splunk"), b"content-type: application/json\r\n",
                       b"POST /v1/events/open HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n")
    assert (await exchange(port, request)).startswith(b"HTTP/1.1 415 ")


async def test_a_head_and_its_trailers_are_capped_apart_on_every_request(served: tuple[Intake, int]) -> None:
    """93 header fields and 11 trailers, twice on one connection, are served twice: each part is counted afresh."""
    _, port = served
    fields = b"".join(b"x-%d: 1\r\n" % i for i in range(90))
    request = _chunked(corpus("splunk"), b"".join(b"t-%d: 1\r\n" % i for i in range(11)), CHUNKED + fields)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses = []
    try:
        for _ in range(2):
            writer.write(request)
            statuses.append((await read_response(reader))[9:12])
    finally:
        writer.close()
    assert statuses == [b"202", b"202"]


async def test_a_client_hanging_up_mid_body_is_no_internal_error(served: tuple[Intake, int]) -> None:
    """Content-Length 100, 5 bytes sent, then closed: one info intake_client_disconnected, no 500, nothing counted."""
    intake, port = served
    with capture_logs() as logs:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(POST + b"content-length: 100\r\n\r\n{\"a\":")
        await writer.drain()
        writer.close()
        await asyncio.wait_for(logged(logs, "intake_client_disconnected", "intake_internal_error"), CAP_S)
    assert [e["log_level"] for e in logs if e["event"] == "intake_client_disconnected"] == ["info"]
    assert [e for e in logs if e["log_level"] in ("warning", "error")] == []
    assert rejected(intake, "internal-error", "open") == 0
    assert intake.metrics.value("responder_intake_requests_total", source="open", status="500") == 0
