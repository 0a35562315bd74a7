"""A dry run of a step a hard guard would refuse plans the escalation production's refusal would run, as a plan."""

from __future__ import annotations

from pathlib import Path

import yaml

from responder.catalog import load_runbooks
from responder.catalog.defaults import with_default_escalation
from responder.pipeline import Pipeline
from responder.tabletop.postmortem import postmortem
from responder.timeline.recorder import Recorder
from tests.escalation_kit import BY_STATUS, NEVER, PROTECTED, metered
from tests.kit import DEACTIVATE_STEPS, ESCALATE, KEY, Kit, make_kit

PAGE = [{"id": "page", "actuator": "test.echo", "with": {"target": "oncall", "message": "${failure.step} refused"}}]


def _planned(kit: Kit) -> dict[str, dict[str, object]]:
    return {str(b["step"]): b for b in kit.entries("step.planned")}


async def test_the_planned_escalation_carries_the_refusal_it_would_escalate(tmp_path):
    """The escalation step is planned with the refusal (status refused, the guard's detail) rendered in its params."""
    kit = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    await kit.send()
    planned = _planned(kit)
    assert planned["deactivate"]["would_refuse"] is True
    assert "matches protected id" in str(planned["deactivate"]["refusal"])
    [escalated] = kit.entries("step.escalated")
    assert (escalated["step"], escalated["status"], escalated["dry_run"]) == ("deactivate", "refused", True)
    assert escalated["error"] == planned["deactivate"]["refusal"]
    assert escalated["escalation"] == ["tell.deactivate"]
    tell = planned["tell.deactivate"]
    assert tell["params"] == {"target": "oncall", "message": "deactivate failed"}
    assert tell["dry_run"] is True
    assert tell["failure"] == {k: escalated[k] for k in ("step", "actuator", "target", "status", "error", "code")}
    assert kit.entries("step.result") == []
    assert kit.entries("escalation.missed") == []


async def test_the_when_of_an_escalation_step_is_honoured_as_production_would(tmp_path):
    """Of two escalation steps, the one whose `when` holds for a refusal is planned; the other is skipped."""
    kit = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + BY_STATUS}, dry_run=True)
    await kit.send()
    planned = _planned(kit)
    assert set(planned) == {"deactivate", "page.deactivate"}
    assert str(planned["page.deactivate"]["params"]["message"]).startswith("deactivate refused: ")  # type: ignore[index]
    assert [(b["step"], b["reason"]) for b in kit.entries("step.skipped")] == [("tell.deactivate", "when")]
    assert kit.entries("escalation.missed") == []


async def test_every_escalation_step_skipped_by_its_when_is_a_planned_miss(tmp_path):
    """No escalation step's `when` holds for the refusal: `escalation.missed` (when) is recorded as a dry-run plan."""
    kit = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + NEVER}, dry_run=True)
    await kit.send()
    [missed] = kit.entries("escalation.missed")
    assert (missed["reason"], missed["dry_run"]) == ("when", True)
    assert missed["escalation"] == ["page.deactivate", "tell.deactivate"]


async def test_a_runbook_without_on_failure_plans_the_default_escalation(tmp_path):
    """Under `default_on_failure`, a runbook without on_failure plans the default's steps for the refusal."""
    kit = make_kit(tmp_path, {"contain": PROTECTED + DEACTIVATE_STEPS}, dry_run=True)
    kit.pipeline = Pipeline(with_default_escalation(load_runbooks(kit.runbooks_dir, kit.registry), PAGE,
                                                    kit.registry), kit.engine)  # as the service builds it
    await kit.send()
    planned = _planned(kit)
    assert planned["page.deactivate"]["params"] == {"target": "oncall", "message": "deactivate refused"}
    assert kit.entries("step.escalated")[0]["escalation"] == ["page.deactivate"]
    assert kit.entries("escalation.missed") == []


