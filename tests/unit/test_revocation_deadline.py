"""A fleet revocation runs within one deadline below the group's rebalance timeout (responder/service/revocation.py):
past it the service fails with RevocationCut (which rejoins as a fence does), the leaving partitions are cut off (an
entry of theirs fails its changelog barrier), and the chunks in hand and the gate's holder are cancelled uncommitted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.bounds import revocation_deadline
from responder.errors_kafka import RevocationCut
from responder.ingest.raw import to_raw
from responder.ingest.transactions import Transactions
from responder.models.timeline import EntryKind, TimelineEntry
from responder.service import Service
from responder.service.parts import acting
from responder.service.rejoinreasons import rejoin_reason
from responder.settings import Settings
from tests.consumer_kit import TP, FakeBroker
from tests.fakes import FakeIam

HANG_GUARD_S = 30.0  # a revocation without the deadline waits for ever: the test fails after this, not hangs


@pytest.fixture
async def fleet_service(tmp_path: Any) -> AsyncIterator[Service]:
    """An unstarted fleet replica (no transactions) owning TP's partition, whose revocation deadline is short."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog")
    service = Service(settings, aws=FakeIam(), runbooks=[])
    assert service.fleet is not None
    service.fleet.owned.add(TP.partition)
    service._given.add(TP.partition)
    service.revocation_deadline = 0.2
    try:
        yield service
    finally:
        await service.flow.close(cancel=True)
        service.recorder.close()
        await service.close_unstarted()


def _committing(service: Service) -> list[Any]:
    """The offsets the service commits from now on (none reach a broker)."""
    committed: list[Any] = []

    async def commit(offsets: Any) -> None:
        committed.append(offsets)

    service.ingest.commit = commit  # type: ignore[method-assign]
    return committed


async def _hanging_chunk(service: Service) -> list[str]:
    """Put a chunk of TP in hand that never ends by itself; returns what happened to it."""
    said: list[str] = []

    async def hanging(batch: Any) -> None:
        said.append("started")
        try:
            await asyncio.Event().wait()  # a cloud call or a Kafka write that does not answer
        except asyncio.CancelledError:
            said.append("cancelled")
            raise

    service._handle_chunk = hanging  # type: ignore[method-assign]
    service.flow.submit({TP: [to_raw(r) for r in FakeBroker(records=2).log]})
    for _ in range(100):
        if said:
            break
        await asyncio.sleep(0)
    assert said == ["started"]
    return said


async def test_a_revocation_whose_chunk_in_hand_hangs_is_cut_at_its_deadline(fleet_service: Service) -> None:
    """A chunk in hand past the deadline is cancelled uncommitted; the partition is cut off; the service fails."""
    committed = _committing(fleet_service)
    said = await _hanging_chunk(fleet_service)
    await asyncio.wait_for(fleet_service._on_revoked([TP]), HANG_GUARD_S)
    assert said == ["started", "cancelled"]
    assert isinstance(fleet_service._rebalance_error, RevocationCut)
    assert "partition(s) 0 took longer than 0.2 s" in str(fleet_service._rebalance_error)
    assert fleet_service.fleet is not None
    assert TP.partition not in fleet_service.fleet.owned
    assert fleet_service.fleet.cut_off == {TP.partition}
    assert fleet_service.flow.idle()
    assert committed == []


async def test_a_hand_over_that_hangs_is_cut_too(fleet_service: Service) -> None:
    """The deadline covers the hand-over's own waits (its offset commit here), not only the chunks in hand."""
    async def never(partitions: Any) -> None:
        await asyncio.Event().wait()

    fleet_service.commits.commit = never  # type: ignore[method-assign]
    await asyncio.wait_for(fleet_service._on_revoked([TP]), HANG_GUARD_S)
    assert isinstance(fleet_service._rebalance_error, RevocationCut)
    assert fleet_service.fleet is not None
    assert TP.partition not in fleet_service.fleet.owned


async def test_a_timeout_inside_the_hand_over_is_a_failed_hand_over_not_a_cut(fleet_service: Service) -> None:
    """A TimeoutError a wait inside raises on its own is the hand-over's failure, kept as it is, not a cut."""
    async def timing_out(partitions: Any) -> None:
        raise TimeoutError("commit timed out")

    fleet_service.revocation_deadline = HANG_GUARD_S
    fleet_service.commits.commit = timing_out  # type: ignore[method-assign]
    await fleet_service._on_revoked([TP])
    assert type(fleet_service._rebalance_error) is TimeoutError


