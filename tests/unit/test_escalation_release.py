"""An `on_failure` step parked by a guard and released by a human runs alone, with the parameters it was parked
with: the runbook is not run again from its first step."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.engine.guards import GuardPolicy
from responder.models.runbook import Protected
from tests.kit import DEACTIVATE_STEPS, Kit, decision, make_kit
from tests.unit.test_trace_timeline import ESCALATE, MISSING_KEY

FULL = "guards: {quotas: [{actuator: test.*, max: 1, window: 1h}]}\n"


async def _escalation_parked(tmp_path: Path) -> tuple[Kit, str]:
    """A kit whose deactivation failed and whose escalation step waits for a human (its quota is full)."""
    kit = make_kit(tmp_path, {"rb": FULL + DEACTIVATE_STEPS + ESCALATE})
    kit.engine.state.windows.record("rb", "test.echo", kit.clock())  # the quota is full
    await kit.send(key=MISSING_KEY)
    [parked] = kit.engine.state.parked_steps()
    assert parked.step == "tell.deactivate"
    return kit, parked.incident


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


async def test_an_approved_escalation_step_still_never_touches_a_protected_resource(tmp_path):
    """A protected target refuses the released escalation step, as it refuses any approved step."""
    kit, incident = await _escalation_parked(tmp_path)
    kit.engine.guards.policy = GuardPolicy(protected=Protected(ids=["oncall"]))  # protected since it was parked
    assert await kit.engine.decide(*decision(kit, incident, "tell.deactivate"))
    assert kit.echo.applied == []
    assert _acted(kit) == [("deactivate", "failed"), ("tell.deactivate", "refused")]