async def test_no_escalation_at_all_is_a_planned_miss_that_is_neither_counted_nor_acted_on(tmp_path):
    """Nobody would be told: a dry-run `escalation.missed`; no metric the alert reads moves and nothing is touched."""
    kit = make_kit(tmp_path, {"contain": PROTECTED + DEACTIVATE_STEPS}, dry_run=True)
    metrics = metered(kit)
    await kit.send()
    [missed] = kit.entries("escalation.missed")
    assert (missed["step"], missed["status"], missed["reason"], missed["dry_run"]) == \
        ("deactivate", "refused", "no_on_failure", True)
    for name in ("responder_escalation_failures_total", "responder_step_failures_total"):
        assert metrics.value(name, runbook="contain", actuator="aws.iam.deactivate_access_key") == 0
    assert kit.iam.count("update_access_key") == 0
    rules = yaml.safe_load((Path(__file__).parents[2] / "deploy/prometheus/alerts.yml").read_text())["groups"]
    [alert] = [r for g in rules for r in g["rules"] if r.get("alert") == "ResponderEscalationFailed"]
    assert "responder_escalation_failures_total" in alert["expr"]  # the metric that stayed at zero


async def test_a_planned_escalation_acts_on_nothing_and_counts_nothing(tmp_path):
    """The planned escalation sends nothing and adds to no step, failure or escalation-failure metric."""
    kit = make_kit(tmp_path, {"contain": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    metrics = metered(kit)
    await kit.send()
    assert kit.echo.applied == []
    assert kit.iam.count("update_access_key") == 0
    for actuator in ("aws.iam.deactivate_access_key", "test.echo"):
        assert metrics.value("responder_escalation_failures_total", runbook="contain", actuator=actuator) == 0
        assert metrics.value("responder_step_failures_total", runbook="contain", actuator=actuator) == 0


async def test_a_step_that_would_only_need_approval_plans_no_escalation(tmp_path):
    """A gated step (not refused) is planned with its approval reason, as before: nothing is escalated."""
    gated = DEACTIVATE_STEPS.replace("    with:\n", "    approval: {required: true}\n    with:\n", 1)
    kit = make_kit(tmp_path, {"rb": gated + ESCALATE}, dry_run=True)
    await kit.send()
    planned = _planned(kit)
    assert planned["deactivate"]["would_refuse"] is False
    assert "refusal" not in planned["deactivate"]
    assert planned["deactivate"]["would_require_approval"]
    assert set(planned) == {"deactivate"}
    assert kit.entries("step.escalated") == []
    assert kit.entries("escalation.missed") == []


async def test_a_dry_run_stops_after_a_refused_step_as_production_does(tmp_path):
    """A refused step with `on_failure: stop` (the default) ends the plan: the steps after it are not planned."""
    after = "  - id: after\n    actuator: test.echo\n    with: {target: oncall, message: after}\n"
    plans = []
    for name, continuing in (("stop", ""), ("continue", "    on_failure: continue\n")):
        steps = DEACTIVATE_STEPS.replace("    with:\n", continuing + "    with:\n", 1) + after
        (tmp_path / name).mkdir()
        kit = make_kit(tmp_path / name, {"rb": PROTECTED + steps + ESCALATE}, dry_run=True)
        await kit.send()
        plans.append([b["step"] for b in kit.entries("step.planned")])
    assert plans == [["deactivate", "tell.deactivate"], ["deactivate", "tell.deactivate", "after"]]


async def test_a_postmortem_does_not_call_a_planned_miss_a_failure_nobody_heard_of(tmp_path):
    """A dry-run escalation.missed is asked about as a plan (would be refused), not as a failure that happened."""
    kit = make_kit(tmp_path, {"contain": PROTECTED + DEACTIVATE_STEPS}, dry_run=True)
    await kit.send()
    draft = postmortem(Recorder(kit.store).entries(), next(iter(kit.engine.state.incidents.by_id)))
    assert "failed and no escalation step told anyone" not in draft
    assert "Dry run: step `deactivate` would end `refused` and no escalation step would tell anyone " \
           "(`no_on_failure`)" in draft


async def test_an_escalation_step_that_acts_on_the_protected_id_is_planned_as_refused(tmp_path):
    """An escalation step (not a notify one) given `${failure.target}`, the protected key, is planned would_refuse."""
    acting = ESCALATE.replace('message: "${failure.step} failed"', 'message: "${failure.target}"')
    kit = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + acting}, dry_run=True)
    await kit.send()
    planned = _planned(kit)
    assert planned["tell.deactivate"]["params"] == {"target": "oncall", "message": KEY}
    assert planned["tell.deactivate"]["would_refuse"] is True
    assert kit.entries("step.escalated")[0]["escalation"] == ["tell.deactivate"]
