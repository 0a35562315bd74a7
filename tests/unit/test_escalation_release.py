"""An `on_failure` step parked by a guard and released by a human runs alone, with the parameters it was parked
with: the runbook is not run again from its first step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from responder.engine.guards import GuardPolicy
from responder.models.runbook import Protected
from tests.escalation_kit import CONTINUING, FULL, approved_then_crashed
from tests.fakes import dying
from tests.kit import DEACTIVATE_STEPS, ESCALATE, KEY, MISSING_KEY, Kit, decision, make_kit


async def _escalation_parked(tmp_path: Path, steps: str = DEACTIVATE_STEPS, **kw: object) -> tuple[Kit, str]:
    """A kit whose deactivation failed and whose escalation step waits for a human (its quota is full)."""
    kit = make_kit(tmp_path, {"rb": FULL + steps + ESCALATE}, **kw)
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # the quota is full
    await kit.send(key=MISSING_KEY)
    [parked] = kit.engine.state.parked_steps()
    assert parked.step == "tell.deactivate"
    return kit, parked.incident


async def _released_then_killed(tmp_path: Path, *, applied: bool) -> tuple[Kit, str]:
    """The parked escalation approved, the process killed inside it once its intent is durable (after it acted, if
    `applied`), and started again with the kill switch on."""
    kit, incident = await _escalation_parked(tmp_path)
    with dying(kit.echo, applied=applied):
        await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    kit.policy = dataclasses.replace(kit.policy, kill_switch=True)
    kit.start()
    return kit, incident


def _acted(kit: Kit) -> list[tuple[str, str]]:
    """(step, status) of every step result, in order."""
    return [(str(b["step"]), str(b["status"])) for b in kit.entries("step.result")]


async def test_an_approved_escalation_step_runs_alone_once(tmp_path):
    """Approving the parked escalation runs it with its parked parameters; the failed step does not run again."""
    kit, incident = await _escalation_parked(tmp_path)
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "deactivate failed")]
    assert _acted(kit) == [("deactivate", "failed"), ("tell.deactivate", "ok")]
    assert kit.kinds().count("step.intent") == 2
    assert kit.kinds().count("step.escalated") == 1
    assert kit.engine.state.parked_steps() == []
    assert kit.engine.state.granted() == []


async def test_a_denied_escalation_step_is_recorded_and_nothing_else_runs(tmp_path):
    """Denying it records the denial; no runbook step runs again."""
    kit, incident = await _escalation_parked(tmp_path)
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate", "deny"))
    assert kit.echo.applied == []
    assert _acted(kit) == [("deactivate", "failed"), ("tell.deactivate", "denied")]


async def test_an_escalation_step_cut_short_after_its_release_runs_once_after_the_restart(tmp_path):
    """A crash after the release (the decision durable, no intent) resumes the escalation alone, once."""
    kit, incident = await _escalation_parked(tmp_path)
    value, key_id, signature = decision(kit, incident, "tell.deactivate")

    async def crash(*args: object) -> None:
        raise RuntimeError("killed")

    kit.engine.decisions.escalate = crash  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="killed"):
        await kit.engine.decide(value, key_id, signature)
    await kit.engine.recorder.flush()
    kit.start()
    assert [p.step for p in kit.engine.state.granted()] == ["tell.deactivate"]
    await kit.engine.expire()  # resolves the released steps first, as the approvals loop does
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    assert [p.target for p in kit.echo.applied] == ["oncall"]
    assert _acted(kit) == [("deactivate", "failed"), ("tell.deactivate", "ok")]


async def _released_then_crashed(tmp_path: Path) -> tuple[Kit, tuple[bytes, str, str]]:
    """A kit whose approved escalation step was cut short by a crash before its intent; the decision."""
    kit, incident = await _escalation_parked(tmp_path)
    return kit, await approved_then_crashed(kit, incident, "tell.deactivate", "escalate")


async def test_an_escalation_step_cut_short_is_parked_again_when_the_kill_switch_is_on_after_the_restart(tmp_path):
    """A released escalation cut short before its intent is re-guarded on restart and parked again by a kill switch."""
    kit, approval = await _released_then_crashed(tmp_path)
    kit.policy = dataclasses.replace(kit.policy, kill_switch=True)
    kit.start()
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.step == "tell.deactivate"
    assert any(r.startswith("kill_switch") for r in again.reasons)
    assert kit.kinds().count("approval.requested") == 2
    assert kit.engine.state.granted() == []
    assert not await kit.engine.decide(*approval)  # redelivered: its offset was not committed before the crash
    await kit.engine.recorder.flush()  # a refusal is durable with the next group commit, not alone
    assert kit.echo.applied == []
    assert kit.entries("approval.rejected")[-1]["reason"].startswith("this decision was applied already")
    kit.clock.now += 1
    assert await kit.engine.decide(*decision(kit, again.incident, "tell.deactivate"))
    assert [p.target for p in kit.echo.applied] == ["oncall"]
    assert _acted(kit) == [("deactivate", "failed"), ("tell.deactivate", "ok")]


async def test_an_escalation_step_cut_short_after_its_intent_is_resolved_not_asked_again(tmp_path):
    """An escalation cut short after its durable intent is resolved on restart, even with the kill switch on now."""
    kit, _ = await _released_then_killed(tmp_path, applied=True)
    assert [p.step for p in kit.engine.state.granted()] == ["tell.deactivate"]
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    assert kit.engine.state.parked_steps() == []
    assert [p.target for p in kit.echo.applied] == ["oncall"]  # verified, not applied again
    [resolved] = [b for b in kit.entries("step.result") if b["step"] == "tell.deactivate"]
    assert (resolved["status"], resolved["recovered"]) == ("ok", True)


async def test_an_escalation_step_cut_short_before_it_applied_is_parked_when_the_kill_switch_is_on(tmp_path):
    """An escalation killed before it acted is parked for a human, not applied, on a restart with the kill switch on."""
    kit, incident = await _released_then_killed(tmp_path, applied=False)
    await kit.engine.expire()
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert any(r.startswith("kill_switch") for r in again.reasons)
    kit.clock.now += 1
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    assert [p.target for p in kit.echo.applied] == ["oncall"]
    assert _acted(kit) == [("deactivate", "failed"), ("tell.deactivate", "ok")]


async def test_an_approved_escalation_step_still_never_touches_a_protected_resource(tmp_path):
    """A protected target refuses the released escalation step, as it refuses any approved step."""
    kit, incident = await _escalation_parked(tmp_path)
    kit.engine.guards.policy = GuardPolicy(protected=Protected(ids=["oncall"]))  # protected since it was parked
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    assert kit.echo.applied == []
    assert _acted(kit) == [("deactivate", "failed"), ("tell.deactivate", "refused")]


async def test_the_steps_after_a_failed_step_that_continues_run_once_its_escalation_is_decided(tmp_path):
    """Steps after a failed `continue` step wait while its escalation is parked and run once that is decided."""
    for verdict in ("approve", "deny"):
        (tmp_path / verdict).mkdir()
        kit, incident = await _escalation_parked(tmp_path / verdict, CONTINUING)
        assert [s for s, _ in _acted(kit)] == ["deactivate"]  # `after` waits with the escalation
        assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate", verdict))
        assert _acted(kit) == [("deactivate", "failed"),
                               ("tell.deactivate", "ok" if verdict == "approve" else "denied"), ("after", "ok")]
        assert kit.iam.keys[KEY]["Status"] == "Inactive"


async def test_a_released_escalation_step_is_only_planned_in_a_dry_run(tmp_path):
    """Released while the service runs dry (a restart with dry-run on), the escalation step is planned, not run."""
    kit, incident = await _escalation_parked(tmp_path)
    kit.dry_run = True
    kit.start()
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    assert kit.echo.applied == []
    [planned] = kit.entries("step.planned")
    assert (planned["step"], planned["dry_run"]) == ("tell.deactivate", True)


async def test_a_parked_escalation_step_escalated_on_timeout_waits_its_own_timeout_again(tmp_path):
    """`on_timeout: escalate` on an escalation step re-publishes it with that step's own timeout, not an hour."""
    slow = ESCALATE.replace("    actuator: test.echo\n", "    actuator: test.echo\n    approval: {timeout: 120, "
                            "on_timeout: escalate}\n")
    kit = make_kit(tmp_path, {"rb": FULL + DEACTIVATE_STEPS + slow})
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())
    await kit.send(key=MISSING_KEY)
    [parked] = kit.engine.state.parked_steps()
    assert parked.deadline == kit.clock() + 120
    kit.clock.now += 121
    await kit.engine.expire()
    [again] = kit.engine.state.parked_steps()
    assert again.escalated
    assert again.deadline == kit.clock() + 120


