"""A changelog write in its partition's transaction while no broker answers: aiokafka never expires a transactional
batch (it waits for the partition's addition to the transaction, or resends the batch, until a broker answers), so
its acks never come and the write waited for ever under the batch gate. The wait for the acks is bounded by
`end_deadline`: the partition's transaction fails (TransactionFailed, the replica rejoins) and the revocation closes
its producer (responder/ingest/txnstate.py). Real aiokafka producers over a client no broker answers
(tests/txn_kit.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from responder.errors_kafka import TransactionFailed
from responder.ingest.transactions import Transactions
from tests.txn_kit import LeaderDownProducer, OutageProducer, fake_transactions, loop_complaints


@pytest.fixture(name="txn", params=[OutageProducer, LeaderDownProducer], ids=["nothing answers", "leader down"])
async def _txn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Transactions]:
    """Transactions over aiokafka producers no broker answers, partitions 0 and 1, 0.3 s ends."""
    txn = await fake_transactions(monkeypatch, [0, 1], request.param)
    txn.end_deadline = txn.send_deadline = 0.3
    yield txn
    for producer in txn.producers.values():
        producer._sender.sender_task.cancel()  # what a stop would end (test teardown only)
        await producer.client.close()
        producer._closed = True


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
