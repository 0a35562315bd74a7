"""A fleet member's lease on its partitions: until when its group surely still counts it a member (`MembershipLease`).

The group coordinator removes a member whose heartbeats stop for the session timeout and gives its partitions to the
others. aiokafka heartbeats in a task of its own, apart from the work, and a heartbeat that fails surfaces nowhere: a
member cut off from its coordinator (a network split, a coordinator slow to move, a process paused past its session:
SIGSTOP, a suspended machine) keeps its assignment, fetches and acts on, while another member may own its partitions
already.
With Kafka transactions the next owner's fence refuses the old one's changelog writes; without them nothing did.

The lease runs for one session timeout from the send time of the last heartbeat its coordinator answered as a member's
(no error, or REBALANCE_IN_PROGRESS), if it was sent while the lease held, or of the SyncGroup request that brought the
last assignment. The coordinator restarts a member's session once such a request reached it, after it was sent, so the
lease ends no later than the group's own count; and the group still has to rebalance, and the next owner to restore,
before anyone else acts. An answer is never taken as proof once the lease has ended: a coordinator still loading the
group answers every heartbeat blindly. REBALANCE_IN_PROGRESS keeps a member only until the group's rebalance timeout:
the lease ends then too, counted from the last proof given outside a rebalance. It ends at once, until the next
assignment, when the group says this is no member of the generation that assigned its partitions: a heartbeat so
answered (or with an error aiokafka does not handle: its heartbeat task ends), any other request so answered (aiokafka
then resets the member id or the generation), or the group left. Its clock counts a suspend (CLOCK_BOOTTIME). The
fleet's changelog barrier asks it before and after its writes (`LeaseBarrier`, responder/fleet_lease.py): out of
lease, nothing is written and nothing acts, and the replica rejoins as a fenced one does (`MembershipLapsed`), unless a
heartbeat sent while the lease held still awaits its answer (`awaited`: the barrier waits for it, until the flush's
changelog deadline). What is already in flight (a cloud call past its barrier) still lands, as after a fence.

aiokafka 0.14 has no hook for heartbeats: the lease wraps the coordinator's `_send_req` on that instance (its heartbeat
and its SyncGroup both go through it) at the consumer's first assignment: aiokafka makes the coordinator in `start()`,
which waits for that assignment, and starts heartbeating only after it. A consumer without it (a fake, another
aiokafka) keeps no lease: the lease says so and never ends (the transactional fence stays). Once this service stops
the consumer (`stop`: it leaves its group), the lease ends for good: a fleet member makes its state durable before
that (responder/service/running.py), and nothing of its partitions is written after it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka.errors import (
    CoordinatorNotAvailableError,
    GroupLoadInProgressError,
    NoError,
    NotCoordinatorError,
    RebalanceInProgressError,
    for_code,
)
from aiokafka.protocol.group import HeartbeatRequest, SyncGroupRequest

log = structlog.get_logger(__name__)

LEFT = "this service stopped its consumer, which left its group: its partitions may be another member's"
UNKNOWN_MEMBER = ""  # aiokafka's JoinGroupRequest.UNKNOWN_MEMBER_ID: what `reset_generation` sets
# aiokafka 0.14's requests are one class each (earlier releases listed one class per version): what the wrapper tells
# heartbeats and syncs apart by; anything else keeps no lease rather than break the coordinator's requests
REQUESTS_ARE_CLASSES = isinstance(HeartbeatRequest, type) and isinstance(SyncGroupRequest, type)
# a heartbeat answered so proves nothing either way: the coordinator moves, or loads the group
UNSETTLED = (CoordinatorNotAvailableError, NotCoordinatorError, GroupLoadInProgressError)


BOOTTIME = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def boot_clock() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended (CLOCK_BOOTTIME where there is one):
    a replica resumed after a suspend must see the time its group saw pass."""
    return time.clock_gettime(BOOTTIME)


