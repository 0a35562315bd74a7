"""A dead letter that cannot be sent on one partition stops the service without cutting short the chunks other
partitions' lanes have in hand: their AWS calls complete and are recorded, no lane starts a chunk from the moment the
send failed, nothing more is committed, and the service fails with the send's error; a timeline failure in another
lane meanwhile still cancels every chunk at once (responder/ingest/flow.py, responder/service/batches.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import NodeNotReadyError, ProducerFenced

from responder.errors import BrokerUnreachable, TimelineError, TopicRefused
from responder.errors_kafka import ReplicaFenced, TransactionFailed
from responder.exception_groups import Drained, only
from responder.models.event import RawRecord
from responder.service import Service
from responder.service.batches import drainable
from tests import deadletter_kit as kit
from tests.consumer_kit import AssignmentConsumer

P0, P1 = TopicPartition("a", 0), TopicPartition("a", 1)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def _until(done: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not done():
            await asyncio.sleep(0.01)


@contextlib.contextmanager
def _polling(service: Service, first: dict[Any, list[RawRecord]]) -> Iterator[asyncio.Event]:
    """The alert loop's consumer: `first` at the first poll, nothing after; yields the event set once the loop, failed,
    has begun to stop (what it does right before it stops the lanes). The real consumer is put back after."""
    real, consumer = service.ingest.consumer, AssignmentConsumer()
    consumer.assigned = {P0, P1}
    service.ingest.consumer = consumer  # type: ignore[assignment]
    batches = [first]

    async def poll(timeout_ms: int = 200) -> dict[Any, list[RawRecord]]:
        await asyncio.sleep(0.01)
        return batches.pop() if batches else {}

    stopping, end_restore = asyncio.Event(), service._end_restore

    async def ending() -> None:
        await end_restore()
        stopping.set()

    service.ingest.poll = poll  # type: ignore[method-assign]
    service._end_restore = ending  # type: ignore[method-assign]
    try:
        yield stopping
    finally:
        service.ingest.consumer = real


async def _stopped(loop: asyncio.Task[None]) -> BaseException:
    async with asyncio.timeout(5):
        with pytest.raises(BaseException) as raised:  # noqa: PT011 - whatever it ends with is asserted after
            await loop
    return raised.value


async def test_an_unsent_dead_letter_lets_another_partitions_aws_call_finish_before_the_service_fails(
        tmp_path, monkeypatch):
    """Partition 0's dead letter fails while partition 1's chunk is in its AWS call: the call completes, uncommitted."""
    async with kit.served(tmp_path, monkeypatch) as (service, iam):
        failed, committed = kit.unsendable(service, iam.entered[kit.SLOW])
        first = {P0: [kit.record(0, "a", b"not json")], P1: [kit.record(0, "b", kit.finding(kit.SLOW), 1)]}
        with _polling(service, first) as stopping:
            loop = asyncio.create_task(service._alerts_loop())
            await failed.wait()
            async with asyncio.timeout(5):
                await stopping.wait()
            await _settle()  # before s31 the loop cancelled every lane's chunk here
            iam.release[kit.SLOW].set()
            error = await _stopped(loop)
        assert only(error, NodeNotReadyError) is not None, error
        assert iam.held_calls[kit.SLOW] == ["completed"]
        assert await kit.results_of(service, kit.SLOW) == ["ok"]
        assert iam.keys[kit.SLOW]["Status"] == "Inactive"
        assert committed == []
        assert service.unready() == "stopping"


@pytest.mark.parametrize("lane", ["batch", "traced"])
async def test_no_lane_starts_a_chunk_or_commits_once_a_dead_letter_failed(tmp_path, monkeypatch, lane):
    """Once partition 0's dead letter fails, partition 1's chunk in hand ends uncommitted and its next never starts."""
    async with kit.served(tmp_path, monkeypatch, lane, held=(kit.SLOW, kit.HELD)) as (service, iam):
        both_in = asyncio.Event()
        failed, committed = kit.unsendable(service, both_in)
        service.flow.submit({
            P0: [kit.record(0, "a", kit.partly_bad(kit.POISON)), kit.record(1, "b", kit.finding(kit.SLOW))],
            P1: [kit.record(0, "c", kit.finding(kit.HELD), 1)]})
        async with asyncio.timeout(5):
            await iam.entered[kit.SLOW].wait()
            await iam.entered[kit.HELD].wait()
        service.flow.submit({P1: [kit.record(1, "d", kit.finding(kit.AFTER), 1)]})  # queued behind its chunk in hand
        both_in.set()
        await failed.wait()
        assert service.unready() == "stopping"
        with pytest.raises(NodeNotReadyError):
            service.flow.submit({})  # the poll loop stops at its next poll
        iam.release[kit.HELD].set()
        await _until(lambda: service.flow._lanes[P1].task is None)
        assert iam.held_calls[kit.HELD] == ["completed"]
        assert iam.keys[kit.AFTER]["Status"] == "Active"
        assert await kit.results_of(service, kit.AFTER) == []
        assert committed == []
        iam.release[kit.SLOW].set()
        with pytest.raises(ExceptionGroup) as raised:
            await service.flow.close()
        assert only(raised.value, NodeNotReadyError) is not None
        assert committed == []


async def test_a_timeline_error_in_another_lane_still_cancels_every_chunk_at_once(tmp_path, monkeypatch):
    """While an unsent dead letter waits for its chunk's AWS call, another lane's TimelineError cancels it at once."""
    async with kit.served(tmp_path, monkeypatch) as (service, iam):
        timeline_fails = asyncio.Event()
        failed, committed = kit.unsendable(service, iam.entered[kit.SLOW])
        kit.unwritable(monkeypatch, service, b"c", timeline_fails)
        first = {P0: [kit.record(0, "a", kit.partly_bad(kit.POISON)), kit.record(1, "b", kit.finding(kit.SLOW))],
                 P1: [kit.record(0, "c", kit.finding(kit.LATER), 1)]}
        with _polling(service, first) as stopping:
            loop = asyncio.create_task(service._alerts_loop())
            await failed.wait()
            async with asyncio.timeout(5):
                await stopping.wait()
            timeline_fails.set()
            error = await _stopped(loop)
        assert isinstance(error, Drained), error  # the dead letter, and the TimelineError that ended its drain
        assert only(error.exceptions[0], NodeNotReadyError) is not None
        assert only(error, TimelineError, deciding=True) is not None, error  # an exit 3, as the TimelineError alone
        assert iam.held_calls[kit.SLOW] == ["cancelled"]
        assert await kit.results_of(service, kit.SLOW) == []
        assert committed == []


@pytest.mark.parametrize(("error", "drains"), [
    (NodeNotReadyError("node 1"), True), (TopicRefused("an ACL"), True), (TimelineError("disk full"), False),
    (ReplicaFenced("fenced"), False), (TransactionFailed("cut off"), False), (ProducerFenced(), False),
    (BrokerUnreachable("no broker"), False), (asyncio.CancelledError(), False),
    (ExceptionGroup("both", [NodeNotReadyError("node 1"), TimelineError("disk full")]), False),
], ids=["unsent", "refused", "timeline", "replica-fenced", "txn-failed", "producer-fenced", "unreachable", "cancel",
        "with-timeline"])
def test_only_a_dead_letters_own_send_errors_let_the_chunks_in_hand_finish(error, drains):
    """A dead letter's send error lets the chunks in hand finish; a timeline failure, a fence, a cut-off never does."""
    assert drainable(error) is drains


