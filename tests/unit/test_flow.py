"""Backpressure: per-partition lanes, in-flight budget, pause/resume, and the readers/writer gate."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from responder.ingest.flow import Flow
from responder.ingest.gate import Gate
from responder.models.event import RawRecord


class Consumer:
    """Records pause/resume calls like aiokafka would apply them."""

    def __init__(self) -> None:
        self.paused: set[Any] = set()
        self.calls: list[tuple[str, Any]] = []

    def pause(self, partitions: list[Any]) -> None:
        self.paused.update(partitions)
        self.calls += [("pause", tp) for tp in partitions]

    def resume(self, partitions: list[Any]) -> None:
        self.paused.difference_update(partitions)
        self.calls += [("resume", tp) for tp in partitions]


def _records(partition: int, start: int, n: int) -> list[RawRecord]:
    return [RawRecord(topic="a", partition=partition, offset=o, key=b"k", value=b"{}") for o in range(start, start + n)]


class Handler:
    """Handles chunks; partitions in `slow` wait until released."""

    def __init__(self) -> None:
        self.handled: dict[Any, list[int]] = {}
        self.slow: dict[Any, asyncio.Event] = {}

    async def __call__(self, chunk: dict[Any, list[RawRecord]]) -> None:
        [(tp, records)] = chunk.items()
        if tp in self.slow:
            await self.slow[tp].wait()
        self.handled.setdefault(tp, []).extend(r.offset for r in records)


def _blocked() -> tuple[Consumer, Handler, Any]:
    """A consumer and a handler whose partition ("a", 0) waits until released."""
    consumer, handler, tp = Consumer(), Handler(), ("a", 0)
    handler.slow[tp] = asyncio.Event()
    return consumer, handler, tp


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_slow_partition_is_paused_at_its_budget_while_others_flow_and_resumed_when_drained() -> None:
    """A partition whose handler blocks fills its budget and is paused; another partition keeps being handled."""
    consumer, handler = Consumer(), Handler()
    slow, fast = ("a", 0), ("a", 1)
    handler.slow[slow] = asyncio.Event()
    flow = Flow(consumer, handler, max_in_flight=100, max_batch=50, slow_after=0)
    offset = 0
    for _ in range(10):  # the poll loop: a paused partition is not fetched, so it gets no more records
        batch = {fast: _records(1, offset, 50)}
        if slow not in consumer.paused:
            batch[slow] = _records(0, offset, 50)
        flow.submit(batch)
        offset += 50
        await _settle()
        assert flow.in_flight(slow) <= 100
    assert slow in consumer.paused
    assert flow.paused() == {slow}
    assert flow.in_flight(slow) == 100
    assert flow.peak <= 100
    assert handler.handled[fast] == list(range(500))  # the fast partition flowed throughout
    assert slow not in handler.handled
    handler.slow[slow].set()
    await _settle()
    assert slow not in consumer.paused
    assert flow.in_flight() == 0
    assert handler.handled[slow] == list(range(100))  # in order, nothing lost
    assert consumer.calls == [("pause", slow), ("resume", slow)]
    await flow.close()


async def test_in_flight_never_exceeds_the_larger_of_budget_and_batch() -> None:
    """With a budget below one batch, a partition takes one poll at a time (paused while it is handled)."""
    consumer, handler, tp = _blocked()
    flow = Flow(consumer, handler, max_in_flight=10, max_batch=50)
    flow.submit({tp: _records(0, 0, 50)})
    assert tp in consumer.paused
    assert flow.in_flight(tp) == 50
    handler.slow[tp].set()
    await _settle()
    assert tp not in consumer.paused
    assert flow.peak == 50


async def test_revoked_partition_drops_queued_records_and_close_finishes_the_chunk_in_hand() -> None:
    """drop() forgets queued records (redelivered elsewhere); close() lets the running chunk finish."""
    consumer, handler, tp = _blocked()
    flow = Flow(consumer, handler, max_in_flight=1000, max_batch=10)
    flow.submit({tp: _records(0, 0, 30)})
    await _settle()
    flow.drop([tp])
    assert flow.in_flight(tp) == 10  # the chunk in hand
    closing = asyncio.create_task(flow.close())
    await _settle()
    assert not closing.done()
    handler.slow[tp].set()
    await closing
    assert handler.handled[tp] == list(range(10))


async def test_a_revoked_partition_is_not_reported_when_its_chunk_ends_until_it_gets_records_again() -> None:
    """After drop() the observer hears nothing of the partition, nor at its chunk's end; records submitted again do."""
    consumer, handler, tp = _blocked()
    heard: list[tuple[Any, int, bool]] = []
    flow = Flow(consumer, handler, max_in_flight=1000, max_batch=10,
                observe=lambda p, n, paused, changed: heard.append((p, n, paused)))
    flow.submit({tp: _records(0, 0, 30)})
    await _settle()
    heard.clear()
    flow.drop([tp])
    handler.slow[tp].set()
    await _settle()
    assert handler.handled[tp] == list(range(10))  # the chunk in hand finished
    assert heard == []
    flow.submit({tp: _records(0, 40, 5)})  # assigned here again
    await _settle()
    assert heard[0] == (tp, 5, False)
    assert heard[-1] == (tp, 0, False)
    await flow.close()


