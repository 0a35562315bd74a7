"""A notification Kafka refuses for good (too large for its topic, an ACL) fails its step at once, permanently; one
Kafka did not acknowledge in time stays transient (retried): responder/actuators/notify/kafka.py."""

from __future__ import annotations

import pytest
from aiokafka.errors import MessageSizeTooLargeError, NodeNotReadyError

from responder.actuators.base import ActuationContext
from responder.actuators.notify.kafka import KafkaNotify, KafkaNotifyParams
from responder.errors import PermanentActuationError, TransientActuationError
from responder.ingest.approvals import KafkaPublisher


class _Producer:
    """An aiokafka producer whose every send raises `error`; `sends` counts them."""

    def __init__(self, error: Exception) -> None:
        self.error, self.sends = error, 0

    async def send_and_wait(self, *_: object, **__: object) -> None:
        self.sends += 1
        raise self.error


async def _publish(error: Exception) -> tuple[BaseException, int]:
    """Apply a notification through a KafkaPublisher whose producer raises `error`: what it raised, and the sends."""
    publisher = KafkaPublisher("127.0.0.1:1")
    await publisher.producer.stop()
    producer = _Producer(error)
    publisher.producer = producer  # type: ignore[assignment]
    publisher.deadline = 0.3
    params = KafkaNotifyParams(topic="responder.notifications", title="key contained")
    ctx = ActuationContext(aws=None, incident="inc-1", key="k-1", publisher=publisher)  # type: ignore[arg-type]
    with pytest.raises((PermanentActuationError, TransientActuationError)) as raised:
        await KafkaNotify().apply(params, ctx)
    return raised.value, producer.sends


async def test_a_record_kafka_refuses_for_its_size_fails_the_step_permanently_after_one_send() -> None:
    """A MessageSizeTooLarge send fails the step permanently as BrokerRefused after one send, escalating at once."""
    error, sends = await _publish(MessageSizeTooLargeError())
    assert isinstance(error, PermanentActuationError)
    assert error.code == "BrokerRefused"
    assert sends == 1


async def test_a_broker_that_does_not_answer_in_time_stays_transient() -> None:
    """A node not ready until the publisher's deadline: transient (the step retries it), as before."""
    error, _ = await _publish(NodeNotReadyError())
    assert isinstance(error, TransientActuationError)
    assert error.code == "BrokerUnavailable"