async def test_an_escalation_step_whose_actuator_is_gone_is_recorded_failed_not_raised(tmp_path):
    """A parked escalation naming an actuator its runbook no longer uses is recorded failed, without raising."""
    kit, incident = await _escalation_parked(tmp_path)
    [parked] = kit.engine.state.parked_steps()
    kit.engine.state.park(dataclasses.replace(parked, actuator="gone.actuator"))
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    [failed] = [b for b in kit.entries("step.result") if b["step"] == "tell.deactivate"]
    assert failed["status"] == "failed"
    assert "has no step or on_failure step 'tell.deactivate' for gone.actuator" in str(failed["error"])
    assert kit.echo.applied == []


async def test_an_escalation_step_a_human_released_is_parked_again_by_a_kill_switch_turned_on_since(tmp_path):
    """A step a human released is parked again by a kill switch turned on since; approving the new request runs it."""
    kit, incident = await _escalation_parked(tmp_path)
    kit.engine.guards.policy = GuardPolicy(kill_switch=True)
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    assert kit.echo.applied == []
    [again] = kit.engine.state.parked_steps()
    assert again.step == "tell.deactivate"
    assert [r.split(":")[0] for r in again.reasons] == ["kill_switch", "quota"]  # every trip, for the new request
    kit.clock.now += 1
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "deactivate failed")]

