"""A fleet member's lease on its partitions (responder/ingest/lease.py): renewed by answered heartbeats and
assignments, ended by a session of silence or a refusal; past it the changelog barrier and the alert loop refuse."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors_kafka import MembershipLapsed, ReplicaFenced
from responder.fleet import FleetState
from responder.ingest.lease import MembershipLease
from responder.models.timeline import EntryKind, TimelineEntry
from responder.service import Service
from responder.service.rejoinreasons import rejoin_reason
from responder.settings import Settings
from tests.fakes import FakeIam


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Coordinator:
    """aiokafka's GroupCoordinator as far as the lease sees it: a heartbeat that takes `rtt` s and answers `answer`,
    requests that take `rtt` s, its member id and generation."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.member_id, self.answer, self.rtt, self.beats = clock, "member-1", True, 0.0, 0
        self.generation = 1
        self._closing: asyncio.Future[None] | None = None
        self.sent: list[str] = []

    async def _send_req(self, request: Any) -> Any:
        self.sent.append(type(request).__name__)
        self.clock.now += self.rtt
        return None

    async def _do_heartbeat(self) -> bool:
        self.beats += 1
        self.clock.now += self.rtt
        if self.answer == "refused":
            self.member_id = ""  # aiokafka's reset_generation
            return False
        if self.answer == "raise":  # what aiokafka raises for an error code it does not handle
            raise RuntimeError("Unexpected exception in heartbeat task: FencedInstanceIdError")
        return bool(self.answer)


class Consumer:
    """An aiokafka consumer as far as the lease sees it: its group coordinator."""

    def __init__(self, clock: Clock) -> None:
        self._coordinator = Coordinator(clock)

    @classmethod
    def around(cls, coordinator: Coordinator) -> Consumer:
        consumer = cls(coordinator.clock)
        consumer._coordinator = coordinator
        return consumer


def _watched(session_s: float = 10.0) -> tuple[MembershipLease, Coordinator, Clock]:
    """A lease watching a consumer not assigned yet (its coordinator is wrapped at the first assignment)."""
    clock = Clock()
    lease = MembershipLease(session_s, clock)
    consumer = Consumer(clock)
    lease.watch(consumer)
    return lease, consumer._coordinator, clock


def test_the_lease_ends_a_session_after_the_assignment_without_a_heartbeat() -> None:
    """Assigned and then silent: the lease holds below the session timeout and has ended at it."""
    lease, _, clock = _watched()
    assert lease.lapsed() is None  # nothing assigned yet: nothing to lose
    lease.assigned()
    clock.now += 9.9
    assert lease.lapsed() is None
    clock.now += 0.1
    assert "no heartbeat answered for 10.0 s" in (lease.lapsed() or "")


async def test_an_answered_heartbeat_renews_the_lease_from_its_send_time() -> None:
    """A heartbeat answered as a member's renews the lease from when it was sent, not from when the answer came."""
    lease, coordinator, clock = _watched()
    lease.assigned()
    clock.now += 8.0
    coordinator.rtt = 1.5
    assert await coordinator._do_heartbeat() is True  # the wrapped heartbeat, as aiokafka's routine calls it
    assert lease.since == 108.0
    clock.now += 8.4  # 9.9 s after the send, 8.4 s after the answer
    assert lease.lapsed() is None
    clock.now += 0.1
    assert lease.lapsed() is not None


async def test_an_unanswered_heartbeat_does_not_renew_the_lease() -> None:
    """A heartbeat that failed (no answer, a transient error) leaves the lease where it was."""
    lease, coordinator, clock = _watched()
    lease.assigned()
    coordinator.answer = False
    clock.now += 5.0
    assert await coordinator._do_heartbeat() is False
    assert lease.since == 100.0
    clock.now += 5.0
    assert lease.lapsed() is not None


async def test_a_refused_heartbeat_ends_the_lease_at_once_until_the_next_assignment() -> None:
    """The coordinator saying this is no member ends the lease at once; a later answer does not revive it."""
    lease, coordinator, _ = _watched()
    lease.assigned()
    coordinator.answer = "refused"
    assert await coordinator._do_heartbeat() is False
    assert "not a member" in (lease.lapsed() or "")
    coordinator.answer, coordinator.member_id = True, "member-2"
    assert await coordinator._do_heartbeat() is True
    assert lease.lapsed() is not None
    lease.assigned()  # joined again, partitions assigned: a new lease
    assert lease.lapsed() is None