async def test_a_revocation_within_its_deadline_hands_over_and_commits(fleet_service: Service) -> None:
    """A chunk that ends before the deadline is waited for and the hand-over commits: no cut, no failure."""
    committed = _committing(fleet_service)
    release = asyncio.Event()

    async def quick(batch: Any) -> dict[Any, int]:
        await release.wait()
        return {TP: 2}

    fleet_service.revocation_deadline = HANG_GUARD_S
    fleet_service._handle_chunk = quick  # type: ignore[method-assign]
    fleet_service.flow.submit({TP: [to_raw(r) for r in FakeBroker(records=2).log]})
    await asyncio.sleep(0)
    revoking = asyncio.create_task(fleet_service._on_revoked([TP]))
    await asyncio.sleep(0.05)
    assert not revoking.done()  # waits for the chunk in hand
    release.set()
    await asyncio.wait_for(revoking, HANG_GUARD_S)
    assert fleet_service._rebalance_error is None
    assert committed == [{TP: 2}]


async def test_a_chunk_after_the_cut_is_refused(fleet_service: Service) -> None:
    """After a cut the next chunk handles nothing and raises the cut: no record is acted on or committed."""
    committed = _committing(fleet_service)
    await _hanging_chunk(fleet_service)
    await asyncio.wait_for(fleet_service._on_revoked([TP]), HANG_GUARD_S)
    with pytest.raises(RevocationCut):
        await fleet_service._handle_batch({TP: [to_raw(r) for r in FakeBroker(records=1).log]})
    assert committed == []


def test_a_cut_rejoins_as_a_fence_does() -> None:
    """A service ended by a cut revocation is rebuilt in-process (reason `fenced`), not ended."""
    assert rejoin_reason(RevocationCut("cut")) == "fenced"


@pytest.mark.parametrize(("rebalance_ms", "session_ms", "seconds"), [
    (120_000, 10_000, 103.0), (300_000, 10_000, 265.0), (31_000, 10_000, 21.0), (120_000, 120_000, 95.0),
    (5_000, 10_000, 0.0)])
def test_the_deadline_is_the_rebalance_timeout_less_its_margin(rebalance_ms: int, session_ms: int,
                                                               seconds: float) -> None:
    """The deadline leaves the cut's grace and a tenth of the timeout, a heartbeat, or 5 s (the most) for the rejoin."""
    assert revocation_deadline(rebalance_ms, session_ms) == seconds


async def test_a_service_takes_its_deadline_from_the_rebalance_timeout(tmp_path: Any) -> None:
    """RESPONDER_REBALANCE_TIMEOUT_MS sets the service's revocation deadline."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], rebalance_timeout_ms=200_000, session_timeout_ms=12_000)
    service = Service(settings, aws=FakeIam(), runbooks=[])
    try:
        assert service.revocation_deadline == 175.0
    finally:
        service.recorder.close()
        await service.close_unstarted()


async def test_after_the_cut_an_intent_of_a_leaving_incident_fails_its_barrier(fleet_service: Service) -> None:
    """What outlives the cut (past its grace) and asks for an intent of a cut incident is never durable nor written."""
    fleet = fleet_service.fleet
    assert fleet is not None
    fleet.partitions.of["inc-1"] = TP.partition
    written: list[int] = []

    async def write(partition: int, slices: Any, **kw: Any) -> None:
        written.append(partition)

    async def never(partitions: Any) -> None:
        await asyncio.Event().wait()

    fleet.changelog.write = write  # type: ignore[method-assign]
    fleet_service.commits.commit = never  # type: ignore[method-assign]
    await asyncio.wait_for(fleet_service._on_revoked([TP]), HANG_GUARD_S)
    assert isinstance(fleet_service._rebalance_error, RevocationCut)
    with pytest.raises(RevocationCut, match="partition 0 was cut"):
        await fleet.on_durable([_intent("inc-1")])  # its step's intent: the step does not act
    assert written == []


class _HangingProducer:
    """A transactional producer whose abort never answers; `stop` is recorded."""

    def __init__(self) -> None:
        self.stopped = False

    async def abort_transaction(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stopped = True


async def test_a_producer_whose_close_the_cut_cancels_is_still_closed_at_the_stop(fleet_service: Service) -> None:
    """A cut inside the producers' close (transactions) leaves the producer to the teardown's stop, not leaked."""
    assert fleet_service.fleet is not None
    txn = Transactions("127.0.0.1:1", "changelog", "g")
    producer = _HangingProducer()
    txn.producers[TP.partition] = producer  # type: ignore[assignment]
    txn._open[TP.partition] = producer  # type: ignore[assignment]
    fleet_service.fleet.changelog.txn = txn
    try:
        await asyncio.wait_for(fleet_service._on_revoked([TP]), HANG_GUARD_S)
        assert isinstance(fleet_service._rebalance_error, RevocationCut)
        await txn.stop()  # the service's teardown (`Changelog.stop`)
    finally:
        fleet_service.fleet.changelog.txn = None
    assert producer.stopped
    assert txn.producers == {}


@pytest.mark.parametrize(("rebalance_ms", "warned"), [(120_000, False), (55_000, True)])
async def test_a_deadline_not_above_one_wait_is_said_at_start(tmp_path: Any, rebalance_ms: int, warned: bool) -> None:
    """A fleet whose revocation deadline (44.5 s here) is not above the 45 s write deadline is warned of at start."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog", rebalance_timeout_ms=rebalance_ms)
    with capture_logs() as logs:
        service = Service(settings, aws=FakeIam(), runbooks=[])
    try:
        said = [e for e in logs if e["event"] == "revocation_deadline_short"]
        assert bool(said) is warned
        if warned:
            assert (said[0]["deadline_s"], said[0]["longest_wait_s"]) == (44.5, 45.0)
    finally:
        service.recorder.close()
        await service.close_unstarted()


