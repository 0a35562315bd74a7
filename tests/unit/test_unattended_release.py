"""A release with no human at hand (`on_timeout: approve`, or a released step resumed after a crash) waives a runbook's
own approval only: a guard that trips when the step runs (a kill switch turned on, a quota filled since it was parked,
a fleet-wide quota) parks it again, and a decision releases a step once."""

from __future__ import annotations

import dataclasses

import pytest

from responder.engine.approvals import RUNBOOK_APPROVAL, decision_id
from responder.engine.guards import GuardPolicy
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from tests.escalation_kit import FULL, approved_then_crashed
from tests.fleet_kit import APPROVED_ON_TIMEOUT, FakeFleetGuard
from tests.kit import Kit, decision, make_kit


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
    """A timeout approval does not waive a kill switch turned on after the park: re-parked, then denied."""
    kit = await _parked(tmp_path)
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.step == "wipe"
    assert [r.split(":")[0] for r in again.reasons] == ["kill_switch"]  # the runbook's approval was given
    assert again.waived
    assert [b["guard"] for b in kit.entries("guard.tripped")] == ["kill_switch"]
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    assert _results(kit) == [("wipe", "denied")]


async def test_a_quota_filled_since_the_park_is_not_waived_by_the_timeout(tmp_path):
    """A quota that is full when the timeout releases the step parks it again instead of running it over the max."""
    kit = await _parked(tmp_path, FULL + APPROVED_ON_TIMEOUT)
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # another step of the runbook ran meanwhile
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.reasons[0].startswith("quota:")


async def test_a_step_released_by_its_timeout_takes_a_fleet_wide_quota_slot(tmp_path):
    """A timeout-released step takes a fleet-wide quota slot, unlike a human approval; a full quota re-parks it."""
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
    assert again.reasons == ["quota: fleet-wide: test.echo is full"]


async def test_a_human_approval_waives_a_kill_switch_only_once_a_request_asked_for_it(tmp_path):
    """A kill switch on after the park re-parks a human-approved step; approving the request naming it runs it."""
    kit = await _parked(tmp_path)
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    [parked] = kit.engine.state.parked_steps()
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.waived
    assert [r.split(":")[0] for r in again.reasons] == ["kill_switch"]
    kit.clock.now += 1
    assert await kit.engine.decide(*decision(kit, parked.incident, "wipe"))
    assert [p.target for p in kit.echo.applied] == ["t1"]


class _Killed(BaseException):
    """The process died here (not an error the engine may catch)."""


async def test_a_timeout_release_replayed_after_a_crash_is_still_a_timeout_release(tmp_path):
    """Replay marks a step released by its timeout as such, as the live state does."""
    kit = await _parked(tmp_path)

    async def crash(*args: object) -> None:
        raise _Killed  # the process dies (a bug in one expiry, an Exception, is caught and logged instead)

    kit.engine.decisions.resume = crash  # type: ignore[assignment]
    kit.clock.now += 601
    with pytest.raises(_Killed):
        await kit.engine.expire()
    [live] = kit.engine.state.granted()
    await kit.engine.recorder.flush()
    kit.start()
    [replayed] = kit.engine.state.granted()
    assert live.unattended
    assert replayed.unattended
    assert dataclasses.asdict(live) == dataclasses.asdict(replayed)


async def _approved_then_crashed(tmp_path) -> tuple[Kit, tuple[bytes, str, str]]:
    """A kit whose parked step a human approved, cut short by a crash before its intent; the decision."""
    kit = await _parked(tmp_path)
    [parked] = kit.engine.state.parked_steps()
    return kit, await approved_then_crashed(kit, parked.incident, "wipe", "resume")


async def test_an_approved_step_cut_short_before_its_intent_runs_after_the_restart_without_asking_again(tmp_path):
    """An approved step cut short by a crash runs under its release after restart, and later steps follow unasked."""
    kit, approval = await _approved_then_crashed(tmp_path)
    kit.start()
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t1", "t2"]
    assert kit.kinds().count("approval.requested") == 1
    assert not await kit.engine.decide(*approval)  # delivered again after the crash: nothing waits for it
    assert [p.target for p in kit.echo.applied] == ["t1", "t2"]


async def test_an_approved_step_cut_short_is_parked_again_by_a_kill_switch_and_its_decision_is_not_reused(tmp_path):
    """A kill switch on before restart re-parks the resumed step; its used decision is refused, a new one runs it."""
    kit, approval = await _approved_then_crashed(tmp_path)
    kit.policy = GuardPolicy(kill_switch=True)
    kit.start()
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert [r.split(":")[0] for r in again.reasons] == ["kill_switch"]
    assert not await kit.engine.decide(*approval)
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    assert kit.entries("approval.rejected")[-1]["reason"] == (
        "this decision was applied already: a step parked again needs a new one")
    assert kit.echo.applied == []
    kit.clock.now += 1
    assert await kit.engine.decide(*decision(kit, again.incident, "wipe"))
    assert [p.target for p in kit.echo.applied] == ["t1"]


async def test_a_used_decision_is_remembered_by_replay_and_carried_by_the_incident(tmp_path):
    """Which decisions were applied is rebuilt from the timeline and travels with the incident's snapshot."""
    kit, approval = await _approved_then_crashed(tmp_path)
    [incident] = kit.engine.state.incidents.all()
    live = set(incident.decisions)
    kit.start()
    [replayed] = kit.engine.state.incidents.all()
    assert live == replayed.decisions == {decision_id(approval[0])}
    restored = EngineState()
    restored.restore(EngineSnapshot.model_validate_json(kit.engine.state.snapshot().model_dump_json()))
    assert restored.used(replayed.id, decision_id(approval[0]))


async def test_a_timeout_release_while_a_quota_cannot_be_counted_goes_on_once_it_can(tmp_path):
    """A timeout release while a fleet partition restores re-parks the step as `waived`; once counted, it runs."""
    kit = await _parked(tmp_path, FULL + APPROVED_ON_TIMEOUT)
    restoring = ["partition(s) 3 are not restored yet"]
    kit.engine.guards.uncounted = lambda: restoring[0] if restoring else None
    kit.clock.now += 601
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.waived
    assert [r.split(":")[0] for r in again.reasons] == ["quota_uncounted"]
    kit.start()  # replay keeps it waived
    kit.engine.guards.uncounted = lambda: None
    [replayed] = kit.engine.state.parked_steps()
    assert replayed.waived
    assert await kit.engine.decisions.recheck(replayed)
    assert [p.target for p in kit.echo.applied] == ["t1"]
    assert [s for s, _ in _results(kit)] == ["wipe"]  # `note` waits: its quota is full now (max 1)


async def test_a_step_parked_only_for_an_uncounted_quota_is_checked_again_at_its_timeout(tmp_path):
    """`on_timeout: approve` on a step parked for an uncounted quota re-checks it: re-parked while short, then run."""
    kit = await _parked(tmp_path, FULL + APPROVED_ON_TIMEOUT)
    restoring = ["partition(s) 3 are not restored yet"]
    kit.engine.guards.uncounted = lambda: restoring[0] if restoring else None
    for _ in range(2):  # released by the timeout, parked again for the count, then released by the next timeout
        kit.clock.now += 601
        await kit.engine.expire()
        assert kit.echo.applied == []
    restoring.clear()
    kit.clock.now += 601
    await kit.engine.expire()
    assert [p.target for p in kit.echo.applied] == ["t1"]
    assert [e["approve"] for e in kit.entries("approval.expired")] == [True, True, True]
