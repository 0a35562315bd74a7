"""`Transactions.hold()` is per partition: one lane's hold or commit never opens, commits or blocks another
partition's transaction (the lanes of responder/ingest/flow.py run concurrently, one per input partition).

The interleavings below are those of two lanes, p0 and p1, each running the service's
`with txn.hold([p]): await recorder.flush(); await txn.commit(offsets)` while the other is inside its own.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from responder.ingest.transactions import Transactions
from tests.txn_kit import FakeTxnProducer, fake_transactions

TP0, TP1 = TopicPartition("alerts", 0), TopicPartition("alerts", 1)


@pytest.fixture(name="txn")
async def _txn(monkeypatch: pytest.MonkeyPatch) -> Transactions:
    """Transactions over in-memory producers for partitions 0 and 1."""
    return await fake_transactions(monkeypatch, [0, 1])


def _producer(txn: Transactions, partition: int) -> FakeTxnProducer:
    producer = txn.producers[partition]
    assert isinstance(producer, FakeTxnProducer)
    return producer


async def test_a_lanes_commit_leaves_another_held_partition_open(txn: Transactions) -> None:
    """p0's commit does not commit p1's held records: they commit once, together with p1's offsets."""
    with txn.hold([1]):  # lane p1: its chunk's records are in p1's open transaction
        await txn.write(1, [(b"p1-slice", b"{}")])
        with txn.hold([0]):  # lane p0 ends its chunk meanwhile
            await txn.write(0, [(b"p0-slice", b"{}")])
            await txn.commit({TP0: 10})
        assert _producer(txn, 1).committed == []
        await txn.commit({TP1: 5})
    assert _producer(txn, 0).committed == [{"records": [b"p0-slice"], "offsets": {TP0: 10}}]
    assert _producer(txn, 1).committed == [{"records": [b"p1-slice"], "offsets": {TP1: 5}}]


async def test_a_hold_ending_does_not_release_another_partitions_hold(txn: Transactions) -> None:
    """p0 leaving its hold does not make p1's later held write commit alone, without p1's offsets."""
    with txn.hold([1]):  # lane p1 enters its hold first and is still flushing...
        with txn.hold([0]):  # ...when lane p0 enters, commits and leaves its own
            await txn.commit({TP0: 10})
        await txn.write(1, [(b"p1-slice", b"{}")])  # p1's flush reaches the changelog now
        assert _producer(txn, 1).committed == []
        await txn.commit({TP1: 5})
    assert _producer(txn, 1).committed == [{"records": [b"p1-slice"], "offsets": {TP1: 5}}]


async def test_a_write_outside_a_hold_commits_at_once_while_another_partition_is_held(txn: Transactions) -> None:
    """A p1 write made while only p0 is held commits at once (not left open until p0's commit)."""
    with txn.hold([0]):
        await txn.write(1, [(b"p1-slice", b"{}")])
        assert _producer(txn, 1).committed == [{"records": [b"p1-slice"], "offsets": {}}]
        assert _producer(txn, 1).open is None
        await txn.commit({TP0: 10})
    assert _producer(txn, 0).committed == [{"records": [], "offsets": {TP0: 10}}]


async def test_a_commit_does_not_wait_for_another_partitions_transaction(txn: Transactions) -> None:
    """p0's commit does not queue behind p1's slow commit (p1's lock is not taken by p0's commit)."""
    _producer(txn, 1).gate = asyncio.Event()
    with txn.hold([1]):
        await txn.write(1, [(b"p1-slice", b"{}")])
        p1_commit = asyncio.create_task(txn.commit({TP1: 5}))  # p1's commit is waiting on the broker
        await asyncio.sleep(0)
        with txn.hold([0]):
            await asyncio.wait_for(txn.commit({TP0: 10}), 1.0)
        assert _producer(txn, 0).committed == [{"records": [], "offsets": {TP0: 10}}]
        gate = _producer(txn, 1).gate
        assert gate is not None
        gate.set()
        await p1_commit
    assert _producer(txn, 1).committed == [{"records": [b"p1-slice"], "offsets": {TP1: 5}}]
