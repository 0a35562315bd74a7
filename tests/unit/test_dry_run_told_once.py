"""A dry run and a drill's card show on-call told once per step per incident, as production does."""

from __future__ import annotations

from responder.tabletop.failures import AGAIN, TOLD, step_failures
from responder.timeline.recorder import Recorder
from tests.kit import DEACTIVATE_STEPS, Kit, make_kit
from tests.unit.test_dry_run_refusal import PROTECTED
from tests.unit.test_trace_timeline import ESCALATE


async def _twice(kit: Kit, *, restart: bool = False) -> list[tuple[str, str]]:
    """Send two findings of one key (one incident); the kinds and reasons of the escalation step's entries."""
    await kit.send(finding_id="first")
    if restart:
        kit.start()
    await kit.send(finding_id="second")
    return [(e.kind, str(e.body.get("reason", ""))) for e in Recorder(kit.store).entries()
            if e.body.get("step") == "tell.deactivate" and e.kind != "step.intent"]


async def test_a_dry_run_plans_a_repeated_failures_escalation_once_as_production_runs_it(tmp_path):
    """The second refusal in an incident skips its planned escalation as already_done, as production skips its run."""
    (tmp_path / "prod").mkdir()
    (tmp_path / "dry").mkdir()
    production = make_kit(tmp_path / "prod", {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE})
    dry = make_kit(tmp_path / "dry", {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    assert await _twice(production) == [("step.result", ""), ("step.skipped", "already_done")]
    assert await _twice(dry) == [("step.planned", ""), ("step.skipped", "already_done")]
    assert len(dry.entries("step.escalated")) == 2  # each refusal is escalated; its page is planned once
    [skipped] = dry.entries("step.skipped")
    assert skipped["dry_run"] is True


async def test_a_restarted_dry_run_still_knows_the_escalation_it_planned(tmp_path):
    """The planned escalation is rebuilt from the timeline: a dry run restarted between the events plans it once."""
    dry = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    assert await _twice(dry, restart=True) == [("step.planned", ""), ("step.skipped", "already_done")]


async def test_the_drill_card_says_the_second_planned_refusal_would_not_be_told_again(tmp_path):
    """A drill in dry run lists the first refusal as told and the second as not told again, as production's card."""
    dry = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    await _twice(dry)
    first, second = step_failures(list(Recorder(dry.store).entries()), lambda e: float(e.seq))
    assert (first.told, first.told_by, second.told, second.told_by, second.already_done) == (
        TOLD, ["tell.deactivate"], AGAIN, [], ["tell.deactivate"])
    assert second.line().endswith("would not be told again: planned (tell.deactivate)")
