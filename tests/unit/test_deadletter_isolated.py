"""A dead letter that cannot be sent fails its chunk without cutting the chunk's other keys short: their tasks run
to their end (an actuator call under way completes and is recorded), the failed key handles nothing after its
record, then the chunk raises the send's error; a TimelineError still cancels the other keys at once, and so does a
cancellation from outside, after which the chunk raises the send's error, not the cancel
(responder/service/batches.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import NodeNotReadyError, ProducerFenced

from responder.errors import BrokerUnreachable, TimelineError
from responder.errors_kafka import ReplicaFenced
from responder.exception_groups import Drained, only
from responder.ingest.flow import Flow
from responder.models.event import RawRecord
from tests.deadletter_kit import (
    LANES,
    LATER,
    POISON,
    SLOW,
    Unpaused,
    finding,
    partly_bad,
    record,
    results_of,
    served,
    unsendable,
    unwritable,
)


def _chunk() -> dict[Any, list[RawRecord]]:
    """Key "a": a finding on POISON with an element of unknown shape (acted on, then dead-lettered), then a finding on
    LATER; key "b": a finding on SLOW."""
    return {("a", 0): [record(0, "a", partly_bad(POISON)), record(1, "b", finding(SLOW)),
                       record(2, "a", finding(LATER))]}


@pytest.mark.parametrize("lane", LANES)
async def test_an_unsent_dead_letter_lets_the_other_keys_finish_then_fails_the_chunk(tmp_path, monkeypatch, lane):
    """An unsent dead letter lets the other key's AWS call finish and be written, then fails the chunk uncommitted."""
    async with served(tmp_path, monkeypatch, lane) as (service, iam):
        failed, committed = unsendable(service, iam.entered[SLOW])  # key b is in its call
        chunk = asyncio.create_task(service._handle_batch(_chunk()))
        await failed.wait()
        iam.release[SLOW].set()
        with pytest.raises(ExceptionGroup) as raised:
            await chunk
        assert only(raised.value, NodeNotReadyError) is not None  # the error leaves the chunk as before
        assert iam.held_calls[SLOW] == ["completed"]
        assert await results_of(service, SLOW) == ["ok"]
        assert iam.keys[SLOW]["Status"] == "Inactive"
        assert iam.keys[POISON]["Status"] == "Inactive"  # its good finding acted before the dead letter
        assert iam.keys[LATER]["Status"] == "Active"  # key a's record after the one not dead-lettered
        assert committed == []
        assert service.unready() == "stopping"


@pytest.mark.parametrize("grouped", [False, True], ids=["bare", "in-a-group"])
@pytest.mark.parametrize("lane", LANES)
async def test_a_timeline_error_still_cancels_the_other_keys_at_once(tmp_path, monkeypatch, lane, grouped):
    """A TimelineError in one key's stage at once cancels the other key's AWS call and is raised; no dead letter."""
    async with served(tmp_path, monkeypatch, lane) as (service, iam):
        sent: list[int] = []

        async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
            sent.append(record.offset)

        unwritable(monkeypatch, service, b"a", iam.entered[SLOW], grouped=grouped)
        service.ingest.deadletter = deadletter  # type: ignore[method-assign]
        with pytest.raises(ExceptionGroup) as raised:
            await service._handle_batch(_chunk())
        assert only(raised.value, TimelineError) is not None
        assert iam.held_calls[SLOW] == ["cancelled"]
        assert await results_of(service, SLOW) == []
        assert sent == []
        assert service.unready() == "stopping"


async def test_a_stop_still_cancels_the_keys_a_failed_dead_letter_waits_for(tmp_path, monkeypatch):
    """A cancel from outside after a failed dead letter cancels the awaited calls and raises the send's error."""
    async with served(tmp_path, monkeypatch) as (service, iam):
        failed, committed = unsendable(service, iam.entered[SLOW])  # key b is in its call
        chunk = asyncio.create_task(service._handle_batch(_chunk()))
        await failed.wait()
        chunk.cancel()
        with pytest.raises(ExceptionGroup) as raised:
            await chunk
        assert only(raised.value, NodeNotReadyError) is not None
        assert iam.held_calls[SLOW] == ["cancelled"]
        assert await results_of(service, SLOW) == []
        assert committed == []
        assert service.unready() == "stopping"


