"""A manual assignment: its topics' partitions at its start, widened to those added while it runs (aiokafka only
under ingest).

A consumer without a group (a fleet member's decisions, `kafka_manual_assignment`) is assigned its topics'
partitions once, at its start (`all_partitions`, from a full metadata fetch); its client reads the topics' metadata
every `metadata_max_age_ms` after that, and `widen` assigns what that metadata shows and the assignment lacks
(docs/fleet.md, "Partitions added to a running fleet's topics").
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from responder.ingest.coordinator import coordinator_ready
from responder.ingest.unreadable import positions

MANUAL_METADATA_MAX_AGE_MS = 30_000  # how often a consumer without a group reads its topics' partitions
GROUP_METADATA_MAX_AGE_MS = 300_000  # a group's: aiokafka's default. Read more often, a broker failure's changing
# metadata makes rejoins more likely, and aiokafka's coordinator can die in one ("Unexpected error during
# coordination AssertionError": tests/faults/test_kafka_cluster.py)

log = structlog.get_logger(__name__)


async def all_partitions(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from a full metadata fetch. (`consumer.partitions_for_topic` only knows
    subscribed topics: on Apache Kafka it returns None before `assign`, which would assign nothing.)"""
    cluster = await consumer._client.fetch_all_metadata()
    missing = [t for t in topics if not cluster.partitions_for_topic(t)]
    if missing:
        log.warning("topics_missing", topics=missing)
    return [TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]


def widen(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    """Assign the partitions of `topics` that the client's metadata shows and the assignment lacks; the added ones.

    `assign` starts every partition afresh and forgets its pause, so each partition the consumer has a position in
    is sought back to it, and each that was paused (backpressure, or held until its state is in) is paused again:
    nothing is skipped or read a second time, and no paused partition is fetched. An added partition is read from
    its group's committed offset, or from its first record (`auto_offset_reset="earliest"`). Nothing while the
    group's coordinator is unknown (a broker down, the group still loading): aiokafka's coordination task would die
    of an assignment changed under its lookup (`coordinator_ready`, docs/faults.md); the next poll looks again."""
    if not coordinator_ready(consumer):
        return []
    cluster = consumer._client.cluster
    assigned = consumer.assignment()
    added = sorted(tp for topic in topics for p in cluster.partitions_for_topic(topic) or ()
                   if (tp := TopicPartition(topic, p)) not in assigned)
    if not added:
        return []
    paused = consumer.paused()
    _, standing = positions(consumer)
    consumer.assign([*assigned, *added])
    for tp, offset in standing.items():
        consumer.seek(tp, offset)
    if paused:
        consumer.pause(*paused)
    return added
