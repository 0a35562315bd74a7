"""Whether a consumer group member shares its group with others: the partitions of its topics it was not given.

Outside fleet mode (`RESPONDER_CHANGELOG_TOPIC` unset) a replica assumes it is alone in its group: its incident
state lives in its own timeline, its decisions consumer shares one group with the other replicas' (a decision for a
step parked elsewhere is refused), and its quotas count only its own steps. A strict subset of the topics' partitions
says another member holds the rest (responder/service/partitions.py reports it; docs/fleet.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from aiokafka import TopicPartition


def others_own(consumer: Any, topics: Sequence[str], assigned: Collection[TopicPartition]) -> list[TopicPartition]:
    """The partitions of `topics` in the consumer's metadata that are not in `assigned`, the member's whole
    assignment (aiokafka's eager rebalance hands the whole of it to each callback): another member's. Sorted."""
    mine = set(assigned)
    return [tp for topic in topics for p in sorted(consumer.partitions_for_topic(topic) or ())
            if (tp := TopicPartition(topic, p)) not in mine]
