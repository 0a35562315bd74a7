"""A partition's transaction that fails for good without a fence raises TransactionFailed, at once and on every later
write or commit of the partition, so the replica rejoins (responder/service/rejoin.py); a revocation's stays a plain
ChangelogError (CI 2026-12-06: aiokafka's sender routine died on a killed broker's reset connection)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    ProducerFenced,
    RequestTimedOutError,
    StaleLeaderEpochCodeError,
    TopicAuthorizationFailedError,
    TransactionCoordinatorFenced,
)

from responder.errors_kafka import ChangelogError, ReplicaFenced, TransactionFailed
from responder.ingest.transactions import Transactions
from responder.service.rejoinreasons import rejoin_reason
from tests.txn_kit import FailingTxnProducer, GroupLostProducer, fake_transactions, loop_complaints

TP4 = TopicPartition("alerts", 4)


class _SenderDied(FailingTxnProducer):
    """A transactional producer whose sender routine died: the offsets' addition fails as aiokafka 0.14 fails it."""

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        raise KafkaError("Unexpected error during batch delivery")


@pytest.fixture(name="txn")
async def _txn(monkeypatch: pytest.MonkeyPatch) -> Transactions:
    """Transactions over a producer whose offsets' addition fails for good, partition 4."""
    return await fake_transactions(monkeypatch, [4], _SenderDied)


async def test_a_dead_producers_offsets_commit_raises_transaction_failed_and_so_does_the_next_write(txn):
    """A dead producer's offsets commit raises TransactionFailed, as do the next write and commit, sending nothing."""
    producer = txn.producers[4]
    assert isinstance(producer, _SenderDied)
    with txn.hold([4]):
        await txn.write(4, [(b"inc-1", b"{}")])
        with pytest.raises(TransactionFailed, match="Unexpected error during batch delivery") as raised:
            await txn.commit({TP4: 3})
    assert isinstance(raised.value.__cause__, KafkaError)
    assert 4 in txn.failed
    with pytest.raises(TransactionFailed, match="failed earlier"):
        await txn.write(4, [(b"inc-2", b"{}")], urgent=True)
    with pytest.raises(TransactionFailed, match="failed earlier"):
        await txn.commit({TP4: 4})
    assert producer.committed == []


async def test_a_failure_after_the_partition_was_revoked_is_no_transaction_failure(txn):
    """A producer failure after its partition was revoked is a plain ChangelogError, not a TransactionFailed."""
    producer = txn.producers[4]
    gate = asyncio.Event()

    async def failing_later(offsets: dict[TopicPartition, int], group_id: str) -> None:
        await gate.wait()
        raise KafkaError("Unexpected error during batch delivery")

    producer.send_offsets_to_transaction = failing_later  # type: ignore[method-assign]
    commit = asyncio.create_task(txn.commit({TP4: 3}))
    await asyncio.sleep(0.01)
    await txn.revoke([4])  # while the offsets' addition waits
    gate.set()
    with pytest.raises(ChangelogError, match="revoked as its transaction failed") as raised:
        await commit
    assert not isinstance(raised.value, TransactionFailed)
    await txn.assign([4])  # given back: its new producer's failure is the partition's
    with pytest.raises(TransactionFailed):
        await txn.commit({TP4: 3})


@pytest.mark.parametrize("error", [GroupAuthorizationFailedError("group"), MessageSizeTooLargeError(),
                                   TopicAuthorizationFailedError("changelog"), AssertionError("aiokafka state")])
async def test_a_permanent_failure_is_a_plain_changelog_error_that_does_not_rejoin(monkeypatch, error):
    """An ACL refusal, a too-large record or a state assertion fails the partition with a plain ChangelogError."""

    class _Refused(FailingTxnProducer):
        async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
            raise error

    txn = await fake_transactions(monkeypatch, [4], _Refused)
    with pytest.raises(ChangelogError, match=type(error).__name__) as raised:
        await txn.commit({TP4: 3})
    assert not isinstance(raised.value, TransactionFailed)
    assert rejoin_reason(raised.value) is None
    with pytest.raises(ChangelogError, match="failed earlier") as again:
        await txn.write(4, [(b"inc-2", b"{}")], urgent=True)
    assert not isinstance(again.value, TransactionFailed)


@pytest.mark.parametrize("error", [KafkaConnectionError("reset"), RequestTimedOutError(),
                                   TimeoutError("no answer from the coordinator"), StaleLeaderEpochCodeError()])
async def test_kafka_cut_off_past_the_deadline_is_a_transaction_failure(monkeypatch, error):
    """Kafka cut off past the deadline (lost connection, timeout or NETWORK_EXCEPTION) is a TransactionFailed."""

    class _CutOff(FailingTxnProducer):
        async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
            raise error

    txn = await fake_transactions(monkeypatch, [4], _CutOff)
    txn.send_deadline = 0.0  # a transient error is not sent again: the last one fails the partition
    with pytest.raises(TransactionFailed) as raised:
        await txn.commit({TP4: 3})
    assert rejoin_reason(raised.value) == "transaction_failed"
    assert txn.fenced == set()


@pytest.mark.parametrize("error", [ProducerFenced(), InvalidProducerEpoch(), TransactionCoordinatorFenced()])
async def test_a_fence_is_a_replica_fenced(monkeypatch, error):
    """A fenced producer, an epoch its coordinator no longer takes, or a fenced coordinator is a ReplicaFenced."""

    class _Fenced(FailingTxnProducer):
        async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
            raise error

    txn = await fake_transactions(monkeypatch, [4], _Fenced)
    with pytest.raises(ReplicaFenced):
        await txn.commit({TP4: 3})
    assert txn.fenced == {4}


async def test_aiokafka_s_producer_whose_sender_died_fails_and_closes_leaving_asyncio_nothing_to_log(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """aiokafka's producer, its sender dead in the offsets' commit: TransactionFailed, closed, nothing unretrieved."""
    # aiokafka logs the dead sender with its traceback, which pytest's log capture would keep (and the producer with it)
    monkeypatch.setattr(logging.getLogger("aiokafka.producer.sender"), "disabled", True)
    with loop_complaints() as said:
        txn = await fake_transactions(monkeypatch, [4], GroupLostProducer)
        with pytest.raises(TransactionFailed, match="Unexpected error during batch delivery"):
            await asyncio.wait_for(txn.commit({TP4: 7}), 3.0)  # a hang guard
        await asyncio.wait_for(txn.revoke([4]), 3.0)  # a hang guard
    assert said == []
