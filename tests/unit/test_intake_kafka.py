"""The intake in front of a real aiokafka client (no broker): what Kafka can never take is 413, not 503."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.testclient import TestClient

from responder.ingest.producer import AckedProducer
from responder.intake import Intake, create_app
from tests.intake_kit import BEARER, FakeSender, corpus, intake_settings

HEADERS = {"content-type": "application/json", "authorization": f"Bearer {BEARER}"}


class _KnownTopics(AckedProducer):
    """A real AIOKafkaProducer, not connected, whose topic metadata counts as known (as with a live broker)."""

    async def start(self) -> None:
        if self._producer is None:
            self._producer = self._new()

            async def _known(topic: str) -> None:
                return None

            self._producer.client._wait_on_metadata = _known
            self._healthy = True


def _body(size: int) -> bytes:
    doc: dict[str, Any] = orjson.loads(corpus("splunk"))
    doc["result"]["_raw"] = ""
    doc["result"]["_raw"] = "x" * (size - len(orjson.dumps(doc)))
    body = orjson.dumps(doc)
    assert len(body) == size
    return body


def test_a_record_kafka_refuses_for_its_size_is_413_not_a_retryable_503() -> None:
    """A body under intake_max_body_bytes that the client refuses as too large is a permanent 413, no Retry-After."""
    settings = intake_settings()
    producer = _KnownTopics("127.0.0.1:1")  # aiokafka's default max_request_size: 1 MiB, the body limit
    with TestClient(create_app(Intake(settings, producer))) as client:
        answer = client.post("/v1/events/dd", content=_body(settings.intake_max_body_bytes - 100), headers=HEADERS)
        assert producer.connected  # a refusal for size is not an outage: /readyz stays ready
    assert answer.status_code == 413
    assert answer.json()["reason"] == "too-large"
    assert "retry-after" not in answer.headers


async def test_the_intake_producer_takes_a_body_at_the_limit_with_its_key_and_headers() -> None:
    """Sized by max_value_bytes, the client accepts the largest body the intake takes, with its key and headers."""
    settings = intake_settings()
    body = _body(settings.intake_max_body_bytes)
    sender = FakeSender()
    with TestClient(create_app(Intake(settings, sender))) as client:
        assert client.post("/v1/events/dd", content=body, headers=HEADERS).status_code == 202
    _, value, key, headers = sender.sent[0]
    client_for_intake = AckedProducer("127.0.0.1:1", max_value_bytes=settings.intake_max_body_bytes)._new()
    try:
        client_for_intake._serialize(key, value, headers)  # raises MessageSizeTooLargeError when it cannot fit
    finally:
        await client_for_intake.client.close()
