"""The fleet's partition assignor (aiokafka only under ingest): partition p of every alert topic to one member.

A fleet member given alert partition p owns changelog partition p (docs/fleet.md), so partition p of every alert
topic must go to the same member. aiokafka's range assignor splits each topic on its own: when the alert topics'
partition counts differ (created so, or one grown while the fleet runs) it gives partition 3 of one topic to a member
and partition 3 of another to a second member, and both restore, write and fence changelog partition 3.
`CoPartitionedAssignor` splits the partition numbers (0 to the largest count) into ranges as range splits one topic,
and gives each member every topic's partitions in its range. With equal counts that is range's assignment, so it
keeps range's protocol name: replicas of an older version join the same group, and the group leader's assignor
assigns for all (with an older leader, unequal counts are split per topic as before).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import structlog
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

log = structlog.get_logger(__name__)


class CoPartitionedAssignor(RangePartitionAssignor):  # type: ignore[misc]  # aiokafka is untyped
    """Range over partition numbers, not per topic: partition p of every topic goes to one member."""

    name = "range"  # the same assignment as range's whenever it is well-defined for a fleet (module docstring)
    version = 0

    @classmethod
    def assign(cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata],
               ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = sorted({topic for meta in members.values() for topic in meta.subscription})
        parts = {topic: sorted(cluster.partitions_for_topic(topic) or ()) for topic in topics}
        owner = _ranges(sorted({p for ps in parts.values() for p in ps}), sorted(members))
        given: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for topic, partitions in parts.items():
            readers = sorted(m for m, meta in members.items() if topic in meta.subscription)
            for p in partitions:
                member = owner[p]
                if topic not in members[member].subscription:  # a member reading other topics (not a fleet's)
                    member = readers[p % len(readers)]
                    log.warning("copartition_broken", topic=topic, partition=p, member=member)
                given[member][topic].append(p)
        return {member: ConsumerProtocolMemberAssignment(cls.version, sorted(given[member].items()), b"")
                for member in members}


def _ranges(numbers: list[int], members: list[str]) -> dict[int, str]:
    """Each partition number's member: consecutive ranges, the first `len(numbers) % len(members)` one longer (as
    range lays out one topic)."""
    if not members:
        return {}
    each, extra = divmod(len(numbers), len(members))
    owner, start = {}, 0
    for i, member in enumerate(members):
        length = each + (1 if i < extra else 0)
        owner.update(dict.fromkeys(numbers[start:start + length], member))
        start += length
    return owner
