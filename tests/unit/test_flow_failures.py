"""How lanes end when one fails (responder/ingest/flow.py): a failure announced by a handler (`failing`: a dead letter
not sent) stops every lane from starting a chunk and lets the chunks in hand finish when the service fails (`abort`),
within the drain deadline; any other failure cancels them at once; a lane cancelled while its handler runs waits for
the handler and keeps its own error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors_kafka import ReplicaFenced
from responder.exception_groups import Drained, only
from responder.ingest.flow import Flow
from responder.models.event import RawRecord
from responder.service.rejoinreasons import rejoin_reason
from tests.deadletter_kit import Unpaused
from tests.txn_kit import loop_complaints

P0, P1 = ("a", 0), ("a", 1)


def _one(partition: int) -> list[RawRecord]:
    return [RawRecord(topic="a", partition=partition, offset=0, key=b"k", value=b"{}")]


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class Lanes:
    """A handler per partition: each chunk waits until its partition is released; says which started, completed, were
    cancelled; partition 0's raises `unsent` in a group, and, with `announce`, announces it first (`Flow.failing`), as
    batches does a dead letter not sent."""

    def __init__(self, *, announce: bool = True) -> None:
        self.announce = announce
        self.release = {P0: asyncio.Event(), P1: asyncio.Event()}
        self.said: list[str] = []
        self.unsent = OSError("dead letter not sent")
        self.flow = Flow(Unpaused(), self, max_in_flight=1000, max_batch=10, slow_after=3600, drain_deadline=5)

    async def __call__(self, chunk: dict[Any, list[RawRecord]]) -> None:
        [tp] = chunk
        self.said.append(f"{tp[1]} started")
        try:
            if tp == P0 and self.announce:
                self.flow.failing(self.unsent)
            await self.release[tp].wait()
        except asyncio.CancelledError:
            self.said.append(f"{tp[1]} cancelled")
            if tp == P0:  # as batches raises the dead letters it kept unsent when cancelled
                raise ExceptionGroup("dead letters not sent", [self.unsent]) from None
            raise
        self.said.append(f"{tp[1]} completed")
        if tp == P0:
            raise ExceptionGroup("dead letters not sent", [self.unsent])

    async def both_in(self) -> None:
        """Submit a chunk of each partition and wait until both started."""
        self.flow.submit({P0: _one(0), P1: _one(1)})
        await _settle()
        assert self.said == ["0 started", "1 started"]

    async def aborted_then_done(self, first: Any = P1) -> asyncio.Task[BaseException]:
        """Both chunks in hand, `submit` raising the announced dead letter; the service aborts with it, then the chunk
        of partition `first` is released: the abort, not awaited."""
        await self.both_in()
        with pytest.raises(OSError, match="dead letter not sent") as raised:
            self.flow.submit({})
        aborting = asyncio.create_task(self.flow.abort(raised.value))
        await _settle()
        self.release[first].set()
        await _settle()
        return aborting


async def test_abort_lets_the_chunks_in_hand_finish_after_an_announced_failure() -> None:
    """The service failing with the dead letter a lane announced: the other lane's chunk completes, then its error."""
    lanes = Lanes()
    aborting = await lanes.aborted_then_done()
    lanes.release[P0].set()
    failure = await aborting
    assert isinstance(failure, ExceptionGroup)
    assert failure.exceptions == (lanes.unsent,)
    assert lanes.said == ["0 started", "1 started", "1 completed", "0 completed"]


async def test_no_lane_starts_a_chunk_once_a_failure_is_announced() -> None:
    """A lane waiting for its share of handling when a dead letter is announced never starts its chunk."""
    lanes = Lanes()
    lanes.flow.max_batch = 1  # partition 1's chunk waits for partition 0's to end
    lanes.flow.submit({P0: _one(0), P1: _one(1)})
    await _settle()
    assert lanes.said == ["0 started"]
    lanes.release[P0].set()
    await _settle()
    assert lanes.said == ["0 started", "0 completed"]
    assert lanes.flow.in_flight(P1) == 1  # left uncommitted, as queued records are
    with pytest.raises(ExceptionGroup):
        await lanes.flow.close()


@pytest.mark.parametrize("failure", [OSError("the poll failed"), asyncio.CancelledError()], ids=["poll", "cancel"])
async def test_abort_cancels_every_chunk_at_once_for_an_error_not_the_flows(failure) -> None:
    """After a lane announced a dead letter, the poll loop's own error or a cancel still cancels every chunk at once."""
    lanes = Lanes()
    await lanes.both_in()
    assert await lanes.flow.abort(failure) is failure
    assert sorted(lanes.said[2:]) == ["0 cancelled", "1 cancelled"]


async def test_a_lane_failing_with_an_error_not_announced_cancels_the_other_lanes_at_once() -> None:
    """A lane fenced (nothing announced) cancels the chunk another lane has in hand as it fails, before any stop."""
    lanes, fence = Lanes(), asyncio.Event()

    async def fenced(chunk: dict[Any, list[RawRecord]]) -> None:
        if P0 in chunk:
            await fence.wait()  # until partition 1's chunk is in hand
            raise ReplicaFenced("changelog c[0]: fenced")
        await lanes(chunk)

    lanes.flow.handle = fenced
    lanes.flow.submit({P0: _one(0), P1: _one(1)})
    await _settle()
    fence.set()
    await _settle()
    assert lanes.said == ["1 started", "1 cancelled"]
    assert isinstance(lanes.flow.failed, ReplicaFenced)


