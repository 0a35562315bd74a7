"""A fleet member's changelog barrier and its membership lease (responder/fleet_lease.py, responder/ingest/lease.py):
out of lease nothing of its partitions is written or acts; the alert consumer's lease wired as aiokafka starts it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

import responder.fleet as fleet_module
from responder.errors import TimelineError
from responder.errors_kafka import MembershipLapsed
from responder.fleet import FleetState
from responder.ingest.lease import LEFT, MembershipLease
from responder.models.timeline import EntryKind, TimelineEntry
from responder.service import Service, rejoin_reason
from responder.settings import Settings
from tests.fakes import FakeIam
from tests.lease_kit import UNKNOWN_MEMBER_ID, Clock, Consumer, Coordinator, StartingConsumer, beat

Lapsing = tuple[Service, Clock, list[int]]


@pytest.fixture
async def lapsing(tmp_path: Any) -> AsyncIterator[Lapsing]:
    """An unstarted fleet replica owning partition 0 (incident inc-0), its lease (10 s session) on a clock the test
    moves, assigned at t = 100 s, and the partitions its changelog writes reach."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog", session_timeout_ms=10_000)
    service = Service(settings, aws=FakeIam(), runbooks=[])
    fleet, lease = service.fleet, service.ingest.lease
    assert fleet is not None
    assert lease is not None
    assert fleet.lease is lease
    clock = Clock()
    lease.clock = clock
    fleet.owned.add(0)
    fleet.partitions.of["inc-0"] = 0
    written: list[int] = []

    async def write(partition: int, slices: Any, **kw: Any) -> None:
        written.append(partition)

    fleet.changelog.write = write  # type: ignore[method-assign]
    try:
        yield service, clock, written
    finally:
        service.recorder.close()
        await service.close_unstarted()


def _watching(service: Service, clock: Clock) -> tuple[FleetState, Coordinator]:
    """The service's fleet state, its lease watching a coordinator the test drives, assigned now."""
    fleet = service.fleet
    assert fleet is not None
    assert fleet.lease is not None
    consumer = Consumer(clock)
    fleet.lease.watch(consumer)
    fleet.lease.assigned()
    assert consumer._coordinator is not None
    return fleet, consumer._coordinator


def _intent(incident: str) -> TimelineEntry:
    return TimelineEntry(seq=1, writer="w", at="t", kind=EntryKind.STEP_INTENT, incident=incident, body={},
                         prev="", hash="")


async def test_a_barrier_within_the_lease_writes_and_passes(lapsing: Lapsing) -> None:
    """Within its lease a member's step intent is written to its partition's changelog and counts as durable."""
    service, clock, written = lapsing
    fleet, _ = _watching(service, clock)
    clock.now += 9.0
    await fleet.on_durable([_intent("inc-0")])
    assert written == [0]


async def test_past_the_lease_a_step_intent_fails_its_barrier_at_once_unwritten(lapsing: Lapsing) -> None:
    """Past its lease, no heartbeat awaited, a member writes nothing and its step's barrier fails at once."""
    service, clock, written = lapsing
    fleet, _ = _watching(service, clock)
    clock.now += 10.0
    with capture_logs() as logs, pytest.raises(MembershipLapsed, match="partition\\(s\\) 0 may be another member"):
        await asyncio.wait_for(fleet.on_durable([_intent("inc-0")]), 1)  # far below the 45 s deadline
    with pytest.raises(MembershipLapsed):
        await fleet.on_durable([_intent("inc-0")])
    assert written == []
    assert [e["event"] for e in logs] == ["membership_lapsed"]  # said once, raised each time


async def test_a_lease_that_ends_while_the_write_waits_fails_the_barrier_after_it(lapsing: Lapsing) -> None:
    """A write that outlasts the lease (its own deadline not passed) is not taken as durable: the step does not act."""
    service, clock, written = lapsing
    fleet, _ = _watching(service, clock)

    async def slow(partition: int, slices: Any, **kw: Any) -> None:
        clock.now += 11.0  # the write waited past the lease
        written.append(partition)

    fleet.changelog.write = slow  # type: ignore[method-assign]
    with pytest.raises(MembershipLapsed):
        await fleet.on_durable([_intent("inc-0")])
    assert written == [0]