async def test_close_cancels_a_chunk_still_running_at_the_drain_deadline_without_committing_it() -> None:
    """A graceful stop is bounded: a chunk whose actuators hang is cancelled after the drain deadline, unhandled."""
    consumer, handler, tp = _blocked()
    flow = Flow(consumer, handler, max_in_flight=1000, max_batch=10, drain_deadline=0.05)
    flow.submit({tp: _records(0, 0, 10)})
    await _settle()
    await asyncio.wait_for(flow.close(), timeout=5)
    assert tp not in handler.handled  # left to the next owner (redelivered; its durable intent is verified)


async def test_a_failed_lane_is_raised_by_the_next_submit() -> None:
    """A handler error (a timeline that cannot be written) stops the poll loop, and nothing more is handled."""
    seen: list[int] = []

    async def handle(chunk: dict[Any, list[RawRecord]]) -> None:
        [records] = chunk.values()
        seen.extend(r.offset for r in records)
        raise OSError("disk gone")

    flow = Flow(Consumer(), handle, max_in_flight=1000, max_batch=5)
    flow.submit({("a", 0): _records(0, 0, 10)})
    await _settle()
    assert seen == [0, 1, 2, 3, 4]
    with pytest.raises(OSError, match="disk gone"):
        flow.submit({})
    with pytest.raises(OSError, match="disk gone"):
        await flow.close()


async def test_gate_is_shared_by_lanes_and_exclusive_waits_for_them_and_blocks_new_ones() -> None:
    """Lanes hold the gate together; an exclusive holder waits for them and new lanes wait behind it."""
    gate, order = Gate(), []
    release = asyncio.Event()

    async def lane(name: str) -> None:
        async with gate.shared():
            order.append(f"{name} in")
            await release.wait()
            order.append(f"{name} out")

    async def writer() -> None:
        async with gate:
            order.append("writer")

    first = [asyncio.create_task(lane("a")), asyncio.create_task(lane("b"))]
    await _settle()
    assert order == ["a in", "b in"]
    w = asyncio.create_task(writer())
    await _settle()
    late = asyncio.create_task(lane("c"))
    await _settle()
    assert order == ["a in", "b in"]
    release.set()
    await asyncio.gather(*first, w, late)
    assert order[2:] == ["a out", "b out", "writer", "c in", "c out"]


async def test_a_cancelled_exclusive_waiter_lets_the_lanes_behind_it_in() -> None:
    """A cancelled exclusive waiter lets the lanes behind it in at once while an earlier lane holds the gate."""
    gate, inside, release = Gate(), [], asyncio.Event()

    async def lane(name: str) -> None:
        async with gate.shared():
            inside.append(name)
            await release.wait()

    async def writer() -> None:
        async with gate:
            inside.append("writer")

    first = asyncio.create_task(lane("a"))
    await _settle()
    w = asyncio.create_task(writer())
    await _settle()
    late = asyncio.create_task(lane("b"))
    await _settle()
    assert inside == ["a"]
    w.cancel()
    await _settle()
    assert inside == ["a", "b"]
    release.set()
    await asyncio.gather(first, late)
    assert w.cancelled()


async def test_lanes_share_one_batch_of_handling_until_a_chunk_is_slow() -> None:
    """Chunks of different partitions handle at most max_batch records at once; a slow chunk gives its share back."""
    consumer, handler = Consumer(), Handler()
    concurrent, peak, gate = [0], [0], asyncio.Event()

    async def handle(chunk: dict[Any, list[RawRecord]]) -> None:
        [records] = chunk.values()
        concurrent[0] += len(records)
        peak[0] = max(peak[0], concurrent[0])
        await gate.wait()
        concurrent[0] -= len(records)
        await handler(chunk)

    flow = Flow(consumer, handle, max_in_flight=1000, max_batch=10, slow_after=3600)
    flow.submit({("a", p): _records(p, 0, 6) for p in range(3)})
    await _settle()
    assert concurrent[0] == 6  # one partition's chunk; the next two would exceed one batch
    gate.set()
    await _settle()
    assert peak[0] == 6
    assert sorted(handler.handled) == [("a", 0), ("a", 1), ("a", 2)]
    gate.clear()
    slow = Flow(consumer, handle, max_in_flight=1000, max_batch=10, slow_after=0.01)
    slow.submit({("a", p): _records(p, 6, 6) for p in range(3)})
    await asyncio.sleep(0.2)
    assert concurrent[0] == 18  # each chunk turned slow and let the next one start
    gate.set()
    await slow.close()