async def test_a_heartbeat_that_raises_ends_the_lease_at_once() -> None:
    """A heartbeat error aiokafka does not expect (its heartbeat task ends with it) ends the lease at once."""
    lease, coordinator, _ = _watched()
    lease.assigned()
    coordinator.answer = "raise"
    with pytest.raises(RuntimeError, match="FencedInstanceIdError"):
        await coordinator._do_heartbeat()
    assert "its heartbeat failed: RuntimeError" in (lease.lapsed() or "")


class SyncGroupRequest_v3:  # noqa: N801 - named as aiokafka's versioned request classes are
    """A SyncGroup request, as far as the lease sees it: its class name."""


async def test_an_assignment_counts_from_the_send_time_of_its_sync_request() -> None:
    """The lease of an assignment runs from when its SyncGroup request was sent, not from when the callback ran."""
    lease, coordinator, clock = _watched()
    lease.assigned()  # the first assignment: the coordinator is wrapped from now on
    coordinator.rtt = 3.0
    await coordinator._send_req(SyncGroupRequest_v3())  # the wrapped send, as aiokafka's group join calls it
    clock.now += 2.0  # the answer handled, the assignment callback reached later still
    lease.assigned()
    assert lease.since == 100.0
    assert coordinator.sent == ["SyncGroupRequest_v3"]
    clock.now += 5.0
    assert lease.lapsed() is not None  # 10 s after the sync was sent, 5 s after the callback


@pytest.mark.parametrize("reset", ["member", "generation"])
async def test_a_membership_reset_outside_a_heartbeat_ends_the_lease_at_once(reset: str) -> None:
    """A member id or generation aiokafka reset elsewhere (an offset commit refused, a left group) ends the lease."""
    lease, coordinator, _ = _watched()
    lease.assigned()
    if reset == "member":
        coordinator.member_id = ""
    else:
        coordinator.generation = 2
    assert "membership was reset" in (lease.lapsed() or "")
    coordinator.member_id, coordinator.generation = "member-1", 1  # sticky until the next assignment
    assert lease.lapsed() is not None
    coordinator.generation = 3
    lease.assigned()
    assert lease.lapsed() is None


async def test_a_consumer_this_service_closes_is_not_taken_for_a_reset() -> None:
    """aiokafka leaving the group because this service stops the consumer does not end the lease."""
    lease, coordinator, _ = _watched()
    lease.assigned()
    coordinator._closing = asyncio.get_running_loop().create_future()
    coordinator._closing.set_result(None)
    coordinator.member_id = ""
    assert lease.lapsed() is None


def test_a_replaced_consumer_holds_no_lease_until_it_is_assigned() -> None:
    """A rebuilt consumer watched anew (its partitions handed over) neither holds nor ends a lease until assigned."""
    lease, _, clock = _watched()
    lease.assigned()
    lease.watch(Consumer(clock))
    clock.now += 60.0
    assert lease.lapsed() is None


def test_a_consumer_without_a_heartbeat_keeps_no_lease_and_says_so() -> None:
    """A consumer whose client has no heartbeat to wrap keeps no lease (never lapses) and logs a warning."""
    clock = Clock()
    lease = MembershipLease(10.0, clock)
    lease.watch(object())
    with capture_logs() as logs:
        lease.assigned()
    assert [e["event"] for e in logs] == ["membership_lease_not_kept"]
    clock.now += 60.0
    assert lease.lapsed() is None


def test_a_lapse_rejoins_as_a_fence_does() -> None:
    """MembershipLapsed is a ReplicaFenced: the service rejoins in-process, reason `fenced`."""
    exc = MembershipLapsed("lapsed")
    assert isinstance(exc, ReplicaFenced)
    assert rejoin_reason(exc) == "fenced"


@pytest.fixture
async def lapsing(tmp_path: Any) -> AsyncIterator[tuple[Service, Clock, list[int]]]:
    """An unstarted fleet replica owning partition 0 (incident inc-0), its lease on a clock the test moves, and the
    partitions its changelog writes reach."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog", session_timeout_ms=10_000)
    service = Service(settings, aws=FakeIam(), runbooks=[])
    fleet, lease = service.fleet, service.ingest.lease
    assert fleet is not None
    assert lease is not None
    assert fleet.lease is lease
    clock = Clock()
    lease.clock = clock
    lease.watch(Consumer(clock))
    lease.assigned()
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
    """The service's fleet state, its lease now watching a coordinator the test drives."""
    fleet = service.fleet
    assert fleet is not None
    assert fleet.lease is not None
    coordinator = Coordinator(clock)
    fleet.lease.watch(Consumer.around(coordinator))
    fleet.lease.assigned()
    return fleet, coordinator


