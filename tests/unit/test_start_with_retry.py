"""`_start_with_retry`: a client whose start fails is closed whatever the error, so a retried restore (a fleet
partition's producer, every few seconds) never leaves started-but-unclosed clients behind."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, UnsupportedVersionError
from structlog.testing import capture_logs

from responder.errors import BrokerUnreachable
from responder.ingest.clients import CONNECT_TIMEOUT, _start_with_retry


class _Client:
    """A client whose start raises `error`; counts its stops."""

    def __init__(self, error: Exception) -> None:
        self.error, self.stops = error, 0
        self._client = None

    async def start(self) -> None:
        raise self.error

    async def stop(self) -> None:
        self.stops += 1


@pytest.mark.parametrize("error", [UnsupportedVersionError("InitProducerId"), ValueError("bad option")])
async def test_a_start_that_fails_otherwise_closes_the_client_and_raises_its_own_error(error) -> None:
    """An error that is not a connection failure is raised as it is, after the client was stopped."""
    client = _Client(error)
    with pytest.raises(type(error)):
        await _start_with_retry(client, deadline=0.2, wait_set_by=CONNECT_TIMEOUT)
    assert client.stops == 1


async def test_no_answer_within_the_deadline_closes_the_client_and_says_where() -> None:
    """A connection failure is retried until the deadline, then the client is stopped and BrokerUnreachable raised."""
    client = _Client(KafkaConnectionError("no route"))
    with pytest.raises(BrokerUnreachable, match=r"no answer in 0\.2s"):
        await _start_with_retry(client, deadline=0.2, wait_set_by=CONNECT_TIMEOUT)
    assert client.stops == 1


async def test_a_cancelled_start_closes_the_client() -> None:
    """A start cancelled while it waits stops the client, then the cancellation goes on."""
    started = asyncio.Event()

    class _Waiting(_Client):
        async def start(self) -> None:
            started.set()
            await asyncio.Event().wait()

    client = _Waiting(ValueError("never raised"))
    task = asyncio.create_task(_start_with_retry(client, deadline=30, wait_set_by=CONNECT_TIMEOUT))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.stops == 1


async def test_each_failed_attempt_is_a_warning_and_the_setting_the_caller_names_is_named() -> None:
    """Each failed attempt is a `kafka_connect_failed` warning; BrokerUnreachable names what the caller says."""
    with capture_logs() as logs, pytest.raises(BrokerUnreachable, match="RESPONDER_KAFKA_CONNECT_TIMEOUT sets the"):
        await _start_with_retry(_Client(KafkaConnectionError("no route")), deadline=0.05, wait_set_by=CONNECT_TIMEOUT)
    assert ("kafka_connect_failed", "warning") in [(e["event"], e["log_level"]) for e in logs]


async def test_a_quiet_start_logs_its_attempts_at_debug_and_names_what_sets_its_wait() -> None:
    """A `quiet` start logs failed attempts at debug level, and BrokerUnreachable names `wait_set_by`."""
    client = _Client(KafkaConnectionError("no route"))
    with capture_logs() as logs, pytest.raises(BrokerUnreachable) as raised:
        await _start_with_retry(client, deadline=0.05, quiet=True, wait_set_by="the mirror's own timeout")
    assert "the mirror's own timeout sets the wait" in str(raised.value)
    assert "RESPONDER_KAFKA_CONNECT_TIMEOUT" not in str(raised.value)
    assert [e for e in logs if e["log_level"] != "debug"] == []
    assert client.stops == 1