def test_an_error_raised_from_a_fence_does_not_let_the_chunks_in_hand_finish():
    """A send error raised from a fence (its cause) forbids acting further, as the fence itself does."""
    error = NodeNotReadyError("node 1")
    error.__cause__ = ProducerFenced()
    assert not drainable(error)


@pytest.mark.parametrize("where", ["context", "grouped-cause", "stage"])
async def test_a_fence_behind_a_send_error_by_context_group_or_stage_is_not_announced(tmp_path, monkeypatch, where):
    """A fence the send error was raised while handling, or from within a group, or the stage's own: none drains."""
    error, stage = NodeNotReadyError("node 1"), RuntimeError("a stage's bug")
    if where == "context":
        error.__context__ = ProducerFenced()
    elif where == "grouped-cause":
        error.__cause__ = ExceptionGroup("changelog", [ReplicaFenced("fenced")])
    else:
        stage = ReplicaFenced("fenced")  # dead-lettered as a bug by `_failed` (a stage of `_prepare_batch`'s)
    async with kit.served(tmp_path, monkeypatch) as (service, _):
        assert service._unsent(error, stage) is False
        assert service.flow.failed is None  # its lane's failure cancels the other lanes' chunks at once


async def _timed_out() -> TimeoutError:
    """A TimeoutError as asyncio raises it: from the cancel it took back (its `__cause__` and `__context__`)."""
    try:
        async with asyncio.timeout(0):
            await asyncio.sleep(1)
    except TimeoutError as exc:
        return exc
    raise AssertionError("asyncio.timeout(0) did not time out")


@pytest.mark.parametrize("how", ["context", "cause"])
async def test_a_timeout_behind_a_send_error_still_lets_the_chunks_in_hand_finish(how):
    """A send error raised while handling, or from, an asyncio timeout (itself raised from its cancel) drains."""
    timeout = await _timed_out()
    assert isinstance(timeout.__cause__, asyncio.CancelledError)  # Python 3.11.7 sets it, not only the context
    error = NodeNotReadyError("node 1")
    if how == "context":
        error.__context__ = timeout
    else:
        error.__cause__ = timeout
    assert drainable(error)


async def test_a_stage_that_timed_out_lets_the_chunks_in_hand_finish_after_its_unsent_dead_letter(
        tmp_path, monkeypatch):
    """A stage failing with an escaped asyncio timeout, its dead letter unsent: the lanes drain, none cancelled."""
    stage = await _timed_out()
    async with kit.served(tmp_path, monkeypatch) as (service, _):
        assert service._unsent(NodeNotReadyError("node 1"), stage) is True
        assert service.flow.failed is not None  # announced: the other lanes' chunks in hand finish
