"""A fleet member's lease on its partitions (responder/ingest/lease.py), driven through aiokafka's own heartbeat code:
renewed by heartbeats answered within it, ended by a session of silence, a refusal, a reset or a long rebalance."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance, GroupCoordinator
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import JoinGroupRequest, SyncGroupRequest
from structlog.testing import capture_logs

from responder.errors_kafka import MembershipLapsed, ReplicaFenced
from responder.ingest.lease import LEFT, REQUESTS_ARE_CLASSES, UNKNOWN_MEMBER, MembershipLease
from responder.service.rejoinreasons import rejoin_reason
from tests.lease_kit import (
    GROUP_AUTHORIZATION,
    ILLEGAL_GENERATION,
    LOADING,
    NOT_AVAILABLE,
    NOT_COORDINATOR,
    REBALANCING,
    UNHEARD_OF,
    UNKNOWN_MEMBER_ID,
    Clock,
    Consumer,
    Coordinator,
    beat,
)


def _assigned(session_s: float = 10.0, rebalance_s: float = 30.0) -> tuple[MembershipLease, Coordinator, Clock]:
    """A lease whose consumer was just assigned partitions (its coordinator wrapped then), at t = 100 s."""
    clock = Clock()
    lease = MembershipLease(session_s, rebalance_s, clock)
    consumer = Consumer(clock)
    lease.watch(consumer)
    lease.assigned()
    assert consumer._coordinator is not None
    return lease, consumer._coordinator, clock


def test_the_lease_ends_a_session_after_the_assignment_without_a_heartbeat() -> None:
    """Assigned and then silent: the lease holds below the session timeout and has ended at it."""
    clock = Clock()
    lease = MembershipLease(10.0, 30.0, clock)
    lease.watch(Consumer(clock))
    assert lease.lapsed() is None  # nothing assigned yet: nothing to lose
    lease.assigned()
    clock.now += 9.9
    assert lease.lapsed() is None
    clock.now += 0.1
    assert "no heartbeat answered for 10.0 s" in (lease.lapsed() or "")


async def test_an_answered_heartbeat_renews_the_lease_from_its_send_time() -> None:
    """A heartbeat answered as a member's renews the lease from when it was sent, not from when the answer came."""
    lease, coordinator, clock = _assigned()
    clock.now += 8.0
    coordinator.rtt = 1.5
    assert await beat(coordinator) is True
    assert coordinator.sent == ["HeartbeatRequest"]
    assert lease.since == 108.0
    clock.now += 8.4  # 9.9 s after the send, 8.4 s after the answer
    assert lease.lapsed() is None
    clock.now += 0.1
    assert lease.lapsed() is not None


@pytest.mark.parametrize("code", [None, NOT_AVAILABLE, NOT_COORDINATOR, LOADING])
async def test_a_heartbeat_that_proves_nothing_leaves_the_lease_as_it_was(code: int | None) -> None:
    """No answer, a coordinator that moved or one still loading the group: neither a renewal nor an end."""
    lease, coordinator, clock = _assigned()
    coordinator.code = code
    clock.now += 5.0
    try:
        assert await beat(coordinator) is False
    except KafkaError:  # aiokafka raises on a code it does not handle (a load's: never a heartbeat's on Kafka)
        assert code == LOADING
    assert lease.since == 100.0
    assert lease.lapsed() is None
    clock.now += 5.0
    assert lease.lapsed() is not None


async def test_an_answer_to_a_heartbeat_sent_after_the_lease_ended_revives_nothing() -> None:
    """Once ended by a silence, no later answer renews the lease (a loading coordinator answers heartbeats blindly)."""
    lease, coordinator, clock = _assigned()
    clock.now += 10.5
    assert await beat(coordinator) is True  # sent after the end: a blind answer, say
    assert lease.lapsed() is not None
    assert not lease.awaited()


async def test_a_heartbeat_sent_within_the_lease_and_answered_after_its_end_renews_it() -> None:
    """A heartbeat sent while the lease held and answered late renews it: meanwhile the lease is `awaited`."""
    lease, coordinator, clock = _assigned()
    clock.now += 9.0
    coordinator.hold = asyncio.Event()
    asking = asyncio.create_task(beat(coordinator))
    await asyncio.sleep(0)
    clock.now += 2.0  # past the end, its answer not there yet
    assert lease.lapsed() is not None
    assert lease.awaited()
    coordinator.hold.set()
    assert await asking is True
    assert lease.lapsed() is None
    assert lease.since == 109.0


