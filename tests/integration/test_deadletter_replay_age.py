"""A dead-letter replay through the real broker does not publish a record its destination would delete at once: a
record stamped older than the target's `retention.ms` is counted `too_old`, the recent one is sent."""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaProducer

from responder.ingest.admin import ensure_topics
from responder.ingest.deadletter import replay_deadletters
from responder.ingest.dlq import DLQ_MAX_BYTES
from responder.ingest.dlqsend import send_deadletter
from responder.models.event import RawRecord
from tests.integration.harness import read_all

pytestmark = pytest.mark.integration
DAY_MS = 86_400_000


async def test_a_dead_letter_older_than_the_target_s_retention_is_not_replayed(kafka_bootstrap, topics, unique):
    """To a topic keeping a day: the record stamped two days back is too_old, not sent; the minute-old one is sent."""
    dlq, target = topics["deadletter"], f"replayed-{unique}"
    await ensure_topics(kafka_bootstrap, [target], partitions=1,
                        configs={"retention.ms": str(DAY_MS), "message.timestamp.type": "CreateTime"})
    now = int(time.time() * 1000)
    old = RawRecord(topic=topics["alerts"], partition=0, offset=3, value=b"{old", headers=(("trace", b"t"),),
                    timestamp_ms=now - 2 * DAY_MS)
    recent = old.model_copy(update={"offset": 4, "value": b"{recent", "timestamp_ms": now - 60_000})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for record in (old, recent):
            await send_deadletter(producer, dlq, record, "not_json", "not JSON", DLQ_MAX_BYTES)
    finally:
        await producer.stop()
    result = await replay_deadletters(kafka_bootstrap, dlq, to_topic=target, idle_seconds=1.5)
    again = await replay_deadletters(kafka_bootstrap, dlq, to_topic=target, idle_seconds=1.5)
    assert (result.scanned, result.replayed, result.too_old) == (2, 1, 1)
    assert (again.already, again.too_old) == (1, 1)  # the too-old one was never noted as sent
    [sent] = await read_all(kafka_bootstrap, target, 1)
    assert sent.value == b"{recent"