@pytest.mark.parametrize("slow_after", [0, 3600], ids=["slow", "within-slow-after"])
async def test_a_stop_past_the_drain_deadline_ends_with_the_unsent_dead_letter(tmp_path, monkeypatch, slow_after):
    """A stop's drain deadline passing after a failed dead letter cancels the lane and raises the send's error."""
    async with served(tmp_path, monkeypatch) as (service, iam):
        failed, committed = unsendable(service, iam.entered[SLOW])  # key b is in its call
        # the lane awaits its chunk at once (slow), or is cancelled within its first `slow_after` second (where its
        # handler's error was lost before s31: HandlingBudget.handle); the stop cancels it at once
        flow = Flow(Unpaused(), service._handle_batch, max_in_flight=1000, max_batch=10, slow_after=slow_after,
                    drain_deadline=0)
        flow.submit(_chunk())
        await failed.wait()
        with pytest.raises(ExceptionGroup) as raised:
            await flow.close()
        assert only(raised.value, NodeNotReadyError) is not None
        assert iam.held_calls[SLOW] == ["cancelled"]
        assert committed == []


@pytest.mark.parametrize("lane", LANES)
async def test_a_timeline_error_after_an_unsent_dead_letter_is_raised_with_it(tmp_path, monkeypatch, lane):
    """A TimelineError after an unsent dead letter ends its chunk's drain: both raised, the TimelineError deciding."""
    async with served(tmp_path, monkeypatch, lane) as (service, iam):
        now = asyncio.Event()
        now.set()
        failed, committed = unsendable(service, now)
        unwritable(monkeypatch, service, b"b", failed)
        with pytest.raises(Drained) as raised:  # before, a plain group: the CLI exited 1, not 3 as from another lane
            await service._handle_batch(_chunk())
        unsent, *later = raised.value.exceptions
        assert only(unsent, NodeNotReadyError) is not None
        assert [type(e) for e in later] == [TimelineError]
        assert only(raised.value, TimelineError, deciding=True) == later  # an exit 3, as the TimelineError alone
        assert iam.keys[LATER]["Status"] == "Active"
        assert committed == []


async def test_a_lane_whose_chunk_met_both_fails_with_the_drained_group(tmp_path, monkeypatch):
    """A lane whose own chunk held the unsent dead letter and the TimelineError fails with them as one Drained group."""
    async with served(tmp_path, monkeypatch) as (service, _):
        now = asyncio.Event()
        now.set()
        failed, _ = unsendable(service, now)
        unwritable(monkeypatch, service, b"b", failed)
        service.flow.submit(_chunk())
        async with asyncio.timeout(5):
            while not isinstance(service.flow.failed, Drained):
                await asyncio.sleep(0.01)
        assert only(service.flow.failed, TimelineError, deciding=True) is not None
        await service.flow.close(cancel=True)


@pytest.mark.parametrize("error", [ReplicaFenced("fenced"), ProducerFenced(), BrokerUnreachable("no broker")],
                         ids=["replica-fenced", "producer-fenced", "unreachable"])
async def test_a_dead_letter_failing_fenced_or_cut_off_cancels_the_other_keys_at_once(tmp_path, monkeypatch, error):
    """A dead letter failing with a fence or a cut-off (nothing may act further) cancels the other keys at once."""
    async with served(tmp_path, monkeypatch) as (service, iam):
        failed, committed = unsendable(service, iam.entered[SLOW], error)  # key b is in its call
        chunk = asyncio.create_task(service._handle_batch(_chunk()))
        await failed.wait()
        for _ in range(20):  # before s31 key b's call went on until released (or its step's timeout)
            await asyncio.sleep(0)
        assert iam.held_calls[SLOW] == ["cancelled"]
        with pytest.raises(ExceptionGroup) as raised:
            await chunk
        assert raised.value.exceptions == (error,)
        assert service.flow.failed is None  # not announced: its lane's failure cancels every other lane's chunk
        assert committed == []