@pytest.mark.parametrize("code", [UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, GROUP_AUTHORIZATION, UNHEARD_OF])
async def test_a_heartbeat_answered_as_a_stranger_s_ends_the_lease_until_the_next_assignment(code: int) -> None:
    """Unknown member, old generation, or an error aiokafka raises on (its heartbeat task ends): the lease ends."""
    lease, coordinator, _ = _assigned()
    coordinator.code = code
    if code in (GROUP_AUTHORIZATION, UNHEARD_OF):  # aiokafka raises on these (its heartbeat task ends)
        with pytest.raises(KafkaError):
            await beat(coordinator)
    else:
        assert await beat(coordinator) is False
    assert "not a member" in (lease.lapsed() or "")
    assert not lease.awaited()
    coordinator.code, coordinator.member_id, coordinator.generation = 0, "member-2", 2
    assert await beat(coordinator) is True
    assert lease.lapsed() is not None  # not revived
    lease.assigned()  # joined again, partitions assigned: a new lease
    assert lease.lapsed() is None


async def test_a_rebalance_holds_the_lease_only_until_the_rebalance_timeout() -> None:
    """REBALANCE_IN_PROGRESS answers renew the lease, but not past the last settled proof plus the rebalance timeout."""
    lease, coordinator, clock = _assigned(session_s=10.0, rebalance_s=30.0)
    clock.now += 5.0
    assert await beat(coordinator) is True  # settled at 105
    coordinator.code = REBALANCING
    for _ in range(5):
        clock.now += 5.0
        assert await beat(coordinator) is True
        assert lease.lapsed() is None  # up to 130: within the session of each answer, and 25 s into the rebalance
    clock.now += 5.0
    assert await beat(coordinator) is True  # at 135: the group may have completed without this member
    assert "rebalancing for 30.0 s" in (lease.lapsed() or "")
    assert not lease.awaited()


async def test_the_rebalance_bound_holds_whether_or_not_a_barrier_asked_in_time() -> None:
    """A rebalance past its timeout ends the lease even when no one asked before a later (blind) plain answer came."""
    lease, coordinator, clock = _assigned(session_s=10.0, rebalance_s=30.0)
    coordinator.code = REBALANCING
    for _ in range(6):
        clock.now += 5.0
        await beat(coordinator)  # up to 130: the last at 130, sent 30 s after the last settled proof (100)
    coordinator.code = 0
    clock.now += 1.0
    await beat(coordinator)  # a plain answer after the group may have completed without this member
    assert "rebalancing for 30.0 s" in (lease.lapsed() or "")


@pytest.mark.parametrize("ends", ["cancelled", "failed"])
async def test_a_heartbeat_that_never_got_its_answer_is_awaited_no_more(ends: str) -> None:
    """A heartbeat cancelled (aiokafka stops its heartbeat task) or failed mid-request leaves nothing to wait for."""
    lease, coordinator, clock = _assigned()
    clock.now += 9.0
    coordinator.hold = asyncio.Event()
    asking = asyncio.create_task(beat(coordinator))
    await asyncio.sleep(0)
    clock.now += 2.0
    assert lease.awaited()
    if ends == "cancelled":
        asking.cancel()
    else:
        coordinator.code = None  # the connection lost: aiokafka's heartbeat says False
        coordinator.hold.set()
    await asyncio.gather(asking, return_exceptions=True)
    assert lease.lapsed() is not None
    assert not lease.awaited()


async def test_an_assignment_counts_from_the_send_time_of_its_sync_request() -> None:
    """The lease of an assignment runs from when its SyncGroup request was sent, not from when the callback ran."""
    lease, coordinator, clock = _assigned()
    coordinator.rtt = 3.0
    await coordinator._send_req(SyncGroupRequest("g", 2, "member-1", "", []))  # the wrapped send, as the join sends it
    clock.now += 2.0  # the answer handled, the assignment callback reached later still
    lease.assigned()
    assert lease.since == 100.0
    clock.now += 5.0
    assert lease.lapsed() is not None  # 10 s after the sync was sent, 5 s after the callback


@pytest.mark.parametrize("reset", ["member", "generation"])
async def test_a_membership_reset_outside_a_heartbeat_ends_the_lease_at_once(reset: str) -> None:
    """A member id or generation aiokafka reset elsewhere (an offset commit refused, a left group) ends the lease."""
    lease, coordinator, _ = _assigned()
    if reset == "member":
        coordinator.member_id = ""
    else:
        coordinator.generation = 2
    assert "membership was reset" in (lease.lapsed() or "")
    coordinator.member_id, coordinator.generation = "member-1", 1  # ended until the next assignment
    assert lease.lapsed() is not None
    coordinator.generation = 3
    lease.assigned()
    assert lease.lapsed() is None


