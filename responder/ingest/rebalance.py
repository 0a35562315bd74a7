"""The consumer group's rebalance listener (`Rebalance`): tells the service which partitions it gained or lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition

from responder.ingest.lease import MembershipLease

log = structlog.get_logger(__name__)

OnAssigned = Callable[[list[TopicPartition]], Awaitable[None]]
OnRevoked = Callable[[list[TopicPartition]], Awaitable[None]]


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Tells the service which partitions it now owns, so it can rebuild state before consuming them."""

    def __init__(self, on_assigned: OnAssigned | None, on_revoked: OnRevoked | None = None,
                 lease: MembershipLease | None = None) -> None:
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.lease = lease  # a group member's: renewed by each assignment from its group

    async def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions_revoked", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in revoked))
        if self.on_revoked is not None:
            await self.on_revoked(sorted(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions_assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
        if self.lease is not None:
            self.lease.assigned()
        if self.on_assigned is not None:
            await self.on_assigned(sorted(assigned))
