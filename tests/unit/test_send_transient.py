"""A send that fails transiently (a broker down: NodeNotReadyError, no leader, a timeout) is sent again, not fatal;
a permanent failure (too large) is raised at once (responder/ingest/clients.py `send_retrying`)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import (
    KafkaTimeoutError,
    LeaderNotAvailableError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    RequestTimedOutError,
)
from structlog.testing import capture_logs

from responder.errors import BrokerRefused, BrokerUnavailable
from responder.ingest.approvals import KafkaPublisher
from responder.ingest.clients import transient_send
from tests.fakes import MetadataClient


class _Producer:
    """An aiokafka producer whose next sends raise `failures`, one each, then succeed."""

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures, self.sent, self.client = failures, [], MetadataClient()

    async def send_and_wait(self, topic: str, value: bytes, **kwargs: Any) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((topic, value))


async def test_a_send_that_failed_while_the_leader_was_down_is_sent_again() -> None:
    """A send failing while the leader is down is retried with fresh metadata, logging `kafka_send_retried`."""
    publisher = KafkaPublisher("127.0.0.1:1")
    real = publisher.producer
    fake = _Producer([NodeNotReadyError("node 2"), LeaderNotAvailableError(), KafkaTimeoutError()])
    publisher.producer = fake  # type: ignore[assignment]
    try:
        with capture_logs() as logs:
            await publisher.publish("notifications", b"k", b"v")
        assert fake.sent == [("notifications", b"v")]
        assert [e["event"] for e in logs].count("kafka_send_retried") == 3
        assert fake.client.refreshed == 3
    finally:
        await real.stop()


async def test_a_permanent_send_error_is_raised_at_once() -> None:
    """A record too large for the broker is not sent again: the error is raised on the first failure."""
    publisher = KafkaPublisher("127.0.0.1:1")
    real = publisher.producer
    fake = _Producer([MessageSizeTooLargeError(), MessageSizeTooLargeError()])
    publisher.producer = fake  # type: ignore[assignment]
    try:
        with pytest.raises(BrokerUnavailable, match="Kafka refused a record to notifications") as raised:
            await publisher.publish("notifications", b"k", b"v")
        assert isinstance(raised.value.__cause__, MessageSizeTooLargeError)
        assert isinstance(raised.value, BrokerRefused)  # for good: a notification step fails at once
        assert len(fake.failures) == 1  # one attempt only
    finally:
        await real.stop()


def test_transient_send_errors_are_told_from_permanent_ones() -> None:
    """Retriable aiokafka errors and a delivery timeout are transient; a size refusal or a bug is not."""
    assert transient_send(NodeNotReadyError())
    assert transient_send(RequestTimedOutError())
    assert transient_send(KafkaTimeoutError())
    assert not transient_send(MessageSizeTooLargeError())
    assert not transient_send(ValueError("bug"))
