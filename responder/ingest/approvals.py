"""Approvals over Kafka (aiokafka only here): publish requests, consume signed decisions, send a decision."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from responder.auth import signed_headers
from responder.bounds import PUBLISH_DEADLINE
from responder.errors import BrokerRefused, BrokerUnavailable
from responder.ingest.clients import (
    _start_with_retry,
    fixed_wait,
    publish,
    send_retrying,
    stop_consumer,
    transient_send,
)
from responder.ingest.coordinator import commit_unless_dead, fresh, polled
from responder.ingest.raw import to_raw
from responder.ingest.unreadable import getmany_past
from responder.ingest.widening import GROUP_METADATA_MAX_AGE_MS, MANUAL_METADATA_MAX_AGE_MS, all_partitions, widen
from responder.models.approval import ApprovalDecision
from responder.models.event import RawRecord
from responder.tracing import outgoing

log = structlog.get_logger(__name__)


class KafkaPublisher:
    """The engine's Publisher over one idle-cheap producer (acks=all, waits for each ack)."""

    deadline = PUBLISH_DEADLINE

    def __init__(self, bootstrap: str, *, options: Mapping[str, Any] | None = None) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, **(options or {}))

    async def start(self, deadline: float = 30.0, *, wait_set_by: str | None = None) -> None:
        """Connect, retrying bootstrap for `deadline` s: what `wait_set_by` sets (a setting, for BrokerUnreachable to
        name), else a fixed wait (`fixed_wait`)."""
        await _start_with_retry(self.producer, deadline,
                                wait_set_by=wait_set_by or fixed_wait("the publisher", deadline))

    async def publish(self, topic: str, key: bytes, value: bytes,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Send and wait for the ack; sent again after a transient error (a broker down: `send_retrying`), for at most
        `deadline` seconds from the first attempt; then BrokerUnavailable, or at once BrokerRefused (a subclass) on a
        permanent error. A send given up at the deadline may still land later (its readers deduplicate, as they do a
        resend)."""
        try:
            async with asyncio.timeout(self.deadline):
                await send_retrying(self.producer, topic, value, key=key, headers=headers, deadline=self.deadline)
        except (KafkaError, TimeoutError) as exc:
            if isinstance(exc, KafkaError) and not transient_send(exc):
                raise BrokerRefused(f"Kafka refused a record to {topic}: {type(exc).__name__}: {exc}") from exc
            raise BrokerUnavailable(f"Kafka did not acknowledge a record to {topic} within {self.deadline:g}s: "
                                    f"{type(exc).__name__}: {exc}") from exc

    async def stop(self) -> None:
        """Close the producer."""
        await self.producer.stop()


class ApprovalIngest:
    """A manual-commit consumer of the decisions topic (its own group: every decision is handled once), or of the
    operator requests topic.

    Partitions added to the topic while it runs are read too (docs/fleet.md): the client reads the topic's metadata
    every `metadata_max_age_ms` (a group's client every `group_metadata_max_age_ms`); a group's assignment follows it
    (aiokafka rejoins), and a manual assignment (a fleet member, `kafka_manual_assignment`) is widened to them at the
    next poll (`_widen`).
    """

    metadata_max_age_ms = MANUAL_METADATA_MAX_AGE_MS  # how often a manual assignment's client reads the partitions
    group_metadata_max_age_ms = GROUP_METADATA_MAX_AGE_MS  # a group's (responder/ingest/widening.py says why)

    def __init__(self, bootstrap: str, topic: str, group_id: str | None, *, session_timeout_ms: int = 10_000,
                 manual_assignment: bool = False, options: Mapping[str, Any] | None = None,
                 group_instance_id: str | None = None) -> None:
        self.topic = topic
        self.manual_assignment = manual_assignment
        self.reads_all = group_id is None  # a fleet member: every decision, from the first, at each start
        self.commits = 0  # offset commits that went through, over its rebuilds (responder/service/consumers.py)
        self._ends: dict[TopicPartition, int] = {}  # then the end offsets when it started
        self._make = functools.partial(
            AIOKafkaConsumer,
            *(() if manual_assignment else (topic,)), bootstrap_servers=bootstrap, group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 6),
            metadata_max_age_ms=self.metadata_max_age_ms if manual_assignment else self.group_metadata_max_age_ms,
            **(options or {}), group_instance_id=None if manual_assignment else group_instance_id,
        )
        self.consumer = self._make()

    async def start(self, deadline: float = 30.0, *, wait_set_by: str | None = None) -> None:
        """Join the group, retrying bootstrap for `deadline` s: what `wait_set_by` sets, else a fixed wait."""
        await _start_with_retry(self.consumer, deadline,
                                wait_set_by=wait_set_by or fixed_wait(f"the {self.topic} consumer", deadline))
        if self.manual_assignment:  # one instance owns every partition; offsets still go to the group
            assigned = await all_partitions(self.consumer, [self.topic])
            self.consumer.assign(assigned)
            if self.reads_all:
                self._ends = dict(await self.consumer.end_offsets(list(assigned)))
        log.info("approvals_consumer_started", topic=self.topic)

    start_consumer = start  # all there is to start (a rebuild's second half, responder/service/consumers.py)

    async def rebuild(self, deadline: float = 30.0, *, wait_set_by: str | None = None) -> None:
        """Close this consumer (its group coordinator died: responder/ingest/coordinator.py) and start a new one with
        the same arguments: it reads on from the group's committed offsets."""
        await self.renew()
        await self.start(deadline, wait_set_by=wait_set_by)

    async def renew(self) -> None:
        """Close the consumer and create a new one with the same arguments, not started (`start`)."""
        self.consumer = await fresh(self.consumer, self._make)

    async def poll(self, timeout_ms: int = 200) -> dict[TopicPartition, list[RawRecord]]:
        """The next decisions, by partition; CoordinatorDied when the consumer's group coordinator is dead."""
        if self.manual_assignment:
            self._widen()
        got = await polled(self.consumer, self.topic, lambda: getmany_past(  # `unreadable` ones too
            self.consumer, timeout_ms=timeout_ms, max_records=100))
        return {tp: [to_raw(m) for m in msgs] for tp, msgs in got.items() if msgs}

    def _widen(self) -> None:
        """Assign the partitions added to the topic since the last look (the client's metadata, read every
        `metadata_max_age_ms`), keeping where each assigned one stands (`widen`). An added partition is read from
        its first record (a group's committed offset, where it has one): all of it is new, never read again
        (`replayed`: no end offset was read for it at the start). Not while the group's coordinator is unknown
        (`widen` waits for it)."""
        added = widen(self.consumer, [self.topic])
        if added:
            log.info("signed_partitions_added", topic=self.topic, partitions=[tp.partition for tp in added])

    def replayed(self, record: RawRecord) -> bool:
        """Whether a member that reads every decision read this one again: it was on the topic before the member
        started (handled then by whichever member owned its incident). A partition added since is not."""
        return record.offset < self._ends.get(TopicPartition(record.topic, record.partition), 0)

    def read_to(self) -> dict[TopicPartition, int] | None:
        """For a member that reads every decision (and commits none), the end offsets it had at its start: caught up
        to them, a rebuilt one settled (responder/service/consumers.py); else None."""
        return dict(self._ends) if self.reads_all else None

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit after the decisions' timeline entries are durable."""
        owned = self.consumer.assignment()
        mine = {tp: off for tp, off in offsets.items() if tp in owned}
        if not mine or self.reads_all:  # a fleet member reads every decision, commits none
            return
        try:
            if await commit_unless_dead(self.consumer, mine):
                self.commits += 1  # progress: a rebuild limit counts from here (responder/service/consumers.py)
        except (CommitFailedError, IllegalStateError) as exc:  # redelivered decisions are refused as decided
            log.warning("approval_commit_failed", error=str(exc))

    async def stop(self) -> None:
        """Leave the group."""
        await stop_consumer(self.consumer)


async def send_decision(bootstrap: str, topic: str, decision: ApprovalDecision, key_id: str, secret: bytes, *,
                        options: Mapping[str, Any] | None = None) -> None:
    """Sign the decision's canonical bytes and publish it keyed by incident (the CLI's path), in a trace of its own."""
    value = decision.canonical()
    await publish(bootstrap, topic, [value], key=decision.incident.encode(),
                  headers=[*signed_headers(key_id, secret, value), *outgoing()], options=options)
