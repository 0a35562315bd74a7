"""The fleet guard's quota slot under concurrent replicas, against the sandbox's moto server."""

from __future__ import annotations

import asyncio
import sys
import time

from responder.engine.fleetguard import FleetGuard
from responder.models.runbook import Quota

ROUNDS = 40
CONTENDERS = 6  # fewer than a service's thread pool (responder.threadpools): all six requests in flight at once


async def test_a_contested_quota_slot_is_granted_once(aws, unique):
    """Replicas racing for the last free slot of a fleet-wide quota: exactly one of them gets it, every time."""
    table = f"guards-{unique}"
    await FleetGuard(aws, table, []).ensure_table()
    previous = sys.getswitchinterval()
    # Switch threads every 100 us, as a loaded host does at random: moto's check-then-write (about 300 us of
    # condition parsing between the read and the write) is then interleaved within a few rounds unless serialised.
    sys.setswitchinterval(1e-4)
    granted: list[int] = []
    try:
        for n in range(ROUNDS):
            quota = Quota(actuator=f"round{n}.*", max=1, window=900)
            guards = [FleetGuard(aws, table, [quota]) for _ in range(CONTENDERS)]
            now = time.time()
            trips = await asyncio.gather(*(g.acquire(f"round{n}.act", f"step-{i}", now)
                                           for i, g in enumerate(guards)))
            granted.append(sum(trip is None for trip in trips))
    finally:
        sys.setswitchinterval(previous)
    assert granted == [1] * ROUNDS, f"slots granted per round: {granted}"