async def test_the_drain_deadline_cancels_the_chunks_still_running_after_an_announced_failure() -> None:
    """A chunk still running when the drain deadline passes is cancelled, logged as a graceful stop's is."""
    lanes = Lanes()
    lanes.flow.drain_deadline = 0.05
    await lanes.both_in()
    with pytest.raises(OSError, match="dead letter not sent") as raised:
        lanes.flow.submit({})
    with capture_logs() as logs:
        failure = await asyncio.wait_for(lanes.flow.abort(raised.value), 5)
    assert isinstance(failure, ExceptionGroup)
    assert failure.exceptions == (lanes.unsent,)
    assert sorted(lanes.said[2:]) == ["0 cancelled", "1 cancelled"]
    assert [e["chunks"] for e in logs if e["event"] == "drain_deadline_passed"] == [2]


async def test_a_cancelled_graceful_stop_cancels_the_chunks_it_waited_for() -> None:
    """A graceful stop cancelled while it waits for the chunks in hand leaves none of them running."""
    lanes = Lanes(announce=False)
    await lanes.both_in()
    closing = asyncio.create_task(lanes.flow.close())
    await _settle()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert sorted(lanes.said[2:]) == ["0 cancelled", "1 cancelled"]


async def test_a_lane_cancelled_within_slow_after_fails_with_its_handlers_own_error() -> None:
    """A lane cancelled in its chunk's first slow_after second awaits its handler and fails with the handler's error."""
    lanes = Lanes(announce=False)
    with loop_complaints() as complaints:
        lanes.flow.submit({P0: _one(0)})
        await _settle()
        lane = lanes.flow._lanes[P0].task
        assert lane is not None
        lanes.flow.drain_deadline = 0
        with pytest.raises(ExceptionGroup) as raised:
            await lanes.flow.close()
        await _settle()
    assert raised.value.exceptions == (lanes.unsent,)
    assert complaints == []  # no "Task exception was never retrieved"
    assert not lane.cancelled()
    assert lane.cancelling() == 0  # the cancel the handler's error stands for is taken back


async def test_a_lane_cancelled_within_slow_after_ends_cancelled_once_its_handler_did() -> None:
    """A lane cancelled in its chunk's first slow_after second ends cancelled, after its handler, which ended so."""
    lanes = Lanes()
    lanes.flow.submit({P1: _one(1)})
    await _settle()
    lane = lanes.flow._lanes[P1].task
    assert lane is not None
    await lanes.flow.close(cancel=True)
    assert lane.cancelled()
    assert lanes.said == ["1 started", "1 cancelled"]
    assert lanes.flow.failed is None


@pytest.mark.parametrize("first", [P1, P0], ids=["announcing-lane-in-hand", "announcing-lane-failed"])
async def test_a_fence_met_while_an_announced_failure_drains_cancels_the_rest_and_decides_the_rejoin(first) -> None:
    """A lane fenced during the drain cancels the other chunks at once; both are raised, and the fence rejoins."""
    lanes, fence = Lanes(), ReplicaFenced("changelog c[1]: fenced")

    async def fenced(chunk: dict[Any, list[RawRecord]]) -> None:
        await lanes(chunk)
        if P1 in chunk:
            raise fence

    lanes.flow.handle = fenced
    aborting = await lanes.aborted_then_done(first)
    if first == P0:  # the dead letter's lane failed (drained); then partition 1's chunk, fenced
        lanes.release[P1].set()
        await _settle()
        assert lanes.said[2:] == ["0 completed", "1 completed"]
    else:
        assert lanes.said[2:] == ["1 completed", "0 cancelled"]  # not left to its drain deadline
    failure = await aborting
    assert isinstance(failure, Drained)
    assert only(failure.exceptions[0], OSError) == [lanes.unsent]
    assert failure.exceptions[1] is fence
    assert rejoin_reason(ExceptionGroup("loops", [failure])) == "fenced"


async def test_an_error_a_lane_raises_because_the_drain_deadline_cancelled_it_does_not_decide() -> None:
    """A chunk cancelled past the drain deadline raising another error for it: the flow fails with the dead letter."""
    lanes = Lanes()
    lanes.flow.drain_deadline = 0.05

    async def broken_by_the_cancel(chunk: dict[Any, list[RawRecord]]) -> None:
        try:
            await lanes(chunk)
        except asyncio.CancelledError:
            if P1 in chunk:
                raise RuntimeError("a write cut short by the cancel") from None
            raise

    lanes.flow.handle = broken_by_the_cancel
    await lanes.both_in()
    with pytest.raises(OSError, match="dead letter not sent") as raised:
        lanes.flow.submit({})
    failure = await asyncio.wait_for(lanes.flow.abort(raised.value), 5)
    assert not isinstance(failure, Drained), failure
    assert only(failure, OSError) == [lanes.unsent]
