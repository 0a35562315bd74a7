"""Once the lanes are failing (`Flow.failing`: a dead letter not sent), nothing more is committed: not offsets committed
at once after the gate, not a fleet's transaction, not the coalesced commits; and a chunk that waited for the gate
meanwhile starts nothing (responder/service/batches.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import NodeNotReadyError

from responder.ingest.raw import to_raw
from responder.models.event import RawRecord
from tests import deadletter_kit as kit
from tests.consumer_kit import TP, FakeBroker, fleet_with_txn

P0 = TopicPartition("a", 0)


def _announced() -> NodeNotReadyError:
    return NodeNotReadyError("another lane's dead letter not sent")


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_offsets_are_not_committed_when_a_failure_came_while_the_chunk_left_the_gate(tmp_path, monkeypatch):
    """Commits at once (interval 0): a dead letter announced as a handled chunk is about to leave the gate: none."""
    async with kit.served(tmp_path, monkeypatch) as (service, _):
        _, committed = kit.unsendable(service, asyncio.Event())
        handled, leave, handle_chunk = asyncio.Event(), asyncio.Event(), service._handle_chunk

        async def handle(batch: dict[Any, list[RawRecord]]) -> dict[Any, int] | None:
            offsets = await handle_chunk(batch)
            handled.set()
            await leave.wait()  # held for the test: the chunk, handled, its offsets in hand, is about to leave the gate
            return offsets

        service._handle_chunk = handle  # type: ignore[method-assign]
        chunk = asyncio.create_task(service._handle_batch({P0: [kit.record(0, "a", kit.finding(kit.LATER))]}))
        try:
            async with asyncio.timeout(5):
                await handled.wait()
            await _settle()
            assert not chunk.done()
            service.flow.failing(_announced())
        finally:
            leave.set()
        await asyncio.wait_for(chunk, 5)
        assert await kit.results_of(service, kit.LATER) == ["ok"]
        assert committed == []


async def test_a_chunk_that_waited_for_the_gate_starts_nothing_once_a_failure_is_announced(tmp_path, monkeypatch):
    """A chunk waiting for the gate when a dead letter is announced acts on nothing once let in, and commits nothing."""
    async with kit.served(tmp_path, monkeypatch) as (service, iam):
        _, committed = kit.unsendable(service, asyncio.Event())
        async with service._lock:  # a rebalance, say, holds the gate exclusively
            chunk = asyncio.create_task(service._handle_batch({P0: [kit.record(0, "a", kit.finding(kit.LATER))]}))
            await _settle()
            service.flow.failing(_announced())
        await asyncio.wait_for(chunk, 5)
        assert iam.keys[kit.LATER]["Status"] == "Active"
        assert await kit.results_of(service, kit.LATER) == []
        assert committed == []


async def test_a_chunk_ending_after_a_failure_adds_nothing_to_the_coalesced_commits(tmp_path, monkeypatch):
    """Coalesced commits (interval > 0): a chunk that ends after a dead letter was announced leaves nothing pending."""
    async with kit.served(tmp_path, monkeypatch, kafka_commit_interval_ms=60_000) as (service, iam):
        _, committed = kit.unsendable(service, asyncio.Event())
        chunk = asyncio.create_task(service._handle_batch({P0: [kit.record(0, "b", kit.finding(kit.SLOW))]}))
        async with asyncio.timeout(5):
            await iam.entered[kit.SLOW].wait()
        service.flow.failing(_announced())
        iam.release[kit.SLOW].set()
        await asyncio.wait_for(chunk, 5)
        assert await kit.results_of(service, kit.SLOW) == ["ok"]
        assert service.commits.pending() == {}
        assert committed == []


async def test_a_fleet_chunk_ending_after_a_failure_commits_no_transaction(tmp_path) -> None:
    """Transactions mode: a chunk that ends after a dead letter was announced commits no offsets with its changelog."""
    service, txn = fleet_with_txn(tmp_path)

    async def deadletter(*args: Any) -> None:
        service.flow.failing(_announced())  # another lane's dead letter failed meanwhile; this one was sent

    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    try:
        assert await service._handle_chunk({TP: [to_raw(r) for r in FakeBroker(records=2).log]}) is None
        assert txn.committed == []
        assert service.ingest.commits == 0
    finally:
        service.recorder.close()
        await service.close_unstarted()


async def test_a_graceful_stop_whose_lanes_failed_cancels_the_coalesced_commit_in_hand(tmp_path, monkeypatch):
    """The alert loop stopping gracefully when `flow.close` raises a lane's failure: the commit in hand is cancelled."""
    async with kit.served(tmp_path, monkeypatch, kafka_commit_interval_ms=60_000) as (service, _):
        in_hand = asyncio.create_task(asyncio.Event().wait())  # a coalesced commit under way

        async def consume() -> None:
            service.commits._task = in_hand

        async def close(*, cancel: bool = False) -> None:
            raise ExceptionGroup("dead letters not sent", [_announced()])

        service._consume = consume  # type: ignore[method-assign]
        service.flow.close = close  # type: ignore[method-assign]
        try:
            with pytest.raises(ExceptionGroup, match="dead letters not sent"):
                await service._alerts_loop()
            await _settle()
            assert in_hand.cancelled()
        finally:
            in_hand.cancel()


@pytest.mark.parametrize("ending", ["graceful", "failed"])
async def test_an_alert_loop_cancelled_while_it_ends_its_restores_leaves_no_lane_or_commit_running(
        tmp_path, monkeypatch, ending):
    """Cancelled (another loop failed) while a merging restore is awaited: the chunk and the commit are cancelled."""
    async with kit.served(tmp_path, monkeypatch, kafka_commit_interval_ms=60_000) as (service, iam):
        in_hand, restoring = asyncio.create_task(asyncio.Event().wait()), asyncio.Event()

        async def consume() -> None:
            service.flow.submit({P0: [kit.record(0, "b", kit.finding(kit.SLOW))]})
            await iam.entered[kit.SLOW].wait()
            service.commits._task = in_hand  # a coalesced commit under way
            if ending == "failed":
                raise RuntimeError("the poll loop's bug")

        async def end_restore() -> None:
            restoring.set()
            await asyncio.Event().wait()  # a restore merging, for as long as the test wants

        service._consume = consume  # type: ignore[method-assign]
        service._end_restore = end_restore  # type: ignore[method-assign]
        loop = asyncio.create_task(service._alerts_loop())
        try:
            async with asyncio.timeout(5):
                await restoring.wait()
            loop.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(loop, 5)
            await _settle()
            assert service.flow._lanes == {}
            assert iam.held_calls[kit.SLOW] == ["cancelled"]
            assert in_hand.cancelled()
        finally:
            loop.cancel()
            in_hand.cancel()
