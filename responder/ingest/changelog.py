"""The state changelog (aiokafka only here): one compacted topic, co-partitioned with the alert topics.

Partition p of the changelog holds the engine state of input partition p: one record per incident keyed
by incident id (value: that incident's `EngineSnapshot` slice, a tombstone once it is evicted or released
for good), `~closed#<runbook>#<group key>` (the event time up to which an evicted incident stays quiet: no event
up to it reopens it) and `~quotas`, the writer's quota windows. With `cleanup.policy=compact` the broker keeps the
latest record per key, so a restore reads live state, not history.

A restore first writes a fence (a tombstone keyed `~fence`, acks=all) and reads up to it. The end offset and
high watermark a consumer is told can trail acknowledged records just after a leader failover (the new leader
learns the old one's high watermark late, and aiokafka's ListOffsets version predates KIP-207), so reading "to
the end" could return an older slice of an incident and the step it recorded would act again. The fence was
acknowledged after every earlier write, so once it is read every earlier record has been.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewPartitions
from aiokafka.errors import InvalidPartitionsError, KafkaError
from pydantic import ValidationError

from responder.bounds import RESTORE_DEADLINE
from responder.engine.quotas import QuotaRun
from responder.engine.snapshot import EngineSnapshot
from responder.errors_kafka import ChangelogError, ChangelogTooShort, ChangelogWriteTimedOut
from responder.ingest.admin import BROKER_DEFAULT, new_topic, refused, with_admin
from responder.ingest.clients import _start_with_retry, fixed_wait, resending, send_all, send_retrying, stop_consumer
from responder.ingest.transactions import Transactions
from responder.settings_kafka import CHANGELOG_COMPRESSION, CHANGELOG_WRITE_DEADLINE_S

log = structlog.get_logger(__name__)

QUOTAS_KEY = b"~quotas"
FENCE_KEY = b"~fence"


class Changelog:
    """Writes incident slices to partition p and reads partition p back, latest record per key."""

    def __init__(self, bootstrap: str, topic: str, *, options: Mapping[str, Any] | None = None,
                 write_deadline: float = CHANGELOG_WRITE_DEADLINE_S) -> None:
        self.bootstrap, self.topic, self.options = bootstrap, topic, dict(options or {})
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                                         compression_type=CHANGELOG_COMPRESSION, max_request_size=8 * 1024 * 1024,
                                         **self.options)
        self.writes = 0
        self._order: dict[int, asyncio.Lock] = {}  # one write of a partition at a time, resends included (`write`)
        self.txn: Transactions | None = None  # set when the broker runs transactions (responder.ingest.transactions)
        self.write_deadline = write_deadline  # RESPONDER_CHANGELOG_WRITE_DEADLINE

    def deadline(self) -> float:
        """The loop time by which a write (or a flush's writes, given it as `until`) started now must be done."""
        return asyncio.get_running_loop().time() + self.write_deadline

    async def start(self, deadline: float = 30.0, *, wait_set_by: str | None = None) -> None:
        """Connect the producer, waiting `deadline` s for Kafka: what `wait_set_by` sets (a setting, for
        BrokerUnreachable to name), else a fixed wait (`fixed_wait`)."""
        await _start_with_retry(self.producer, deadline,
                                wait_set_by=wait_set_by or fixed_wait("the changelog producer", deadline))

    async def stop(self) -> None:
        """Close the transactional producers, then the producer, even when closing those failed (raised after)."""
        try:
            if self.txn is not None:
                await self.txn.stop()
        finally:
            await self.producer.stop()

    async def write(self, partition: int, slices: Mapping[str, EngineSnapshot | None],
                    quotas: list[QuotaRun] | None = None, *, urgent: bool = False, until: float | None = None) -> None:
        """Send every slice by key (None: a tombstone) to `partition` and wait for all the acks.

        After a transient error (a leader moved or down past the batch's expiry) every record is sent again
        (`resending`): the topic is compacted and keyed, so a second copy of a slice is the same state. With
        transactions, `urgent` (the slices carry an intent) commits the transaction at once, and a transient error
        aborts the transaction and runs it again (`Transactions.write`).

        The writes of one partition run one at a time, in the order they were called, each with its resends: a slice
        resent after a transient error never lands after a later write of its key (the eviction's tombstone, a newer
        slice), which compaction would keep instead (docs/fleet.md, "Write order"). `Transactions.write` does the same
        with its partition's lock.

        Outside transactions the write is done by `until` (loop time; `deadline()` from now when None), or raises
        ChangelogWriteTimedOut, which fails the timeline's changelog barrier as any failed write does: nothing it
        carried acts or is committed, and the service stops (and rejoins its group in-process: `rejoin_reason`).
        """
        records = [(key.encode(), None if s is None else s.model_dump_json().encode()) for key, s in slices.items()]
        if quotas is not None:
            records.append((QUOTAS_KEY, EngineSnapshot(quotas=quotas).model_dump_json().encode()))
        if not records:
            return
        if self.txn is not None:
            await self.txn.write(partition, records, urgent=urgent)
        else:
            timer = asyncio.timeout_at(self.deadline() if until is None else until)
            try:
                async with timer, self._order.setdefault(partition, asyncio.Lock()):
                    await resending(self.producer, self.topic,
                                    lambda: send_all(self.producer, self.topic, records, partition))
            except TimeoutError as exc:
                if not timer.expired():
                    raise
                log.critical("changelog_write_deadline_passed", topic=self.topic, partition=partition,
                             deadline_s=self.write_deadline)
                raise ChangelogWriteTimedOut(
                    f"changelog {self.topic}[{partition}]: the write was not acknowledged within its deadline "
                    f"({self.write_deadline:g}s from the flush's first write, resends included)") from exc
        self.writes += len(records)

    async def ensure_partition(self, partition: int, deadline: float = RESTORE_DEADLINE) -> None:
        """Grow the topic to `partition + 1` partitions when it has no `partition` yet (an alert partition added while
        the fleet runs), and wait until this client's metadata shows it (docs/fleet.md).

        Idempotent and safe with several replicas at once: the request asks for a total count, never to add some,
        and the broker refuses a count the topic already has or passes (InvalidPartitionsError: another replica grew
        it first), which is success here; Kafka never shrinks a topic. The partitions already there keep their
        records (each is written by partition number, never by key hash). When growing is refused (no ALTER on the
        topic, a broker without CreatePartitions, a policy), ChangelogTooShort says how to grow it by hand: the
        alert partition stays held, retried with backoff, until the changelog has its partition."""
        have = await self._partitions(refresh=False)
        if partition in have or partition in (have := await self._partitions(refresh=True)):
            return
        log.warning("changelog_growing", topic=self.topic, partitions=len(have), to=partition + 1)

        async def grow(admin: Any) -> None:
            await admin.create_partitions({self.topic: NewPartitions(total_count=partition + 1)})

        try:
            await with_admin(self.bootstrap, grow, options=self.options)
        except InvalidPartitionsError as exc:  # already that many or more: another replica grew it first
            log.info("changelog_grown_elsewhere", topic=self.topic, partition=partition, detail=str(exc))
        except KafkaError as exc:
            why = (f"changelog {self.topic} has {len(have)} partition(s), none for alert partition {partition}, and "
                   f"growing it was refused ({type(exc).__name__}: {exc}): grant this principal ALTER on the topic, "
                   f"or grow it by hand (kafka-topics.sh --alter --topic {self.topic} --partitions N, N = the alert "
                   f"topics' partition count); alert partition {partition} is not consumed until then")
            log.error("changelog_partition_missing", topic=self.topic, partition=partition, detail=why)
            raise ChangelogTooShort(why, partition) from exc
        until = time.monotonic() + deadline
        while partition not in await self._partitions(refresh=True):
            if time.monotonic() > until:
                raise ChangelogError(f"changelog {self.topic} was grown to {partition + 1} partitions, but after "
                                     f"{deadline:g}s the cluster's metadata still shows no partition {partition}")
            await asyncio.sleep(0.2)
        log.info("changelog_grown", topic=self.topic, partitions=partition + 1)

    async def _partitions(self, *, refresh: bool) -> set[int]:
        """The topic's partitions in the producer's metadata, read again from the cluster first when `refresh`."""
        if refresh:  # the topic is in the client's metadata: `partitions_for` was called before
            await self.producer.client.force_metadata_update()
        return set(await self.producer.partitions_for(self.topic))

    async def read(self, partition: int, timeout: float = RESTORE_DEADLINE) -> list[EngineSnapshot]:
        """The latest slice of every live key in `partition` (grown to it first: `ensure_partition`); a record that
        does not parse raises ChangelogError. Kafka is waited for a fixed `timeout` s (a restore's: no setting)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", **self.options,
                                    isolation_level="read_committed" if self.txn is not None else "read_uncommitted")
        tp = TopicPartition(self.topic, partition)
        latest: dict[bytes, bytes | None] = {}
        at = 0  # the position before the poll that raised
        try:
            await self.ensure_partition(partition)  # an alert partition added while the fleet runs: none yet
            fence = await send_retrying(self.producer, self.topic, None, key=FENCE_KEY, partition=partition)
            await _start_with_retry(consumer, timeout, wait_set_by=fixed_wait("a changelog read", timeout))
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            told = (await consumer.end_offsets([tp]))[tp]
            if told <= fence.offset:  # it trails an acknowledged record: a leader just failed over (or a txn is open)
                log.warning("changelog_end_stale", topic=self.topic, partition=partition, end=told,
                            fence=fence.offset)
            end = max(told, int(fence.offset) + 1)
            idle = 0
            while (at := await consumer.position(tp)) < end:
                got = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
                idle = 0 if got.get(tp) else idle + 1
                if idle > 2 * timeout:
                    raise ChangelogError(f"changelog {self.topic}[{partition}] stopped before its end offset {end}")
                for msg in got.get(tp, []):
                    latest[msg.key or b""] = msg.value
        except KafkaError as exc:  # a corrupt batch or a codec the client lacks among them: never read past
            raise ChangelogError(f"changelog {self.topic}[{partition}] is unreadable: {exc}") from exc
        except UnicodeDecodeError as exc:  # a header key that is not UTF-8: the client raises at every poll
            raise ChangelogError(f"changelog {self.topic}[{partition}] has a record the Kafka client cannot parse "
                                 f"at or after offset {at} (a header key that is not UTF-8: {exc})") from exc
        finally:
            await stop_consumer(consumer)
        out = [_slice(self.topic, partition, key, value) for key, value in latest.items() if value is not None]
        log.info("changelog_restored", topic=self.topic, partition=partition, keys=len(out))
        return out


def _slice(topic: str, partition: int, key: bytes, value: bytes) -> EngineSnapshot:
    """A record's slice; ChangelogError unless it parses and is what its key says (an incident's key: that incident's
    slice), so another producer's JSON, which would parse as an empty slice, is never read as one."""
    try:
        found = EngineSnapshot.model_validate_json(value)
    except ValidationError as exc:
        raise ChangelogError(f"changelog {topic}[{partition}] record {key!r} does not parse: "
                             f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    if not found.model_fields_set or (not key.startswith(b"~") and [i.id for i in found.incidents] != [key.decode(
            errors="replace")]):
        raise ChangelogError(f"changelog {topic}[{partition}] record {key!r} does not parse: it holds no slice of "
                             f"its key (fields {sorted(found.model_fields_set)})")
    return found


async def ensure_changelog(bootstrap: str, topic: str, partitions: int, *, replication: int = BROKER_DEFAULT,
                           options: Mapping[str, Any] | None = None) -> None:
    """Create the changelog topic (compacted, `partitions` like the alert topics, the broker's default replication
    factor unless `replication` says otherwise) unless it exists; waits out a cluster that is still starting
    (`with_admin`)."""

    async def create(admin: Any) -> None:
        if topic not in set(await admin.list_topics()):
            compacted = new_topic(topic, partitions, replication, {"cleanup.policy": "compact"})
            refused(await admin.create_topics([compacted]))

    await with_admin(bootstrap, create, options=options)
