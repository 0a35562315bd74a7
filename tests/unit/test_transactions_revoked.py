"""`Transactions` across a revocation and the partition given back in the same process (a consumer's rebuild does
that): nothing a write of the revoked producer does afterwards reaches the next owner's transactions, and offsets
of partitions not owned are not reported committed (responder/ingest/transactions.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, NodeNotReadyError, ProducerClosed, ProducerFenced

from responder.errors_kafka import ChangelogError, ReplicaFenced
from responder.ingest.transactions import Transactions
from tests.txn_kit import FailingTxnProducer, fake_transactions

TP0, TP1 = TopicPartition("alerts", 0), TopicPartition("alerts", 1)
WHEN = ["given-back-after", "given-back-meanwhile"]


@pytest.fixture(name="txn")
async def _txn(monkeypatch: pytest.MonkeyPatch) -> Transactions:
    """Transactions over an in-memory producer for partition 0."""
    return await fake_transactions(monkeypatch, [0], FailingTxnProducer)


def _producer(txn: Transactions) -> FailingTxnProducer:
    producer = txn.producers[0]
    assert isinstance(producer, FailingTxnProducer)
    return producer


async def _next_owner_writes(txn: Transactions, given_back: bool) -> None:
    """Give partition 0 back unless `given_back` already, write to it: only that write is committed."""
    if not given_back:
        await txn.assign([0])
    await txn.write(0, [(b"inc-C", b"{}")], urgent=True)
    assert _producer(txn).committed == [{"records": [b"inc-C"], "offsets": {}}]


@pytest.mark.parametrize("meanwhile", [False, True], ids=WHEN)
async def test_a_write_waiting_on_the_lock_at_revoke_leaves_no_records_for_the_next_owner(txn: Transactions,
                                                                                         meanwhile: bool) -> None:
    """A write queued on the partition's lock when it is revoked is refused whole: the next owner sends only its own."""
    old = _producer(txn)
    old.failures = [NodeNotReadyError()]
    a = asyncio.create_task(txn.write(0, [(b"inc-A", b"{}")], urgent=True))  # in its backoff, holding the lock
    async with asyncio.timeout(5):
        while old.failures:
            await asyncio.sleep(0)
    b = asyncio.create_task(txn.write(0, [(b"inc-B", b"old")], urgent=True))  # waits for the lock
    await asyncio.sleep(0)
    await txn.revoke([0])
    if meanwhile:
        await txn.assign([0])
    for task in (a, b):
        with pytest.raises(ChangelogError, match="revoked"):
            await task
    await _next_owner_writes(txn, meanwhile)


@pytest.mark.parametrize("meanwhile", [False, True], ids=WHEN)
@pytest.mark.parametrize("error", [ProducerClosed, ProducerFenced], ids=["closed", "fenced-by-its-successor"])
async def test_a_write_failing_after_revoke_leaves_no_failure_for_the_next_owner(txn: Transactions, meanwhile: bool,
                                                                                 error: type[KafkaError]) -> None:
    """A write whose send fails for good once revoked neither fails nor fences the partition given back."""
    old, gate = _producer(txn), asyncio.Event()

    async def send(topic: str, value: bytes | None, *, key: bytes, partition: int) -> None:
        await gate.wait()
        raise error()

    old.send = send  # type: ignore[method-assign,assignment]
    a = asyncio.create_task(txn.write(0, [(b"inc-A", b"{}")], urgent=True))
    async with asyncio.timeout(5):
        while old.open is None:
            await asyncio.sleep(0)
    await txn.revoke([0])
    if meanwhile:
        await txn.assign([0])
    gate.set()
    with pytest.raises(ChangelogError, match="revoked") as raised:
        await a
    assert not isinstance(raised.value, ReplicaFenced)  # its successor fenced it, not another replica
    await _next_owner_writes(txn, meanwhile)


@pytest.mark.parametrize("meanwhile", [False, True], ids=WHEN)
async def test_a_transaction_begun_by_a_revoked_producer_is_not_the_next_owners(txn: Transactions,
                                                                                meanwhile: bool) -> None:
    """A write whose transaction began only after its producer was revoked leaves the next owner none open."""
    old, gate = _producer(txn), asyncio.Event()
    begin = old.begin_transaction

    async def begin_late() -> None:
        await gate.wait()
        await begin()

    async def closed() -> None:  # it was stopped
        raise ProducerClosed()

    old.begin_transaction, old.commit_transaction = begin_late, closed  # type: ignore[method-assign]
    a = asyncio.create_task(txn.write(0, [(b"inc-A", b"{}")], urgent=True))
    await asyncio.sleep(0)
    await txn.revoke([0])
    if meanwhile:
        await txn.assign([0])
    gate.set()
    with pytest.raises(ChangelogError, match="revoked"):
        await a
    await _next_owner_writes(txn, meanwhile)


async def test_a_fence_of_a_partition_still_owned_outlives_the_assignment_of_others(txn: Transactions) -> None:
    """Assigning more partitions leaves an owned, fenced partition fenced: another replica owns it."""
    _producer(txn).failures = [ProducerFenced()]
    with pytest.raises(ReplicaFenced):
        await txn.write(0, [(b"inc-A", b"{}")], urgent=True)
    await txn.assign([0, 1])
    with pytest.raises(ReplicaFenced):
        await txn.write(0, [(b"inc-B", b"{}")], urgent=True)


async def test_a_commit_of_offsets_of_partitions_not_owned_reports_nothing_committed(txn: Transactions) -> None:
    """`commit` says whether it committed any partition's offsets: not for partitions revoked or never owned."""
    assert await txn.commit({}) is False
    assert await txn.commit({TP1: 4}) is False
    assert await txn.commit({TP0: 2, TP1: 4}) is True
    assert _producer(txn).committed == [{"records": [], "offsets": {TP0: 2}}]
