"""A chunk's offsets go through its partition's transaction (`send_offsets_to_transaction`), whose TxnOffsetCommit
needs the GROUP coordinator: with it lost, aiokafka 0.14 looks for it for ever, in the offsets' addition and then in
the producer's stop. The addition is bounded by `end_deadline` (the partition's transaction fails, TransactionFailed:
the replica rejoins), and so is the producer's close when the partition leaves (a hand-over, the service's teardown)
(responder/ingest/transactions.py, `stop_producer` in responder/ingest/producerstop.py). Real aiokafka producers, over a
client with no broker (tests/txn_kit.py `LostGroupProducer`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.errors_kafka import TransactionFailed
from responder.ingest.transactions import Transactions
from tests.txn_kit import LostGroupProducer, fake_transactions

TP0 = TopicPartition("alerts", 0)


@pytest.fixture(name="txn")
async def _txn(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Transactions]:
    """Transactions over aiokafka producers whose group coordinator is never found, partitions 0-3, 0.2 s ends."""
    txn = await fake_transactions(monkeypatch, [0, 1, 2, 3], LostGroupProducer)  # type: ignore[arg-type]
    txn.end_deadline = txn.send_deadline = 0.2
    yield txn
    for producer in txn.producers.values():
        producer._sender.sender_task.cancel()  # what a stop left behind would otherwise run on (test teardown only)
        await producer.client.close()
        producer._closed = True


async def test_offsets_waiting_for_a_lost_group_coordinator_fail_the_transaction_within_the_end_deadline(
        txn: Transactions) -> None:
    """The offsets' addition never ends in aiokafka; past `end_deadline` the partition's transaction fails (rejoin)."""
    producer = txn.producers[0]
    assert isinstance(producer, LostGroupProducer)
    with pytest.raises(TransactionFailed, match=r"TimeoutError: .*offsets had no answer"):
        await asyncio.wait_for(txn.commit({TP0: 3}), 2.0)
    assert producer.group_lookups > 0  # it waited where the GROUP coordinator is looked for
    assert 0 in txn.failed
    assert 1 not in txn.failed  # the other partition's producer is not held up


async def test_a_revocation_closes_a_producer_whose_offsets_wait_for_a_lost_group_coordinator(
        txn: Transactions) -> None:
    """A revocation cuts a producer's stop stuck on a lost group coordinator at its deadline, closing it."""
    producer = txn.producers[0]
    assert isinstance(producer, LostGroupProducer)
    with pytest.raises(TransactionFailed):
        await asyncio.wait_for(txn.commit({TP0: 3}), 2.0)
    await asyncio.wait_for(txn.revoke([0, 1]), 2.0)
    assert set(txn.producers) == {2, 3}
    assert producer._sender.sender_task.done()
    looked = producer.group_lookups
    await asyncio.sleep(0.1)
    assert producer.group_lookups == looked  # nothing left looking for the coordinator


async def test_a_revocation_closes_its_stuck_producers_together_not_one_after_another(txn: Transactions) -> None:
    """On revocation, producers stuck on a lost group coordinator are stopped together, not one after another."""
    txn.end_deadline = 0.3
    failed = await asyncio.wait_for(asyncio.gather(
        *(txn.commit({TopicPartition("alerts", p): 3}) for p in range(4)), return_exceptions=True), 2.0)
    assert all(isinstance(outcome, TransactionFailed) for outcome in failed)
    stuck = list(txn.producers.values())
    stopping, most = 0, 0

    def counted(stop: Any) -> Any:
        async def stop_counted() -> None:  # how many stops are under way at once (one after another: one)
            nonlocal stopping, most
            stopping += 1
            most = max(most, stopping)
            try:
                await stop()
            finally:
                stopping -= 1
        return stop_counted

    for producer in stuck:
        producer.stop = counted(producer.stop)
    await asyncio.wait_for(txn.revoke(range(4)), 3.0)  # a hang guard
    assert most == 4  # all four stops under way together
    assert txn.producers == {}
    assert all(producer._sender.sender_task.done() for producer in stuck)