def _intent(incident: str) -> TimelineEntry:
    return TimelineEntry(seq=1, writer="w", at="t", kind=EntryKind.STEP_INTENT, incident=incident, body={},
                         prev="", hash="")


async def test_a_barrier_within_the_lease_writes_and_passes(lapsing: tuple[Service, Clock, list[int]]) -> None:
    """Within its lease a member's step intent is written to its partition's changelog and counts as durable."""
    service, clock, written = lapsing
    assert service.fleet is not None
    clock.now += 9.0
    await service.fleet.on_durable([_intent("inc-0")])
    assert written == [0]


async def test_past_the_lease_a_step_intent_fails_its_barrier_unwritten(
        lapsing: tuple[Service, Clock, list[int]]) -> None:
    """Past its lease a member writes nothing to the changelog and its step's barrier fails: the step does not act."""
    service, clock, written = lapsing
    assert service.fleet is not None
    service.fleet.changelog.write_deadline = 0.2
    clock.now += 10.0
    with capture_logs() as logs, pytest.raises(MembershipLapsed, match="partition\\(s\\) 0 may be another member"):
        await service.fleet.on_durable([_intent("inc-0")])
    with pytest.raises(MembershipLapsed):
        await service.fleet.on_durable([_intent("inc-0")])
    assert written == []
    assert [e["event"] for e in logs].count("membership_lapsed") == 1  # said once, raised each time


async def test_a_lease_that_ends_while_the_write_waits_fails_the_barrier_after_it(
        lapsing: tuple[Service, Clock, list[int]]) -> None:
    """A write that outlasts the lease (its own deadline not passed) is not taken as durable: the step does not act."""
    service, clock, written = lapsing
    fleet = service.fleet
    assert fleet is not None

    async def slow(partition: int, slices: Any, **kw: Any) -> None:
        clock.now += 11.0  # the write waited past the lease
        written.append(partition)

    fleet.changelog.write_deadline = 0.2
    fleet.changelog.write = slow  # type: ignore[method-assign]
    with pytest.raises(MembershipLapsed):
        await fleet.on_durable([_intent("inc-0")])
    assert written == [0]


async def test_an_entry_of_a_partition_not_owned_is_not_refused_for_the_lease(
        lapsing: tuple[Service, Clock, list[int]]) -> None:
    """Between assignments (nothing owned) an ended lease refuses nothing: there is nothing of the group's to lose."""
    service, clock, written = lapsing
    fleet = service.fleet
    assert fleet is not None
    fleet.owned.clear()
    clock.now += 60.0
    await asyncio.wait_for(fleet.on_durable([_intent("inc-0")]), 1)
    assert written == []  # not owned: not written either (its new owner writes it)


async def test_a_barrier_out_of_lease_waits_for_an_answered_heartbeat_and_then_writes(
        lapsing: tuple[Service, Clock, list[int]]) -> None:
    """Out of lease by silence, a barrier waits; a heartbeat answered meanwhile (same generation) lets it write."""
    service, clock, written = lapsing
    fleet, coordinator = _watching(service, clock)
    clock.now += 12.0
    with capture_logs() as logs:
        barrier = asyncio.create_task(fleet.on_durable([_intent("inc-0")]))
        await asyncio.sleep(0.3)
        assert not barrier.done()
        assert written == []  # nothing written, nothing acts, while out of lease
        assert await coordinator._do_heartbeat() is True
        await asyncio.wait_for(barrier, 5)
    assert written == [0]
    assert [e["event"] for e in logs] == ["membership_lease_waiting", "membership_lease_renewed"]


async def test_a_barrier_out_of_lease_fails_at_its_changelog_deadline(
        lapsing: tuple[Service, Clock, list[int]]) -> None:
    """Out of lease and no heartbeat answered by the flush's changelog deadline: MembershipLapsed, nothing written."""
    service, clock, written = lapsing
    fleet = service.fleet
    assert fleet is not None
    fleet.changelog.write_deadline = 0.3
    clock.now += 12.0
    with pytest.raises(MembershipLapsed):
        await asyncio.wait_for(fleet.on_durable([_intent("inc-0")]), 5)
    assert written == []


