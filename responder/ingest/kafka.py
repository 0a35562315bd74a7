"""Kafka in (aiokafka only under ingest): a manual-commit consumer group and the dead-letter producer.

Starting and stopping clients and `publish` are in `responder.ingest.clients`, `ensure_topics` in
`responder.ingest.admin`, `to_raw` in `responder.ingest.raw` (both re-exported here), the rebalance listener in
`responder.ingest.rebalance`, sending a dead-letter copy in `responder.ingest.dlqsend`, a manual assignment's
partitions in `responder.ingest.widening`, and the partitions' positions and lag in `responder.ingest.positions`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from responder.bounds import SEND_DEADLINE
from responder.ingest.admin import ensure_topics
from responder.ingest.clients import _start_with_retry, fixed_wait, publish, stop_consumer
from responder.ingest.coordinator import commit_unless_dead, fresh, polled
from responder.ingest.copartition import CoPartitionedAssignor
from responder.ingest.dlq import DLQ_MAX_BYTES
from responder.ingest.dlqsend import send_deadletter
from responder.ingest.fetchwait import FetchWait
from responder.ingest.lease import MembershipLease
from responder.ingest.positions import Positions
from responder.ingest.raw import to_raw
from responder.ingest.rebalance import OnAssigned, OnRevoked, Rebalance
from responder.ingest.unreadable import getmany_past
from responder.ingest.widening import GROUP_METADATA_MAX_AGE_MS, MANUAL_METADATA_MAX_AGE_MS, all_partitions, widen
from responder.models.event import RawRecord

__all__ = ["KafkaIngest", "OnAssigned", "OnRevoked", "_start_with_retry", "ensure_topics", "publish",
           "stop_consumer", "to_raw"]

log = structlog.get_logger(__name__)

ALERTS = "the alert ingest"  # its clients' fixed wait's name (`fixed_wait`) when no setting sets it


class KafkaIngest:
    """The consumer group and the producer for dead letters; commits only what the caller says is durable.

    A manual assignment (`kafka_manual_assignment`: no group) reads the topics' metadata every
    `metadata_max_age_ms` and is widened to the partitions added since at its next poll (`_widen`); a group's
    assignment follows them through aiokafka's rejoin, its client reading them every `group_metadata_max_age_ms`.
    """

    metadata_max_age_ms = MANUAL_METADATA_MAX_AGE_MS
    group_metadata_max_age_ms = GROUP_METADATA_MAX_AGE_MS
    deadletter_deadline = SEND_DEADLINE  # seconds a dead-letter copy is sent again after transient errors

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        deadletter_topic: str,
        *,
        session_timeout_ms: int = 10_000,
        max_batch: int = 500,
        on_assigned: OnAssigned | None = None,
        on_revoked: OnRevoked | None = None,
        manual_assignment: bool = False,
        co_partitioned: bool = False,
        options: Mapping[str, Any] | None = None,
        deadletter_max_bytes: int = DLQ_MAX_BYTES,
        group_instance_id: str | None = None,
        rebalance_timeout_ms: int | None = None,
        max_poll_interval_ms: int = 300_000,
        fetch_max_wait_ms: int = 500,
        fetch_idle_wait_ms: int | None = None,
    ) -> None:
        self.topics = list(topics)
        options = dict(options or {})  # kafka_client_options(settings): TLS / SASL
        self.manual_assignment = manual_assignment
        # a fleet member's lease on its partitions (responder/ingest/lease.py): none without a group (a manual
        # assignment), nor outside a fleet (one replica owns every partition: no other acts for them)
        group_rebalance_ms = max(session_timeout_ms, rebalance_timeout_ms or session_timeout_ms)  # aiokafka's below
        self.lease = MembershipLease(session_timeout_ms / 1000, group_rebalance_ms / 1000) \
            if co_partitioned and not manual_assignment else None
        self._listener = Rebalance(on_assigned, on_revoked, self.lease)
        # co-partitioned: partition p of every alert topic goes to one member (it owns changelog partition p), even
        # when the alert topics' partition counts differ (responder/ingest/copartition.py)
        assignors = {"partition_assignment_strategy": (CoPartitionedAssignor,)} if co_partitioned else {}
        self.deadletter_topic = deadletter_topic
        self.max_batch = max_batch
        self.deadletter_max_bytes = deadletter_max_bytes
        self._make = functools.partial(
            AIOKafkaConsumer,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            # how long a live member may take in on_partitions_revoked (finishing the chunks in hand) before the
            # group moves its partitions without it; aiokafka's default is the session timeout
            rebalance_timeout_ms=group_rebalance_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 6),
            max_poll_interval_ms=max_poll_interval_ms,  # kafka_max_poll_interval_ms (docs/fleet.md, "Deadlines")
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=fetch_max_wait_ms,
            metadata_max_age_ms=self.metadata_max_age_ms if manual_assignment else self.group_metadata_max_age_ms,
            **assignors,
            group_instance_id=None if manual_assignment else group_instance_id,
            **options,
        )
        self.consumer = self._make()
        if self.lease is not None:
            self.lease.watch(self.consumer)  # its coordinator is wrapped at its first assignment (lease.py)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, **options,
                                         max_request_size=max(1024 * 1024, deadletter_max_bytes + 64 * 1024))
        self.positions = Positions()
        self.held: set[TopicPartition] = set()  # paused until their state is in: `resume` leaves them paused
        self.commits = 0  # offset commits that went through, over its rebuilds (responder/service/consumers.py)
        self._fetch_waits = (fetch_max_wait_ms, fetch_idle_wait_ms)
        self.fetch_wait = self._fetch_wait()

    def _fetch_wait(self) -> FetchWait | None:
        busy_ms, idle_ms = self._fetch_waits
        return None if idle_ms is None else FetchWait(  # responder/ingest/fetchwait.py
            self.consumer, busy_ms=busy_ms, idle_ms=idle_ms)

    async def start(self, deadline: float = 30.0, *, wait_set_by: str | None = None) -> None:
        """Connect both clients, retrying bootstrap for `deadline` s: what `wait_set_by` sets (a setting, for
        BrokerUnreachable to name), else a fixed wait (`fixed_wait`)."""
        await _start_with_retry(self.producer, deadline, wait_set_by=wait_set_by or fixed_wait(ALERTS, deadline))
        await self.start_consumer(deadline, wait_set_by=wait_set_by)

    async def renew(self) -> None:
        """Close the consumer (its group coordinator died: responder/ingest/coordinator.py) and create a new one with
        the same arguments and rebalance callbacks, not started (`start_consumer`: it joins, or is assigned, and
        reads on from the committed offsets). The caller has let its partitions go first, as in a revocation."""
        self.consumer = await fresh(self.consumer, self._make)
        if self.lease is not None:
            self.lease.watch(self.consumer)  # a new member: nothing held until its group assigns it partitions
        self.held.clear()
        self.fetch_wait = self._fetch_wait()

    async def start_consumer(self, deadline: float = 30.0, *, wait_set_by: str | None = None) -> None:
        """Start the consumer alone (the producer runs on): it joins its group, or assigns itself its partitions."""
        if not self.manual_assignment:
            self.consumer.subscribe(self.topics, listener=self._listener)
        await _start_with_retry(self.consumer, deadline, wait_set_by=wait_set_by or fixed_wait(ALERTS, deadline))
        if self.manual_assignment:
            await self._assign_all()
        log.info("consumer_started", topics=self.topics, manual_assignment=self.manual_assignment)

    async def _assign_all(self) -> None:
        """Own every partition without group membership (a single instance; offsets still go to the group)."""
        partitions = await all_partitions(self.consumer, self.topics)
        self.consumer.assign(partitions)
        await self._listener.on_partitions_assigned(partitions)

    async def poll(self, timeout_ms: int = 200) -> dict[TopicPartition, list[RawRecord]]:
        """The next batch, by partition, in offset order (a record the client cannot parse: `unreadable`);
        CoordinatorDied when the consumer's group coordinator is dead."""
        if self.manual_assignment:
            await self._widen()
        got = await polled(self.consumer, "alerts", lambda: getmany_past(
            self.consumer, timeout_ms=timeout_ms, max_records=self.max_batch))
        if self.fetch_wait is not None:
            self.fetch_wait.observe(sum(map(len, got.values())), paused=bool(self.consumer.paused() - self.held))
        self.positions.polled(got)
        return {tp: [to_raw(m) for m in msgs] for tp, msgs in got.items() if msgs}

    async def _widen(self) -> None:
        """Assign the alert partitions added since the last look (`widen`: the others keep their positions and their
        pauses) and hold them (paused, before any await) until the assignment callback has their state in, as at the
        start: in a fleet, restored from the changelog (docs/fleet.md)."""
        added = widen(self.consumer, self.topics)
        if added:
            self.hold(added)
            log.info("alert_partitions_added", partitions=[f"{tp.topic}:{tp.partition}" for tp in added])
            await self._listener.on_partitions_assigned(added)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching these partitions for a while (their actuators are slow)."""
        self.consumer.pause(*[tp for tp in partitions if tp in self.consumer.assignment()])

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch these partitions again, except those held (see `hold`)."""
        self.consumer.resume(*[tp for tp in partitions if tp in self.consumer.assignment() and tp not in self.held])

    def hold(self, partitions: Sequence[TopicPartition]) -> None:
        """Pause these partitions until `release`, whatever `resume` is asked meanwhile (their state is not in)."""
        self.held.update(partitions)
        self.pause(partitions)

    def release(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch held partitions again (their state is in)."""
        self.held.difference_update(partitions)
        self.resume(partitions)

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Partitions revoked: not held; their positions wait for the new assignment (`reassigned`). aiokafka revokes
        every partition at each rebalance (eagerly), also those it gives straight back."""
        self.held.difference_update(partitions)
        self.positions.revoked(partitions)

    def reassigned(self, partitions: Sequence[TopicPartition]) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """The new assignment: of the partitions revoked since the last one, those it leaves out (their positions
        forgotten: no lag of theirs until fetched again) and those it gives back (their positions kept)."""
        return self.positions.reassigned(partitions)

    def assigned(self) -> set[TopicPartition]:
        """The partitions this member owns now."""
        return set(self.consumer.assignment())

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the high watermark, per owned partition fetched from at least once."""
        return self.positions.lag(self.consumer)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the next offsets to read (last handled + 1)."""
        if not offsets:
            return
        owned = self.consumer.assignment()
        mine = {tp: off for tp, off in offsets.items() if tp in owned}  # a revoked partition is not ours to commit
        if not mine:
            return
        try:
            if await commit_unless_dead(self.consumer, mine):
                self.commits += 1  # progress: a rebuild limit counts from here (responder/service/consumers.py)
        except (CommitFailedError, IllegalStateError) as exc:
            # a rebalance took the partitions: the records are redelivered to their new owner and deduplicated
            log.warning("offset_commit_failed", error=str(exc))

    async def deadletter(self, record: RawRecord, reason: str, detail: str) -> None:
        """Send a copy that fits (see `responder.ingest.dlq`) with the reason; waits for the ack, sent again after
        transient errors. A copy refused for good is replaced by the minimal one; an ACL refusing the topic is
        TopicRefused; a broker gone past the deadline raises, nothing committed (`send_deadletter`)."""
        await send_deadletter(self.producer, self.deadletter_topic, record, reason, detail, self.deadletter_max_bytes,
                              deadline=self.deadletter_deadline)

    async def stop(self) -> None:
        """Leave the group and close (the lease, if any, ended first: nothing of the partitions is written after)."""
        if self.lease is not None:
            self.lease.stop()
        for client in (self.consumer, self.producer):
            try:
                await stop_consumer(client) if client is self.consumer else await client.stop()
            except KafkaError as exc:  # pragma: no cover - best effort on shutdown
                log.warning("kafka_stop_failed", error=str(exc))