async def test_an_entry_of_a_partition_not_owned_is_not_refused_for_the_lease(lapsing: Lapsing) -> None:
    """Between assignments (nothing owned) an ended lease refuses nothing: there is nothing of the group's to lose."""
    service, clock, written = lapsing
    fleet, _ = _watching(service, clock)
    fleet.owned.clear()
    clock.now += 60.0
    await asyncio.wait_for(fleet.on_durable([_intent("inc-0")]), 1)
    assert written == []  # not owned: not written either (its new owner writes it)


async def test_a_barrier_waits_for_a_heartbeat_sent_within_the_lease_and_then_writes(lapsing: Lapsing) -> None:
    """Past the lease while a heartbeat sent within it awaits its answer, the barrier waits; answered, it writes."""
    service, clock, written = lapsing
    fleet, coordinator = _watching(service, clock)
    clock.now += 9.0
    coordinator.hold = asyncio.Event()
    asking = asyncio.create_task(beat(coordinator))  # sent at 109, within the lease, its answer slow to come
    await asyncio.sleep(0)
    clock.now += 3.0
    with capture_logs() as logs:
        barrier = asyncio.create_task(fleet.on_durable([_intent("inc-0")]))
        await asyncio.sleep(0.3)
        assert not barrier.done()
        assert written == []  # nothing written, nothing acts, while out of lease
        coordinator.hold.set()
        assert await asking is True
        await asyncio.wait_for(barrier, 5)
    assert written == [0]
    assert [e["event"] for e in logs] == ["membership_lease_waiting", "membership_lease_renewed"]


async def test_a_barrier_waiting_for_a_heartbeat_fails_at_its_changelog_deadline(lapsing: Lapsing) -> None:
    """A heartbeat awaited past the flush's changelog deadline: MembershipLapsed, nothing written."""
    service, clock, written = lapsing
    fleet, coordinator = _watching(service, clock)
    fleet.changelog.write_deadline = 0.3
    clock.now += 9.0
    coordinator.hold = asyncio.Event()
    asking = asyncio.create_task(beat(coordinator))
    await asyncio.sleep(0)
    clock.now += 3.0
    with pytest.raises(MembershipLapsed):
        await asyncio.wait_for(fleet.on_durable([_intent("inc-0")]), 5)
    assert written == []
    asking.cancel()


async def test_a_refused_member_s_barrier_fails_at_once(lapsing: Lapsing) -> None:
    """A coordinator that answered "not a member" fails the barrier at once, without waiting for its deadline."""
    service, clock, written = lapsing
    fleet, coordinator = _watching(service, clock)
    coordinator.code = UNKNOWN_MEMBER_ID
    await beat(coordinator)
    with pytest.raises(MembershipLapsed, match="not a member"):
        await asyncio.wait_for(fleet.on_durable([_intent("inc-0")]), 1)
    assert written == []


async def test_heartbeats_answered_meanwhile_keep_the_barrier_open(lapsing: Lapsing) -> None:
    """Heartbeats answered every few seconds keep the lease, however long the member runs."""
    service, clock, written = lapsing
    fleet, coordinator = _watching(service, clock)
    coordinator.rtt = 0.5
    for _ in range(10):
        clock.now += 4.5
        assert await beat(coordinator) is True
    await fleet.on_durable([_intent("inc-0")])
    assert written == [0]


async def test_the_alert_consumer_of_a_fleet_keeps_a_lease_and_a_manual_one_none(tmp_path: Any) -> None:
    """A fleet member's alert consumer keeps a lease (its session, rebalance timeouts); none without group or fleet."""
    for manual, fleet, expected in ((False, True, (7.0, 120.0)), (True, True, None), (False, False, None)):
        settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / f"{manual}{fleet}.jsonl",
                            runbooks_dir=tmp_path, topics=["a"], changelog_topic="changelog" if fleet else None,
                            session_timeout_ms=7000, kafka_manual_assignment=manual)
        service = Service(settings, aws=FakeIam(), runbooks=[])
        try:
            lease = service.ingest.lease
            assert ((lease.session_s, lease.rebalance_s) if lease is not None else None) == expected
        finally:
            service.recorder.close()
            await service.close_unstarted()


