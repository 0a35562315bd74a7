"""notify.webhook against a local HTTP server and notify.kafka through the real broker."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from responder.actuators import registry
from responder.actuators.base import ActuationContext, Publisher
from responder.actuators.retry import with_retries
from responder.auth import KeyRing
from responder.errors import PermanentActuationError
from responder.ingest.approvals import KafkaPublisher
from responder.ingest.kafka import ensure_topics

pytestmark = pytest.mark.integration
SECRET = b"webhook-secret"


def _webhook(url: str, **extra):
    actuator = registry.get("notify.webhook.post_message")
    params = actuator.params.model_validate({"url": url, "key_id": "oncall", "title": "key contained",
                                             "severity": "high", "fields": {"key": "AKIAIOSFODNN7EXAMPLE"},
                                             **extra})
    return actuator, params


def _ctx(key: str, publisher: Publisher | None = None) -> ActuationContext:
    return ActuationContext(aws=None, incident="inc-1", key=key, webhook_keys={"oncall": SECRET},  # type: ignore[arg-type]
                            publisher=publisher)


async def test_webhook_body_is_hmac_signed(receiver):
    """The receiver can verify the signature with the shared key and reads the incident and fields."""
    actuator, params = _webhook(receiver.url)
    result = await actuator.apply(params, _ctx("key-1"))
    headers, body = receiver.requests[0]
    assert KeyRing({"oncall": SECRET}).check(headers["responder-key-id"], headers["responder-signature"], body) is None
    doc = orjson.loads(body)
    assert (doc["incident"], doc["title"], doc["fields"]["key"]) == ("inc-1", "key contained", "AKIAIOSFODNN7EXAMPLE")
    assert headers["idempotency-key"] == "key-1"
    assert result.changed is True
    assert await actuator.verify(params, _ctx("key-1")) is True


async def test_webhook_sends_once_per_key(receiver):
    """A second apply with the same idempotency key posts nothing."""
    actuator, params = _webhook(receiver.url)
    await actuator.apply(params, _ctx("key-2"))
    again = await actuator.apply(params, _ctx("key-2"))
    assert again.changed is False
    assert len(receiver.requests) == 1


async def test_webhook_503_is_retried_then_delivered(receiver):
    """Two 503 answers are retried; the third attempt is delivered."""
    receiver.statuses = [503, 503]
    actuator, params = _webhook(receiver.url)
    result = await with_retries(lambda: actuator.apply(params, _ctx("key-3")), attempts=4, deadline=30,
                                initial=0.01, maximum=0.05)
    assert result.changed is True
    assert len(receiver.requests) == 3


async def test_webhook_4xx_and_missing_key_are_permanent(receiver):
    """A 403 answer, or a key id with no configured secret, fails as permanent."""
    receiver.statuses = [403]
    actuator, params = _webhook(receiver.url)
    with pytest.raises(PermanentActuationError, match="403"):
        await actuator.apply(params, _ctx("key-4"))
    _, unknown = _webhook(receiver.url, key_id="nobody")
    with pytest.raises(PermanentActuationError, match="no signing key"):
        await actuator.apply(unknown, _ctx("key-5"))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_webhook_redirect_is_not_followed_and_is_permanent(receiver, status):
    """A 3xx answer is a permanent failure; the POST is not re-sent (or turned into a GET) elsewhere."""
    receiver.statuses = [status]
    actuator, params = _webhook(receiver.url)
    with pytest.raises(PermanentActuationError, match=str(status)):
        await actuator.apply(params, _ctx(f"key-redirect-{status}"))
    assert len(receiver.requests) == 1
    assert receiver.gets == []
    assert await actuator.verify(params, _ctx(f"key-redirect-{status}")) is False

async def test_kafka_notification_reaches_the_topic_signed(kafka_bootstrap, unique):
    """notify.kafka publishes through the injected publisher; the record is keyed by incident and signed."""
    topic = f"notify-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    publisher = KafkaPublisher(kafka_bootstrap)
    await publisher.start()
    try:
        actuator = registry.get("notify.kafka.publish_message")
        params = actuator.params.model_validate({"topic": topic, "title": "host isolated", "key_id": "oncall",
                                                 "fields": {"instance": "i-0123456789abcdef0"}})
        ctx = _ctx("key-6", publisher=publisher)
        first = await actuator.apply(params, ctx)
        second = await actuator.apply(params, ctx)
    finally:
        await publisher.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        got = await asyncio.wait_for(consumer.getone(), 30)
        more = await consumer.getmany(timeout_ms=500)
    finally:
        await consumer.stop()
    headers = dict(got.headers)
    assert (first.changed, second.changed) == (True, False)
    assert sum(len(v) for v in more.values()) == 0
    assert got.key == b"inc-1"
    assert orjson.loads(got.value)["fields"] == {"instance": "i-0123456789abcdef0"}
    assert KeyRing({"oncall": SECRET}).check(headers["responder-key-id"].decode(),
                                             headers["responder-signature"].decode(), got.value) is None


async def test_kafka_notification_kafka_refuses_for_its_size_is_permanent_at_once(kafka_bootstrap, unique):
    """A Kafka notification too large to send fails permanently as `BrokerRefused` on one send, escalating at once."""
    topic = f"notify-big-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    publisher = KafkaPublisher(kafka_bootstrap, options={"max_request_size": 1_000})
    await publisher.start()
    try:
        actuator = registry.get("notify.kafka.publish_message")
        params = actuator.params.model_validate({"topic": topic, "title": "host isolated",
                                                 "fields": {"note": "x" * 2_000}})
        with pytest.raises(PermanentActuationError, match="refused") as raised:
            await actuator.apply(params, _ctx("key-9", publisher=publisher))
    finally:
        await publisher.stop()
    assert raised.value.code == "BrokerRefused"


async def test_kafka_notification_without_publisher_is_permanent():
    """With no publisher injected the step fails as permanent, naming what is missing."""
    actuator = registry.get("notify.kafka.publish_message")
    params = actuator.params.model_validate({"topic": "t", "title": "x"})
    with pytest.raises(PermanentActuationError, match="publisher"):
        await actuator.apply(params, _ctx("key-7"))


async def test_kafka_send_failure_is_transient():
    """A producer error (here a RuntimeError from the injected publisher) is retried as transient, not swallowed."""
    from responder.errors import TransientActuationError

    class Down:
        async def publish(self, topic, key, value, headers=()):
            raise RuntimeError("broker unreachable")

    actuator = registry.get("notify.kafka.publish_message")
    params = actuator.params.model_validate({"topic": "t", "title": "x"})
    with pytest.raises(TransientActuationError, match="broker unreachable"):
        await actuator.apply(params, _ctx("key-8", publisher=Down()))
    assert await actuator.verify(params, _ctx("key-8")) is False
