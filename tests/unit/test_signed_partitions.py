"""A signed-record consumer with a manual assignment (a fleet member's decisions, `kafka_manual_assignment`) is
widened to the partitions added to its topic while it runs, keeping where the others stand."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.ingest import approvals as module
from responder.ingest import widening
from responder.ingest.approvals import ApprovalIngest
from responder.ingest.kafka import KafkaIngest
from responder.models.event import RawRecord

TOPIC = "approvals"


class _Consumer:
    """The parts of an AIOKafkaConsumer `_widen` uses: the client's metadata, the assignment, the positions."""

    def __init__(self, partitions: set[int], assigned: list[int], standing: dict[int, int]) -> None:
        self._client = SimpleNamespace(cluster=SimpleNamespace(partitions_for_topic=lambda t: partitions))
        self.assigned = {TopicPartition(TOPIC, p) for p in assigned}
        self.standing = {TopicPartition(TOPIC, p): o for p, o in standing.items()}
        self.assigns: list[list[TopicPartition]] = []
        self.seeks: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigns.append(sorted(partitions))
        self.assigned = set(partitions)
        self.standing = {}  # aiokafka starts every partition of a new assignment afresh

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def paused(self) -> set[TopicPartition]:
        return set()


@pytest.fixture(name="ingest")
async def _ingest(monkeypatch: pytest.MonkeyPatch) -> Any:
    ingest = ApprovalIngest("127.0.0.1:9", TOPIC, None, manual_assignment=True)
    await ingest.consumer.stop()
    monkeypatch.setattr(widening, "positions", lambda consumer: (object(), dict(consumer.standing)))
    return ingest


def _tp(partition: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition)


async def test_a_partition_added_to_the_topic_is_assigned_and_the_others_keep_their_positions(ingest: Any) -> None:
    """A partition added to the topic is read from its start while partitions 0 and 1 keep their positions."""
    ingest.consumer = consumer = _Consumer({0, 1, 2}, [0, 1], {0: 7, 1: 3})
    ingest._ends = {_tp(0): 5, _tp(1): 0}
    ingest._widen()
    assert consumer.assigns == [[_tp(0), _tp(1), _tp(2)]]
    assert consumer.seeks == {_tp(0): 7, _tp(1): 3}
    assert not ingest.replayed(RawRecord(topic=TOPIC, partition=2, offset=0, value=b"{}"))
    assert ingest.replayed(RawRecord(topic=TOPIC, partition=0, offset=4, value=b"{}"))


async def test_an_assigned_partition_with_no_position_yet_is_not_sought(ingest: Any) -> None:
    """A partition the consumer has not fetched from yet has no position to keep: it starts where it would have."""
    ingest.consumer = consumer = _Consumer({0, 1}, [0], {})
    ingest._widen()
    assert consumer.assigns == [[_tp(0), _tp(1)]]
    assert consumer.seeks == {}


async def test_the_same_partitions_leave_the_assignment_alone(ingest: Any) -> None:
    """No partition added (or no metadata for the topic yet): nothing is assigned again, no position is reset."""
    ingest.consumer = consumer = _Consumer({0, 1}, [0, 1], {0: 2})
    ingest._widen()
    consumer._client.cluster.partitions_for_topic = lambda t: None
    ingest._widen()
    assert consumer.assigns == []
    assert consumer.seeks == {}


async def test_a_topic_missing_at_the_start_is_read_once_it_is_created(ingest: Any) -> None:
    """A manual assignment of a topic missing at the start takes its partitions once they appear."""
    ingest.consumer = consumer = _Consumer({0}, [], {})
    ingest._widen()
    assert consumer.assigns == [[_tp(0)]]


async def test_a_manual_assignment_reads_the_topics_partitions_every_30_seconds_a_group_every_5_minutes() -> None:
    """A manual assignment's consumer reads topic metadata every 30 s; a group's keeps aiokafka's 5 minutes."""
    for group, age in ((None, 30_000), ("g.approvals", 300_000)):
        ingest = ApprovalIngest("127.0.0.1:9", TOPIC, group, manual_assignment=group is None)
        assert ingest.consumer._client._metadata_max_age_ms == age
        await ingest.consumer.stop()


async def test_a_member_started_after_the_partition_was_added_reads_its_earlier_records_again(
        ingest: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member started after a partition was added reads its earlier records again, only later ones being new."""
    ingest.consumer = consumer = _Consumer({0, 1}, [], {})
    ends = {_tp(0): 4, _tp(1): 2}

    async def _nothing(client: Any, deadline: float, **_: Any) -> None:  # wait_set_by, which every caller names
        return None

    async def _all(client: Any, topics: list[str]) -> list[TopicPartition]:
        return [_tp(0), _tp(1)]

    async def _end_offsets(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: ends[tp] for tp in partitions}

    monkeypatch.setattr(module, "_start_with_retry", _nothing)
    monkeypatch.setattr(module, "all_partitions", _all)
    consumer.end_offsets = _end_offsets  # type: ignore[attr-defined]
    await ingest.start()
    ingest._widen()
    assert consumer.assigns == [[_tp(0), _tp(1)]]  # the start's assignment only
    assert ingest.replayed(RawRecord(topic=TOPIC, partition=1, offset=1, value=b"{}"))
    assert not ingest.replayed(RawRecord(topic=TOPIC, partition=1, offset=2, value=b"{}"))


async def test_the_alert_consumers_keep_the_clients_metadata_age() -> None:
    """Only the signed-record consumers read metadata every 30 s; the alert consumer keeps aiokafka's 5 minutes."""
    ingest = KafkaIngest("127.0.0.1:9", ["alerts"], "g", "dlq", co_partitioned=True)
    assert ingest.consumer._client._metadata_max_age_ms == 300_000
    await ingest.consumer.stop()
    await ingest.producer.stop()
