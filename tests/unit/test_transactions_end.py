"""A transaction's commit, abort or offsets' addition that gets no answer (the cluster down: aiokafka waits with no
limit) is bounded by `end_deadline`; then the partition's transaction fails like one that failed for good: no write or
offsets commit until revoked (responder/ingest/transactions.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import NodeNotReadyError

from responder.errors_kafka import ChangelogError
from responder.ingest.transactions import Transactions
from tests.txn_kit import FailingTxnProducer, fake_transactions

TP0 = TopicPartition("alerts", 0)


class _Unanswered(FailingTxnProducer):
    """A transactional producer whose commit (and abort, when `abort_hangs`) never ends: no coordinator answers."""

    abort_hangs = False

    async def commit_transaction(self) -> None:
        await asyncio.Event().wait()

    async def abort_transaction(self) -> None:
        if self.abort_hangs:
            await asyncio.Event().wait()
        await super().abort_transaction()


@pytest.fixture(name="txn")
async def _txn(monkeypatch: pytest.MonkeyPatch) -> Transactions:
    """Transactions over a producer whose commits never end, partition 0, a 0.2 s end deadline."""
    txn = await fake_transactions(monkeypatch, [0], _Unanswered)
    txn.end_deadline = txn.send_deadline = 0.2
    return txn


async def test_an_unanswered_commit_fails_the_partition_within_the_end_deadline(txn: Transactions) -> None:
    """An urgent write's commit with no answer raises ChangelogError after the deadline; the offsets are refused."""
    with pytest.raises(ChangelogError, match=r"TimeoutError: .*commit had no answer") as raised:
        await asyncio.wait_for(txn.write(0, [(b"inc-1", b"{}")], urgent=True), 2.0)
    assert isinstance(raised.value.__cause__, TimeoutError)
    assert 0 in txn.failed
    with pytest.raises(ChangelogError, match="failed earlier"):
        await txn.commit({TP0: 3})


async def test_an_unanswered_offsets_commit_fails_the_partition_and_refuses_later_writes(txn: Transactions) -> None:
    """A chunk's commit of held writes and offsets with no answer raises after the deadline; the next write too."""
    with txn.hold([0]):
        await txn.write(0, [(b"inc-1", b"{}")])
        with pytest.raises(ChangelogError, match="commit had no answer"):
            await asyncio.wait_for(txn.commit({TP0: 3}), 2.0)
    with pytest.raises(ChangelogError, match="failed earlier"):
        await txn.write(0, [(b"inc-2", b"{}")], urgent=True)


async def test_an_unanswered_abort_after_a_transient_error_fails_the_partition(txn: Transactions) -> None:
    """A send fails transiently; the abort before running the transaction again never ends: the partition fails."""
    producer = txn.producers[0]
    assert isinstance(producer, _Unanswered)
    producer.abort_hangs = True
    producer.failures = [NodeNotReadyError()]
    with pytest.raises(ChangelogError, match="abort had no answer"):
        await asyncio.wait_for(txn.write(0, [(b"inc-1", b"{}")], urgent=True), 2.0)
    assert 0 in txn.failed


async def test_a_revocation_does_not_wait_for_an_unanswered_abort(txn: Transactions) -> None:
    """A partition revoked with its transaction open and an abort that never ends is closed after the deadline."""
    producer = txn.producers[0]
    assert isinstance(producer, _Unanswered)
    producer.abort_hangs = True
    with txn.hold([0]):
        await txn.write(0, [(b"inc-1", b"{}")])
        await asyncio.wait_for(txn.revoke([0]), 2.0)
    assert txn.producers == {}