async def test_a_refused_member_s_barrier_fails_at_once(lapsing: tuple[Service, Clock, list[int]]) -> None:
    """A coordinator that answered "not a member" fails the barrier at once, without waiting for its deadline."""
    service, clock, written = lapsing
    fleet, coordinator = _watching(service, clock)
    coordinator.answer = "refused"
    await coordinator._do_heartbeat()
    with pytest.raises(MembershipLapsed, match="not a member"):
        await asyncio.wait_for(fleet.on_durable([_intent("inc-0")]), 1)  # far below the 45 s deadline
    assert written == []


async def test_heartbeats_answered_meanwhile_keep_the_barrier_open(
        lapsing: tuple[Service, Clock, list[int]]) -> None:
    """Heartbeats answered every few seconds keep the lease, however long the member runs."""
    service, clock, written = lapsing
    fleet, coordinator = _watching(service, clock)
    coordinator.rtt = 0.5
    for _ in range(10):
        clock.now += 4.5
        assert await coordinator._do_heartbeat() is True
    await fleet.on_durable([_intent("inc-0")])
    assert written == [0]


async def test_the_alert_consumer_of_a_fleet_keeps_a_lease_and_a_manual_one_none(tmp_path: Any) -> None:
    """A fleet member's alert consumer keeps a lease of its session timeout; a manual assignment or one replica none."""
    for manual, fleet, expected in ((False, True, 7.0), (True, True, None), (False, False, None)):
        settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / f"{manual}{fleet}.jsonl",
                            runbooks_dir=tmp_path, topics=["a"], changelog_topic="changelog" if fleet else None,
                            session_timeout_ms=7000, kafka_manual_assignment=manual)
        service = Service(settings, aws=FakeIam(), runbooks=[])
        try:
            lease = service.ingest.lease
            assert (lease.session_s if lease is not None else None) == expected
        finally:
            service.recorder.close()
            await service.close_unstarted()


async def test_the_assignment_callback_renews_the_lease(lapsing: tuple[Service, Clock, list[int]]) -> None:
    """Partitions assigned by the group renew the lease before the service's own callback runs."""
    service, clock, _ = lapsing
    clock.now += 9.0
    listener = service.ingest._listener
    called: list[float] = []

    async def on_assigned(partitions: Any) -> None:
        called.append(clock.now)

    listener.on_assigned = on_assigned
    await listener.on_partitions_assigned([])
    assert called == [109.0]
    clock.now += 9.0
    assert service.ingest.lease is not None
    assert service.ingest.lease.lapsed() is None



async def test_out_of_lease_an_eviction_writes_no_tombstone(lapsing: tuple[Service, Clock, list[int]]) -> None:
    """An eviction out of lease writes no tombstone to the partition (it may be another member's) and fails."""
    service, clock, written = lapsing
    fleet = service.fleet
    assert fleet is not None
    fleet.changelog.write_deadline = 0.2
    fleet.closed.due = {0: {"~closed#a"}}  # a group key the engine forgot: its tombstone is due
    clock.now += 10.0
    with pytest.raises(MembershipLapsed):
        await asyncio.wait_for(fleet.evict(), 5)
    assert written == []


async def test_out_of_lease_a_quotas_record_alone_is_not_rewritten(lapsing: tuple[Service, Clock, list[int]]) -> None:
    """A flush that would rewrite only a partition's `~quotas` record writes nothing out of lease either."""
    service, clock, written = lapsing
    fleet = service.fleet
    assert fleet is not None
    fleet.changelog.write_deadline = 0.2
    fleet._quotas_at[0] = 5  # its `~quotas` record holds a run refunded since: it would be rewritten
    fleet.engine.state.windows.take_removed = lambda: 0  # type: ignore[method-assign]
    clock.now += 10.0
    with pytest.raises(MembershipLapsed):
        await asyncio.wait_for(fleet.on_durable([]), 5)
    assert written == []


async def test_a_wait_that_ends_with_nothing_owned_says_no_renewal(lapsing: tuple[Service, Clock, list[int]]) -> None:
    """A barrier waiting for the lease whose partitions were revoked meanwhile does not log a renewal."""
    service, clock, _ = lapsing
    fleet = service.fleet
    assert fleet is not None
    clock.now += 12.0
    with capture_logs() as logs:
        barrier = asyncio.create_task(fleet._in_lease(asyncio.get_running_loop().time() + 5))
        await asyncio.sleep(0.3)
        fleet.owned.clear()  # revoked meanwhile
        await asyncio.wait_for(barrier, 5)
    assert [e["event"] for e in logs] == ["membership_lease_waiting"]