class MembershipLease:
    """Until when a group consumer is surely still a member: renewed by each heartbeat answered within it."""

    def __init__(self, session_s: float, rebalance_s: float, clock: Callable[[], float] = boot_clock) -> None:
        self.session_s, self.rebalance_s, self.clock = session_s, rebalance_s, clock
        self.since: float | None = None  # the last proof of membership (None: nothing assigned under this consumer)
        self.refused: str | None = None  # the lease ended for good (until the next assignment), and why
        self.kept = False  # the consumer's coordinator is watched
        self.stopping = False  # this service stopped the consumer itself: the lease ended for good (`stop`)
        self._consumer: Any = None  # the consumer whose membership this is (`watch`)
        self._coordinator: Any = None  # its aiokafka GroupCoordinator, once wrapped (`_wrap`)
        self._generation: int | None = None  # the group generation its partitions were assigned in
        self._synced: float | None = None  # when its coordinator's last SyncGroup request was sent
        self._settled = 0.0  # the send time of the last proof given outside a rebalance
        self._rebalancing = False  # the last proof was REBALANCE_IN_PROGRESS: held until `_settled` + rebalance
        self._asking: list[float] = []  # send times of heartbeats not answered yet

    def watch(self, consumer: Any) -> None:
        """From now on the lease is `consumer`'s, a new one (not started, or just rebuilt): nothing held until its
        group assigns it partitions. aiokafka creates the coordinator in `start()`, and a subscribed consumer's
        `start()` waits for its first assignment: the coordinator is wrapped then (`assigned`), before its heartbeats
        start; that first SyncGroup goes unstamped (the assignment counts from the callback)."""
        self._consumer, self._coordinator, self.kept, self.stopping = consumer, None, False, False
        self.since, self.refused, self._generation, self._synced, self._asking = None, None, None, None, []

    def assigned(self) -> None:
        """Partitions were just assigned: the group counts this member in from the send time of the SyncGroup request
        that brought them (from now when it was sent before the coordinator was wrapped), in the generation the
        coordinator now has. Not once this service stopped the consumer: the lease stays ended."""
        if self.stopping:
            return
        now = self.clock()
        synced, self._synced = self._synced, None
        self.since = self._settled = now if synced is None else min(now, synced)
        self.refused, self._rebalancing = None, False
        self._generation = getattr(self._coordinator, "generation", None) if self._wrap() else None

    def _wrap(self) -> bool:
        """Wrap the consumer's coordinator's requests (once): a heartbeat's answer is a proof, a refusal or nothing
        (`_answered`), a SyncGroup request's send time is stamped. A replaced coordinator's requests (its close may
        leave its heartbeat task running) are passed through untouched. False (no lease kept, said) when it has no
        requests to wrap (a fake, another aiokafka)."""
        coordinator: Any = getattr(self._consumer, "_coordinator", None)
        if coordinator is not None and coordinator is self._coordinator:
            return True
        send: Callable[[Any], Awaitable[Any]] | None = getattr(coordinator, "_send_req", None)
        if send is None or not hasattr(coordinator, "member_id") or not REQUESTS_ARE_CLASSES:
            log.warning("membership_lease_not_kept", detail="the Kafka client has no group requests to watch: a member "
                                                            "cut off from its group is stopped only by a fence")
            self.kept = False
            return False

        async def send_req(request: Any) -> Any:
            if coordinator is not self._coordinator:
                return await send(request)
            if isinstance(request, SyncGroupRequest):
                self._synced = self.clock()  # the coordinator restarts the member's session once it has this
            if not isinstance(request, HeartbeatRequest):
                return await send(request)
            sent = self.clock()
            self._asking.append(sent)
            try:
                answer = await send(request)
            finally:
                self._asking.remove(sent)
            self._answered(sent, for_code(answer.error_code))
            return answer

        coordinator._send_req = send_req
        self._coordinator, self.kept = coordinator, True
        return True

    def _answered(self, sent: float, error: type) -> None:
        """A heartbeat sent at `sent` was answered with `error`: a member's answer renews the lease if it was sent
        while the lease held (an answer is never taken as proof after the lease ended: a coordinator loading the
        group answers every heartbeat blindly); one that says this is no member (an old generation, an unknown member,
        any error aiokafka does not handle) ends it."""
        if self.since is None or self.refused is not None or self.stopping:
            return
        if error in UNSETTLED:
            return
        if error is not NoError and error is not RebalanceInProgressError:
            self.refused = f"its group coordinator answered a heartbeat with {error.__name__}: not a member (any more)"
            return
        if self._rebalancing and sent - self._settled >= self.rebalance_s:
            self.refused = self._rebalanced(sent)  # ended already, whether or not a barrier asked meanwhile
            return
        if sent - self.since >= self.session_s:
            return  # sent after the lease had ended: no proof
        self.since = max(self.since, sent)
        self._rebalancing = error is RebalanceInProgressError
        if not self._rebalancing:
            self._settled = max(self._settled, sent)

    def _rebalanced(self, at: float) -> str:
        return (f"its group has been rebalancing for {at - self._settled:.1f} s, at least its rebalance timeout "
                f"({self.rebalance_s:g} s): it may have completed without this member")

    def stop(self) -> None:
        """This service stops the consumer (it leaves its group): the lease ends for good, with why it had ended
        before if it had; its partitions may be another member's from now on, and nothing of theirs is written."""
        self.refused = self.lapsed() or LEFT
        self.stopping = True

    def _reset(self) -> str | None:
        """Why the coordinator no longer holds the member and generation its partitions were assigned in (an offset
        commit, a join or a sync answered that it is not a member, or it left its group), or None."""
        coordinator = self._coordinator
        if coordinator is None or self._generation is None:
            return None
        if coordinator.member_id == UNKNOWN_MEMBER or coordinator.generation != self._generation:
            return (f"its group membership was reset (generation {self._generation} → {coordinator.generation}): "
                    "a request answered that it is not a member of that generation, or it left its group")
        return None

    def lapsed(self) -> str | None:
        """Why the lease has ended (the member may no longer own what it was assigned), or None while it holds, when
        none is kept. A reset, a refusal or a rebalance gone on past the group's rebalance timeout ends it for good
        (`refused`), until the next assignment; once this service stops the consumer, the verdict of that moment."""
        if not self.kept or self.since is None:
            return None
        if self.stopping:
            return self.refused  # ended at the stop (`stop`)
        if self.refused is None and (reset := self._reset()) is not None:
            self.refused = reset
        now = self.clock()
        if self.refused is None and self._rebalancing and now - self._settled >= self.rebalance_s:
            self.refused = self._rebalanced(now)
        if self.refused is not None:
            return self.refused
        silent = now - self.since
        if silent >= self.session_s:
            return (f"no heartbeat answered for {silent:.1f} s, at least its session timeout ({self.session_s:g} s): "
                    "its group may have given its partitions to another member")
        return None

    def awaited(self) -> bool:
        """Whether a lease ended by a silence may still be renewed: a heartbeat sent while it held awaits its answer."""
        return self.refused is None and self.since is not None and any(
            sent - self.since < self.session_s for sent in self._asking)
