"""Group commit: every flush() caller waits on the shared flush, and one caller's cancellation is its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from responder.errors import TimelineError
from responder.models.timeline import TimelineEntry
from responder.timeline import MemoryStore, Recorder


class HeldStore(MemoryStore):
    """Its write blocks (in the flush's thread) until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def write(self, data: bytes) -> None:
        self.entered.set()
        self.release.wait(10)
        super().write(data)


async def _until(condition: threading.Event) -> None:
    while not condition.is_set():
        await asyncio.sleep(0.001)


async def test_cancelling_one_waiter_leaves_the_shared_flush_to_the_others() -> None:
    """A caller cancelled mid-flush gets CancelledError; the flush goes on and the other callers see it durable."""
    store = HeldStore()
    rec = Recorder(store, writer="w")

    async def one(i: int) -> int:
        rec.append("x", {"i": i})
        await rec.flush()
        return i

    tasks = [asyncio.create_task(one(i)) for i in range(3)]
    await _until(store.entered)  # one write of all three entries is under way
    tasks[1].cancel()
    await asyncio.sleep(0.01)
    assert not tasks[0].done()  # still waiting for the fsync
    assert not tasks[2].done()
    store.release.set()
    assert await tasks[0] == 0
    assert await tasks[2] == 2
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert store.syncs == 1
    assert store.synced == len(store.read())
    assert [e.body["i"] for e in rec.entries()] == [0, 1, 2]


async def test_a_failed_barrier_reaches_every_waiter_and_nothing_counts_as_durable() -> None:
    """The changelog barrier's failure is raised in every caller of that flush, and the entries stay not durable."""
    rec = Recorder(MemoryStore(), writer="w")

    async def failing(entries: Sequence[TimelineEntry]) -> None:
        raise OSError("changelog down")

    rec.barriers.append(failing)

    async def one(i: int) -> None:
        rec.append("x", {"i": i})
        await rec.flush()

    results = await asyncio.gather(*(one(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, TimelineError) for r in results)
    assert rec._durable_seq == -1


async def test_a_cancelled_waiter_during_a_stall_leaves_the_others_waiting() -> None:
    """While the disk refuses the batch, cancelling one caller neither completes nor fails the others."""

    class Full(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.full = True

        def write(self, data: bytes) -> None:
            if self.full:
                raise OSError(28, "No space left on device")
            super().write(data)

    store = Full()
    rec = Recorder(store, writer="w", retry_max=0.01)

    async def one(i: int) -> None:
        rec.append("x", {"i": i})
        await rec.flush()

    tasks = [asyncio.create_task(one(i)) for i in range(3)]
    while rec.stalls < 2:
        await asyncio.sleep(0.005)
    tasks[0].cancel()
    await asyncio.sleep(0.05)
    assert not tasks[1].done()
    assert not tasks[2].done()
    store.full = False
    await asyncio.gather(tasks[1], tasks[2])
    assert tasks[0].cancelled()
    assert [e.body["i"] for e in rec.entries()] == [0, 1, 2]
