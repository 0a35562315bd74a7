"""`on_timeout: approve` waives a runbook's own approval only: a guard that trips when the released step runs (a kill
switch turned on, a quota filled since it was parked, a fleet-wide quota) parks it again, as it would any step."""

from __future__ import annotations

import dataclasses

import pytest

from responder.engine.approvals import RUNBOOK_APPROVAL
from responder.engine.guards import GuardPolicy, Trip
from tests.kit import Kit, decision, make_kit
from tests.unit.test_approvals import WIPE

APPROVED_ON_TIMEOUT = WIPE.replace("test.wipe", "test.echo").replace("approvers", "required: true, approvers") \
    % "approve"
QUOTA = "guards: {quotas: [{actuator: test.*, max: 1, window: 1h}]}\n"


class FakeFleetGuard:
    """A fleet guard whose global quota is full or not; remembers the step keys that took a slot."""

    killed = False

    def __init__(self, full: bool) -> None:
        self.full, self.taken = full, []

    async def acquire(self, actuator: str, key: str, now: float) -> Trip | None:
        if self.full:
            return Trip("quota", f"fleet-wide: {actuator} is full")
        self.taken.append(key)
        return None


async def _parked(tmp_path, body: str = APPROVED_ON_TIMEOUT) -> Kit:
    """A kit whose first step waits for a human only because its runbook says so (on_timeout: approve)."""
    kit = make_kit(tmp_path, {"rb": body})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    assert parked.reasons == [RUNBOOK_APPROVAL]
    return kit


def _results(kit: Kit) -> list[tuple[str, str]]:
    return [(str(b["step"]), str(b["status"])) for b in kit.entries("step.result")]


async def test_a_kill_switch_turned_on_after_the_park_is_not_waived_by_the_timeout(tmp_path):
    """The timeout's approval does not run a step while the kill switch is on: it is parked again for the switch,
    and denied at its next timeout; nothing acts."""
    kit = await _parked(tmp_path)
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.step == "wipe"
    assert [r.split(":")[0] for r in again.reasons] == ["kill_switch", RUNBOOK_APPROVAL]
    assert [b["guard"] for b in kit.entries("guard.tripped")] == ["kill_switch"]
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    assert _results(kit) == [("wipe", "denied")]


async def test_a_quota_filled_since_the_park_is_not_waived_by_the_timeout(tmp_path):
    """A quota that is full when the timeout releases the step parks it again instead of running it over the max."""
    kit = await _parked(tmp_path, QUOTA + APPROVED_ON_TIMEOUT)
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # another step of the runbook ran meanwhile
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.reasons[0].startswith("quota:")


async def test_a_step_released_by_its_timeout_takes_a_fleet_wide_quota_slot(tmp_path):
    """Released by its timeout, the step counts against the fleet-wide quota (a human's approval does not); with
    the quota full, it is parked again."""
    kit = await _parked(tmp_path)
    guard = kit.engine.fleet_guard = FakeFleetGuard(full=False)  # type: ignore[assignment]
    kit.clock.now += 601
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t1", "t2"]
    assert len(guard.taken) == 2  # wipe's slot, then note's (which needs no approval)
    (tmp_path / "full").mkdir()
    kit = await _parked(tmp_path / "full")
    kit.engine.fleet_guard = FakeFleetGuard(full=True)  # type: ignore[assignment]
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.reasons == [RUNBOOK_APPROVAL, "quota: fleet-wide: test.echo is full"]


async def test_a_human_approval_still_waives_a_kill_switch_turned_on_after_the_park(tmp_path):
    """Only a human may waive a kill switch: their approval runs the step it names."""
    kit = await _parked(tmp_path)
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    [parked] = kit.engine.state.parked_steps()
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))
    assert [p.target for p in kit.echo.applied] == ["t1"]


async def test_a_timeout_release_replayed_after_a_crash_is_still_a_timeout_release(tmp_path):
    """Replay marks a step released by its timeout as such, as the live state does."""
    kit = await _parked(tmp_path)

    async def crash(*args: object) -> None:
        raise RuntimeError("killed")

    kit.engine.decisions.resume = crash  # type: ignore[assignment]
    kit.clock.now += 601
    with pytest.raises(RuntimeError, match="killed"):
        await kit.engine.expire()
    [live] = kit.engine.state.granted()
    await kit.engine.recorder.flush()
    kit.start()
    [replayed] = kit.engine.state.granted()
    assert live.timed_out
    assert replayed.timed_out
    assert dataclasses.asdict(live) == dataclasses.asdict(replayed)
