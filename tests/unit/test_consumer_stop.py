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
