"""A fleet member's lease on its partitions: until when its group surely still counts it a member (`MembershipLease`).

The group coordinator removes a member whose heartbeats stop for the session timeout and gives its partitions to the
others. aiokafka heartbeats in a task of its own, apart from the work, and a heartbeat that fails surfaces nowhere: a
member cut off from its coordinator (a network split, a coordinator slow to move, a process paused past its session:
SIGSTOP, a suspended machine) keeps its assignment, fetches and acts on, while another member may own its partitions
already.
With Kafka transactions the next owner's fence refuses the old one's changelog writes; without them nothing did.

The lease runs for one session timeout from the send time of the last heartbeat its coordinator answered as a member's
(no error, or REBALANCE_IN_PROGRESS, which keeps a member in its group for the rebalance) or of the SyncGroup request
that brought the last assignment. The coordinator restarts a member's session once such a request reached it, after
it was sent, so the lease ends no later than the group's own count; and the group still has to rebalance, and the
next owner to restore, before anyone else acts. It ends at once, until the next assignment, when the group says this
is no member of the generation that assigned its partitions: a heartbeat so answered, any other request so answered
(aiokafka then resets the member id or the generation), the group left, or a heartbeat error aiokafka does not expect
(its heartbeat task ends). Its clock counts a suspend (CLOCK_BOOTTIME). The fleet's changelog barrier asks it before
and after its writes (`LeaseBarrier`, responder/fleet_lease.py): out of lease, nothing is written and nothing acts; it
waits for an answered heartbeat (the member still in the generation that assigned its partitions) until the flush's
changelog deadline, then fails, and the replica rejoins as a fenced one does (`MembershipLapsed`). What is already in
flight (a cloud call past its barrier) still lands, as after a fence.

aiokafka 0.14 has no hook for heartbeats: the lease wraps the consumer's `GroupCoordinator._do_heartbeat` and
`_send_req` on that instance (the heartbeat routine and the group join look both up at each call), at its first
assignment: aiokafka makes the coordinator in `start()`, which waits for that assignment, and starts heartbeating only
after it. A consumer without them (a fake, another aiokafka) keeps no lease: the lease says so and never ends (the
transactional fence stays). Once this service closes the consumer itself (its stop), the lease is not asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

UNKNOWN_MEMBER = ""  # aiokafka's JoinGroupRequest.UNKNOWN_MEMBER_ID: what `reset_generation` sets


def boot_clock() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended (CLOCK_BOOTTIME where there is one):
    a replica resumed after a suspend must see the time its group saw pass."""
    return time.clock_gettime(BOOTTIME)


BOOTTIME = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class MembershipLease:
    """Until when a group consumer is surely still a member: renewed by each heartbeat answered and each assignment."""

    def __init__(self, session_s: float, clock: Callable[[], float] = boot_clock) -> None:
        self.session_s, self.clock = session_s, clock
        self.since: float | None = None  # the last proof of membership (None: nothing assigned under this consumer)
        self.refused: str | None = None  # the group said this member is not one (any more): the lease ended at once
        self.kept = False  # the consumer's coordinator has heartbeats to watch, and they are watched
        self._consumer: Any = None  # the consumer whose membership this is (`watch`)
        self._coordinator: Any = None  # its aiokafka GroupCoordinator, once wrapped (`_wrap`)
        self._generation: int | None = None  # the group generation its partitions were assigned in
        self._synced: float | None = None  # when its coordinator's last SyncGroup request was sent

    def watch(self, consumer: Any) -> None:
        """From now on the lease is `consumer`'s, a new one (not started, or just rebuilt): nothing held until its
        group assigns it partitions. aiokafka creates the coordinator in `start()`, and a subscribed consumer's
        `start()` waits for its first assignment: the coordinator is wrapped then (`assigned`), before its heartbeats
        start; that first SyncGroup goes unstamped (the assignment counts from the callback)."""
        self._consumer, self._coordinator, self.kept = consumer, None, False
        self.since, self.refused, self._generation, self._synced = None, None, None, None

    def assigned(self) -> None:
        """Partitions were just assigned: the group counts this member in from the send time of the SyncGroup request
        that brought them (from now when it was sent before the coordinator was wrapped), in the generation the
        coordinator now has."""
        now = self.clock()
        synced, self._synced = self._synced, None
        self.since = now if synced is None else min(now, synced)
        self.refused = None
        self._generation = getattr(self._coordinator, "generation", None) if self._wrap() else None

    def _wrap(self) -> bool:
        """Wrap the consumer's coordinator (once): stamp each heartbeat it answers as a member's, refuse on one it
        answers as a stranger's or that fails unexpectedly, stamp each SyncGroup request's send time. False (no lease
        kept, said once) when it has no heartbeat to wrap (a fake, another aiokafka)."""
        coordinator: Any = getattr(self._consumer, "_coordinator", None)
        if coordinator is not None and coordinator is self._coordinator:
            return True
        beat: Callable[[], Awaitable[bool]] | None = getattr(coordinator, "_do_heartbeat", None)
        send: Callable[[Any], Awaitable[Any]] | None = getattr(coordinator, "_send_req", None)
        if beat is None or send is None or not hasattr(coordinator, "member_id"):
            log.warning("membership_lease_not_kept", detail="the Kafka client has no heartbeat to watch: a member cut "
                                                            "off from its group is stopped only by a fence")
            self.kept = False
            return False

        async def heartbeat() -> bool:
            sent = self.clock()
            try:
                ok = await beat()
            except Exception as exc:  # an error aiokafka does not expect (its static member id taken by another
                self._refuse(f"its heartbeat failed: {type(exc).__name__}: {exc}")  # process, say): its heartbeat
                raise  # task ends with it, and nothing renews the lease any more
            if ok:
                self._renew(sent)
            elif coordinator.member_id == UNKNOWN_MEMBER:
                self._refuse("its group coordinator answered a heartbeat that it is not a member (any more)")
            return ok

        async def send_req(request: Any) -> Any:
            if type(request).__name__.startswith("SyncGroupRequest"):
                self._synced = self.clock()  # the coordinator restarts the member's session once it has this
            return await send(request)

        coordinator._do_heartbeat = heartbeat
        coordinator._send_req = send_req
        self._coordinator, self.kept = coordinator, True
        return True

    def _refuse(self, why: str) -> None:
        if self.since is not None and self.refused is None:  # the first reason is kept
            self.refused = why

    def _renew(self, sent: float) -> None:
        if self.since is not None and self.refused is None:  # a late answer never revives a refused lease
            self.since = max(self.since, sent)

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

    def _closing(self) -> bool:
        """Whether this service is closing the consumer itself (its stop, after its partitions' last chunks): aiokafka
        then stops heartbeating and leaves the group on purpose, and the stop's last flush is not held to the lease
        (it was written after leaving before the lease too)."""
        closing = getattr(self._coordinator, "_closing", None)
        return isinstance(closing, asyncio.Future) and closing.done()

    def lapsed(self) -> str | None:
        """Why the lease has ended (the member may no longer own what it was assigned), or None while it holds or
        when none is kept. A reset or a refusal ends it for good (`refused`), until the next assignment."""
        if not self.kept or self.since is None or self._closing():
            return None
        if self.refused is None and (reset := self._reset()) is not None:
            self.refused = reset
        if self.refused is not None:
            return self.refused
        silent = self.clock() - self.since
        if silent >= self.session_s:
            return (f"no heartbeat answered for {silent:.1f} s, at least its session timeout ({self.session_s:g} s): "
                    "its group may have given its partitions to another member")
        return None
