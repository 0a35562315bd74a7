"""A fleet's alert consumer gives partition p of every alert topic to one member, even when the alert topics have
different partition counts (one grown while the fleet runs): that member alone owns changelog partition p."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from responder.ingest.kafka import KafkaIngest

TOPICS = ["security.alerts", "ml.drift"]


def _cluster(counts: dict[str, int]) -> Any:
    return SimpleNamespace(partitions_for_topic=lambda topic: set(range(counts[topic])) if topic in counts else None)


def _members(count: int) -> dict[str, ConsumerProtocolMemberMetadata]:
    return {f"member-{i}": ConsumerProtocolMemberMetadata(0, list(TOPICS), b"") for i in range(count)}


async def _fleet_assignor() -> Any:
    """The assignor a fleet member's alert consumer uses (`co_partitioned`)."""
    ingest = KafkaIngest("127.0.0.1:9", TOPICS, "g", "dlq", co_partitioned=True)
    await ingest.consumer.stop()
    await ingest.producer.stop()
    [assignor] = ingest.consumer._partition_assignment_strategy
    return assignor


def _owners(assignment: dict[str, Any]) -> dict[tuple[str, int], list[str]]:
    out: dict[tuple[str, int], list[str]] = {}
    for member, given in assignment.items():
        for topic, partitions in given.assignment:
            for partition in partitions:
                out.setdefault((topic, partition), []).append(member)
    return out


@pytest.mark.parametrize("members", [1, 2, 3, 5])
async def test_partition_p_of_every_alert_topic_goes_to_one_member_whatever_their_counts(members: int) -> None:
    """Partition p of every alert topic goes to one member, whatever their partition counts, each assigned once."""
    assignor = await _fleet_assignor()
    counts = {"security.alerts": 12, "ml.drift": 6}
    owners = _owners(assignor.assign(_cluster(counts), _members(members)))
    assert sorted(owners) == sorted((t, p) for t, n in counts.items() for p in range(n))
    assert all(len(given) == 1 for given in owners.values())
    for p in range(6):
        assert owners[("security.alerts", p)] == owners[("ml.drift", p)]


@pytest.mark.parametrize(("members", "partitions"), [(1, 3), (2, 6), (3, 6), (4, 6), (5, 12)])
async def test_with_equal_counts_it_assigns_as_range_does(members: int, partitions: int) -> None:
    """With equal partition counts the assignment is exactly that of aiokafka's range assignor."""
    assignor = await _fleet_assignor()
    cluster, group = _cluster(dict.fromkeys(TOPICS, partitions)), _members(members)
    assert assignor.name == RangePartitionAssignor.name
    assert _owners(assignor.assign(cluster, group)) == _owners(RangePartitionAssignor.assign(cluster, group))


async def test_a_member_not_reading_a_topic_is_given_none_of_it() -> None:
    """A member not subscribed to a topic is given none of its partitions, each going to a member that reads it."""
    assignor = await _fleet_assignor()
    group = {"member-0": ConsumerProtocolMemberMetadata(0, ["security.alerts"], b""),
             "member-1": ConsumerProtocolMemberMetadata(0, list(TOPICS), b"")}
    owners = _owners(assignor.assign(_cluster({"security.alerts": 4, "ml.drift": 4}), group))
    assert sorted(owners) == sorted((t, p) for t in TOPICS for p in range(4))
    assert all(given == ["member-1"] for (topic, _), given in owners.items() if topic == "ml.drift")
    assert all(len(given) == 1 for given in owners.values())
