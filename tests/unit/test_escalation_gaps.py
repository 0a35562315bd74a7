"""Every way a containment step ends without containing reaches a human: an `on_failure` escalation runs, once."""

from __future__ import annotations

from pathlib import Path

import yaml

from responder.metrics import Metrics, TimelineMetrics
from tests.escalation_kit import TIMED, answer_unapplied, crash_after, one_incident, timed_out_kit, told_escalations
from tests.kit import DEACTIVATE_STEPS, ESCALATE, KEY, MISSING_KEY, decision, make_kit


async def test_a_containment_step_denied_by_its_timeout_is_escalated(tmp_path):
    """Nobody answered the approval request: the step is denied and its on_failure escalation tells on-call."""
    kit = await timed_out_kit(tmp_path)
    assert next((b["step"], b["status"]) for b in kit.entries("step.result")) == ("deactivate", "denied")
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    [escalated] = kit.entries("step.escalated")
    assert escalated["status"] == "denied"
    assert escalated["code"] == "ApprovalTimeout"
    assert "resumed" not in escalated


async def test_an_escalated_timeout_that_cannot_be_waived_is_escalated(tmp_path):
    """`on_timeout: escalate` re-asks once; when that lapses too, the denial is escalated (once)."""
    kit = await timed_out_kit(tmp_path, "escalate")
    assert told_escalations(kit) == []  # re-asked, not denied yet
    kit.clock.now += 61
    assert await kit.engine.expire() == 1
    await kit.engine.recorder.flush()
    assert told_escalations(kit) == [("oncall", "deactivate failed")]


async def test_a_human_denial_is_not_escalated(tmp_path):
    """A human who denies the step decided: nobody else is paged about it."""
    kit = make_kit(tmp_path, {"rb": TIMED % "deny"})
    await kit.send()
    assert await kit.engine.decide(*decision(kit, one_incident(kit), "deactivate", "deny"))
    assert told_escalations(kit) == []
    assert kit.entries("step.escalated") == []


async def test_a_crash_after_a_timeout_denial_escalates_once_after_the_restart(tmp_path):
    """Killed once the timed-out denial is durable and before its escalation: the restart escalates, once."""
    kit = await timed_out_kit(tmp_path)
    crash_after(kit, "step.result", "deactivate")
    kit.echo.applied.clear()
    await kit.engine.expire()
    await kit.engine.expire()
    await kit.engine.recorder.flush()
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    assert len(kit.entries("step.escalated")) == 1
    kit.start()
    await kit.engine.expire()
    assert [b["step"] for b in kit.entries("step.result")].count("tell.deactivate") == 1


BROKEN_ESCALATION = """\
on_failure:
  - id: tell
    actuator: test.echo
    with: {target: "${failure.code}", message: "${failure.step} failed"}
"""


async def test_a_failed_escalation_has_its_own_alertable_metric(tmp_path):
    """A failed escalation is counted apart from step failures, and an alert rule fires on one."""
    kit = make_kit(tmp_path, {"contain": DEACTIVATE_STEPS + BROKEN_ESCALATION})
    metrics = Metrics()
    kit.engine.recorder.sinks.append(TimelineMetrics(
        metrics, runbook_of=lambda i: kit.engine.state.incidents.by_id[i].runbook))
    await kit.send(key=MISSING_KEY)
    assert [(b["step"], b["status"]) for b in kit.entries("step.result")] == [
        ("deactivate", "failed"), ("tell.deactivate", "failed")]
    assert metrics.value("responder_escalation_failures_total", runbook="contain", actuator="test.echo") == 1
    assert metrics.value("responder_escalation_failures_total", runbook="contain",
                         actuator="aws.iam.deactivate_access_key") == 0
    rules = yaml.safe_load((Path(__file__).parents[2] / "deploy/prometheus/alerts.yml").read_text())["groups"]
    assert any("responder_escalation_failures_total" in r["expr"] for g in rules for r in g["rules"])


async def test_a_dry_run_plans_the_escalation_of_a_step_it_would_refuse(tmp_path):
    """A dry run of a step a protected id would refuse also plans the escalation that refusal would run."""
    protected = f"guards: {{protected: {{ids: [{KEY}]}}}}\n"
    kit = make_kit(tmp_path, {"rb": protected + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    await kit.send()
    [planned] = [b for b in kit.entries("step.planned") if b["step"] == "deactivate"]
    assert planned["would_refuse"] is True
    assert [b["step"] for b in kit.entries("step.planned")] == ["deactivate", "tell.deactivate"]


async def test_a_containment_step_that_applied_but_does_not_verify_is_escalated(tmp_path):
    """A step recorded ok whose desired state does not hold when read back (verified false) reaches on-call, once."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE})
    answer_unapplied(kit)
    await kit.send()
    [result] = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert (result["status"], result["verified"]) == ("ok", False)
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    [escalated] = kit.entries("step.escalated")
    assert (escalated["status"], escalated["code"]) == ("unverified", "Unverified")
    assert "does not hold" in escalated["error"]
    await kit.send(key=KEY)  # the same alert again: re-applied (still unverified), but on-call is not told twice
    assert told_escalations(kit) == [("oncall", "deactivate failed")]


async def test_an_unverified_step_without_on_failure_is_an_escalation_missed(tmp_path):
    """With no on_failure steps, an unverified containment is recorded escalation.missed (the last resort pages)."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS})
    answer_unapplied(kit)
    await kit.send()
    [missed] = kit.entries("escalation.missed")
    assert (missed["step"], missed["status"], missed["reason"]) == ("deactivate", "unverified", "no_on_failure")


async def test_a_verified_step_is_not_escalated(tmp_path):
    """A step whose desired state holds when read back tells nobody."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE})
    await kit.send()
    assert [(b["step"], b["verified"]) for b in kit.entries("step.result")] == [("deactivate", True)]
    assert told_escalations(kit) == []
    assert kit.entries("step.escalated") == []