async def test_a_consumer_this_service_stops_ends_its_lease_for_good() -> None:
    """Once this service stops the consumer (it leaves its group) the lease has ended, and no assignment revives it."""
    lease, coordinator, _ = _assigned()
    assert lease.lapsed() is None
    lease.stop()
    assert lease.lapsed() == LEFT
    coordinator.code = 0
    await beat(coordinator)  # an answer that came meanwhile proves nothing more
    lease.assigned()
    assert lease.lapsed() == LEFT


async def test_a_lease_ended_before_the_stop_keeps_its_reason() -> None:
    """A lease that had ended before this service stopped its consumer says why it ended, not that it left."""
    lease, _, clock = _assigned()
    clock.now += 60.0
    lease.stop()
    assert (lease.lapsed() or "").startswith("no heartbeat answered")


async def test_a_replaced_coordinator_s_heartbeats_touch_the_new_lease_not() -> None:
    """A closed consumer's coordinator whose heartbeats go on neither renews nor ends its successor's lease."""
    lease, old, clock = _assigned()
    new = Consumer(clock, generation=2)
    lease.watch(new)
    lease.assigned()
    old.code = UNKNOWN_MEMBER_ID
    await beat(old)  # the old member expelled: nothing to say about the new one
    assert lease.lapsed() is None
    old.code = 0
    clock.now += 9.0
    await beat(old)
    clock.now += 1.0
    assert lease.lapsed() is not None  # not renewed by the old member's answer


def test_a_replaced_consumer_holds_no_lease_until_it_is_assigned() -> None:
    """A rebuilt consumer watched anew (its partitions handed over) neither holds nor ends a lease until assigned."""
    lease, _, clock = _assigned()
    lease.watch(Consumer(clock))
    clock.now += 60.0
    assert lease.lapsed() is None


def test_a_consumer_without_group_requests_keeps_no_lease_and_says_so() -> None:
    """A consumer whose client has no coordinator requests to wrap keeps no lease (never lapses) and logs a warning."""
    clock = Clock()
    lease = MembershipLease(10.0, 30.0, clock)
    lease.watch(object())
    with capture_logs() as logs:
        lease.assigned()
    assert [e["event"] for e in logs] == ["membership_lease_not_kept"]
    clock.now += 60.0
    assert lease.lapsed() is None


def test_an_aiokafka_whose_requests_are_not_classes_keeps_no_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a request is not one class (an older aiokafka listed one per version), no lease is kept: nothing breaks."""
    monkeypatch.setattr("responder.ingest.lease.REQUESTS_ARE_CLASSES", False)
    clock = Clock()
    lease = MembershipLease(10.0, 30.0, clock)
    consumer = Consumer(clock)
    lease.watch(consumer)
    with capture_logs() as logs:
        lease.assigned()
    assert [e["event"] for e in logs] == ["membership_lease_not_kept"]
    assert consumer._coordinator is not None
    assert "_send_req" not in vars(consumer._coordinator)  # its requests left alone
    clock.now += 60.0
    assert lease.lapsed() is None


def test_a_lapse_rejoins_as_a_fence_does() -> None:
    """MembershipLapsed is a ReplicaFenced: the service rejoins in-process, reason `fenced`."""
    exc = MembershipLapsed("lapsed")
    assert isinstance(exc, ReplicaFenced)
    assert rejoin_reason(exc) == "fenced"


def test_aiokafka_still_has_what_the_lease_wraps() -> None:
    """The aiokafka internals the lease relies on are still there (an upgrade that moves them fails here, loudly)."""
    assert JoinGroupRequest.UNKNOWN_MEMBER_ID == UNKNOWN_MEMBER
    assert REQUESTS_ARE_CLASSES
    assert inspect.iscoroutinefunction(GroupCoordinator._send_req)
    # both requests go through the coordinator instance's `_send_req`, so the instance's wrapper sees them
    assert "await self._send_req(request)" in inspect.getsource(GroupCoordinator._do_heartbeat)
    assert "await self._heartbeat_task" in inspect.getsource(GroupCoordinator._stop_heartbeat_task)
    assert "await self._coordinator._send_req(request)" in inspect.getsource(
        CoordinatorGroupRebalance._send_sync_group_request)
    # a subscribed consumer's start() makes its coordinator, then waits for the first assignment (wrapped then)
    start = inspect.getsource(AIOKafkaConsumer.start)
    assert start.index("self._coordinator = GroupCoordinator(") < start.index("wait_for_assignment()")
    reset = inspect.getsource(GroupCoordinator.reset_generation)
    assert "self.member_id = JoinGroupRequest.UNKNOWN_MEMBER_ID" in reset
    assert "self.generation = OffsetCommitRequest.DEFAULT_GENERATION_ID" in reset
