"""A fleet member's lease on its partitions: until when its group surely still counts it a member (`MembershipLease`).

The group coordinator removes a member whose heartbeats stop for the session timeout and gives its partitions to the
others. aiokafka heartbeats in a task of its own, apart from the work, and a heartbeat that fails surfaces nowhere: a
member cut off from its coordinator (a network split, a coordinator slow to move, a process paused past its session:
SIGSTOP, a frozen VM) keeps its assignment, fetches and acts on, while another member may own its partitions already.
With Kafka transactions the next owner's fence refuses the old one's changelog writes; without them nothing did.

The lease runs from the send time of the last heartbeat its coordinator answered as a member's (no error, or
REBALANCE_IN_PROGRESS, which keeps a member in its group for the rebalance) or from the last assignment, whichever is
later, for one session timeout. The coordinator measures the member's session from when a heartbeat reached it, which
is after it was sent, so the lease ends no later than the group's own count; and the group still has to rebalance, and
the next owner to restore, before anyone else acts. A heartbeat the coordinator refused (the member unknown, or of an
old generation: aiokafka resets its member id), or a heartbeat error aiokafka does not expect (which ends its heartbeat
task: a static member id taken by another process), ends the lease at once. The fleet's changelog barrier asks it
(`FleetState.on_durable`, responder/fleet.py) before and after its writes: out of lease, it writes nothing and nothing
of its acts; it waits for an answered heartbeat (the member still in the generation that assigned its partitions)
until the flush's changelog deadline, then fails, and the replica rejoins as a fenced one does (`MembershipLapsed`).
What is already in flight (a cloud call past its barrier) still lands, as after a fence.

aiokafka 0.14 has no hook for heartbeats: `watch` wraps the consumer's `GroupCoordinator._do_heartbeat` on that
instance (the only caller is its heartbeat routine, which looks the method up at each beat). A consumer without it (a
fake, another aiokafka) keeps no lease: `watch` says so and the lease never ends (the transactional fence stays).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

UNKNOWN_MEMBER = ""  # aiokafka's JoinGroupRequest.UNKNOWN_MEMBER_ID: what `reset_generation` sets


class MembershipLease:
    """Until when a group consumer is surely still a member: renewed by each heartbeat answered and each assignment."""

    def __init__(self, session_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.session_s, self.clock = session_s, clock
        self.since: float | None = None  # the last proof of membership (None: nothing assigned under this consumer)
        self.refused: str | None = None  # the coordinator said this member is not one: the lease ended at once
        self.kept = False  # the consumer watched has heartbeats to watch

    def watch(self, consumer: Any) -> bool:
        """Stamp each heartbeat of `consumer` (just started) that its coordinator answers as a member's. False (and no
        lease kept) when it has no heartbeat to wrap."""
        coordinator: Any = getattr(consumer, "_coordinator", None)
        beat: Callable[[], Awaitable[bool]] | None = getattr(coordinator, "_do_heartbeat", None)
        self.kept = beat is not None and hasattr(coordinator, "member_id")
        if beat is None or not self.kept:
            log.warning("membership_lease_not_kept", detail="the Kafka client has no heartbeat to watch: a member cut "
                                                            "off from its group is stopped only by a fence")
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

        coordinator._do_heartbeat = heartbeat
        return True

    def forget(self) -> None:
        """The consumer is replaced (its partitions handed over first): the next one holds no lease until assigned."""
        self.since, self.refused = None, None

    def assigned(self) -> None:
        """Partitions were just assigned: the group counts this member in from now (its join and sync went through)."""
        self.since, self.refused = self.clock(), None

    def _refuse(self, why: str) -> None:
        if self.since is not None and self.refused is None:  # the first reason is kept
            self.refused = why

    def _renew(self, sent: float) -> None:
        if self.since is not None and self.refused is None:  # a late answer never revives a refused lease
            self.since = max(self.since, sent)

    def lapsed(self) -> str | None:
        """Why the lease has ended (the member may no longer own what it was assigned), or None while it holds or
        when none is kept."""
        if not self.kept or self.since is None:
            return None
        if self.refused is not None:
            return self.refused
        silent = self.clock() - self.since
        if silent >= self.session_s:
            return (f"no heartbeat answered for {silent:.1f} s, at least its session timeout ({self.session_s:g} s): "
                    "its group may have given its partitions to another member")
        return None
