"""A consumer closed while a broker is down does not turn a graceful stop into a cancellation."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from responder.ingest.kafka import stop_consumer


class DownBrokerConsumer:
    """Like aiokafka 0.14: the fetcher's close awaits a fetch task it cancelled (asleep in its retry backoff)."""

    def __init__(self) -> None:
        self.closed = False
        self.retrying = asyncio.create_task(asyncio.sleep(60))
        self.queued = asyncio.create_task(asyncio.sleep(60))
        self._fetcher = SimpleNamespace(_pending_tasks={self.retrying, self.queued})
        self._client = SimpleNamespace(close=self._close)

    async def _close(self) -> None:
        self.closed = True

    async def stop(self) -> None:
        self.retrying.cancel()
        await self.retrying  # raises CancelledError into the caller


async def test_stray_cancelled_error_from_a_fetch_in_backoff_is_absorbed_and_the_client_closed() -> None:
    """stop_consumer returns normally, cancels the other fetches and closes the client."""
    consumer = DownBrokerConsumer()
    await stop_consumer(consumer)
    assert consumer.closed
    await asyncio.sleep(0)
    assert consumer.queued.cancelled()


async def test_a_real_cancellation_of_the_stopping_task_still_propagates() -> None:
    """When the caller itself is cancelled, CancelledError is raised as usual."""
    consumer = DownBrokerConsumer()
    stopping = asyncio.create_task(stop_consumer(consumer))
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping


async def _leak_a_cancellation() -> None:
    """What Python 3.11's TaskGroup leaves when a child fails while `__aexit__` waits for the others: the parent
    task was cancelled to wake it, and that request is never taken back (`cancelling()` stays 1)."""
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("a loop failed")

    async def loops() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(fails())
            tg.create_task(asyncio.sleep(60))

    with pytest.raises(ExceptionGroup):
        await loops()
    task = asyncio.current_task()
    assert task is not None
    if not task.cancelling():  # a Python whose TaskGroup takes it back: make the same state by hand
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(1)


async def test_a_cancellation_handled_before_the_stop_does_not_make_the_stray_one_ours() -> None:
    """After a loop's TaskGroup failed, the teardown's stop absorbs aiokafka's stray CancelledError and closes."""
    await _leak_a_cancellation()
    consumer = DownBrokerConsumer()
    await stop_consumer(consumer)
    assert consumer.closed


async def test_a_new_cancellation_during_the_stop_still_propagates_after_an_old_one() -> None:
    """With a cancel count already left at 1, a cancellation arriving during the stop is raised, not absorbed."""
    async def stop_after_a_leak(consumer: DownBrokerConsumer) -> None:
        await _leak_a_cancellation()
        await stop_consumer(consumer)

    consumer = DownBrokerConsumer()
    consumer.retrying.cancel()
    consumer.retrying = asyncio.create_task(asyncio.sleep(60))

    async def slow_stop() -> None:
        await asyncio.sleep(60)

    consumer.stop = slow_stop  # type: ignore[method-assign]
    stopping = asyncio.create_task(stop_after_a_leak(consumer))
    for _ in range(20):
        await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert not consumer.closed
