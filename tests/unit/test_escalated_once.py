"""A step that keeps failing is recorded as escalated once per failure of an alert: the same alert delivered again
(a Kafka redelivery, a source sending the finding again under its id) does not add a `step.escalated` each time."""

from __future__ import annotations

import yaml

from tests.escalation_kit import PROTECTED, taken_over
from tests.kit import DEACTIVATE_STEPS, ESCALATE, make_kit

RUNBOOK = PROTECTED + DEACTIVATE_STEPS + ESCALATE


async def test_a_redelivered_alert_does_not_record_the_escalation_again(tmp_path):
    """Three deliveries of an alert whose step is refused give one `step.escalated` and one page, each refusal kept."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    for _ in range(3):
        await kit.send(finding_id="first")
    assert len(kit.entries("step.escalated")) == 1
    assert [str(b["status"]) for b in kit.entries("step.result") if b["step"] == "deactivate"] == ["refused"] * 3
    assert [p.message for p in kit.echo.applied] == ["deactivate failed"]


async def test_another_alert_is_escalated_again(tmp_path):
    """A second, distinct alert failing the same step is a failure of its own: escalated (its page already done)."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    await kit.send(finding_id="first")
    await kit.send(finding_id="second")
    await kit.send(finding_id="second")
    assert [b["event_id"] for b in kit.entries("step.escalated")] == ["first", "second"]


async def test_a_restart_remembers_which_alert_was_escalated(tmp_path):
    """Read back from the timeline after a restart: the redelivery that follows it does not record it again."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    await kit.send(finding_id="first")
    kit.start()
    await kit.send(finding_id="first")
    assert len(kit.entries("step.escalated")) == 1


async def test_a_fleet_slice_carries_which_alert_was_escalated(tmp_path):
    """A replica that takes the incident over from its slice knows the alert's failure was escalated."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    await kit.send(finding_id="first")
    assert taken_over(kit).escalated == {"deactivate": "first"}


async def test_the_drill_card_says_a_redelivered_failure_was_not_told_again(tmp_path):
    """The drill card lists each refusal of a redelivered alert: the first told, the others not told again."""
    from responder.tabletop.failures import AGAIN, TOLD, step_failures
    from responder.timeline.recorder import Recorder

    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    for _ in range(3):
        await kit.send(finding_id="first")
    failures = step_failures(list(Recorder(kit.store).entries()), lambda e: float(e.seq))
    assert [(f.step, f.told) for f in failures] == [("deactivate", TOLD), ("deactivate", AGAIN),
                                                    ("deactivate", AGAIN)]


async def test_a_replay_of_the_same_record_twice_says_its_second_failure_was_not_told_again(tmp_path):
    """`responder replay` of one record sent twice keeps the first failure's escalation and shows the second's done."""
    from responder.actuators import registry
    from responder.catalog import load_runbooks
    from responder.tabletop.replay import backtest
    from tests.drill_kit import EVENT, PAGE, UNRESOLVED

    (tmp_path / "silent-deactivation.yaml").write_text(UNRESOLVED + yaml.safe_dump({"on_failure": PAGE}))
    result = await backtest([EVENT.read_bytes()] * 2, load_runbooks(tmp_path, registry), registry)
    assert [(f.step, f.escalation, f.already_done) for f in result.failed] == [
        ("deactivate-key", ["page.deactivate-key"], []), ("deactivate-key", [], ["page.deactivate-key"])]


async def test_a_dry_run_escalation_does_not_stand_for_the_real_failure_after_a_restart(tmp_path):
    """A dry-run escalation does not stand for the real failure after a restart: its `step.escalated` is recorded."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK}, dry_run=True)
    await kit.send(finding_id="first")
    kit.dry_run = False
    kit.start()
    await kit.send(finding_id="first")
    assert [(b["event_id"], b.get("dry_run")) for b in kit.entries("step.escalated")] == [("first", True),
                                                                                          ("first", None)]


async def test_a_dry_run_escalation_does_not_stand_for_the_real_failure_in_one_process(tmp_path):
    """Out of dry run without a restart, the engine escalates the real failure; a later dry run of it does not."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK}, dry_run=True)
    await kit.send(finding_id="first")
    kit.engine.dry_run = False
    await kit.send(finding_id="first")
    kit.engine.dry_run = True
    await kit.send(finding_id="first")
    assert [(b["event_id"], b.get("dry_run")) for b in kit.entries("step.escalated")] == [("first", True),
                                                                                          ("first", None)]
    assert [p.message for p in kit.echo.applied] == ["deactivate failed"]


async def test_a_dry_run_alert_sent_again_is_not_escalated_again(tmp_path):
    """A dry run's redelivery is told once too (its `step.escalated` carries `dry_run`)."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK}, dry_run=True)
    for _ in range(3):
        await kit.send(finding_id="first")
    kit.start()
    await kit.send(finding_id="first")
    assert [(b["event_id"], b.get("dry_run")) for b in kit.entries("step.escalated")] == [("first", True)]


async def test_a_crash_before_an_alerts_escalation_is_escalated_when_it_comes_again(tmp_path):
    """A crash before the second alert's escalation makes the restart record only its owed `step.escalated`."""
    from tests.escalation_kit import crash_after

    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    await kit.send(finding_id="first")
    await kit.send(finding_id="second")
    crash_after(kit, "step.result", "deactivate")
    assert [b["event_id"] for b in kit.entries("step.escalated")] == ["first"]
    await kit.send(finding_id="first")
    await kit.send(finding_id="second")
    assert [b["event_id"] for b in kit.entries("step.escalated")] == ["first", "second"]


async def test_an_escalation_recorded_before_event_id_is_escalated_again_after_a_restart(tmp_path):
    """After a restart, an escalation recorded without `event_id` is escalated again on redelivery, then only once."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    recorder, append = kit.engine.recorder, kit.engine.recorder.append

    def as_before(kind: str, body: dict[str, object], incident: str | None = None) -> object:
        if kind == "step.escalated":
            body = {k: v for k, v in body.items() if k != "event_id"}
        return append(kind, body, incident)

    recorder.append = as_before  # type: ignore[method-assign]
    await kit.send(finding_id="first")
    kit.start()
    await kit.send(finding_id="first")
    await kit.send(finding_id="first")
    assert [b.get("event_id") for b in kit.entries("step.escalated")] == [None, "first"]
