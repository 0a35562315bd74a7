"""A fleet member's changelog barrier asks its membership lease (responder/ingest/lease.py) before it writes
(`LeaseBarrier`, mixed into `FleetState`, responder/fleet.py): out of lease, nothing of its partitions is written,
counts as durable or acts (docs/fleet.md, "Guarantees, plainly")."""

from __future__ import annotations

import asyncio
from typing import NoReturn

import structlog

from responder.errors_kafka import MembershipLapsed
from responder.ingest.lease import MembershipLease

log = structlog.get_logger(__name__)

LEASE_RECHECK_S = 0.1  # how often a barrier out of lease looks again for an answered heartbeat


class LeaseBarrier:
    """The lease's side of the changelog barrier; the partitions owned and the lease are `FleetState`'s."""

    lease: MembershipLease | None  # the alert consumer's membership; none, no lease kept
    owned: set[int]
    lapsed: bool  # the lease ended while partitions were owned, said once

    async def _in_lease(self, until: float) -> None:
        """Return at once while this member's lease on its partitions holds (responder/ingest/lease.py). Ended by a
        silence while a heartbeat sent within it still awaits its answer (a slow coordinator), it waits for that
        answer until `until` (the flush's or the eviction's changelog deadline); otherwise, or past `until`,
        MembershipLapsed: nothing more of theirs is written or acts."""
        if self.lease is None:
            return
        loop = asyncio.get_running_loop()
        waited = False
        while self.owned and (why := self.lease.lapsed()) is not None:
            if self.lease.awaited() and loop.time() < until:
                if not waited:
                    waited = True
                    log.warning("membership_lease_waiting", reason=why, detail="nothing is written or acted on for "
                                "its partitions until the heartbeat sent within the lease is answered, or the "
                                "changelog deadline passes")
                await asyncio.sleep(min(LEASE_RECHECK_S, max(0.0, until - loop.time())))
                continue
            self._lapsed(why)
        if waited and self.owned:  # (none left: revoked or cut meanwhile, and the caller says what that means)
            log.info("membership_lease_renewed", detail="a heartbeat was answered: the member kept its partitions")

    def _holds(self) -> bool:
        """Whether the lease holds now (none kept: always), for a write that can as well be left to a later owner."""
        return self.lease is None or self.lease.lapsed() is None

    def _lapsed(self, why: str) -> NoReturn:
        if not self.lapsed:
            self.lapsed = True
            log.critical("membership_lapsed", partitions=sorted(self.owned), reason=why,
                         detail="nothing more is written or acted on for its partitions; this replica rejoins its "
                                "group, and their next owner redoes what was not committed")
        raise MembershipLapsed(f"this replica's membership of its group lapsed ({why}): partition(s) "
                               f"{', '.join(map(str, sorted(self.owned)))} may be another member's now; their "
                               "entries are not durable, and their steps do not act")