async def test_the_task_holding_the_gate_is_cancelled_by_the_cut(fleet_service: Service) -> None:
    """A decision under the gate (its step retrying past its intent) is cancelled by the cut: no attempt after it."""
    attempts: list[str] = []

    async def deciding() -> None:
        async with acting(fleet_service._lock):
            while True:
                attempts.append("attempt")
                await asyncio.sleep(0.02)

    decision = asyncio.create_task(deciding())
    try:
        await asyncio.sleep(0.05)
        await asyncio.wait_for(fleet_service._on_revoked([TP]), HANG_GUARD_S)
        assert decision.cancelled()
        made = len(attempts)
        await asyncio.sleep(0.1)
        assert len(attempts) == made
        assert fleet_service._lock.holder is None
    finally:
        decision.cancel()
        await asyncio.gather(decision, return_exceptions=True)


def _two_partitions(fleet_service: Service, slow: int) -> tuple[list[int], asyncio.Event]:
    """Partitions 0 and 1 owned, an incident on each; `slow`'s changelog write waits for the event returned."""
    fleet = fleet_service.fleet
    assert fleet is not None
    fleet.owned |= {0, 1}
    fleet.partitions.of.update({"inc-0": 0, "inc-1": 1})
    written: list[int] = []
    release = asyncio.Event()

    async def write(partition: int, slices: Any, **kw: Any) -> None:
        if partition == slow:
            await release.wait()  # a write under way, within its own deadline
        written.append(partition)

    fleet.changelog.write = write  # type: ignore[method-assign]
    return written, release


def _intent(incident: str) -> TimelineEntry:
    return TimelineEntry(seq=1, writer="w", at="t", kind=EntryKind.STEP_INTENT, incident=incident, body={},
                         prev="", hash="")


@pytest.mark.parametrize("slow", [1, 0])
async def test_a_barrier_under_way_when_the_cut_lands_fails_for_the_cut_partition(fleet_service: Service,
                                                                                  slow: int) -> None:
    """A group commit waiting on a write (another partition's, or the cut one's own) when the cut lands fails."""
    written, release = _two_partitions(fleet_service, slow)
    fleet = fleet_service.fleet
    assert fleet is not None
    entries = [_intent("inc-1"), _intent("inc-0")] if slow == 1 else [_intent("inc-0"), _intent("inc-1")]
    barrier = asyncio.create_task(fleet.on_durable(entries))
    await asyncio.sleep(0.05)
    fleet.cut_revoked([0])
    release.set()
    with pytest.raises(RevocationCut, match="partition 0 was cut"):
        await asyncio.wait_for(barrier, HANG_GUARD_S)
    assert 0 not in written or slow == 0  # the cut partition is written only when its own write was under way


async def test_an_eviction_under_way_when_the_cut_lands_writes_no_tombstone_to_the_cut_partition(
        fleet_service: Service) -> None:
    """An eviction writing partition 0's tombstones when partition 1 is cut writes none to partition 1 afterwards."""
    written, release = _two_partitions(fleet_service, slow=0)
    fleet = fleet_service.fleet
    assert fleet is not None
    fleet.closed.due = {0: {"~closed#a"}, 1: {"~closed#b"}}  # group keys the engine forgot: tombstones due
    evicting = asyncio.create_task(fleet.evict())
    await asyncio.sleep(0.05)
    fleet.cut_revoked([1])
    release.set()
    await asyncio.wait_for(evicting, HANG_GUARD_S)
    assert written == [0]


async def test_a_group_commit_rewriting_only_a_cut_partition_s_quotas_is_not_failed(fleet_service: Service) -> None:
    """A flush whose entries are another partition's, rewriting a cut one's `~quotas` record only, still succeeds."""
    written, release = _two_partitions(fleet_service, slow=0)
    fleet = fleet_service.fleet
    assert fleet is not None
    fleet._quotas_at[0] = 5  # partition 0's `~quotas` record holds a run refunded since: it is rewritten too
    fleet.engine.state.windows.take_removed = lambda: 0  # type: ignore[method-assign]
    barrier = asyncio.create_task(fleet.on_durable([_intent("inc-1")]))
    await asyncio.sleep(0.05)  # partition 0's rewrite is under way
    fleet.cut_revoked([0])
    release.set()
    await asyncio.wait_for(barrier, HANG_GUARD_S)  # partition 1's entry is durable: no RevocationCut
    assert written == [0, 1]