async def test_out_of_lease_an_eviction_writes_no_tombstone(lapsing: Lapsing) -> None:
    """An eviction out of lease writes no tombstone to the partition (it may be another member's) and fails."""
    service, clock, written = lapsing
    fleet, _ = _watching(service, clock)
    fleet.closed.due = {0: {"~closed#a"}}  # a group key the engine forgot: its tombstone is due
    clock.now += 10.0
    with pytest.raises(MembershipLapsed):
        await asyncio.wait_for(fleet.evict(), 5)
    assert written == []


async def test_out_of_lease_a_quotas_record_alone_is_not_rewritten(lapsing: Lapsing) -> None:
    """A flush that would rewrite only a partition's `~quotas` record writes nothing out of lease either."""
    service, clock, written = lapsing
    fleet, _ = _watching(service, clock)
    fleet._quotas_at[0] = 5  # its `~quotas` record holds a run refunded since: it would be rewritten
    fleet.engine.state.windows.take_removed = lambda: 0  # type: ignore[method-assign]
    clock.now += 10.0
    with pytest.raises(MembershipLapsed):
        await asyncio.wait_for(fleet.on_durable([]), 5)
    assert written == []


async def test_a_wait_that_ends_with_nothing_owned_says_no_renewal(lapsing: Lapsing) -> None:
    """A barrier waiting for the lease whose partitions were revoked meanwhile does not log a renewal."""
    service, clock, _ = lapsing
    fleet, coordinator = _watching(service, clock)
    clock.now += 9.0
    coordinator.hold = asyncio.Event()
    asking = asyncio.create_task(beat(coordinator))
    await asyncio.sleep(0)
    clock.now += 3.0
    with capture_logs() as logs:
        barrier = asyncio.create_task(fleet._in_lease(asyncio.get_running_loop().time() + 5))
        await asyncio.sleep(0.3)
        fleet.owned.clear()  # revoked meanwhile
        await asyncio.wait_for(barrier, 5)
    assert [e["event"] for e in logs] == ["membership_lease_waiting"]
    asking.cancel()


async def _started(service: Service, clock: Clock) -> tuple[Any, MembershipLease, StartingConsumer]:
    """The service's alert consumer replaced by one in generation 5, watched and started as `KafkaIngest` does."""
    ingest, lease = service.ingest, service.ingest.lease
    assert lease is not None
    ingest._listener.on_assigned = None
    first = StartingConsumer(clock, generation=5)
    ingest.consumer = first
    lease.watch(first)
    await ingest.start_consumer(1.0)
    return ingest, lease, first


async def test_a_reset_in_a_consumer_s_first_generation_ends_the_lease(lapsing: Lapsing) -> None:
    """The first assignment (inside aiokafka's `start()`) wraps the coordinator: a reset in that generation is seen."""
    service, clock, _ = lapsing
    _, lease, first = await _started(service, clock)
    clock.now += 9.0
    assert await beat(first.made) is True  # through the wrapper
    assert lease.since == 109.0
    assert first.made is not None
    first.made.reset_generation()  # an offset commit answered ILLEGAL_GENERATION
    assert "generation 5 → -1" in (lease.lapsed() or "")


async def test_a_rebuilt_consumer_s_lease_is_its_own(lapsing: Lapsing) -> None:
    """After a rebuild (the old consumer closed, generation -1) the new one's assignment holds in its own generation."""
    service, clock, _ = lapsing
    ingest, lease, _ = await _started(service, clock)
    second = StartingConsumer(clock, generation=6)
    ingest._make = lambda: second  # type: ignore[method-assign]
    await ingest.renew()  # closes the first: it left its group
    clock.now += 60.0
    assert lease.lapsed() is None  # nothing assigned under the new consumer yet: nothing held, nothing lapsed
    await ingest.start_consumer(1.0)
    assert lease.lapsed() is None  # a healthy member of generation 6
    clock.now += 9.0
    assert await beat(second.made) is True
    assert lease.since == 169.0  # its heartbeats renew it


async def test_after_the_consumer_left_its_group_nothing_of_its_partitions_is_written(lapsing: Lapsing) -> None:
    """Once this service stopped the alert consumer (it left its group), a partition's entry fails unwritten."""
    service, clock, written = lapsing
    ingest, _, _ = await _started(service, clock)
    await ingest.stop()
    assert service.fleet is not None
    with pytest.raises(MembershipLapsed, match="left its group"):
        await asyncio.wait_for(service.fleet.on_durable([_intent("inc-0")]), 1)
    assert written == []


