"""`caught_up` (responder/ingest/coordinator.py) reads aiokafka's private state: on Apache Kafka, a group member and
a manual assignment are caught up only once each partition, empty ones too, was fetched from and read to its end."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from responder.ingest.coordinator import caught_up
from responder.ingest.kafka import ensure_topics
from responder.sandbox.fixtures import on_apache_kafka

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]
kafka_bootstrap = on_apache_kafka()


async def _read_until_caught_up(consumer: AIOKafkaConsumer, topic: str) -> list[bool]:
    """Poll until `caught_up`; what it said after each poll that had not yet returned the one record."""
    said, read = [], 0
    async with asyncio.timeout(30):
        while not (read and caught_up(consumer)):
            got = await consumer.getmany(timeout_ms=200)
            read += sum(map(len, got.values()))
            if not read:
                said.append(caught_up(consumer))
    return said


@pytest.mark.parametrize("manual", [False, True], ids=["group-member", "manual-assignment"])
async def test_caught_up_once_every_partition_empty_or_not_was_read_to_its_high_watermark(
        kafka_bootstrap, unique, manual: bool) -> None:
    """Not before the one record (partition 0 of 3) was read; then caught up, the empty partitions' watermarks 0."""
    topic = f"caught-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x", partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(*(() if manual else (topic,)), bootstrap_servers=kafka_bootstrap,
                                group_id=f"g-{unique}", auto_offset_reset="earliest", enable_auto_commit=False)
    assert not caught_up(consumer)  # not started
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        if manual:
            consumer.assign(tps)
        assert not any(await _read_until_caught_up(consumer, topic))
        assert [consumer.highwater(tp) for tp in tps] == [1, 0, 0]
        consumer.pause(tps[1])
        assert not caught_up(consumer)  # a paused partition is not read on
    finally:
        await consumer.stop()
    assert not caught_up(consumer)
