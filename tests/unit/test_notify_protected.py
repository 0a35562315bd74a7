"""A step that only tells a human is not refused for a protected id: the page of a refused containment goes out."""

from __future__ import annotations

from responder.actuators import registry as default_registry
from responder.actuators.base import Actuator
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.quotas import QuotaWindows
from responder.models.runbook import Protected, Runbook
from tests.escalation_kit import PROTECTED, paged, paging_kit, step_results
from tests.guard_kit import event_naming
from tests.kit import DEACTIVATE_STEPS, KEY, PAGE_ON_FAILURE, decision, make_kit

ECHO_KEY = """\
  - id: note
    actuator: test.echo
    with: {target: oncall, message: "${event.resource.access_key.id}"}
"""
FULL = f"guards: {{protected: {{ids: [{KEY}]}}, quotas: [{{actuator: notify.*, max: 1, window: 1h}}]}}\n"


def test_only_the_notify_actuators_are_marked_as_telling_a_human():
    """`notifies` is an explicit class attribute: False by default, True on notify.kafka and notify.webhook."""
    assert Actuator.notifies is False
    marked = sorted(a.name for a in default_registry if a.notifies)
    assert marked == ["notify.kafka.publish_message", "notify.webhook.post_message"]


async def test_the_page_of_a_refused_containment_naming_the_protected_key_is_delivered(tmp_path):
    """The protected key's deactivation is refused; the page carrying it in `${failure.target}` is published."""
    kit = paging_kit(tmp_path, PROTECTED + DEACTIVATE_STEPS + PAGE_ON_FAILURE)
    await kit.send()
    assert step_results(kit) == [("deactivate", "refused"), ("page.deactivate", "ok")]
    [fields] = paged(kit)
    assert fields["target"] == KEY
    assert KEY in str(fields["error"])
    assert kit.iam.count("update_access_key") == 0
    assert [b["step"] for b in kit.entries("guard.tripped")] == ["deactivate"]
    assert kit.entries("escalation.missed") == []


async def test_a_step_that_acts_and_names_a_protected_id_in_a_param_is_still_refused(tmp_path):
    """A non-notify step whose parameter (not its target) carries the protected id is refused, as before."""
    kit = make_kit(tmp_path, {"rb": PROTECTED + "steps:\n" + ECHO_KEY})
    await kit.send()
    assert step_results(kit) == [("note", "refused")]
    assert kit.echo.applied == []


async def test_a_released_page_naming_the_protected_key_is_delivered(tmp_path):
    """A page parked by its full quota and released by a human is published, not refused for the protected key."""
    kit = paging_kit(tmp_path, FULL + DEACTIVATE_STEPS + PAGE_ON_FAILURE)
    kit.engine.state.windows.record("rb", "notify.kafka.publish_message", kit.clock())  # the quota is full
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    assert parked.step == "page.deactivate"
    assert await kit.engine.decide(*decision(kit, parked.incident, "page.deactivate"))
    assert step_results(kit) == [("deactivate", "refused"), ("page.deactivate", "ok")]
    assert [f["target"] for f in paged(kit)] == [KEY]


async def test_a_dry_run_plans_the_page_of_the_refusal_and_would_not_refuse_it(tmp_path):
    """In a dry run the page of the refused deactivation is planned with `would_refuse: false`."""
    kit = paging_kit(tmp_path, PROTECTED + DEACTIVATE_STEPS + PAGE_ON_FAILURE, dry_run=True)
    await kit.send()
    planned = {str(b["step"]): b for b in kit.entries("step.planned")}
    assert planned["deactivate"]["would_refuse"] is True
    assert planned["page.deactivate"]["would_refuse"] is False
    assert "refusal" not in planned["page.deactivate"]
    assert kit.publisher.sent == []


async def test_quotas_and_the_kill_switch_still_hold_a_notify_step(tmp_path):
    """Only the protected-id and IAM-name checks are skipped for a notify step: the kill switch and quotas trip."""
    step = {"id": "s", "actuator": "test.echo", "with": {"target": "t"}}
    rb = Runbook.model_validate({"id": "rb", "trigger": {"source": "x", "type": "y"}, "steps": [step],
                                 "guards": {"quotas": [{"actuator": "notify.*", "max": 1, "window": 60}]}})
    guards = Guards(GuardPolicy(protected=Protected(ids=[KEY]), kill_switch=True))
    windows = QuotaWindows()
    windows.record("rb", "notify.kafka.publish_message", 0.0)
    trips = await guards.check_step(rb, "notify.kafka.publish_message", "responder.notifications",
                                    {"fields": {"target": KEY}}, event_naming(), windows, 1.0, notifies=True)
    assert sorted(t.guard for t in trips) == ["kill_switch", "quota"]
    assert not any(t.hard for t in trips)