class StartingConsumer(Consumer):
    """A consumer started as aiokafka 0.14 starts a subscribed one: its coordinator made in `start()`, which waits for
    the first assignment (the listener's callback runs inside it); `stop()` closes it and leaves the group."""

    def __init__(self, clock: Clock, generation: int) -> None:
        super().__init__(clock)
        self.made, self._coordinator = self._coordinator, None  # type: ignore[assignment]
        self.made.generation = generation

    def subscribe(self, topics: Any, listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        self._coordinator = self.made
        await self.listener.on_partitions_assigned([])

    async def stop(self) -> None:
        self.made._closing = asyncio.get_running_loop().create_future()
        self.made._closing.set_result(None)
        self.made.member_id, self.made.generation = "", -1  # LeaveGroup, then aiokafka's reset_generation


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


async def test_a_reset_in_a_consumer_s_first_generation_ends_the_lease(
        lapsing: tuple[Service, Clock, list[int]]) -> None:
    """The first assignment (inside aiokafka's `start()`) wraps the coordinator: a reset in that generation is seen."""
    service, clock, _ = lapsing
    _, lease, first = await _started(service, clock)
    assert first.made._do_heartbeat.__name__ == "heartbeat"  # wrapped
    clock.now += 9.0
    assert await first.made._do_heartbeat() is True
    assert lease.since == 109.0
    first.made.member_id, first.made.generation = "", -1  # an offset commit answered ILLEGAL_GENERATION
    assert "generation 5 → -1" in (lease.lapsed() or "")


async def test_a_rebuilt_consumer_s_lease_is_its_own(lapsing: tuple[Service, Clock, list[int]]) -> None:
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
    assert second.made._do_heartbeat.__name__ == "heartbeat"


async def test_a_consumer_this_service_stops_holds_its_last_flush_to_no_lease(
        lapsing: tuple[Service, Clock, list[int]]) -> None:
    """Once this service closes the consumer (its stop), the last flush neither waits for a heartbeat nor fails."""
    service, clock, written = lapsing
    fleet, coordinator = _watching(service, clock)
    coordinator._closing = asyncio.get_running_loop().create_future()  # aiokafka's close(): closing, then it leaves
    coordinator._closing.set_result(None)
    coordinator.member_id, coordinator.generation = "", -1
    clock.now += 60.0
    await asyncio.wait_for(fleet.on_durable([_intent("inc-0")]), 1)
    assert written == [0]


def test_aiokafka_still_has_what_the_lease_wraps() -> None:
    """The aiokafka internals the lease relies on are still there (an upgrade that moves them fails here, loudly)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance, GroupCoordinator
    from aiokafka.protocol.group import JoinGroupRequest

    from responder.ingest.lease import UNKNOWN_MEMBER

    assert JoinGroupRequest.UNKNOWN_MEMBER_ID == UNKNOWN_MEMBER
    assert inspect.iscoroutinefunction(GroupCoordinator._do_heartbeat)
    assert inspect.iscoroutinefunction(GroupCoordinator._send_req)
    # both looked up on the coordinator instance at each call, so the instance's wrappers are the ones called
    assert "await self._do_heartbeat()" in inspect.getsource(GroupCoordinator._heartbeat_routine)
    assert "await self._coordinator._send_req(request)" in inspect.getsource(
        CoordinatorGroupRebalance._send_sync_group_request)
    # a subscribed consumer's start() makes its coordinator, then waits for the first assignment (wrapped then)
    start = inspect.getsource(AIOKafkaConsumer.start)
    assert start.index("self._coordinator = GroupCoordinator(") < start.index("wait_for_assignment()")
    close = inspect.getsource(GroupCoordinator.close)  # closing is said before the group is left
    assert close.index("self._closing.set_result(None)") < close.index("self._maybe_leave_group()")
    reset = inspect.getsource(GroupCoordinator.reset_generation)
    assert "self.member_id = JoinGroupRequest.UNKNOWN_MEMBER_ID" in reset
    assert "self.generation = OffsetCommitRequest.DEFAULT_GENERATION_ID" in reset
