"""Kafka in and out (aiokafka only here): a manual-commit consumer group and the dead-letter producer."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaConnectionError, KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from responder.ingest.security import check_connection
from responder.models.event import RawRecord

log = structlog.get_logger(__name__)

DLQ_MAX_VALUE = 1_000_000 - 64 * 1024  # room for the original headers and ours under a 1 MiB message


async def _start_with_retry(client: Any, deadline: float) -> None:
    """aiokafka does not retry bootstrap itself; we do, for `deadline` seconds."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(KafkaConnectionError),
        stop=stop_after_delay(deadline),
        wait=wait_exponential_jitter(initial=0.1, max=2.0),
        reraise=True,
    ):
        with attempt:
            await client.start()


def to_raw(msg: Any) -> RawRecord:
    """An aiokafka ConsumerRecord as a RawRecord."""
    return RawRecord(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value if msg.value is not None else b"",
        headers=tuple((k, v if v is not None else b"") for k, v in (msg.headers or ())),
        timestamp_ms=msg.timestamp,
    )


async def all_partitions(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from a full metadata fetch. (`consumer.partitions_for_topic` only knows
    subscribed topics: on Apache Kafka it returns None before `assign`, which would assign nothing.)"""
    cluster = await consumer._client.fetch_all_metadata()
    missing = [t for t in topics if not cluster.partitions_for_topic(t)]
    if missing:
        log.warning("topics_missing", topics=missing)
    return [TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]


OnAssigned = Callable[[list[TopicPartition]], Awaitable[None]]
OnRevoked = Callable[[list[TopicPartition]], Awaitable[None]]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Tells the service which partitions it now owns, so it can rebuild state before consuming them."""

    def __init__(self, on_assigned: OnAssigned | None, on_revoked: OnRevoked | None = None) -> None:
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions_revoked", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in revoked))
        if self.on_revoked is not None:
            await self.on_revoked(sorted(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions_assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
        if self.on_assigned is not None:
            await self.on_assigned(sorted(assigned))


class KafkaIngest:
    """The consumer group and the producer for dead letters; commits only what the caller says is durable."""

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
    ) -> None:
        self.topics = list(topics)
        options = dict(options or {})  # kafka_client_options(settings): TLS / SASL
        self.manual_assignment = manual_assignment
        self._listener = _Rebalance(on_assigned, on_revoked)
        # co-partitioned: partition p of every alert topic goes to one member (it owns changelog partition p)
        assignors = {"partition_assignment_strategy": (RangePartitionAssignor,)} if co_partitioned else {}
        self.deadletter_topic = deadletter_topic
        self.max_batch = max_batch
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 6),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **assignors,
            **options,
        )
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, **options)

    async def start(self, deadline: float = 30.0) -> None:
        """Connect both clients, retrying bootstrap."""
        await _start_with_retry(self.producer, deadline)
        if not self.manual_assignment:
            self.consumer.subscribe(self.topics, listener=self._listener)
        await _start_with_retry(self.consumer, deadline)
        if self.manual_assignment:
            await self._assign_all()
        log.info("consumer_started", topics=self.topics, manual_assignment=self.manual_assignment)

    async def _assign_all(self) -> None:
        """Own every partition without group membership (a single instance; offsets still go to the group)."""
        partitions = await all_partitions(self.consumer, self.topics)
        self.consumer.assign(partitions)
        await self._listener.on_partitions_assigned(partitions)

    async def poll(self, timeout_ms: int = 200) -> dict[TopicPartition, list[RawRecord]]:
        """The next batch, by partition, in offset order."""
        got = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_batch)
        return {tp: [to_raw(m) for m in msgs] for tp, msgs in got.items() if msgs}

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching these partitions (their state is not restored, or their actuators are slow)."""
        self.consumer.pause(*[tp for tp in partitions if tp in self.consumer.assignment()])

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch these partitions again."""
        self.consumer.resume(*[tp for tp in partitions if tp in self.consumer.assignment()])

    def assigned(self) -> set[TopicPartition]:
        """The partitions this member owns now."""
        return set(self.consumer.assignment())

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the next offsets to read (last handled + 1)."""
        if not offsets:
            return
        owned = self.consumer.assignment()
        mine = {tp: off for tp, off in offsets.items() if tp in owned}  # a revoked partition is not ours to commit
        if not mine:
            return
        try:
            await self.consumer.commit(mine)
        except (CommitFailedError, IllegalStateError) as exc:
            # a rebalance took the partitions: the records are redelivered to their new owner and deduplicated
            log.warning("offset_commit_failed", error=str(exc))

    async def deadletter(self, record: RawRecord, reason: str, detail: str) -> None:
        """Send the original bytes, headers and the reason to the dead-letter topic; waits for the ack."""
        headers = [
            *record.headers,
            ("dlq.reason", reason.encode()),
            ("dlq.detail", detail[:2000].encode(errors="replace")),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
            ("dlq.time", str(int(time.time() * 1000)).encode()),
        ]
        value = record.value
        if len(value) > DLQ_MAX_VALUE:  # keep the copy under the broker's 1 MiB default; the original stays put
            headers += [("dlq.truncated", str(len(value)).encode()),
                        ("dlq.sha256", hashlib.sha256(value).hexdigest().encode())]
            value = value[:DLQ_MAX_VALUE]
        await self.producer.send_and_wait(self.deadletter_topic, value, key=record.key, headers=headers)
        log.warning("record_deadlettered", reason=reason, detail=detail[:200], topic=record.topic,
                    partition=record.partition, offset=record.offset)

    async def stop(self) -> None:
        """Leave the group and close."""
        for client in (self.consumer, self.producer):
            try:
                await client.stop()
            except KafkaError as exc:  # pragma: no cover - best effort on shutdown
                log.warning("kafka_stop_failed", error=str(exc))


async def publish(
    bootstrap: str,
    topic: str,
    values: Sequence[bytes],
    *,
    key: bytes | None = None,
    headers: Sequence[tuple[str, bytes]] = (),
    options: Mapping[str, Any] | None = None,
) -> None:
    """Send records and wait for their acks (demo, tests, tabletop injects, replays)."""
    await check_connection(bootstrap, options or {})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **(options or {}))
    try:
        await _start_with_retry(producer, 15.0)
        for value in values:
            await producer.send_and_wait(topic, value, key=key, headers=list(headers))
    finally:
        await producer.stop()


async def ensure_topics(bootstrap: str, names: Sequence[str], partitions: int = 3, *,
                        options: Mapping[str, Any] | None = None) -> None:
    """Create topics that do not exist yet (any Kafka; an existing topic is left alone)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(options or {}))
    await _start_with_retry(admin, 15.0)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()
