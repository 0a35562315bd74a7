"""Transactional changelog writes (aiokafka only here): the changelog and the offsets in one transaction, and a
zombie replica fenced, on brokers that support transactions (Apache Kafka; not Tansu).

Kafka Streams' first exactly-once mode: **one transactional producer per input partition**. Kafka Streams'
EOS v2 uses one producer per replica and fences zombies by the consumer group's generation (KIP-447), but
aiokafka 0.14 sends TxnOffsetCommit v0, which carries no generation. So partition p's producer has the
transactional.id `<group>.<changelog topic>.<p>`, the same on every replica. The replica assigned p initialises
it before it restores p: that bumps the producer epoch and aborts the previous owner's open transaction. From
then on every changelog write or offset commit of the previous owner (a zombie) is refused with ProducerFenced,
which ends the zombie (`replica_fenced`) before it can act: an intent must reach the changelog before its
actuator is called.

- A write that carries an intent commits at once (the intent must be visible to a new owner before acting).
- Inside `hold(partitions)` (the end of a lane's chunk) the other writes to those partitions stay in their open
  transactions, which `commit(offsets)` commits together with the consumed offsets (`send_offsets_to_transaction`).
  The hold is per partition: the lanes of responder/ingest/flow.py run concurrently, and one lane's hold or commit
  never keeps open, commits or waits for another partition's transaction (tests/unit/test_transactions_hold.py).
- A transaction that fails for good, not fenced (its producer died, as when a killed broker ends aiokafka's sender
  routine), is a TransactionFailed: the partition takes nothing more and the replica rejoins (service/rejoin.py).
  What a partition's transaction holds, how it fails and the bounded waits on Kafka are responder/ingest/txnstate.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from responder.bounds import RESTORE_DEADLINE
from responder.errors import BrokerUnreachable
from responder.errors_kafka import ChangelogError
from responder.ingest.clients import _start_with_retry, fenced_error, fixed_wait, resending, transient_send
from responder.ingest.producerstop import stop_producer
from responder.ingest.txnstate import TxnState
from responder.settings_kafka import CHANGELOG_COMPRESSION

log = structlog.get_logger(__name__)


class Transactions(TxnState):
    """Partition p's transactional producer, for the partitions this replica owns (its bookkeeping: `TxnState`)."""

    def __init__(self, bootstrap: str, topic: str, group_id: str, *, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(topic, group_id)
        self.bootstrap, self.options = bootstrap, dict(options or {})
        self._locks: dict[int, asyncio.Lock] = {}
        self._held: dict[int, int] = {}  # partition -> lanes holding it (two alert topics share partition p)

    async def assign(self, partitions: Iterable[int], deadline: float = RESTORE_DEADLINE) -> None:
        """Initialise the producers of newly owned partitions (fencing any earlier one, this process's too), clean."""
        for partition in sorted(set(partitions) - set(self.producers)):
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=0,
                                        compression_type=CHANGELOG_COMPRESSION, max_request_size=8 * 1024 * 1024,
                                        transactional_id=self.transactional_id(partition), **self.options)
            await self._start(partition, producer, deadline)
            self._forget(partition)
            self.producers[partition] = producer
            self._locks.setdefault(partition, asyncio.Lock())
            log.info("transactional_producer_started", partition=partition,
                     transactional_id=self.transactional_id(partition))

    async def _start(self, partition: int, producer: AIOKafkaProducer, deadline: float) -> None:
        """Start p's producer within `deadline` s: its bootstrap, retried (`_start_with_retry`), then its producer id,
        which aiokafka asks the transaction coordinator for with no limit (`Sender._maybe_wait_for_pid` looks for the
        coordinator for ever), and which the retries' deadline does not cut (they end between attempts). Cut there,
        the producer closed: BrokerUnreachable, and the restore fails, to be retried (`FleetState.fetch`)."""
        set_by, timer = fixed_wait("a transactional producer", deadline), asyncio.timeout(deadline)
        try:
            async with timer:
                await _start_with_retry(producer, deadline, wait_set_by=set_by)
        except TimeoutError as exc:
            if not timer.expired():
                raise
            raise BrokerUnreachable(
                f"cannot start the transactional producer of changelog {self.topic}[{partition}] at {self.bootstrap}: "
                f"no producer id in {deadline:g}s: TimeoutError: its bootstrap, or its transaction coordinator (looked "
                f"for with no limit), was unanswered at the deadline ({set_by} sets the wait)") from exc

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Close the producers of partitions that left, together (each aborts, then stops: `end_deadline` each). Each
        is dropped from `producers` once its close ended, not before: one whose close is cancelled (a revocation cut
        at its deadline) is still there for `stop` to close."""
        gone = {p: self.producers[p] for p in sorted(set(partitions) & set(self.producers))}
        closes = [self._close_leaving(p, producer) for p, producer in gone.items()]
        for outcome in await asyncio.gather(*closes, return_exceptions=True):  # every one closed, then raised
            if isinstance(outcome, BaseException):
                raise outcome

    async def _close_leaving(self, partition: int, producer: AIOKafkaProducer) -> None:
        opened = self._forget(partition) is producer
        try:
            await self._close(partition, producer, opened)
        except Exception:
            self._drop(partition, producer)
            raise
        self._drop(partition, producer)

    def _drop(self, partition: int, producer: AIOKafkaProducer) -> None:
        if self.producers.get(partition) is producer:
            del self.producers[partition]

    async def _close(self, partition: int, producer: AIOKafkaProducer, opened: bool) -> None:
        with contextlib.suppress(KafkaError, AssertionError, TimeoutError):  # aiokafka asserts its states
            if opened:
                await self._ended(partition, "abort", producer.abort_transaction())
        await stop_producer(producer, self.end_deadline, transactional_id=self.transactional_id(partition))

    async def stop(self) -> None:
        """Close every producer."""
        await self.revoke(list(self.producers))

    @contextlib.contextmanager
    def hold(self, partitions: Iterable[int]) -> Iterator[None]:
        """Writes to `partitions` in this block stay in their open transactions until `commit(offsets)`; writes to
        any other partition commit as usual."""
        held = sorted(set(partitions))
        for partition in held:
            self._held[partition] = self._held.get(partition, 0) + 1
        try:
            yield
        finally:
            for partition in held:
                left = self._held.pop(partition) - 1
                if left:
                    self._held[partition] = left

    async def write(self, partition: int, records: Sequence[tuple[bytes, bytes | None]], *,
                    urgent: bool = False) -> None:
        """Send `records` (key, value) to changelog partition `partition` in its transaction; commit it unless held.
        A transient error aborts the transaction and runs it again, with every record it held (`_again`)."""
        producer = self._producer(partition)
        async with self._locks[partition]:
            if self.producers.get(partition) is not producer:  # revoked while this waited: its records are no one's
                raise ChangelogError(f"changelog {self.topic}[{partition}] was revoked while a write waited for it")
            self._sent.setdefault(partition, []).extend(records)  # this transaction's, from now on, whatever happens

            async def attempt() -> None:
                if not await self._again(partition, producer):
                    await self._send(partition, producer, records)
                if urgent or partition not in self._held:
                    await self._commit(partition, producer)

            await self._retrying(partition, producer, attempt)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """Commit the transactions of the partitions in `offsets` with their consumed offsets (the next offset to read);
        whether any was ours. Only those: another partition's open transaction belongs to its own lane's hold."""
        by_partition: dict[int, dict[TopicPartition, int]] = {}
        for tp, offset in offsets.items():
            if tp.partition in self.producers:  # a revoked partition is not ours to commit
                by_partition.setdefault(tp.partition, {})[tp] = offset
        for partition in sorted(by_partition):
            producer = self._producer(partition)
            async with self._locks[partition]:
                await self._retrying(partition, producer, functools.partial(
                    self._commit_offsets, partition, producer, by_partition[partition]))
        return bool(by_partition)

    async def _commit_offsets(self, partition: int, producer: AIOKafkaProducer,
                              offsets: Mapping[TopicPartition, int]) -> None:
        await self._again(partition, producer)
        await self._ended(partition, "offsets", producer.send_offsets_to_transaction(offsets, self.group_id))
        await self._commit(partition, producer)

    async def _retrying(self, partition: int, producer: AIOKafkaProducer,
                        attempt: Callable[[], Awaitable[None]]) -> None:
        """`attempt()` until it passes; after a transient error (`transient_send`: aiokafka gave up waiting for a
        leader or metadata) the open transaction is aborted and `attempt` runs again in a new one (`resending`'s
        policy), never outside one, nor once the partition was revoked meanwhile (ChangelogError: `revoke` forgot its
        records). Any other error, or the last transient one, fails the partition (`_failed`)."""
        async def aborting() -> None:
            if partition not in self.producers or self.producers[partition] is not producer:  # revoked meanwhile
                raise ChangelogError(f"changelog {self.topic}[{partition}] was revoked while its transaction waited "
                                     "to run again after a transient error")
            try:
                await attempt()
            except Exception as exc:
                if transient_send(exc) and not fenced_error(exc) and self._opened(partition, producer):
                    self._open.pop(partition)
                    with contextlib.suppress(KafkaError, AssertionError):  # not a TimeoutError: it fails p
                        await self._ended(partition, "abort", producer.abort_transaction())
                raise

        try:
            await resending(producer, self.topic, aborting, deadline=self.send_deadline)
        except (KafkaError, AssertionError, TimeoutError) as exc:  # aiokafka asserts its states; `_ended`
            raise self._failed(partition, producer, exc) from exc

    async def _again(self, partition: int, producer: AIOKafkaProducer) -> bool:
        """Begin partition p's transaction unless it is open; whether it was not (then every record the transaction
        holds, those of an aborted attempt too, was sent in it again)."""
        if self._opened(partition, producer):  # not an earlier producer's, begun as it was revoked
            return False
        await producer.begin_transaction()
        self._open[partition] = producer
        if self._sent.get(partition):
            await self._send(partition, producer, self._sent[partition])
        return True
