"""On a real broker, two fleet members' alert consumers in one group split alert topics of different partition
counts by partition number: partition p of every alert topic goes to one member (it alone owns changelog partition
p). Before, the range assignor split each topic on its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from responder.ingest.kafka import KafkaIngest, ensure_topics
from responder.sandbox.fixtures import on_apache_kafka

pytestmark = pytest.mark.integration
kafka_bootstrap = on_apache_kafka()  # the broker aiokafka meets in production, when Java is present


@pytest.fixture(name="members")
async def _members(kafka_bootstrap: str, unique: str) -> AsyncIterator[tuple[list[str], list[KafkaIngest]]]:
    """Two started members of one group reading a 4-partition and a 2-partition alert topic, stopped after."""
    topics = [f"big-{unique}", f"small-{unique}"]
    await ensure_topics(kafka_bootstrap, topics[:1], partitions=4)
    await ensure_topics(kafka_bootstrap, [*topics[1:], f"dlq-{unique}"], partitions=2)
    members = [KafkaIngest(kafka_bootstrap, topics, f"g-{unique}", f"dlq-{unique}", co_partitioned=True,
                           session_timeout_ms=6000) for _ in range(2)]
    try:
        for member in members:
            await member.start()
        yield topics, members
    finally:
        for member in members:
            await member.stop()


async def test_members_split_alert_topics_of_different_counts_by_partition_number(members) -> None:
    """Members own each partition of both alert topics once, the same partition number of both on one member."""
    topics, group = members
    everything = {(t, p) for t, n in zip(topics, (4, 2), strict=True) for p in range(n)}
    async with asyncio.timeout(60):
        while True:
            await asyncio.gather(*(m.poll(timeout_ms=100) for m in group))
            owned = [{(tp.topic, tp.partition) for tp in m.assigned()} for m in group]
            if all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == everything:
                break
    for p in (0, 1):
        assert [m for m, mine in enumerate(owned) if (topics[0], p) in mine] == \
               [m for m, mine in enumerate(owned) if (topics[1], p) in mine]
