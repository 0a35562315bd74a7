"""A quota that cannot be counted (a fleet replica still restoring a partition that carries quota windows) asks a
human, as a quota that is full does; one that can be counted is not affected."""

from __future__ import annotations

import asyncio

from responder.engine.guards import GuardPolicy
from responder.fleet import FleetState
from responder.models.runbook import Quota
from tests.kit import make_kit, restore
from tests.unit.test_fleet_state import FlakyChangelog
from tests.unit.test_guards import ECHO

QUOTA = "guards: {quotas: [{actuator: test.*, max: 5, window: 1h}]}"
MISSING = "partition(s) 1 are not restored yet (their quota windows are not in)"


async def test_a_runbook_quota_that_cannot_be_counted_asks_a_human(tmp_path):
    """While windows are missing, a step under a runbook quota trips it (soft: an approval request), nothing runs."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards=QUOTA)})
    kit.engine.guards.uncounted = lambda: MISSING
    await kit.send()
    assert kit.echo.applied == []
    [trip] = kit.entries("guard.tripped")
    assert (trip["guard"], trip["hard"]) == ("quota", False)
    assert trip["detail"] == f"runbook rb: test.* cannot be counted while {MISSING} (0 counted here, max 5)"
    assert kit.entries("approval.requested")[0]["reasons"] == [f"quota: {trip['detail']}"]


async def test_a_quota_that_can_be_counted_or_does_not_apply_is_not_affected(tmp_path):
    """With every window in, or with no quota on the step's actuator, the step runs without asking."""
    (tmp_path / "counted").mkdir(), (tmp_path / "other").mkdir()
    counted = make_kit(tmp_path / "counted", {"rb": ECHO.format(guards=QUOTA)})
    counted.engine.guards.uncounted = lambda: None
    await counted.send()
    other = make_kit(tmp_path / "other", {"rb": ECHO.format(guards="guards: {quotas: [{actuator: aws.*, max: 1, "
                                                                 "window: 1h}]}")})
    other.engine.guards.uncounted = lambda: MISSING
    await other.send()
    for kit in (counted, other):
        assert [p.target for p in kit.echo.applied] == ["ml-training"]
        assert kit.entries("guard.tripped") == []


async def test_a_full_quota_says_it_is_full_not_uncounted(tmp_path):
    """A quota already at its max trips as full, whatever else is missing."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="guards: {quotas: [{actuator: test.*, max: 1, window: 1h}]}")})
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    kit.engine.guards.uncounted = lambda: MISSING
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")
    [trip] = kit.entries("guard.tripped")
    assert trip["detail"] == "runbook rb: test.* ran 1 time(s) in 3600s (max 1)"


async def test_a_global_quota_counted_fleet_wide_needs_no_local_windows(tmp_path):
    """A global quota the DynamoDB guard counts for the fleet does not trip for missing local windows; a local one
    (no fleet guard) does."""
    policy = GuardPolicy(quotas=[Quota(actuator="test.*", max=5, window=3600)])
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")}, policy=policy)
    kit.engine.guards.uncounted, kit.engine.guards.global_shared = (lambda: MISSING), True
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    assert [p.target for p in kit.echo.applied] == ["user-1"]
    kit.engine.guards.global_shared = False
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")
    assert [p.target for p in kit.echo.applied] == ["user-1"]
    [trip] = kit.entries("guard.tripped")
    assert trip["detail"].startswith(f"global: test.* cannot be counted while {MISSING}")


async def test_the_fleet_names_the_partitions_not_restored_until_each_is_in_or_revoked(tmp_path):
    """`FleetState.uncounted` names the partitions being restored and those that failed; None once each is adopted
    or revoked."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    log = FlakyChangelog()
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    assert fleet.uncounted() is None
    gate = asyncio.Event()
    real = log.read

    async def read(partition: int) -> list[object]:
        await gate.wait()
        return await real(partition)

    log.read = read  # type: ignore[method-assign,assignment]
    reading = asyncio.create_task(fleet.fetch(2))
    await asyncio.sleep(0)
    assert await restore(fleet, []) == set()
    assert fleet.uncounted() == "partition(s) 2 are not restored yet (their quota windows are not in)"
    log.read = real  # type: ignore[method-assign]
    assert await restore(fleet, [0, 1]) == {1}
    assert fleet.uncounted() == "partition(s) 1, 2 are not restored yet (their quota windows are not in)"
    gate.set()
    fleet.adopt(2, await reading or [])
    assert fleet.uncounted() == MISSING
    fleet.abandon([1])
    assert fleet.uncounted() is None
