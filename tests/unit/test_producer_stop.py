"""`stop_producer` (responder/ingest/producerstop.py): an aiokafka producer's stop cut short past its deadline leaves
nothing running, and a cancel of the caller is the caller's. aiokafka 0.14's stop first waits for its batches to be
delivered, then cancels its sender routine, which awaits its transactional request; cut short while it waited for
the batches, the stop never reached the sender, which went on looking for the lost coordinator for ever. Real
aiokafka producers over a client with no broker (tests/txn_kit.py `LostGroupProducer`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from responder.ingest.producerstop import stop_producer
from tests.txn_kit import LostGroupProducer


def _aiokafka_tasks() -> list[str]:
    """The aiokafka tasks still running (a sender routine, its requests, a flush)."""
    return [task.get_coro().__qualname__ for task in asyncio.all_tasks()
            if not task.done() and "/aiokafka/" in task.get_coro().cr_code.co_filename]


@pytest.fixture(name="producer")
async def _producer() -> AsyncIterator[LostGroupProducer]:
    """A started transactional producer whose offsets' addition waits for the lost group coordinator."""
    producer = LostGroupProducer(transactional_id="group.changelog.0")
    await producer.start()
    await producer.begin_transaction()
    offsets = asyncio.ensure_future(producer.send_offsets_to_transaction({TopicPartition("alerts", 0): 3}, "group"))
    while not producer.group_lookups:
        await asyncio.sleep(0.01)
    offsets.cancel()  # as the partition's `end_deadline` does: the request goes on in the sender
    yield producer
    producer._sender.sender_task.cancel()  # whatever a failed test left (teardown only)
    await producer.client.close()


async def test_a_stop_cut_short_while_its_batches_wait_cancels_the_sender_and_fails_them(
        producer: LostGroupProducer) -> None:
    """A stop cut short while batches wait cancels the sender and fails them, nothing left seeking the coordinator."""
    sent = await producer._message_accumulator.add_message(  # no leader known: never delivered
        TopicPartition("changelog", 0), b"key", b"value", timeout=1)
    assert not await asyncio.wait_for(stop_producer(producer, 0.2, transactional_id="group.changelog.0"), 3.0)
    assert producer._sender.sender_task.done()
    assert isinstance(sent.exception(), KafkaError)  # failed, not left pending: the stop's flush ended
    looked = producer.group_lookups
    await asyncio.sleep(0.1)
    assert producer.group_lookups == looked  # nothing left looking for the coordinator
    assert _aiokafka_tasks() == []


async def test_a_stop_cut_short_while_the_sender_awaits_its_request_leaves_nothing_running(
        producer: LostGroupProducer) -> None:
    """A stop cut short while the sender awaits its request leaves no aiokafka task; a later stop is a no-op."""
    assert not await asyncio.wait_for(stop_producer(producer, 0.2), 3.0)
    assert producer._sender.sender_task.done()
    assert _aiokafka_tasks() == []
    await producer.stop()  # a later stop (the teardown's) is a no-op, and no "Unclosed AIOKafkaProducer"
    assert producer._closed


async def test_a_cancel_of_the_caller_during_the_stop_is_raised_not_taken_for_the_deadline(
        producer: LostGroupProducer) -> None:
    """A cancel of the caller during the stop is raised, not taken for the deadline, and reaches the sender."""
    stopping = asyncio.create_task(stop_producer(producer, 30.0))
    await asyncio.sleep(0.1)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(stopping, 3.0)
    assert producer._sender.sender_task.done()  # the cancel reached the stop, and its request


async def test_a_cancel_of_the_caller_during_the_stop_closes_the_connections_the_stop_left(
        producer: LostGroupProducer) -> None:
    """A stop cancelled mid-way (a revocation cut) closes the client: a second stop, the teardown's, would not."""
    closed: list[bool] = []
    close = producer.client.close

    async def closing() -> None:
        closed.append(True)
        await close()

    producer.client.close = closing  # type: ignore[method-assign]
    stopping = asyncio.create_task(stop_producer(producer, 30.0))
    await asyncio.sleep(0.1)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(stopping, 3.0)
    assert closed
    assert producer._closed  # begun: the teardown's stop returns at once


async def test_a_cancel_request_left_in_the_caller_by_a_task_group_is_not_taken_for_a_cancel(
        producer: LostGroupProducer) -> None:
    """With a cancel request a TaskGroup left in the caller, a stop hitting its deadline returns false, not raising."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(1)
    assert task.cancelling() == 1
    assert not await asyncio.wait_for(stop_producer(producer, 0.2), 3.0)
    task.uncancel()


class _FailingStop:
    """A producer whose stop raises as aiokafka's does when its sender's request failed: before closing its client."""

    def __init__(self) -> None:
        self.client = self
        self.closed = False

    async def stop(self) -> None:
        raise KafkaError("the sender's request failed")

    async def close(self) -> None:
        self.closed = True


async def test_a_stop_that_fails_closes_the_connections_it_left() -> None:
    """A producer stop that fails closes the connections it left."""
    producer = _FailingStop()
    assert not await stop_producer(producer, 1.0)
    assert producer.closed
