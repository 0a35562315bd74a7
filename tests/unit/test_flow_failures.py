"""How lanes end (responder/ingest/flow.py): a lane cancelled while its handler runs waits for the handler and keeps
its own error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from responder.ingest.flow import Flow
from responder.models.event import RawRecord
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
    cancelled; partition 0's raises `unsent` in a group (as batches does a dead letter not sent)."""

    def __init__(self) -> None:
        self.release = {P0: asyncio.Event(), P1: asyncio.Event()}
        self.said: list[str] = []
        self.unsent = OSError("dead letter not sent")
        self.flow = Flow(Unpaused(), self, max_in_flight=1000, max_batch=10, slow_after=3600, drain_deadline=5)

    async def __call__(self, chunk: dict[Any, list[RawRecord]]) -> None:
        [tp] = chunk
        self.said.append(f"{tp[1]} started")
        try:
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


async def test_a_lane_cancelled_within_slow_after_fails_with_its_handlers_own_error() -> None:
    """A lane cancelled in its chunk's first slow_after second awaits its handler and fails with the handler's error."""
    lanes = Lanes()
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
