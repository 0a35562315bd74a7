"""A changelog write that fails transiently (a leader moved or down past aiokafka's batch expiry) is sent again, not
fatal: without transactions every record again (the topic is compacted and keyed), with transactions in a new
transaction after the failed one is aborted, holding every record of the aborted one; a permanent error is raised at
once (responder/ingest/changelog.py, responder/ingest/transactions.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)
from structlog.testing import capture_logs

from responder.engine.snapshot import EngineSnapshot
from responder.errors_kafka import ChangelogError
from responder.ingest.transactions import Transactions
from tests.txn_kit import (
    FailingAcksProducer,
    FailingTxnProducer,
    changelog_sending_with,
    fake_transactions,
)

TP0 = TopicPartition("alerts", 0)


async def test_a_write_that_failed_while_the_leader_moved_is_sent_again() -> None:
    """A changelog write failing transiently while the leader moves is retried until every record is written."""
    producer = FailingAcksProducer([NotLeaderForPartitionError(), NodeNotReadyError(), RequestTimedOutError(),
                                    KafkaTimeoutError()])
    changelog = await changelog_sending_with(producer)
    with capture_logs() as logs:
        await changelog.write(2, {"inc-1": EngineSnapshot(), "inc-2": None})
    assert {(p, k) for p, k, _ in producer.log} == {(2, b"inc-1"), (2, b"inc-2")}
    assert producer.log[-1][2] is None  # the tombstone stays a tombstone
    assert [e["event"] for e in logs].count("kafka_send_retried") == 2  # two records a try: two failed tries
    assert producer.client.refreshed == 2


async def test_a_permanent_write_error_is_raised_at_once() -> None:
    """A record too large for the broker is not sent again: the write raises on the first failure."""
    producer = FailingAcksProducer([MessageSizeTooLargeError(), MessageSizeTooLargeError()])
    changelog = await changelog_sending_with(producer)
    with pytest.raises(MessageSizeTooLargeError):
        await changelog.write(0, {"inc-1": EngineSnapshot()})
    assert len(producer.failures) == 1


@pytest.fixture(name="txn")
async def _txn(monkeypatch: pytest.MonkeyPatch) -> Transactions:
    """Transactions over an in-memory producer for partition 0."""
    return await fake_transactions(monkeypatch, [0], FailingTxnProducer)


async def test_a_held_transaction_that_failed_transiently_is_aborted_and_run_again_whole(txn: Transactions) -> None:
    """A held transaction whose write times out twice is aborted and rerun whole, then committed once with offsets."""
    producer = txn.producers[0]
    assert isinstance(producer, FailingTxnProducer)
    with txn.hold([0]):
        await txn.write(0, [(b"inc-1", b"{}")])
        producer.failures = [KafkaTimeoutError(), NodeNotReadyError()]
        await txn.write(0, [(b"inc-2", b"{}"), (b"inc-3", None)])
        await txn.commit({TP0: 7})
    assert [a["records"] for a in producer.aborted] == [[b"inc-1"], []]  # the second failed at its first send
    assert producer.committed == [{"records": [b"inc-1", b"inc-2", b"inc-3"], "offsets": {TP0: 7}}]


async def test_a_permanent_error_in_a_transaction_fails_the_partition_at_once(txn: Transactions) -> None:
    """A record too large: ChangelogError on the first failure, no second transaction begun."""
    producer = txn.producers[0]
    assert isinstance(producer, FailingTxnProducer)
    producer.failures = [MessageSizeTooLargeError(), MessageSizeTooLargeError()]
    with pytest.raises(ChangelogError, match="MessageSizeTooLarge"):
        await txn.write(0, [(b"inc-1", b"{}")], urgent=True)
    assert len(producer.failures) == 1
    assert producer.committed == []


async def test_offsets_are_never_committed_after_the_partitions_transaction_failed(txn: Transactions) -> None:
    """After a partition's transaction fails, the other lane's offsets commit raises and nothing is committed."""
    producer = txn.producers[0]
    assert isinstance(producer, FailingTxnProducer)
    txn.send_deadline = 0.2
    with txn.hold([0]), txn.hold([0]):
        await txn.write(0, [(b"inc-1", b"{}")])  # lane a's chunk: written, held for its offsets
        producer.failures = [NodeNotReadyError()] * 10_000
        with pytest.raises(ChangelogError):
            await txn.write(0, [(b"inc-2", b"{}")])  # lane b's chunk: the broker gone past the deadline
        producer.failures = []
        with pytest.raises(ChangelogError):
            await txn.commit({TP0: 7})  # lane a's offsets
    assert producer.committed == []
    await txn.revoke([0])
    await txn.assign([0])  # given back later: a new producer, no failure left over
    await txn.write(0, [(b"inc-3", b"{}")])
    assert txn.producers[0].committed == [{"records": [b"inc-3"], "offsets": {}}]  # type: ignore[attr-defined]


async def test_a_write_waiting_to_run_again_when_its_partition_is_revoked_is_not_run(txn: Transactions) -> None:
    """A write waiting to retry when its partition is revoked raises ChangelogError and never runs again."""
    producer = txn.producers[0]
    assert isinstance(producer, FailingTxnProducer)
    producer.failures = [NodeNotReadyError()]
    write = asyncio.create_task(txn.write(0, [(b"inc-1", b"{}")], urgent=True))
    async with asyncio.timeout(5):
        while producer.failures:  # the first attempt failed: the write is in its backoff now
            await asyncio.sleep(0)
    await txn.revoke([0])
    with pytest.raises(ChangelogError, match="revoked"):
        await write
    assert producer.committed == []
