"""What a partition's changelog transaction holds and how it ends (`TxnState`, the base of `Transactions` in
responder/ingest/transactions.py): the records of its open transaction and whose producer opened it, a failure for
good (fenced, Kafka cut off, refused) after which the partition takes no write or offsets until it is revoked, and
the waits on Kafka, each bounded: a commit's, an abort's or the offsets' addition's (`_ended`), a send's queueing and
acks (`_send`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, StaleLeaderEpochCodeError

from responder.bounds import END_DEADLINE, SEND_DEADLINE
from responder.errors_kafka import ChangelogError, ReplicaFenced, TransactionFailed
from responder.ingest.clients import fenced_error, send_all, transient_send

log = structlog.get_logger(__name__)


class TxnState:
    """The transactions of the partitions this replica owns: partition p's producer, its open transaction, its end."""

    send_deadline = SEND_DEADLINE  # seconds a transaction is run again after its first transient failure
    end_deadline = END_DEADLINE  # seconds a commit, abort, offsets' addition or send waits for Kafka

    def __init__(self, topic: str, group_id: str) -> None:
        self.topic, self.group_id = topic, group_id
        self.producers: dict[int, AIOKafkaProducer] = {}
        self._open: dict[int, AIOKafkaProducer] = {}  # partition -> the producer whose transaction is open
        self._sent: dict[int, list[tuple[bytes, bytes | None]]] = {}  # the records of partition p's open transaction
        self.fenced: set[int] = set()  # once fenced, a producer is dead (aiokafka: FATAL_ERROR)
        self.failed: dict[int, ChangelogError] = {}  # a partition whose transaction failed for good: nothing more
        self.commits = 0

    def transactional_id(self, partition: int) -> str:
        """The same on every replica, so the next owner of `partition` fences the previous one."""
        return f"{self.group_id}.{self.topic}.{partition}"

    def _producer(self, partition: int) -> AIOKafkaProducer:
        producer = self.producers.get(partition)
        if partition in self.fenced:
            raise ReplicaFenced(f"changelog {self.topic}[{partition}]: this replica was fenced earlier")
        if partition in self.failed:  # its aborted records are gone: offsets committed now would skip them
            raise type(self.failed[partition])(f"changelog {self.topic}[{partition}]: its transaction failed earlier "
                                               f"({self.failed[partition]}); nothing more is written or committed")
        if producer is None:
            raise ChangelogError(f"changelog {self.topic}[{partition}]: no transactional producer (not owned)")
        return producer

    async def _ended(self, partition: int, step: str, wait: Awaitable[None]) -> None:
        """`wait` (a commit, abort or offsets' addition) for at most `end_deadline` seconds, then TimeoutError (not
        KafkaTimeoutError, which would run the transaction again: it fails the partition, `_retrying`)."""
        try:
            await asyncio.wait_for(wait, self.end_deadline)
        except TimeoutError as exc:
            raise self._stuck(partition, step, "its coordinator") from exc

    async def _send(self, partition: int, producer: AIOKafkaProducer,
                    records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Send `records` in p's open transaction, all of it (each record's queueing behind an unsent batch, then the
        acks) within `end_deadline` seconds, then TimeoutError, as `_ended`. aiokafka never expires a transactional
        batch: it waits for the partition's addition to the transaction, and resends the batch after a retriable
        error, until a broker answers, so in a full outage the acks never came, and a record that did not fit behind
        an unsent batch first waited aiokafka's request timeout (40 s) to be queued (tests/unit/
        test_transactions_outage.py). A cancel that cuts the queueing short leaves the transaction holding part of
        the write: the partition fails (nothing more written or committed in it) and the cancel goes on."""
        acks: list[asyncio.Future[Any]] = []
        try:
            await send_all(producer, self.topic, records, partition, within=self.end_deadline, acks=acks)
        except TimeoutError as exc:
            raise self._stuck(partition, "send", "Kafka") from exc
        except asyncio.CancelledError:
            if len(acks) < len(records):
                log.warning("changelog_transaction_cut", partition=partition, queued=len(acks), records=len(records))
                self._failed(partition, producer, ChangelogError(
                    f"cancelled after queueing {len(acks)} of the write's {len(records)} records"))
            raise

    def _stuck(self, partition: int, step: str, whom: str) -> TimeoutError:
        log.error("changelog_transaction_stuck", partition=partition, step=step, waited_s=self.end_deadline)
        return TimeoutError(f"changelog {self.topic}[{partition}]: the transaction's {step} had no answer from {whom} "
                            f"in {self.end_deadline:g}s (is the cluster down?)")

    async def _commit(self, partition: int, producer: AIOKafkaProducer) -> None:
        await self._ended(partition, "commit", producer.commit_transaction())
        self._open.pop(partition, None)
        self._sent.pop(partition, None)
        self.commits += 1

    def _opened(self, partition: int, producer: AIOKafkaProducer) -> bool:
        return self._open.get(partition) is producer

    def _forget(self, partition: int) -> AIOKafkaProducer | None:
        """Drop what p's producer left, none of it a new one's: records, failure, fence, open transaction (whose)."""
        self._sent.pop(partition, None)
        self.failed.pop(partition, None)
        self.fenced.discard(partition)
        return self._open.pop(partition, None)

    def _failed(self, partition: int, producer: AIOKafkaProducer, exc: Exception) -> ChangelogError:
        """Failed for good: its records are in no committed transaction, so p takes nothing more until revoked. A
        fence; TransactionFailed (rejoin) if Kafka was cut off (no answer in time, transient past the deadline, a dead
        producer: a bare KafkaError; NETWORK_EXCEPTION, aiokafka's StaleLeaderEpochCodeError); else ChangelogError (an
        ACL, a record too large, an aiokafka assertion)."""
        if self.producers.get(partition) is not producer:  # revoked meanwhile: a plain ChangelogError, no change
            return ChangelogError(f"changelog {self.topic}[{partition}] was revoked as its transaction failed: {exc!r}")
        self._open.pop(partition, None)
        self._sent.pop(partition, None)
        if fenced_error(exc):
            self.fenced.add(partition)
            log.critical("replica_fenced", partition=partition, transactional_id=self.transactional_id(partition),
                         error=f"{type(exc).__name__}: {exc}",
                         detail="another replica owns this partition now; this one stops without acting")
            self.failed[partition] = ReplicaFenced(f"changelog {self.topic}[{partition}]: this replica was fenced "
                                                   f"({type(exc).__name__}): another replica owns the partition now")
            return self.failed[partition]
        cut_off = (isinstance(exc, TimeoutError | StaleLeaderEpochCodeError) or transient_send(exc)
                   or type(exc) is KafkaError)
        self.failed[partition] = (TransactionFailed if cut_off else ChangelogError)(
            f"changelog {self.topic}[{partition}] transaction failed: {type(exc).__name__}: {exc}")
        return self.failed[partition]