async def test_a_graceful_stop_writes_the_partitions_state_while_still_a_member(lapsing: Lapsing) -> None:
    """The stop's flush writes a pending entry's partition within the lease, before the consumer leaves its group."""
    service, clock, written = lapsing
    _, lease, _ = await _started(service, clock)
    service.recorder.append(EntryKind.INCIDENT_OPENED, {"runbook": "r"}, "inc-0")
    await asyncio.wait_for(service._close_started([]), 10)
    assert written == [0]
    assert lease.lapsed() == LEFT  # then it left: nothing more is written


async def test_a_stop_whose_lease_ended_by_silence_waits_for_the_heartbeat_in_flight(lapsing: Lapsing) -> None:
    """The stop's flush asks the live lease: a heartbeat sent within it and answered late lets the write through."""
    service, clock, written = lapsing
    _, _, consumer = await _started(service, clock)
    coordinator = consumer._coordinator
    assert coordinator is not None
    clock.now += 9.0
    coordinator.hold = asyncio.Event()
    asking = asyncio.create_task(beat(coordinator))  # sent within the lease, its answer slow to come
    await asyncio.sleep(0)
    clock.now += 3.0  # the lease ended by silence; that heartbeat is still unanswered
    service.recorder.append(EntryKind.INCIDENT_OPENED, {"runbook": "r"}, "inc-0")
    closing = asyncio.create_task(service._close_started([]))
    await asyncio.sleep(0.3)
    assert written == []  # waiting for the answer, still a member
    coordinator.hold.set()
    assert await asking is True
    await asyncio.wait_for(closing, 10)
    assert written == [0]


async def test_a_lease_that_ended_before_the_stop_stays_ended_for_the_last_flush(lapsing: Lapsing) -> None:
    """A replica out of lease when it is stopped writes nothing in its stop's last flush: the verdict is frozen."""
    service, clock, written = lapsing
    ingest, _, _ = await _started(service, clock)
    clock.now += 60.0  # cut off for a minute, nothing written meanwhile
    await ingest.stop()
    assert service.fleet is not None
    with pytest.raises(MembershipLapsed):
        await asyncio.wait_for(service.fleet.on_durable([_intent("inc-0")]), 1)
    assert written == []


@pytest.mark.parametrize("lapsed", [False, True])
async def test_a_restore_tombstones_expired_group_keys_only_within_the_lease(lapsing: Lapsing, monkeypatch: Any,
                                                                            lapsed: bool) -> None:
    """A restore writes its expired `~closed#` keys' tombstones within the lease; out of it, leaves them for later."""
    service, clock, written = lapsing
    fleet, _ = _watching(service, clock)
    fleet.changelog.txn = None

    async def read(partition: int) -> list[Any]:
        return []

    monkeypatch.setattr(fleet.changelog, "read", read)
    monkeypatch.setattr(fleet_module, "expired", lambda records, horizon: ([], ["~closed#a"]))
    clock.now += 10.0 if lapsed else 5.0
    with capture_logs() as logs:
        assert await asyncio.wait_for(fleet.fetch(1), 5) == []
    assert written == ([] if lapsed else [1])
    assert ("changelog_closed_expired_left" in [e["event"] for e in logs]) is lapsed


async def test_a_stop_out_of_lease_fails_fenced_and_writes_nothing(lapsing: Lapsing) -> None:
    """A stop whose lease ended, its heartbeat unanswered past the changelog deadline, fails as a fence, unwritten."""
    service, clock, written = lapsing
    _, _, consumer = await _started(service, clock)
    coordinator = consumer._coordinator
    assert coordinator is not None
    assert service.fleet is not None
    service.fleet.changelog.write_deadline = 0.3
    clock.now += 9.0
    coordinator.hold = asyncio.Event()
    asking = asyncio.create_task(beat(coordinator))  # never answered
    await asyncio.sleep(0)
    clock.now += 3.0
    service.recorder.append(EntryKind.INCIDENT_OPENED, {"runbook": "r"}, "inc-0")
    with pytest.raises(TimelineError) as raised:
        await asyncio.wait_for(service._close_started([]), 10)
    assert rejoin_reason(raised.value) == "fenced"  # a SIGTERMed replica then ends cleanly (rejoin.py)
    assert written == []
    asking.cancel()
