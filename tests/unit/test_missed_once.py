"""The last resort (`escalation.missed`) of a step that keeps failing is recorded once per failure of an alert: the
same alert delivered again does not page again, unless the earlier one never became durable (its write failed, or a
crash lost it); another alert's failure pages."""

from __future__ import annotations

import pytest

import responder.engine.failing as failing
from responder.errors import TimelineError
from tests.escalation_kit import NEVER, PROTECTED, taken_over
from tests.kit import DEACTIVATE_STEPS, Kit, make_kit

RUNBOOK = PROTECTED + DEACTIVATE_STEPS  # no on_failure: each refusal ends in escalation.missed


def _missed(kit: Kit) -> list[tuple[object, object]]:
    return [(b.get("event_id"), b.get("dry_run")) for b in kit.entries("escalation.missed")]


async def test_a_redelivered_alert_is_not_paged_again_by_the_last_resort(tmp_path):
    """An alert delivered three times, its step refused with no on_failure, records one `escalation.missed`."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    for _ in range(3):
        await kit.send(finding_id="first")
    assert _missed(kit) == [("first", None)]
    assert [str(b["status"]) for b in kit.entries("step.result") if b["step"] == "deactivate"] == ["refused"] * 3


async def test_every_when_skipped_is_paged_once_per_alert(tmp_path):
    """on_failure steps whose `when` never holds: the last resort once per alert too, the steps skipped each time."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK + NEVER})
    for _ in range(2):
        await kit.send(finding_id="first")
    assert _missed(kit) == [("first", None)]


async def test_another_alert_is_paged_by_the_last_resort(tmp_path):
    """A second, distinct alert failing the same step is a failure of its own: `escalation.missed` again."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    await kit.send(finding_id="first")
    await kit.send(finding_id="second")
    await kit.send(finding_id="second")
    assert _missed(kit) == [("first", None), ("second", None)]


async def test_a_restart_remembers_which_alert_the_last_resort_paged(tmp_path):
    """Read back from the timeline after a restart: the redelivery that follows it does not page again."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    await kit.send(finding_id="first")
    kit.start()
    await kit.send(finding_id="first")
    assert _missed(kit) == [("first", None)]


async def test_a_fleet_slice_carries_which_alert_the_last_resort_paged(tmp_path):
    """A replica that takes the incident over from its slice knows the alert's failure was paged."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    await kit.send(finding_id="first")
    assert taken_over(kit).missed == {"deactivate": "first"}


@pytest.mark.parametrize("restart", [False, True])
async def test_a_last_resort_that_was_not_recorded_pages_at_the_redelivery(tmp_path, monkeypatch, restart):
    """An `escalation.missed` that could not be written is recorded when the alert is delivered again."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    real = failing.record_missed

    def refused(*_: object, **__: object) -> None:
        raise TimelineError("disk full")

    monkeypatch.setattr(failing, "record_missed", refused)
    with pytest.raises(TimelineError):
        await kit.send(finding_id="first")
    monkeypatch.setattr(failing, "record_missed", real)
    if restart:
        kit.start()
    await kit.send(finding_id="first")
    await kit.send(finding_id="first")
    assert _missed(kit) == [("first", None)]


async def test_a_dry_run_last_resort_does_not_stand_for_the_real_failure(tmp_path):
    """A dry run's `escalation.missed` (it pages nobody) does not keep the alert's real failure from paging."""
    kit = make_kit(tmp_path, {"rb": RUNBOOK}, dry_run=True)
    await kit.send(finding_id="first")
    kit.engine.dry_run = False
    await kit.send(finding_id="first")
    await kit.send(finding_id="first")
    assert _missed(kit) == [("first", True), ("first", None)]


async def test_the_drill_card_says_a_redelivered_failure_reached_the_last_resort(tmp_path):
    """The drill card lists each redelivered refusal as nobody told, naming the earlier `escalation.missed`."""
    from responder.tabletop.failures import NOBODY, step_failures
    from responder.timeline.recorder import Recorder

    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    for _ in range(2):
        await kit.send(finding_id="first")
    failures = step_failures(list(Recorder(kit.store).entries()), lambda e: float(e.seq))
    assert [(f.told, f.missed) for f in failures] == [
        (NOBODY, "no_on_failure"), (NOBODY, "no_on_failure, recorded for the alert's earlier delivery")]


async def test_a_last_resort_not_yet_durable_is_not_remembered(tmp_path):
    """A failed changelog write of the batch holding `escalation.missed` leaves the alert not remembered as paged."""
    from collections.abc import Sequence

    from responder.engine.partitions import cut
    from responder.engine.snapshot import EngineSnapshot
    from responder.models.timeline import TimelineEntry

    kit = make_kit(tmp_path, {"rb": RUNBOOK})
    written: list[str] = []

    async def changelog(batch: Sequence[TimelineEntry]) -> None:
        if any(e.kind == "escalation.missed" for e in batch):
            [incident] = kit.engine.state.incidents.all()  # the slice written with the batch, then a write fails
            written.append(cut(kit.engine.state, {incident.id})[incident.id].model_dump_json())
            raise OSError("changelog partition unavailable")

    kit.engine.recorder.barriers.append(changelog)
    with pytest.raises(TimelineError):
        await kit.send(finding_id="first")
    [incident] = kit.engine.state.incidents.all()
    assert incident.missed == {}
    assert [EngineSnapshot.model_validate_json(w).incidents[0].missed for w in written] == [{}]


@pytest.mark.parametrize("extra", ["", NEVER], ids=["no_on_failure", "when"])
async def test_the_slice_written_with_the_last_resort_holds_the_escalation_ended(tmp_path, extra):
    """The fleet slice written with the last resort holds its escalation ended, so a taking-over replica owes none."""
    from collections.abc import Sequence

    from responder.engine.partitions import cut
    from responder.engine.snapshot import EngineSnapshot
    from responder.models.timeline import TimelineEntry

    kit = make_kit(tmp_path, {"rb": RUNBOOK + extra})
    written: list[str] = []

    async def changelog(batch: Sequence[TimelineEntry]) -> None:
        if any(e.kind == "escalation.missed" for e in batch):
            [incident] = kit.engine.state.incidents.all()
            written.append(cut(kit.engine.state, {incident.id})[incident.id].model_dump_json())

    kit.engine.recorder.barriers.append(changelog)
    await kit.send(finding_id="first")
    [slice_] = [EngineSnapshot.model_validate_json(w).incidents[0] for w in written]
    assert slice_.owed == {}
