"""A failed containment reaches a human even when its runbook cannot tell anyone: a recorded, alerted last resort."""

from __future__ import annotations

from responder.tabletop.postmortem import postmortem
from responder.timeline import Recorder
from responder.timeline.evidence import evidence_pack
from tests.escalation_kit import metered, missed_escalations, told_escalations
from tests.kit import DEACTIVATE_STEPS, ESCALATE, MISSING_KEY, make_kit

UNRESOLVED = DEACTIVATE_STEPS.replace("access_key.id}", "access_key.attributes.nothere}")  # not in the finding


async def test_a_failed_containment_without_on_failure_is_a_missed_escalation(tmp_path):
    """A runbook with no on_failure: its failed containment step is recorded as a missed escalation and counted."""
    kit = make_kit(tmp_path, {"contain": DEACTIVATE_STEPS})
    metrics = metered(kit)
    await kit.send(key=MISSING_KEY)
    [missed] = kit.entries("escalation.missed")
    assert (missed["step"], missed["status"], missed["reason"]) == ("deactivate", "failed", "no_on_failure")
    assert missed_escalations(metrics, "contain") == 1


async def test_a_dry_run_without_on_failure_records_but_does_not_count_a_missed_escalation(tmp_path):
    """In a dry run nothing acts: a step that would fail unescalated is shown, not alerted on."""
    kit = make_kit(tmp_path, {"contain": UNRESOLVED}, dry_run=True)
    metrics = metered(kit)
    await kit.send()
    [missed] = kit.entries("escalation.missed")
    assert missed["dry_run"] is True
    assert missed_escalations(metrics, "contain") == 0


WHEN_NEVER = """\
on_failure:
  - id: tell
    actuator: test.echo
    when:
      - {field: event.severity, op: gt, value: 1000}
    with: {target: oncall, message: "${failure.step} failed"}
"""


async def test_an_escalation_whose_when_does_not_hold_is_a_missed_escalation(tmp_path):
    """Every on_failure step was skipped by its `when`: nobody was told, so it is recorded and counted."""
    kit = make_kit(tmp_path, {"contain": DEACTIVATE_STEPS + WHEN_NEVER})
    metrics = metered(kit)
    await kit.send(key=MISSING_KEY)
    assert told_escalations(kit) == []
    [missed] = kit.entries("escalation.missed")
    assert (missed["reason"], missed["escalation"]) == ("when", ["tell.deactivate"])
    assert missed_escalations(metrics, "contain") == 1


async def test_an_escalation_skipped_by_when_beside_one_that_ran_is_not_missed(tmp_path):
    """One on_failure step skipped by its `when` while another told on-call: the failure reached a human."""
    both = WHEN_NEVER + ESCALATE.replace("on_failure:\n", "").replace("id: tell", "id: page")
    kit = make_kit(tmp_path, {"contain": DEACTIVATE_STEPS + both})
    await kit.send(key=MISSING_KEY)
    assert told_escalations(kit) == [("oncall", "deactivate failed")]
    assert kit.entries("escalation.missed") == []


async def test_failure_target_names_what_an_unresolved_step_was_meant_to_act_on(tmp_path):
    """`${failure.target}` shows an unresolved step's parameters as the runbook wrote them, not an empty string."""
    tell = ESCALATE.replace('"${failure.step} failed"', '"${failure.target}"')
    kit = make_kit(tmp_path, {"rb": UNRESOLVED + tell})
    await kit.send()
    [(target, message)] = told_escalations(kit)
    assert target == "oncall"
    assert message == "unresolved: user_name=ml-training, access_key_id=${event.resource.access_key.attributes.nothere}"
    [escalated] = kit.entries("step.escalated")
    assert escalated["target"] == message


async def test_an_incidents_evidence_pack_lists_its_missed_escalation(tmp_path):
    """`responder timeline export` shows auditors that nobody was told: escalation.missed is among the decisions."""
    kit = make_kit(tmp_path, {"contain": DEACTIVATE_STEPS})
    await kit.send(key=MISSING_KEY)
    incident = next(iter(kit.engine.state.incidents.by_id))
    pack = evidence_pack(Recorder(kit.store).entries(), incident, {"ok": True})
    assert [(d["step"], d["reason"]) for d in pack["decisions"] if d["kind"] == "escalation.missed"] == [
        ("deactivate", "no_on_failure")]


async def test_event_text_in_failure_target_is_never_evaluated_as_a_template(tmp_path):
    """Event text like `${…}` in `${failure.target}` is rendered once as data, never evaluated as a template."""
    tell = ESCALATE.replace('"${failure.step} failed"', '"${failure.target} | ${failure.step}"')
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + tell})
    await kit.send(user="${event.id}")
    [(_, message)] = told_escalations(kit)
    assert "user_name=${event.id}" in message
    assert message.endswith(" | deactivate")


async def test_a_postmortem_draft_shows_and_asks_about_a_missed_escalation(tmp_path):
    """`responder timeline postmortem` puts escalation.missed in its timeline and asks who learned of the failure."""
    kit = make_kit(tmp_path, {"contain": DEACTIVATE_STEPS})
    await kit.send(key=MISSING_KEY)
    draft = postmortem(Recorder(kit.store).entries(), next(iter(kit.engine.state.incidents.by_id)))
    assert "| escalation.missed | step=deactivate" in draft
    assert "- Step `deactivate` failed and no escalation step told anyone (`no_on_failure`)" in draft
