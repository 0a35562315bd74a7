"""`Transactions.hold()` is per partition: one lane's hold or commit never opens, commits or blocks another
partition's transaction (the lanes of responder/ingest/flow.py run concurrently, one per input partition).

The interleavings below are those of two lanes, p0 and p1, each running the service's
`with txn.hold([p]): await recorder.flush(); await txn.commit(offsets)` while the other is inside its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.ingest import transactions as transactions_module
from responder.ingest.transactions import Transactions

TP0, TP1 = TopicPartition("alerts", 0), TopicPartition("alerts", 1)


class FakeTxnProducer:
    """An in-memory transactional producer: records each committed transaction's records and offsets."""

    def __init__(self, *, transactional_id: str, **_: Any) -> None:
        self.transactional_id = transactional_id
        self.open: dict[str, Any] | None = None
        self.committed: list[dict[str, Any]] = []
        self.gate: asyncio.Event | None = None  # when set, commit_transaction waits for it

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def begin_transaction(self) -> None:
        assert self.open is None, "a transaction is open already"
        self.open = {"records": [], "offsets": {}}

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int) -> asyncio.Future[None]:
        assert self.open is not None, "send outside a transaction"
        self.open["records"].append(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        assert self.open is not None
        self.open["offsets"].update(offsets)

    async def commit_transaction(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        assert self.open is not None
        self.committed.append(self.open)
        self.open = None

    async def abort_transaction(self) -> None:
        self.open = None


async def fake_transactions(monkeypatch: pytest.MonkeyPatch, partitions: list[int],
                            producer: type[FakeTxnProducer] = FakeTxnProducer) -> Transactions:
    """Transactions over in-memory producers (`producer`) for `partitions`."""
    async def start(made: FakeTxnProducer, deadline: float) -> None:
        await made.start()

    monkeypatch.setattr(transactions_module, "AIOKafkaProducer", producer)
    monkeypatch.setattr(transactions_module, "_start_with_retry", start)
    txn = Transactions("127.0.0.1:1", "changelog", "group")
    await txn.assign(partitions)
    return txn


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
