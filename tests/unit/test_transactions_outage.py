"""A changelog write in its partition's transaction while no broker answers: aiokafka never expires a transactional
batch (it waits for the partition's addition to the transaction, or resends the batch, until a broker answers), so
its acks never come and the write waited for ever under the batch gate; a record that does not fit behind an unsent
batch first waits aiokafka's request timeout to be queued. The whole send, queueing and acks, is bounded by
`end_deadline`: the partition's transaction fails (TransactionFailed, the replica rejoins) and the revocation closes
its producer (responder/ingest/txnstate.py). Real aiokafka producers over a client no broker answers
(tests/txn_kit.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from responder.errors_kafka import ChangelogError, TransactionFailed
from responder.ingest.transactions import Transactions
from tests.txn_kit import LeaderDownProducer, OutageProducer, fake_transactions, loop_complaints

OUTAGES = {"params": [OutageProducer, LeaderDownProducer], "ids": ["nothing answers", "leader down"]}
BIG = b"x" * 10_000  # two do not fit in one of aiokafka's 16 KiB batches


@contextlib.asynccontextmanager
async def _outage(monkeypatch: pytest.MonkeyPatch, producer: type[OutageProducer]) -> AsyncIterator[Transactions]:
    """Transactions over aiokafka producers (`producer`) no broker answers, partitions 0 and 1, 0.3 s ends."""
    txn = await fake_transactions(monkeypatch, [0, 1], producer)
    txn.end_deadline = txn.send_deadline = 0.3
    yield txn
    for made in txn.producers.values():
        made._sender.sender_task.cancel()  # what a stop would end (test teardown only)
        await made.client.close()
        made._closed = True


@pytest.fixture(name="txn", **OUTAGES)
async def _txn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Transactions]:
    """Transactions in an outage; a record that does not fit in an unsent batch waits 0.1 s to be queued."""
    async with _outage(monkeypatch, request.param) as txn:
        yield txn


@pytest.fixture(name="slow_queue", **OUTAGES)
async def _slow_queue(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Transactions]:
    """The same, but such a record waits up to 60 s to be queued (aiokafka's request timeout: 40 s by default)."""
    monkeypatch.setattr(OutageProducer, "request_timeout_ms", 60_000)
    async with _outage(monkeypatch, request.param) as txn:
        yield txn


async def test_a_write_no_broker_acknowledges_fails_its_partition_within_the_end_deadline(txn: Transactions) -> None:
    """A write no broker acknowledges fails its partition alone (TransactionFailed) past `end_deadline`, then closes."""
    producer = txn.producers[0]
    assert isinstance(producer, OutageProducer)
    with pytest.raises(TransactionFailed, match=r"TimeoutError: .*send had no answer"):
        await asyncio.wait_for(txn.write(0, [(b"inc-1", b"{}")], urgent=True), 3.0)  # a hang guard
    assert producer.tries > 0  # begun and sent: it waited on the outage, not before it
    assert 0 in txn.failed
    assert 1 not in txn.failed
    await asyncio.wait_for(txn.revoke([0]), 5.0)  # a hang guard
    assert producer._sender.sender_task.done()


async def test_a_producer_closed_with_undelivered_batches_leaves_asyncio_nothing_to_log(txn: Transactions) -> None:
    """The revocation's stop, cut short, fails the batches: no "never retrieved" and no "Exception in callback"."""
    with loop_complaints() as said:
        with pytest.raises(TransactionFailed):
            await asyncio.wait_for(txn.write(0, [(b"inc-1", b"{}")], urgent=True), 3.0)  # a hang guard
        await asyncio.wait_for(txn.revoke([0]), 5.0)  # a hang guard
        await asyncio.sleep(0)  # the failed batches' done callbacks run
    assert said == []


def _queued(txn: Transactions, partition: int) -> list[Any]:
    """The batches aiokafka holds for changelog partition `partition`, not sent yet or awaiting their acks."""
    accumulator, tp = txn.producers[partition]._message_accumulator, TopicPartition("changelog", partition)
    return [*accumulator._batches.get(tp, ()), *(b for b in accumulator._pending_batches if b.tp == tp)]


async def test_a_write_waiting_to_queue_a_record_fails_its_partition_within_the_end_deadline(
        slow_queue: Transactions) -> None:
    """A record's wait to be queued behind an unsent batch counts in the send's `end_deadline`; nothing half-queued."""
    records = [(f"inc-{n}".encode(), BIG) for n in range(3)]
    with loop_complaints() as said, capture_logs() as logs:
        write = asyncio.ensure_future(slow_queue.write(0, records, urgent=True))
        await asyncio.wait({write}, timeout=3.0)  # a hang guard, not cancelling it: the queueing waits 60 s
        assert write.done(), "the write still waits to queue a record"
        with pytest.raises(TransactionFailed, match=r"TimeoutError: .*send had no answer"):
            await write
        batches = _queued(slow_queue, 0)
        assert sum(b.record_count for b in batches) < len(records)  # the record cut while it waited is in none
        assert all(b.record_count == len(b._msg_futures) for b in batches)  # each queued one with its ack
        assert all(ack.done() for b in batches for ack, _ in b._msg_futures)  # none left awaited
        for later in (slow_queue.write(0, [(b"inc-9", b"{}")], urgent=True),
                      slow_queue.commit({TopicPartition("alerts", 0): 1})):
            with pytest.raises(TransactionFailed, match="failed earlier"):
                await later
        assert 1 not in slow_queue.failed
        await asyncio.wait_for(slow_queue.revoke([0]), 5.0)  # a hang guard
        await asyncio.sleep(0)  # the failed batches' done callbacks run
    assert [(e["step"], e["partition"]) for e in logs if e["event"] == "changelog_transaction_stuck"] == [("send", 0)]
    assert said == []


async def test_a_write_cancelled_while_it_queues_a_record_is_cancelled_and_fails_its_partition(
        slow_queue: Transactions) -> None:
    """A cancel while a record waits to be queued is raised at once, and the partition, holding part of it, fails."""
    slow_queue.end_deadline = 30.0  # not reached: the cancel comes first
    records = [(f"inc-{n}".encode(), BIG) for n in range(3)]
    with loop_complaints() as said:
        write = asyncio.ensure_future(slow_queue.write(0, records, urgent=True))
        while not any(b.record_count for b in _queued(slow_queue, 0)):
            await asyncio.sleep(0.01)  # the first record is queued; the last waits behind it
        await asyncio.sleep(0.1)
        write.cancel()
        slow_queue.end_deadline = 0.3  # what comes next fails fast: a write that still waits, a partition not failed
        await asyncio.wait({write}, timeout=3.0)  # a hang guard
        assert write.done(), "the cancelled write still waits"
        with pytest.raises(asyncio.CancelledError):
            await write
        assert sum(b.record_count for b in _queued(slow_queue, 0)) < len(records)  # the record cut is in no batch
        with pytest.raises(ChangelogError, match="failed earlier"):
            await slow_queue.write(0, [(b"inc-9", b"{}")], urgent=True)
        await asyncio.wait_for(slow_queue.revoke([0]), 5.0)  # a hang guard
        await asyncio.sleep(0)  # the failed batches' done callbacks run
    assert said == []
